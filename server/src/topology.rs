//! Which CPUs the shards run on, and where those CPUs sit in the machine.
//!
//! The one source of truth for the machine's shape is [`Machine::read`]: CPUs, their
//! physical cores and SMT siblings, L3 domains and NUMA nodes, from
//! `/sys/devices/system/cpu` and `/sys/devices/system/node` (a root directory is a
//! parameter, so tests read a fixture copy of a 2-socket SMT machine). The CPUs this
//! process may use come from its affinity mask (`sched_getaffinity` through
//! `core_affinity`), so cgroup cpusets and `taskset` are respected.
//!
//! [`plan`] turns the flags into a shard → CPU map: `--cpus` and `--numa-node` narrow the
//! candidates, `--placement` orders them (fixed, spread, pack), `--no-pin` skips pinning.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use corekv_shard::config::CpuPlace;

use crate::cli::{Args, PlacementKind};

/// One CPU's place in the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The CPU (logical processor) number.
    pub id: usize,
    /// Physical package (socket).
    pub socket: usize,
    /// Core id within the socket (`topology/core_id`); `(socket, core)` names a core.
    pub core: usize,
    /// The L3 cache domain: the lowest CPU sharing this CPU's last-level cache.
    pub l3: usize,
    /// NUMA node.
    pub node: usize,
}

impl Cpu {
    /// The physical core this CPU is a hardware thread of.
    pub fn core_key(&self) -> (usize, usize) {
        (self.socket, self.core)
    }

    /// As the shard config and INFO carry it.
    pub fn place(&self) -> CpuPlace {
        CpuPlace {
            cpu: self.id,
            socket: self.socket,
            core: self.core,
            node: self.node,
        }
    }
}

/// The machine's CPUs, read from sysfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    cpus: BTreeMap<usize, Cpu>,
}

impl Machine {
    /// Reads the topology under `root` (`/` on a real machine). CPUs sysfs does not
    /// describe (a restricted container) get a core of their own on socket 0, node 0.
    pub fn read(root: &Path) -> Machine {
        let cpu_dir = root.join("sys/devices/system/cpu");
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let online = read(&cpu_dir.join("online"))
            .and_then(|s| parse_list(&s).ok())
            .unwrap_or_default();
        let mut node_of = BTreeMap::new();
        let node_dir = root.join("sys/devices/system/node");
        if let Ok(entries) = std::fs::read_dir(&node_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(node) = name.strip_prefix("node").and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let cpus = read(&e.path().join("cpulist"))
                    .and_then(|s| parse_list(&s).ok())
                    .unwrap_or_default();
                for c in cpus {
                    node_of.insert(c, node);
                }
            }
        }
        let mut cpus = BTreeMap::new();
        for id in online {
            let dir = cpu_dir.join(format!("cpu{id}"));
            let num = |rel: &str| read(&dir.join(rel)).and_then(|s| s.trim().parse().ok());
            let socket = num("topology/physical_package_id").unwrap_or(0);
            let core = num("topology/core_id").unwrap_or(id);
            let l3 = last_level_cache(&dir).unwrap_or(id);
            let node = node_of.get(&id).copied().unwrap_or(0);
            cpus.insert(
                id,
                Cpu {
                    id,
                    socket,
                    core,
                    l3,
                    node,
                },
            );
        }
        Machine { cpus }
    }

    /// The machine this process runs on.
    pub fn this() -> Machine {
        Machine::read(Path::new("/"))
    }

    /// A CPU's place; one the topology does not know gets a core of its own.
    pub fn cpu(&self, id: usize) -> Cpu {
        self.cpus.get(&id).copied().unwrap_or(Cpu {
            id,
            socket: 0,
            core: id,
            l3: id,
            node: 0,
        })
    }

    /// The NUMA nodes that have CPUs, ascending.
    pub fn nodes(&self) -> Vec<usize> {
        let mut n: Vec<usize> = self.cpus.values().map(|c| c.node).collect();
        n.sort_unstable();
        n.dedup();
        n
    }
}

