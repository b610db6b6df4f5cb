//! Server commands: COMMAND (what clients and redis-cli ask at connect), CONFIG GET, TIME,
//! and INFO, whose numbers are each shard's, summed by the connection's shard.

use std::time::{SystemTime, UNIX_EPOCH};

use corekv_protocol::{frame, Reply};

use super::connection::help;
use super::{is, Args, Conn, Spec};
use crate::config::Config;
use crate::conn::ConnId;
use crate::glob;
use crate::shard::Shard;

/// Runs a server command for `conn`.
pub fn run(sh: &mut Shard, conn: ConnId, which: Conn, args: Args) {
    let commands = sh.commands;
    let Some(c) = sh.conns.get_mut(conn) else {
        return;
    };
    let proto = c.proto;
    let buf = &mut c.replies.local;
    let start = buf.len();
    let mut out = Reply::new(buf, proto);
    match which {
        Conn::Command => {
            out.array(commands.all().len());
            commands.all().iter().for_each(|s| s.info.encode(&mut out));
        }
        Conn::CommandCount => out.int(commands.all().len() as i64),
        Conn::CommandInfo => {
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
        }
        Conn::CommandDocs => {
            let found: Vec<&Spec> = if args.len() == 2 {
                commands.all().iter().collect()
            } else {
                args.iter()
                    .skip(2)
                    .filter_map(|n| commands.by_full_name(n))
                    .collect()
            };
            out.map(found.len());
            for spec in found {
                out.bulk(spec.name.as_bytes());
                spec.docs.encode(&mut out);
            }
        }
        Conn::CommandList => command_list(commands.all(), args, &mut out),
        Conn::CommandGetKeys => command_getkeys(commands, args, &mut out),
        Conn::CommandHelp => help(
            &mut out,
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
        ),
        Conn::Time => {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            out.array(2);
            out.bulk(t.as_secs().to_string().as_bytes());
            out.bulk(t.subsec_micros().to_string().as_bytes());
        }
        Conn::ConfigGet => config_get(&sh.config, args, &mut out),
        Conn::ConfigHelp => help(
            &mut out,
            args.get(0),
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
            ],
        ),
        Conn::LatencyHelp => {
            // Only HISTOGRAM is implemented; the help says so instead of listing Redis's
            // latency-monitor subcommands, which corekv does not have.
            help(
                &mut out,
                args.get(0),
                &[
                    "HISTOGRAM [COMMAND ...]",
                    "    Return a cumulative distribution of latencies in the format of a \
                     histogram for the specified command names.",
                    "    If no commands are specified then all histograms are replied.",
                ],
            );
        }
        Conn::SlowlogHelp => {
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
            out.array(lines.len());
            for l in lines {
                out.simple(l.as_bytes());
            }
        }
        _ => unreachable!("not a server command"),
    }
    if c.replies.local.get(start) == Some(&b'-') {
        sh.stats.error_replies += 1;
    }
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`, as Redis 7.0 parses it. corekv keeps
/// nothing on disk, so NOSAVE, NOW and FORCE change nothing and SAVE cannot be honoured.
/// On success the shutdown is requested (the server sees the shard's flag on its next
/// tick and drains every shard) and this
/// connection closes after writing the replies before it, with none for SHUTDOWN.
pub fn shutdown(sh: &mut Shard, conn: ConnId, args: Args) -> crate::Outcome {
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    let mut bad = false;
    for a in args.iter().skip(1) {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") || is(a, "force") {
            other = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            bad = true;
        }
    }
    let error = if bad || (abort && (save || nosave || other)) || (save && nosave) {
        Some(super::errors::SYNTAX)
    } else if abort {
        Some("No shutdown in progress.")
    } else if save {
        tracing::warn!("SHUTDOWN SAVE refused: corekv does not persist data");
        Some("Errors trying to SHUTDOWN. Check logs.")
    } else {
        None
    };
    if let Some(text) = error {
        if let Some(c) = sh.conns.get_mut(conn) {
            Reply::new(&mut c.replies.local, c.proto).err(text);
            sh.stats.error_replies += 1;
        }
        return crate::Outcome::Done;
    }
    tracing::info!("SHUTDOWN requested by a client");
    sh.shutdown.request();
    crate::Outcome::Quit
}

/// `SLOWLOG GET [count]`: `Some(None)` for every entry, `Some(Some(n))` for at most `n`;
/// `None` after writing the error.
pub fn slowlog_count(out: &mut Reply, args: Args) -> Option<Option<usize>> {
    if args.len() > 3 {
        out.err(&format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(super::cstr(args.get(1)))
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
                out.err(super::errors::SYNTAX);
                return;
            });
            i += 3;
        } else {
            out.err(super::errors::SYNTAX);
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
fn command_getkeys(commands: &super::Commands, args: Args, out: &mut Reply) {
    let sub: Vec<&[u8]> = args.iter().skip(2).collect();
    let owned = super::OwnedArgs::from_slices(&sub);
    let view = owned.args();
    let spec = match commands.lookup(view) {
        super::Lookup::Found(spec) => spec,
        _ => {
            out.err("Invalid command specified");
            return;
        }
    };
    if spec.first_key <= 0 {
        out.err("The command has no key arguments");
        return;
    }
    if !spec.arity_ok(view.len()) {
        out.err("Invalid number of arguments specified for command");
        return;
    }
    let keys: Vec<&[u8]> = spec
        .key_positions(view.len())
        .map(|p| view.get(p))
        .collect();
    out.array(keys.len());
    for k in keys {
        out.bulk(k);
    }
}

/// CONFIG GET parameter [parameter ...]: glob patterns match case-insensitively; an exact
/// name is echoed as given, as Redis does.
fn config_get(config: &Config, args: Args, out: &mut Reply) {
    let entries = config.entries();
    let mut found: Vec<(Vec<u8>, &str)> = Vec::new();
    for pat in args.iter().skip(2) {
        let pat = super::cstr(pat);
        let is_glob = pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?'));
        for (name, value) in &entries {
            let hit = if is_glob {
                glob::matches(pat, name.as_bytes(), true)
            } else {
                pat.eq_ignore_ascii_case(name.as_bytes())
            };
            if hit
                && !found
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            {
                let shown = if is_glob { name.as_bytes() } else { pat };
                found.push((shown.to_vec(), value));
            }
        }
    }
    out.map(found.len());
    for (name, value) in found {
        out.bulk(&name);
        out.bulk(value.as_bytes());
    }
}

/// Checks CONFIG SET's arguments as Redis does, all of them before any is applied (the
/// command is atomic): pairs only, known names, no immutable or repeated name, then every
/// value. `Err` is the message after `-ERR `.
pub fn config_set_check(args: Args) -> Result<(), String> {
    use crate::config::parse_setting;
    if args.len() % 2 == 1 {
        return Err(super::errors::SYNTAX.to_string());
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    // Names first: the first unknown, immutable or repeated name is the error.
    let mut seen: Vec<String> = Vec::new();
    for (name, _) in &pairs {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        let known = config_names().contains(&lower.as_str());
        if !known || ["bind", "port", "databases", "save", "appendonly"].contains(&lower.as_str()) {
            // parse_setting words both errors exactly as Redis.
            parse_setting(name, b"0")?;
        }
        if seen.contains(&lower) {
            return Err(format!(
                "CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                String::from_utf8_lossy(name)
            ));
        }
        seen.push(lower);
    }
    for (name, value) in &pairs {
        parse_setting(name, value)?;
    }
    Ok(())
}

/// Every setting name CONFIG knows.
fn config_names() -> Vec<&'static str> {
    Config::default()
        .entries()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// The sections INFO was asked for, lower-cased and `\n`-separated (`default` when none).
pub fn info_sections(args: Args) -> Vec<u8> {
    if args.len() == 1 {
        return b"default".to_vec();
    }
    let mut s = Vec::new();
    for a in args.iter().skip(1) {
        if !s.is_empty() {
            s.push(b'\n');
        }
        s.extend(super::cstr(a).iter().map(u8::to_ascii_lowercase));
    }
    s
}

/// The numbers one shard contributes to INFO, in this order.
const INFO_FIELDS: usize = 27;

/// CPU time the calling thread has used: (user, system), microseconds.
fn thread_cpu_us() -> (i64, i64) {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time of `who` (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD): (user, system) µs.
fn rusage(who: libc::c_int) -> (i64, i64) {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0, 0);
    }
    let us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    (us(ru.ru_utime), us(ru.ru_stime))
}

/// One shard's part of INFO: its counters, then its per-command statistics
/// (`[name, calls, ns, rejected, failed, histogram]`, the histogram as `bucket, count` integer pairs)
/// and its error counts (`[code, count]`).
pub fn info_part(sh: &Shard, out: &mut Reply) {
    let st = &sh.stats;
    let ks = &sh.store.stats;
    let cpu = sh.cpu.map_or(-1, |c| c as i64);
    let (user, sys) = thread_cpu_us();
    let fields: [i64; INFO_FIELDS] = [
        sh.store.len() as i64,
        sh.store.volatile() as i64,
        sh.conns.len() as i64,
        st.commands as i64,
        st.connections_received as i64,
        st.rejected_connections as i64,
        st.net_input_bytes as i64,
        st.net_output_bytes as i64,
        ks.hits as i64,
        ks.misses as i64,
        ks.expired as i64,
        st.error_replies as i64,
        st.hops_out as i64,
        st.hops_in as i64,
        st.batches_out as i64,
        st.batches_in as i64,
        cpu,
        user,
        sys,
        st.query_limit_disconnections as i64,
        st.output_limit_disconnections as i64,
        sh.store.used_memory() as i64,
        sh.store.peak_memory() as i64,
        (sh.conns
            .iter()
            .map(|c| c.qbuf + c.qbuf_free + c.omem)
            .sum::<usize>()
            + sh.read_pool.bytes()
            + sh.reply_pool.bytes()) as i64,
        ks.evicted as i64,
        st.watchdog_wakes as i64,
        st.late_ticks as i64,
    ];
    out.array(fields.len() + 2);
    for f in fields {
        out.int(f);
    }
    let used = used_commands(sh, |c| c.calls + c.rejected + c.failed > 0 || c.ticks > 0);
    out.array(used.len());
    for (name, c) in used {
        out.array(6);
        out.bulk(name.as_bytes());
        out.int(c.calls as i64);
        out.int(sh.clock.to_ns(c.ticks) as i64);
        out.int(c.rejected as i64);
        out.int(c.failed as i64);
        put_hist(out, &sh.clock, c);
    }
    out.array(sh.cmdstats.errors.len());
    for (code, n) in &sh.cmdstats.errors {
        out.array(2);
        out.bulk(code);
        out.int(*n as i64);
    }
}

/// The commands whose statistics pass `keep`, with their names.
fn used_commands(
    sh: &Shard,
    keep: impl Fn(&crate::stats::CommandStat) -> bool,
) -> Vec<(&'static str, &crate::stats::CommandStat)> {
    let names = sh.commands.stat_names();
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
fn put_hist(out: &mut Reply, clock: &crate::ticks::Clock, c: &crate::stats::CommandStat) {
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
fn add_hist(hist: &mut crate::stats::LatencyHist, pairs: Option<&frame::Frame>) {
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
pub fn latency_part(sh: &Shard, out: &mut Reply) {
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
pub fn latency_histogram_reply(names: &[Vec<u8>], parts: &[&[u8]], out: &mut Reply) {
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

/// A command's statistics summed over shards.
#[derive(Default)]
struct CmdTotals {
    calls: i64,
    nanos: i64,
    rejected: i64,
    failed: i64,
    hist: crate::stats::LatencyHist,
}

/// Everything the shards sent for INFO, added up where it adds up.
struct Gathered {
    shards: Vec<[i64; INFO_FIELDS]>,
    commands: std::collections::BTreeMap<String, CmdTotals>,
    errors: std::collections::BTreeMap<Vec<u8>, i64>,
}

fn gather_parts(parts: &[&[u8]]) -> Gathered {
    use frame::Frame;
    let mut g = Gathered {
        shards: Vec::new(),
        commands: Default::default(),
        errors: Default::default(),
    };
    for p in parts {
        let mut f = [0i64; INFO_FIELDS];
        let Ok(Some((Frame::Array(items), _))) = frame::parse(p) else {
            g.shards.push(f);
            continue;
        };
        for (slot, item) in f.iter_mut().zip(&items) {
            if let Frame::Integer(n) = item {
                *slot = *n;
            }
        }
        g.shards.push(f);
        if let Some(Frame::Array(cmds)) = items.get(INFO_FIELDS) {
            for cmd in cmds {
                let Frame::Array(v) = cmd else { continue };
                let int = |i: usize| match v.get(i) {
                    Some(Frame::Integer(n)) => *n,
                    _ => 0,
                };
                let name = v.first().and_then(|n| n.as_bytes()).unwrap_or_default();
                let t = g
                    .commands
                    .entry(String::from_utf8_lossy(name).into_owned())
                    .or_default();
                t.calls += int(1);
                t.nanos += int(2);
                t.rejected += int(3);
                t.failed += int(4);
                add_hist(&mut t.hist, v.get(5));
            }
        }
        if let Some(Frame::Array(errs)) = items.get(INFO_FIELDS + 1) {
            for e in errs {
                let Frame::Array(v) = e else { continue };
                if let (Some(code), Some(Frame::Integer(n))) =
                    (v.first().and_then(|c| c.as_bytes()), v.get(1))
                {
                    *g.errors.entry(code.to_vec()).or_default() += n;
                }
            }
        }
    }
    g
}

/// Resident set size and its peak, bytes, from `/proc/self/status`.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// Bytes as Redis's `bytesToHuman`: `1.50K`, `12.00M`, or plain bytes under 1 KiB.
pub fn human_bytes(n: u64) -> String {
    let units = ["K", "M", "G", "T", "P"];
    let mut v = n as f64;
    if v < 1024.0 {
        return format!("{n}B");
    }
    for u in units {
        v /= 1024.0;
        if v < 1024.0 || u == "P" {
            return format!("{v:.2}{u}");
        }
    }
    unreachable!()
}

/// `a / b`, or 0 when `b` is 0: requests per cross-shard batch.
fn ratio(a: i64, b: i64) -> f64 {
    if b > 0 {
        a as f64 / b as f64
    } else {
        0.0
    }
}

/// Seconds with six decimals, as INFO cpu shows them.
fn secs(us: i64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Formats INFO from every shard's numbers (`parts`, in shard order).
pub fn format_info(config: &Config, sections: &[u8], parts: &[&[u8]], out: &mut Reply) {
    let gathered = gather_parts(parts);
    let shards = &gathered.shards;
    let sum = |i: usize| shards.iter().map(|f| f[i]).sum::<i64>();
    let wanted: Vec<&[u8]> = sections.split(|&b| b == b'\n').collect();
    let everything = wanted.iter().any(|s| matches!(*s, b"all" | b"everything"));
    let default = everything || wanted.contains(&&b"default"[..]);
    // Sections INFO shows with no argument; commandstats and latencystats only on request
    // or with `all`, as in Redis.
    let want = |name: &str| {
        let in_default = !matches!(name, "commandstats" | "latencystats");
        everything || (default && in_default) || wanted.contains(&name.as_bytes())
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let uptime = (now.as_millis() as u64).saturating_sub(config.started_ms) / 1000;

    let mut text = String::new();
    let section = |text: &mut String, title: &str, body: String| {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str("# ");
        text.push_str(title);
        text.push_str("\r\n");
        text.push_str(&body);
    };
    if want("server") {
        section(
            &mut text,
            "Server",
            format!(
                "redis_version:{redis}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n\
                 redis_build_id:0\r\nredis_mode:standalone\r\nos:{os}\r\narch_bits:64\r\n\
                 monotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\n\
                 process_id:{pid}\r\nprocess_supervised:no\r\nrun_id:{run_id}\r\n\
                 tcp_port:{port}\r\nserver_time_usec:{usec}\r\nuptime_in_seconds:{uptime}\r\n\
                 uptime_in_days:{days}\r\nexecutable:{exe}\r\nconfig_file:{config_file}\r\n\
                 io_threads_active:0\r\ncorekv_version:{version}\r\nshards:{shards}\r\n",
                redis = super::table::REDIS_VERSION,
                os = config.os,
                pid = std::process::id(),
                run_id = config.run_id,
                port = config.port,
                usec = now.as_micros(),
                days = uptime / 86400,
                exe = config.executable,
                config_file = config.config_file,
                version = env!("CARGO_PKG_VERSION"),
                shards = shards.len(),
            ),
        );
    }
    if want("clients") {
        section(
            &mut text,
            "Clients",
            format!(
                "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\n\
                 client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n\
                 blocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                sum(2),
                config.maxclients
            ),
        );
    }
    if want("stats") {
        section(
            &mut text,
            "Stats",
            format!(
                "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\
                 rejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\n\
                 keyspace_hits:{}\r\nkeyspace_misses:{}\r\ntotal_error_replies:{}\r\n\
                 client_query_buffer_limit_disconnections:{}\r\n\
                 client_output_buffer_limit_disconnections:{}\r\n\
                 cross_shard_requests:{}\r\ncross_shard_batches:{}\r\n",
                sum(4),
                sum(3),
                sum(6),
                sum(7),
                sum(5),
                sum(10),
                sum(24),
                sum(8),
                sum(9),
                sum(11),
                sum(19),
                sum(20),
                sum(12),
                sum(14),
            ),
        );
    }
    if want("memory") {
        let (rss, peak_rss) = rss();
        // Keyspace bytes as each shard accounts them, plus client buffers (in use or
        // pooled for reuse).
        let (dataset, clients) = (sum(21) as u64, sum(23) as u64);
        let used = dataset + clients;
        let peak = (sum(22) as u64 + clients).max(used);
        let frag = if used > 0 {
            rss as f64 / used as f64
        } else {
            0.0
        };
        section(
            &mut text,
            "Memory",
            format!(
                "used_memory:{used}\r\nused_memory_human:{}\r\n\
                 used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n\
                 used_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\n\
                 used_memory_peak_rss:{peak_rss}\r\nused_memory_peak_rss_human:{}\r\n\
                 used_memory_dataset:{dataset}\r\nmem_clients_normal:{clients}\r\n\
                 maxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{policy}\r\n\
                 mem_fragmentation_ratio:{frag:.2}\r\nmem_allocator:mimalloc\r\n",
                human_bytes(used),
                human_bytes(rss),
                human_bytes(peak),
                human_bytes(peak_rss),
                human_bytes(config.maxmemory),
                max = config.maxmemory,
                policy = config.maxmemory_policy.name,
            ),
        );
    }
    if want("cpu") {
        let (user, sys) = rusage(libc::RUSAGE_SELF);
        let (cuser, csys) = rusage(libc::RUSAGE_CHILDREN);
        let (shard_user, shard_sys) = (sum(17), sum(18));
        section(
            &mut text,
            "CPU",
            format!(
                "used_cpu_sys:{}\r\nused_cpu_user:{}\r\nused_cpu_sys_children:{}\r\n\
                 used_cpu_user_children:{}\r\nused_cpu_sys_shards:{}\r\n\
                 used_cpu_user_shards:{}\r\n",
                secs(sys),
                secs(user),
                secs(csys),
                secs(cuser),
                secs(shard_sys),
                secs(shard_user)
            ),
        );
    }
    if want("commandstats") {
        let mut body = String::new();
        for (name, t) in &gathered.commands {
            let usec = t.nanos / 1000;
            let per_call = if t.calls > 0 {
                t.nanos as f64 / 1000.0 / t.calls as f64
            } else {
                0.0
            };
            body.push_str(&format!(
                "cmdstat_{name}:calls={},usec={usec},usec_per_call={per_call:.2},\
                 rejected_calls={},failed_calls={}\r\n",
                t.calls, t.rejected, t.failed
            ));
        }
        section(&mut text, "Commandstats", body);
    }
    if want("errorstats") {
        let mut body = String::new();
        for (code, n) in &gathered.errors {
            body.push_str(&format!(
                "errorstat_{}:count={n}\r\n",
                String::from_utf8_lossy(code)
            ));
        }
        section(&mut text, "Errorstats", body);
    }
    if want("latencystats") {
        let mut body = String::new();
        for (name, t) in gathered.commands.iter().filter(|(_, t)| t.hist.total() > 0) {
            let q = |p: f64| t.hist.quantile(p) as f64 / 1000.0;
            body.push_str(&format!(
                "latency_percentiles_usec_{name}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                q(0.5),
                q(0.99),
                q(0.999)
            ));
        }
        section(&mut text, "Latencystats", body);
    }
    // Not a Redis section, and not in `everything`: cumulative latency buckets per
    // command for the Prometheus endpoint (`le_<µs>=count`, powers of two up to ~1 s).
    if wanted.contains(&&b"histograms"[..]) {
        let mut body = String::new();
        for (name, t) in gathered.commands.iter().filter(|(_, t)| t.hist.total() > 0) {
            body.push_str(&format!("hist_{name}:"));
            for (le, n) in t.hist.cumulative_us(20) {
                body.push_str(&format!("le_{le}={n},"));
            }
            body.push_str(&format!(
                "count={},sum_usec={}\r\n",
                t.hist.total(),
                t.nanos / 1000
            ));
        }
        section(&mut text, "Histograms", body);
    }
    if want("keyspace") {
        let (keys, expires) = (sum(0), sum(1));
        let body = if keys > 0 || expires > 0 {
            format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n")
        } else {
            String::new()
        };
        section(&mut text, "Keyspace", body);
    }
    if want("shards") {
        let mut body = format!(
            "placement:{}\r\nnuma_node:{}\r\n",
            config.placement,
            config
                .numa_node
                .map_or("any".to_string(), |n| n.to_string())
        );
        for (i, f) in shards.iter().enumerate() {
            let planned = config.cpus.iter().flatten();
            let place = match planned.into_iter().find(|p| p.cpu as i64 == f[16]) {
                Some(p) => format!(
                    "cpu={},socket={},core={},node={}",
                    f[16], p.socket, p.core, p.node
                ),
                _ => "cpu=unpinned".to_string(),
            };
            let listening = config.listening.get(i).copied().unwrap_or(true);
            body.push_str(&format!(
                "shard{i}:{place},listening={},keys={},expires={},expired_keys={},\
                 connections={},commands={},hops_out={},hops_in={},batches_out={},\
                 batches_in={},avg_batch_out={:.2},avg_batch_in={:.2},cpu_user={},cpu_sys={},\
                 used_memory={},maxmemory={},evicted_keys={},late_ticks={},\
                 watchdog_wakes={}\r\n",
                u8::from(listening),
                f[0],
                f[1],
                f[10],
                f[2],
                f[3],
                f[12],
                f[13],
                f[14],
                f[15],
                ratio(f[12], f[14]),
                ratio(f[13], f[15]),
                secs(f[17]),
                secs(f[18]),
                f[21] + f[23],
                config.shard_maxmemory(),
                f[24],
                f[26],
                f[25]
            ));
        }
        section(&mut text, "Shards", body);
    }
    out.verbatim(b"txt", text.as_bytes());
}
