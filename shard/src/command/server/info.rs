//! INFO: each shard's numbers (its part), added up and formatted by the client's shard
//! in Redis 7.0's sections and field names, plus corekv's `shards` section.

use std::time::{SystemTime, UNIX_EPOCH};

use corekv_protocol::{frame, Reply};

use super::super::{Args, Fanout, OwnedArgs, Plan};
use super::introspection::{add_hist, put_hist, used_commands};
use crate::assembly::{MergeCtx, MergeData};
use crate::config::Config;
use crate::pubsub::Kind;
use crate::state::State;

/// INFO [section ...]
pub(super) const INFO: Fanout = Fanout {
    check: |_, args| {
        Some(Plan {
            data: MergeData::Args(OwnedArgs::from_slices(&[info_sections(args)])),
            ..Plan::all()
        })
    },
    part: |st, _, out| info_part(st, out),
    merge: info_merge,
};

fn info_merge(ctx: &mut MergeCtx, data: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let sections = match data {
        MergeData::Args(a) => a.args().get(0),
        _ => b"default",
    };
    format_info(ctx.config, sections, parts, out);
}

/// The sections INFO was asked for, lower-cased and `\n`-separated (`default` when none).
fn info_sections(args: Args) -> Vec<u8> {
    if args.len() == 1 {
        return b"default".to_vec();
    }
    let mut s = Vec::new();
    for a in args.iter().skip(1) {
        if !s.is_empty() {
            s.push(b'\n');
        }
        s.extend(super::super::cstr(a).iter().map(u8::to_ascii_lowercase));
    }
    s
}

/// The numbers one shard contributes to INFO, in this order.
const INFO_FIELDS: usize = 56;

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
fn info_part(sh: &State, out: &mut Reply) {
    let st = &sh.stats;
    let ks = &sh.store.stats;
    let cpu = sh.cpu.map_or(-1, |c| c as i64);
    let (user, sys) = thread_cpu_us();
    let script_stats = sh.scripts.stats();
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
        sh.store.lazyfree_pending() as i64,
        ks.lazyfreed as i64,
        sh.blocked_clients().0 as i64,
        sh.blocked_clients().1 as i64,
        script_stats.heap as i64,
        script_stats.scripts as i64,
        script_stats.script_bytes as i64,
        script_stats.functions as i64,
        script_stats.function_bytes as i64,
        sh.persist.dirty as i64,
        sh.persist.lastsave as i64,
        i64::from(sh.persist.last_failed),
        sh.persist.saves as i64,
        sh.persist.last_secs,
        sh.persist.started_ms.unwrap_or(0) as i64,
        sh.persist.loaded.0 as i64,
        sh.persist.loaded.1 as i64,
        i64::from(sh.persist.busy()),
        sh.persist.aof.started_ms.unwrap_or(0) as i64,
        i64::from(sh.persist.aof.scheduled || sh.persist.aof.asked),
        sh.persist.aof.rewrites as i64,
        i64::from(sh.persist.aof.failed),
        sh.persist.aof.failures as i64,
        sh.persist.aof.last_secs,
        sh.persist.aof.base_size as i64,
        sh.persist.aof.incr_size as i64,
        i64::from(sh.store.log.error.is_some()),
        sh.persist.aof.delayed_fsync as i64,
        sh.store.log.pending() as i64,
    ];
    out.array(fields.len() + 3);
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
    // Channels, patterns and shard channels with subscribers here, as hashes: the same
    // name subscribed on two shards counts once.
    out.array(3);
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let names = sh.pubsub.names(kind, None);
        out.array(names.len());
        for n in names {
            out.int(NAME_HASH.hash_one(n) as i64);
        }
    }
}

/// One hash function on every shard, for counting names across shards.
static NAME_HASH: ahash::RandomState = ahash::RandomState::with_seeds(1, 2, 3, 4);

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
    /// Distinct channels, patterns and shard channels with subscribers.
    pubsub: [usize; 3],
    commands: std::collections::BTreeMap<String, CmdTotals>,
    errors: std::collections::BTreeMap<Vec<u8>, i64>,
}