/// The lowest CPU sharing `cpu_dir`'s highest-level cache (its L3 on most machines).
fn last_level_cache(cpu_dir: &Path) -> Option<usize> {
    let mut best: Option<(u32, usize)> = None;
    for e in std::fs::read_dir(cpu_dir.join("cache")).ok()?.flatten() {
        if !e.file_name().to_string_lossy().starts_with("index") {
            continue;
        }
        let level: u32 = std::fs::read_to_string(e.path().join("level"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let shared = std::fs::read_to_string(e.path().join("shared_cpu_list"))
            .ok()
            .and_then(|s| parse_list(&s).ok())?;
        let first = shared.into_iter().min()?;
        if best.is_none_or(|(l, _)| level > l) {
            best = Some((level, first));
        }
    }
    best.map(|(_, first)| first)
}

/// Parses a kernel CPU list (`0-3,8-11`); an empty list is empty.
fn parse_list(s: &str) -> Result<Vec<usize>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (part.trim().parse::<usize>(), part.trim().parse::<usize>()),
        };
        let (Ok(lo), Ok(hi)) = (lo, hi) else {
            return Err(format!("bad CPU list {s:?}"));
        };
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// The shard layout to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Number of shards.
    pub shards: usize,
    /// Each shard's CPU, in shard order; `None` when unpinned.
    pub cpus: Option<Vec<Cpu>>,
    /// How the CPUs were chosen.
    pub kind: PlacementKind,
    /// The NUMA node everything was confined to (`--numa-node`).
    pub numa_node: Option<usize>,
}

impl Placement {
    /// The CPU numbers, in shard order, when pinned.
    pub fn cpu_ids(&self) -> Option<Vec<usize>> {
        self.cpus
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.id).collect())
    }
}

impl fmt::Display for Placement {
    /// `0→cpu1(core 0:1, node 0) 1→…`, or `0→unpinned …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in 0..self.shards {
            if i > 0 {
                f.write_str(" ")?;
            }
            match &self.cpus {
                Some(cpus) => {
                    let c = cpus[i];
                    write!(
                        f,
                        "{i}→cpu{}(socket {} core {} node {})",
                        c.id, c.socket, c.core, c.node
                    )?
                }
                None => write!(f, "{i}→unpinned")?,
            }
        }
        Ok(())
    }
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

