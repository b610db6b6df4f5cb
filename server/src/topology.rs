//! Which CPUs the shards run on: the CPUs this process may use (its affinity mask, read
//! with `sched_getaffinity` through `core_affinity`, so cgroup cpusets and `taskset` are
//! respected), narrowed by `--cpus`, one shard per CPU unless `--no-pin`.

use crate::cli::Args;

/// The shard layout to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Number of shards.
    pub shards: usize,
    /// CPU of each shard, in shard order; `None` when unpinned.
    pub cpus: Option<Vec<usize>>,
}

/// CPUs this process may run on, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cpus.sort_unstable();
    cpus
}

/// Decides the layout from the flags and the allowed CPUs.
pub fn plan(args: &Args, allowed: &[usize]) -> Result<Placement, String> {
    if allowed.is_empty() {
        return Err("cannot read the CPUs this process may run on (sched_getaffinity)".into());
    }
    let selected: Vec<usize> = match &args.cpus {
        Some(list) => {
            for cpu in &list.0 {
                if !allowed.contains(cpu) {
                    return Err(format!(
                        "CPU {cpu} is not available to this process (allowed: {})",
                        format_cpus(allowed)
                    ));
                }
            }
            list.0.clone()
        }
        None => allowed.to_vec(),
    };
    let shards = args.shards.unwrap_or(selected.len());
    if shards == 0 {
        return Err("--shards must be at least 1".into());
    }
    if shards > 1024 {
        return Err(format!(
            "--shards {shards} is more than the 1024 corekv supports"
        ));
    }
    if args.no_pin {
        return Ok(Placement { shards, cpus: None });
    }
    if shards > selected.len() {
        return Err(format!(
            "cannot pin {shards} shards to {} CPU(s) ({}): give more CPUs with --cpus, fewer \
             --shards, or --no-pin",
            selected.len(),
            format_cpus(&selected)
        ));
    }
    Ok(Placement {
        shards,
        cpus: Some(selected[..shards].to_vec()),
    })
}

/// `[0, 1, 2, 5]` as `0-2,5`.
pub fn format_cpus(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("corekv").chain(extra.iter().copied())).unwrap()
    }

    #[test]
    fn one_pinned_shard_per_allowed_cpu_by_default() {
        let p = plan(&args(&[]), &[0, 1, 2, 3]).unwrap();
        assert_eq!(
            p,
            Placement {
                shards: 4,
                cpus: Some(vec![0, 1, 2, 3])
            }
        );
    }

    #[test]
    fn cpus_flag_selects_and_orders() {
        let p = plan(&args(&["--cpus", "3,1"]), &[0, 1, 2, 3]).unwrap();
        assert_eq!(p.cpus, Some(vec![3, 1]));
        assert!(plan(&args(&["--cpus", "7"]), &[0, 1])
            .unwrap_err()
            .contains("not available"));
    }

    #[test]
    fn more_shards_than_cpus_needs_no_pin() {
        assert!(plan(&args(&["--shards", "4"]), &[0, 1])
            .unwrap_err()
            .contains("--no-pin"));
        let p = plan(&args(&["--shards", "4", "--no-pin"]), &[0, 1]).unwrap();
        assert_eq!(
            p,
            Placement {
                shards: 4,
                cpus: None
            }
        );
        let p = plan(&args(&["--shards", "1"]), &[0, 1]).unwrap();
        assert_eq!(p.cpus, Some(vec![0]));
    }

    #[test]
    fn cpu_sets_print_compactly() {
        assert_eq!(format_cpus(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_cpus(&[3]), "3");
    }
}
