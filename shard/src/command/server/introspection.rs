//! Introspection: COMMAND (what clients and redis-cli ask at connect), SLOWLOG and
//! LATENCY HISTOGRAM, as Redis 7.0 replies. COMMAND reads the command table on the
//! client's shard; SLOWLOG and LATENCY merge every shard's log and histograms.

use corekv_protocol::{frame, Reply};

use super::super::connection::help;
use super::super::merge::{all_ok, array_elements, int_of, sum};
use super::super::{
    every_shard, is, Args, Commands, Fanout, Flow, Local, Lookup, OwnedArgs, Plan, Spec,
};
use crate::assembly::{MergeCtx, MergeData};
use crate::glob;
use crate::state::State;

/// COMMAND: every command's COMMAND INFO entry.
pub(super) fn command(l: &mut Local, _: Args) -> Flow {
    let commands = l.commands;
    let mut out = l.reply();
    out.array(commands.all().len());
    commands.all().iter().for_each(|s| s.info.encode(&mut out));
    Flow::Continue
}

/// COMMAND COUNT
pub(super) fn command_count(l: &mut Local, _: Args) -> Flow {
    let n = l.commands.all().len() as i64;
    l.reply().int(n);
    Flow::Continue
}

/// COMMAND INFO [name ...]
pub(super) fn command_info(l: &mut Local, args: Args) -> Flow {
    let commands = l.commands;
    let mut out = l.reply();
    if args.len() == 2 {
        out.array(commands.all().len());
        commands.all().iter().for_each(|s| s.info.encode(&mut out));
    } else {
        out.array(args.len() - 2);
        for name in args.iter().skip(2) {
            match commands.by_full_name(name) {
                Some(spec) => spec.info.encode(&mut out),
                None => out.null(),
            }
        }
    }
    Flow::Continue
}

/// COMMAND DOCS [name ...]
pub(super) fn command_docs(l: &mut Local, args: Args) -> Flow {
    let commands = l.commands;
    let found: Vec<&Spec> = if args.len() == 2 {
        commands.all().iter().collect()
    } else {
        args.iter()
            .skip(2)
            .filter_map(|n| commands.by_full_name(n))
            .collect()
    };
    let mut out = l.reply();
    out.map(found.len());
    for spec in found {
        out.bulk(spec.name.as_bytes());
        spec.docs.encode(&mut out);
    }
    Flow::Continue
}

pub(super) fn command_list_command(l: &mut Local, args: Args) -> Flow {
    let commands = l.commands;
    command_list(commands.all(), args, &mut l.reply());
    Flow::Continue
}

pub(super) fn command_getkeys_command(l: &mut Local, args: Args) -> Flow {
    let commands = l.commands;
    command_getkeys(commands, args, &mut l.reply());
    Flow::Continue
}