/// Decides the layout from the flags, the allowed CPUs and the machine.
pub fn plan(args: &Args, allowed: &[usize], machine: &Machine) -> Result<Placement, String> {
    if allowed.is_empty() {
        return Err("cannot read the CPUs this process may run on (sched_getaffinity)".into());
    }
    let mut candidates: Vec<usize> = match &args.cpus {
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
    if let Some(node) = args.numa_node {
        let nodes = machine.nodes();
        if !nodes.contains(&node) {
            return Err(format!(
                "--numa-node {node}: no such NUMA node with CPUs (nodes: {})",
                format_cpus(&nodes)
            ));
        }
        candidates.retain(|&c| machine.cpu(c).node == node);
        if candidates.is_empty() {
            return Err(format!(
                "--numa-node {node}: none of its CPUs is available{}",
                if args.cpus.is_some() {
                    " in --cpus"
                } else {
                    " to this process"
                }
            ));
        }
    }
    let kind = args.placement.unwrap_or(if args.cpus.is_some() {
        PlacementKind::Fixed
    } else {
        PlacementKind::Spread
    });
    let shards = args.shards.unwrap_or(candidates.len());
    if shards == 0 {
        return Err("--shards must be at least 1".into());
    }
    if shards > 1024 {
        return Err(format!(
            "--shards {shards} is more than the 1024 corekv supports"
        ));
    }
    if args.no_pin {
        return Ok(Placement {
            shards,
            cpus: None,
            kind,
            numa_node: args.numa_node,
        });
    }
    if shards > candidates.len() {
        return Err(format!(
            "cannot pin {shards} shards to {} CPU(s) ({}): give more CPUs with --cpus, fewer \
             --shards, or --no-pin",
            candidates.len(),
            format_cpus(&candidates)
        ));
    }
    let ordered = order(kind, &candidates, machine);
    Ok(Placement {
        shards,
        cpus: Some(ordered[..shards].iter().map(|&c| machine.cpu(c)).collect()),
        kind,
        numa_node: args.numa_node,
    })
}

/// The candidates in the order shards take them.
///
/// - fixed: as given.
/// - spread: one hardware thread per physical core first (SMT siblings only once every
///   core has a shard), cores taken round-robin across NUMA nodes and, within a node,
///   across L3 domains, so shards get the most cache and memory bandwidth.
/// - pack: all threads of a core, then the next core of the same L3 domain, then the
///   next domain of the same node; the node and domain with the most candidates first,
///   so shards share as few caches as possible with anything else and talk over the
///   closest links.
pub fn order(kind: PlacementKind, candidates: &[usize], machine: &Machine) -> Vec<usize> {
    // Cores, each with its candidate threads ascending, grouped by node then L3.
    let mut tree: BTreeMap<usize, BTreeMap<usize, Cores>> = BTreeMap::new();
    for &c in candidates {
        let cpu = machine.cpu(c);
        tree.entry(cpu.node)
            .or_default()
            .entry(cpu.l3)
            .or_default()
            .entry(cpu.core_key())
            .or_default()
            .push(c);
    }
    for l3s in tree.values_mut() {
        for cores in l3s.values_mut() {
            for threads in cores.values_mut() {
                threads.sort_unstable();
            }
        }
    }
    match kind {
        PlacementKind::Fixed => candidates.to_vec(),
        PlacementKind::Spread => {
            // Cores interleaved across L3 domains within a node, then across nodes.
            let per_node: Vec<Vec<&Vec<usize>>> = tree
                .values()
                .map(|l3s| interleave(l3s.values().map(|cores| cores.values().collect()).collect()))
                .collect();
            let cores = interleave(per_node);
            let depth = cores.iter().map(|t| t.len()).max().unwrap_or(0);
            (0..depth)
                .flat_map(|k| cores.iter().filter_map(move |t| t.get(k).copied()))
                .collect()
        }
        PlacementKind::Pack => {
            let count = |l3s: &BTreeMap<usize, Cores>| -> usize {
                l3s.values().flat_map(|c| c.values()).map(Vec::len).sum()
            };
            let mut nodes: Vec<_> = tree.values().collect();
            // Stable sort: among equals, the lower node first.
            nodes.sort_by_key(|l3s| std::cmp::Reverse(count(l3s)));
            let mut out = Vec::with_capacity(candidates.len());
            for l3s in nodes {
                let mut domains: Vec<_> = l3s.values().collect();
                domains.sort_by_key(|cores| {
                    std::cmp::Reverse(cores.values().map(Vec::len).sum::<usize>())
                });
                for cores in domains {
                    for threads in cores.values() {
                        out.extend(threads);
                    }
                }
            }
            out
        }
    }
}

/// One L3 domain's cores (by `(socket, core)`), each with its candidate threads.
type Cores = BTreeMap<(usize, usize), Vec<usize>>;

/// Round-robin over lists: the first of each, then the second of each, …
fn interleave<T>(lists: Vec<Vec<T>>) -> Vec<T> {
    let mut iters: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for it in iters.iter_mut() {
            out.extend(it.next());
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Makes `node` the only NUMA node this process (and the threads it starts afterwards)
/// allocates memory from (`set_mempolicy(MPOL_BIND)`, as `numactl --membind`).
pub fn bind_memory(node: usize) -> Result<(), String> {
    const MPOL_BIND: libc::c_long = 2;
    let bits = 8 * std::mem::size_of::<libc::c_ulong>();
    let mut mask = vec![0 as libc::c_ulong; node / bits + 1];
    mask[node / bits] |= 1 << (node % bits);
    // SAFETY: the mask outlives the call and holds `maxnode` bits.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            MPOL_BIND,
            mask.as_ptr(),
            (mask.len() * bits + 1) as libc::c_ulong,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot bind memory to NUMA node {node}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
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
    use std::path::PathBuf;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("corekv").chain(extra.iter().copied())).unwrap()
    }

    /// The fixture: 2 sockets × 4 cores × 2 threads, CPU n and n+8 siblings, node per
    /// socket, one L3 per socket.
    fn two_socket() -> Machine {
        let root =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/tests/fixtures/2socket-smt");
        Machine::read(&root)
    }

    fn ids(p: &Placement) -> Vec<usize> {
        p.cpu_ids().unwrap()
    }

    #[test]
    fn reads_a_two_socket_smt_machine() {
        let m = two_socket();
        assert_eq!(m.nodes(), vec![0, 1]);
        assert_eq!(
            m.cpu(9),
            Cpu {
                id: 9,
                socket: 0,
                core: 1,
                l3: 0,
                node: 0
            }
        );
        assert_eq!(m.cpu(1).core_key(), m.cpu(9).core_key());
        assert_eq!(
            m.cpu(13),
            Cpu {
                id: 13,
                socket: 1,
                core: 1,
                l3: 4,
                node: 1
            }
        );
        // No sysfs: every CPU its own core.
        let none = Machine::read(Path::new("/nonexistent"));
        assert_eq!(none.cpu(3).core, 3);
        assert_eq!(none.cpu(3).node, 0);
    }

    #[test]
    fn one_pinned_shard_per_allowed_cpu_by_default() {
        let m = Machine::default();
        let p = plan(&args(&[]), &[0, 1, 2, 3], &m).unwrap();
        assert_eq!(p.shards, 4);
        assert_eq!(ids(&p), vec![0, 1, 2, 3]);
        assert_eq!(p.kind, PlacementKind::Spread);
    }

    #[test]
    fn cpus_flag_selects_and_orders() {
        let m = Machine::default();
        let p = plan(&args(&["--cpus", "3,1"]), &[0, 1, 2, 3], &m).unwrap();
        assert_eq!(ids(&p), vec![3, 1]);
        assert_eq!(p.kind, PlacementKind::Fixed);
        assert!(plan(&args(&["--cpus", "7"]), &[0, 1], &m)
            .unwrap_err()
            .contains("not available"));
    }

    #[test]
    fn more_shards_than_cpus_needs_no_pin() {
        let m = Machine::default();
        assert!(plan(&args(&["--shards", "4"]), &[0, 1], &m)
            .unwrap_err()
            .contains("--no-pin"));
        let p = plan(&args(&["--shards", "4", "--no-pin"]), &[0, 1], &m).unwrap();
        assert_eq!((p.shards, p.cpus), (4, None));
        let p = plan(&args(&["--shards", "1"]), &[0, 1], &m).unwrap();
        assert_eq!(ids(&p), vec![0]);
    }

    #[test]
    fn spread_skips_smt_siblings_and_alternates_sockets() {
        let m = two_socket();
        let all: Vec<usize> = (0..16).collect();
        let p = plan(&args(&["--shards", "4"]), &all, &m).unwrap();
        assert_eq!(ids(&p), vec![0, 4, 1, 5]);
        let p = plan(&args(&["--placement", "spread"]), &all, &m).unwrap();
        assert_eq!(
            ids(&p),
            vec![0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15],
            "every core once before any sibling"
        );
        // Siblings given explicitly are still spread over cores first.
        let p = plan(
            &args(&[
                "--cpus",
                "0,8,1,9",
                "--placement",
                "spread",
                "--shards",
                "2",
            ]),
            &all,
            &m,
        )
        .unwrap();
        assert_eq!(ids(&p), vec![0, 1]);
    }

    #[test]
    fn pack_fills_cores_then_caches_then_nodes() {
        let m = two_socket();
        let all: Vec<usize> = (0..16).collect();
        let p = plan(&args(&["--placement", "pack", "--shards", "4"]), &all, &m).unwrap();
        assert_eq!(ids(&p), vec![0, 8, 1, 9], "two cores, both threads each");
        let p = plan(&args(&["--placement", "pack", "--shards", "10"]), &all, &m).unwrap();
        assert_eq!(ids(&p), vec![0, 8, 1, 9, 2, 10, 3, 11, 4, 12]);
        // The node with more candidates goes first.
        let p = plan(
            &args(&["--placement", "pack", "--shards", "2"]),
            &[0, 4, 5, 12],
            &m,
        )
        .unwrap();
        assert_eq!(ids(&p), vec![4, 12]);
    }

    #[test]
    fn fixed_keeps_the_given_order() {
        let m = two_socket();
        let all: Vec<usize> = (0..16).collect();
        let p = plan(
            &args(&["--cpus", "9,1,4", "--placement", "fixed"]),
            &all,
            &m,
        )
        .unwrap();
        assert_eq!(ids(&p), vec![9, 1, 4]);
        assert_eq!(p.cpus.unwrap()[0].core, 1);
    }

    #[test]
    fn numa_node_confines_the_shards() {
        let m = two_socket();
        let all: Vec<usize> = (0..16).collect();
        let p = plan(&args(&["--numa-node", "1"]), &all, &m).unwrap();
        assert_eq!(p.shards, 8);
        assert_eq!(ids(&p), vec![4, 5, 6, 7, 12, 13, 14, 15]);
        assert!(p.cpus.unwrap().iter().all(|c| c.node == 1));
        assert!(plan(&args(&["--numa-node", "2"]), &all, &m)
            .unwrap_err()
            .contains("no such NUMA node"));
        assert!(
            plan(&args(&["--numa-node", "1", "--cpus", "0-3"]), &all, &m)
                .unwrap_err()
                .contains("in --cpus")
        );
    }

    #[test]
    fn the_map_prints_every_level() {
        let m = two_socket();
        let p = plan(&args(&["--cpus", "13"]), &[13], &m).unwrap();
        assert_eq!(p.to_string(), "0→cpu13(socket 1 core 1 node 1)");
    }

    #[test]
    fn cpu_sets_print_compactly() {
        assert_eq!(format_cpus(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_cpus(&[3]), "3");
        assert_eq!(parse_list("0-2,5\n"), Ok(vec![0, 1, 2, 5]));
        assert_eq!(parse_list(""), Ok(vec![]));
    }
}