fn gather_parts(parts: &[&[u8]]) -> Gathered {
    use frame::Frame;
    let mut names: [std::collections::HashSet<i64>; 3] = Default::default();
    let mut g = Gathered {
        shards: Vec::new(),
        pubsub: [0; 3],
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
        if let Some(Frame::Array(kinds)) = items.get(INFO_FIELDS + 2) {
            for (set, kind) in names.iter_mut().zip(kinds) {
                if let Frame::Array(hashes) = kind {
                    set.extend(hashes.iter().filter_map(|h| match h {
                        Frame::Integer(n) => Some(*n),
                        _ => None,
                    }));
                }
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
    g.pubsub = names.map(|set| set.len());
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
fn format_info(config: &Config, sections: &[u8], parts: &[&[u8]], out: &mut Reply) {
    let gathered = gather_parts(parts);
    let shards = &gathered.shards;
    let sum = |i: usize| shards.iter().map(|f| f[i]).sum::<i64>();
    // What every shard holds alike (the script cache, the functions): one shard's count.
    let most = |i: usize| shards.iter().map(|f| f[i]).max().unwrap_or(0);
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
                redis = super::super::meta::REDIS_VERSION,
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
                 blocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:{}\r\n",
                sum(2),
                config.maxclients,
                sum(29),
                sum(30)
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
                 keyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\n\
                 pubsub_patterns:{}\r\npubsubshard_channels:{}\r\ntotal_error_replies:{}\r\n\
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
                gathered.pubsub[0],
                gathered.pubsub[1],
                gathered.pubsub[2],
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
                 mem_fragmentation_ratio:{frag:.2}\r\nmem_allocator:mimalloc\r\n\
                 lazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n\
                 used_memory_lua:{lua}\r\nused_memory_vm_eval:{lua}\r\n\
                 used_memory_lua_human:{}\r\nused_memory_scripts_eval:{scripts_eval}\r\n\
                 number_of_cached_scripts:{cached}\r\nnumber_of_functions:{functions}\r\n\
                 used_memory_vm_functions:0\r\nused_memory_vm_total:{lua}\r\n\
                 used_memory_vm_total_human:{}\r\nused_memory_functions:{functions_bytes}\r\n\
                 used_memory_scripts:{scripts}\r\nused_memory_scripts_human:{}\r\n",
                human_bytes(used),
                human_bytes(rss),
                human_bytes(peak),
                human_bytes(peak_rss),
                human_bytes(config.maxmemory),
                sum(27),
                sum(28),
                human_bytes(sum(31) as u64),
                human_bytes(sum(31) as u64),
                human_bytes((most(33) + most(35)) as u64),
                max = config.maxmemory,
                lua = sum(31),
                scripts_eval = most(33),
                cached = most(32),
                functions = most(34),
                functions_bytes = most(35),
                scripts = most(33) + most(35),
                policy = config.maxmemory_policy.name,
            ),
        );
    }
    if want("persistence") {
        // Every shard learns a snapshot's start and end: the first shard speaks for all.
        let first = |i: usize| shards.first().map_or(0, |f| f[i]);
        // Started where the saving shard marked it; busy on any shard that knows of it.
        let started = shards.iter().map(|f| f[41]).max().unwrap_or(0);
        let busy = shards.iter().any(|f| f[44] != 0);
        let current = if started > 0 {
            (now.as_millis() as i64 - started) / 1000
        } else {
            -1
        };
        let status = if first(38) != 0 { "err" } else { "ok" };
        let most = |i: usize| shards.iter().map(|f| f[i]).max().unwrap_or(0);
        let rewrite_started = most(45);
        let rewrite_current = if rewrite_started > 0 {
            (now.as_millis() as i64 - rewrite_started) / 1000
        } else {
            -1
        };
        let ok_err = |bad: bool| if bad { "err" } else { "ok" };
        let mut aof_sizes = String::new();
        if config.appendonly {
            aof_sizes = format!(
                "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\n\
                 aof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:{}\r\n",
                most(51) + sum(52),
                most(51),
                sum(55),
                sum(54),
            );
        }
        section(
            &mut text,
            "Persistence",
            format!(
                "loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\n\
                 current_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\n\
                 current_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n\
                 rdb_changes_since_last_save:{dirty}\r\nrdb_bgsave_in_progress:{busy}\r\n\
                 rdb_last_save_time:{last}\r\nrdb_last_bgsave_status:{status}\r\n\
                 rdb_last_bgsave_time_sec:{secs}\r\nrdb_current_bgsave_time_sec:{current}\r\n\
                 rdb_saves:{saves}\r\nrdb_last_cow_size:0\r\n\
                 rdb_last_load_keys_expired:{expired}\r\nrdb_last_load_keys_loaded:{loaded}\r\n\
                 aof_enabled:{aof}\r\naof_rewrite_in_progress:{rw_busy}\r\n\
                 aof_rewrite_scheduled:{rw_sched}\r\n\
                 aof_last_rewrite_time_sec:{rw_secs}\r\n\
                 aof_current_rewrite_time_sec:{rewrite_current}\r\n\
                 aof_last_bgrewrite_status:{rw_status}\r\naof_rewrites:{rewrites}\r\n\
                 aof_rewrites_consecutive_failures:{failures}\r\n\
                 aof_last_write_status:{write_status}\r\n\
                 aof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\n\
                 module_fork_last_cow_size:0\r\n{aof_sizes}",
                aof = i64::from(config.appendonly),
                rw_busy = i64::from(rewrite_started > 0),
                rw_sched = i64::from(rewrite_started == 0 && most(46) != 0),
                rw_secs = if shards.is_empty() { -1 } else { first(50) },
                rw_status = ok_err(first(48) != 0),
                rewrites = first(47),
                failures = first(49),
                write_status = ok_err(most(53) != 0),
                dirty = sum(36),
                busy = i64::from(busy),
                last = first(37),
                secs = if shards.is_empty() { -1 } else { first(40) },
                saves = first(39),
                expired = sum(43),
                loaded = sum(42),
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