pub(super) fn command_help(l: &mut Local, args: Args) -> Flow {
    help(
        &mut l.reply(),
        args.get(0),
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
        ],
    );
    Flow::Continue
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]
fn command_list(all: &[Spec], args: Args, out: &mut Reply) {
    let mut filter: Option<(u8, &[u8])> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(args.get(i), "filterby") && more == 2 {
            let kind = args.get(i + 1);
            let value = args.get(i + 2);
            filter = Some(if is(kind, "module") {
                (b'm', value)
            } else if is(kind, "aclcat") {
                (b'a', value)
            } else if is(kind, "pattern") {
                (b'p', value)
            } else {
                out.err(super::super::errors::SYNTAX);
                return;
            });
            i += 3;
        } else {
            out.err(super::super::errors::SYNTAX);
            return;
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for spec in all {
        for s in std::iter::once(spec).chain(spec.subcommands.iter()) {
            let keep = match filter {
                None => true,
                Some((b'm', _)) => false,
                Some((b'a', cat)) => s.info.at(6).items().iter().any(|c| {
                    c.str()
                        .trim_start_matches('@')
                        .eq_ignore_ascii_case(&String::from_utf8_lossy(cat))
                }),
                Some((_, pat)) => glob::matches(pat, s.name.as_bytes(), true),
            };
            if keep {
                names.push(s.name);
            }
        }
    }
    out.array(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
}

/// COMMAND GETKEYS command [arg ...]
fn command_getkeys(commands: &Commands, args: Args, out: &mut Reply) {
    let sub: Vec<&[u8]> = args.iter().skip(2).collect();
    let owned = OwnedArgs::from_slices(&sub);
    let view = owned.args();
    let spec = match commands.lookup(view) {
        Lookup::Found(spec) => spec,
        _ => {
            out.err("Invalid command specified");
            return;
        }
    };
    if !spec.has_keys() {
        out.err("The command has no key arguments");
        return;
    }
    if !spec.arity_ok(view.len()) {
        out.err("Invalid number of arguments specified for command");
        return;
    }
    let keys: Vec<&[u8]> = spec.key_positions(view).map(|p| view.get(p)).collect();
    let optional = spec
        .info
        .at(2)
        .items()
        .iter()
        .any(|f| f.str() == "no_mandatory_keys");
    if keys.is_empty() && !optional {
        out.err("Invalid arguments specified for command");
        return;
    }
    out.array(keys.len());
    for k in keys {
        out.bulk(k);
    }
}

/// SLOWLOG GET [count]: every shard's entries, newest first, at most `count` (10 by
/// default, -1 for all, never more than `slowlog-max-len`).
pub(super) const SLOWLOG_GET: Fanout = Fanout {
    check: |ck, args| {
        let count = slowlog_count(&mut ck.out, args)?;
        let max = ck.config.slowlog_max_len as usize;
        let count = count.map_or(max, |c| c.min(max));
        Some(Plan {
            data: MergeData::Ints(vec![count as i64]),
            ..Plan::all()
        })
    },
    part: |st, _, out| {
        out.array(st.slowlog.len());
        for e in st.slowlog.iter() {
            out.array(2);
            out.int(e.time_us as i64);
            e.encode(out);
        }
    },
    merge: slowlog_merge,
};

/// SLOWLOG LEN: the sum of every shard's length.
pub(super) const SLOWLOG_LEN: Fanout = Fanout {
    check: every_shard,
    part: |st, _, out| out.int(st.slowlog.len() as i64),
    merge: sum,
};

/// SLOWLOG RESET on every shard.
pub(super) const SLOWLOG_RESET: Fanout = Fanout {
    check: every_shard,
    part: |st, _, out| {
        st.slowlog.reset();
        out.ok();
    },
    merge: all_ok,
};

/// Every shard's `[time_us, entry]` pairs, merged newest first.
fn slowlog_merge(_: &mut MergeCtx, data: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let count = data.ints().first().copied().unwrap_or(0) as usize;
    let mut entries: Vec<(i64, &[u8])> = parts
        .iter()
        .filter_map(|p| array_elements(p))
        .flatten()
        .filter_map(|pair| {
            let e = array_elements(pair)?;
            Some((int_of(e.first()?)?, *e.get(1)?))
        })
        .collect();
    // Newest first; the sort is stable, so one shard's order is kept on ties.
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    entries.truncate(count);
    out.array(entries.len());
    for (_, e) in entries {
        out.raw(e);
    }
}

pub(super) fn slowlog_help(l: &mut Local, _: Args) -> Flow {
    // SLOWLOG's help ends in "Prints", not "Print", in Redis 7.0.
    let lines = [
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ];
    let mut out = l.reply();
    out.array(lines.len());
    for line in lines {
        out.simple(line.as_bytes());
    }
    Flow::Continue
}

/// `SLOWLOG GET [count]`: `Some(None)` for every entry, `Some(Some(n))` for at most `n`;
/// `None` after writing the error.
fn slowlog_count(out: &mut Reply, args: Args) -> Option<Option<usize>> {
    if args.len() > 3 {
        out.err(&format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(super::super::cstr(args.get(1)))
        ));
        return None;
    }
    if args.len() == 2 {
        return Some(Some(10));
    }
    match corekv_protocol::number::parse_i64(args.get(2)) {
        Some(-1) => Some(None),
        Some(n) if n >= 0 => Some(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        _ => {
            out.err("count should be greater than or equal to -1");
            None
        }
    }
}

/// LATENCY HISTOGRAM [command ...]: every shard's histograms, merged per command.
pub(super) const LATENCY_HISTOGRAM: Fanout = Fanout {
    check: |_, args| {
        let names: Vec<Vec<u8>> = args
            .iter()
            .skip(2)
            .map(|a| super::super::cstr(a).to_ascii_lowercase())
            .collect();
        Some(Plan {
            data: MergeData::Args(OwnedArgs::from_slices(&names)),
            ..Plan::all()
        })
    },
    part: latency_part,
    merge: |_, data, parts, out| {
        let names: Vec<Vec<u8>> = match data {
            MergeData::Args(a) => a.args().iter().map(<[u8]>::to_vec).collect(),
            _ => Vec::new(),
        };
        latency_histogram_reply(&names, parts, out)
    },
};

pub(super) fn latency_help(l: &mut Local, args: Args) -> Flow {
    // Only HISTOGRAM is implemented; the help says so instead of listing Redis's
    // latency-monitor subcommands, which corekv does not have.
    help(
        &mut l.reply(),
        args.get(0),
        &[
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a \
             histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Flow::Continue
}

/// The commands whose statistics pass `keep`, with their names.
pub(super) fn used_commands(
    sh: &State,
    keep: impl Fn(&crate::stats::CommandStat) -> bool,
) -> Vec<(&'static str, &crate::stats::CommandStat)> {
    let names = sh.stat_names;
    sh.cmdstats
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| keep(c))
        .map(|(slot, c)| (names.get(slot).copied().unwrap_or("?"), c))
        .collect()
}

/// A command's latency histogram in nanoseconds, as an array of `bucket, count` integer
/// pairs for its non-empty buckets (empty when it never ran here).
pub(super) fn put_hist(
    out: &mut Reply,
    clock: &crate::ticks::Clock,
    c: &crate::stats::CommandStat,
) {
    let Some(h) = &c.hist else {
        out.array(0);
        return;
    };
    let h = h.rescaled(clock.to_ns(1_000_000) as f64 / 1e6);
    let used = || h.counts.iter().enumerate().filter(|(_, &n)| n > 0);
    out.array(2 * used().count());
    for (b, &n) in used() {
        out.int(b as i64);
        out.int(n as i64);
    }
}

/// Adds a histogram [`put_hist`] wrote to `hist`.
pub(super) fn add_hist(hist: &mut crate::stats::LatencyHist, pairs: Option<&frame::Frame>) {
    let Some(frame::Frame::Array(items)) = pairs else {
        return;
    };
    for pair in items.chunks_exact(2) {
        if let [frame::Frame::Integer(b), frame::Frame::Integer(n)] = pair {
            if let Some(c) = hist.counts.get_mut(*b as usize) {
                *c += *n as u64;
            }
        }
    }
}

/// One shard's part of LATENCY HISTOGRAM: `[name, buckets]` for every command that ran
/// here.
fn latency_part(sh: &mut State, _: Args, out: &mut Reply) {
    let used = used_commands(sh, |c| c.hist.is_some());
    out.array(used.len());
    for (name, c) in used {
        out.array(2);
        out.bulk(name.as_bytes());
        put_hist(out, &sh.clock, c);
    }
}

/// LATENCY HISTOGRAM's reply from every shard's part, as Redis 7 shapes it: per command,
/// `calls` and `histogram_usec`, the cumulative count at each power of two from 1,024 ns
/// (labelled in µs as Redis's hdr_histogram labels them: 1, 2, 4, 8, 16, 33, 66, …),
/// only where the count grows.
fn latency_histogram_reply(names: &[Vec<u8>], parts: &[&[u8]], out: &mut Reply) {
    use frame::Frame;
    let mut merged: std::collections::BTreeMap<Vec<u8>, crate::stats::LatencyHist> =
        Default::default();
    for p in parts {
        let Ok(Some((Frame::Array(items), _))) = frame::parse(p) else {
            continue;
        };
        for item in items {
            let Frame::Array(v) = item else { continue };
            if let Some(name) = v.first().and_then(|n| n.as_bytes()) {
                add_hist(merged.entry(name.to_vec()).or_default(), v.get(1));
            }
        }
    }
    let chosen: Vec<(&[u8], &crate::stats::LatencyHist)> = if names.is_empty() {
        merged.iter().map(|(n, h)| (n.as_slice(), h)).collect()
    } else {
        names
            .iter()
            .filter_map(|n| merged.get_key_value(n).map(|(n, h)| (n.as_slice(), h)))
            .collect()
    };
    out.map(chosen.len());
    for (name, h) in chosen {
        let total = h.total();
        let mut steps = Vec::new();
        for p in 0u32..40 {
            let bound = 1u64 << (10 + p);
            let cumulative = h.count_below(bound);
            if cumulative > steps.last().map_or(0, |&(_, c)| c) {
                // hdr_histogram's highest equivalent value at 2 significant digits.
                steps.push(((bound + (bound >> 7) - 1) / 1000, cumulative));
            }
            if cumulative >= total {
                break;
            }
        }
        out.bulk(name);
        out.map(2);
        out.bulk(b"calls");
        out.int(total as i64);
        out.bulk(b"histogram_usec");
        out.map(steps.len());
        for (label, count) in steps {
            out.int(label as i64);
            out.int(count as i64);
        }
    }
}
