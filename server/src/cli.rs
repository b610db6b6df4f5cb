//! Command-line flags, and the parsers for values written the way Redis users write them
//! (`512mb`, `1gb`; CPU lists like `0,2-3`).

use clap::Parser;
use corekv_shard::config::{self, Policy};

/// corekv: a thread-per-core, shared-nothing Redis-protocol key-value server.
///
/// One shard per CPU, each with its own io_uring event loop, listener (SO_REUSEPORT on the
/// shared port), connections and part of the keyspace. Keys belong to shards by Redis
/// Cluster hash slot; commands on keys another shard owns are forwarded to it.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "corekv",
    version,
    max_term_width = 100,
    args_override_self = true
)]
pub struct Args {
    /// Read settings from this file first, in redis.conf's `name value` line format (see
    /// README for the directives corekv knows); flags given on the command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// TCP port for the Redis protocol. 0 picks a free port; the chosen port is logged.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,

    /// Address to listen on. Use 0.0.0.0 to accept connections from other hosts.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,

    /// Number of shards (event loops). Default: one per CPU in --cpus, or per CPU this
    /// process may run on (its affinity mask, so cgroup cpusets are respected).
    #[arg(long)]
    pub shards: Option<usize>,

    /// CPUs to run shards on, as a list with ranges: "0,2-3". With --placement fixed (the
    /// default when --cpus is given) shard i runs on the i-th CPU of the list. Default:
    /// every CPU this process may run on.
    #[arg(long, value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,

    /// How shards are mapped to the allowed CPUs. fixed: the --cpus list in its order.
    /// The map chosen is logged at start and shown in INFO shards.
    /// spread: one shard per physical core first (SMT siblings only when every core has
    /// one), round-robin across NUMA nodes and L3 caches. pack: both threads of a core,
    /// then the next core of the same L3, then the next node: as few cores and caches as
    /// possible. Default: fixed with --cpus, spread without.
    #[arg(long, value_enum)]
    pub placement: Option<PlacementKind>,

    /// Use only this NUMA node's CPUs, and allocate memory only from it (as numactl
    /// --cpunodebind N --membind N).
    #[arg(long)]
    pub numa_node: Option<usize>,

    /// Do not pin shards to CPUs. Allows more shards than CPUs (for tests); costs the
    /// cache locality pinning gives.
    #[arg(long)]
    pub no_pin: bool,

    /// Only these shards accept connections, e.g. "0" (default: all). Connections then
    /// land only there, and keys other shards own always cost a cross-shard hop: for
    /// experiments that separate network shards from storage shards or measure the hop.
    #[arg(long, value_parser = parse_cpu_list)]
    pub listen_shards: Option<CpuList>,

    /// Also serve a raw TCP echo listener on this port (every byte read is written back).
    /// Off unless given; 0 picks a free port.
    #[arg(long)]
    pub echo_port: Option<u16>,

    /// Largest bulk argument a client may send, and largest string APPEND or SETRANGE may
    /// build (Redis's proto-max-bulk-len). Units: b, k, kb, m, mb, g, gb.
    #[arg(long, value_parser = parse_size, default_value = "512mb")]
    pub proto_max_bulk_len: u64,

    /// Most arguments in one request; a larger multibulk count is a protocol error.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_multibulk_len: u64,

    /// Longest inline request (and length line) a client may send. Units as above.
    #[arg(long, value_parser = parse_size, default_value = "64kb")]
    pub max_inline_len: u64,

    /// Most unparsed input one client may accumulate before it is disconnected (Redis's
    /// client-query-buffer-limit). Units as above.
    #[arg(long, value_parser = parse_size, default_value = "1gb")]
    pub client_query_buffer_limit: u64,

    /// Disconnect a client whose unread replies pass HARD bytes, or stay above SOFT bytes for
    /// SECONDS: "normal HARD SOFT SECONDS" (0 disables; Redis's format and default). A
    /// client that never reads is otherwise held to one round of replies (256 KiB) by
    /// backpressure.
    #[arg(long, default_value = "normal 0 0 0", value_parser = parse_output_limit)]
    pub client_output_buffer_limit: corekv_shard::config::OutputLimits,

    /// Most memory the keyspace may use, divided evenly across shards (each enforces its
    /// share); 0 for no limit. Units as above. Over it, writes evict by
    /// --maxmemory-policy or are refused with Redis's OOM error.
    #[arg(long, value_parser = parse_size, default_value = "0")]
    pub maxmemory: u64,

    /// Most memory each shard's Lua state (scripts and functions) may use; a script
    /// that allocates past it stops with an error. Units as above.
    #[arg(long, value_parser = parse_size, default_value = "1gb")]
    pub script_heap_limit: u64,

    /// What to evict at maxmemory: noeviction, allkeys-lru, allkeys-lfu, allkeys-random,
    /// volatile-lru, volatile-lfu, volatile-random, volatile-ttl (Redis's names; LRU and
    /// LFU are CLOCK and GCLOCK hands over each shard's keys).
    #[arg(long, default_value = "noeviction", value_parser = parse_policy)]
    pub maxmemory_policy: &'static Policy,

    /// Close a connection idle (nothing read or written) for more than this many seconds;
    /// 0 never. Redis's `timeout`; CONFIG SET changes it at run time.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=2147483647))]
    pub timeout: u64,

    /// Most client connections at once, divided evenly across shards (each shard admits its
    /// share without asking the others); more are refused with Redis's error.
    #[arg(long, default_value_t = 10000)]
    pub maxclients: u64,

    /// Password clients must give (AUTH, or `HELLO ... AUTH default <password>`) before
    /// anything else. Empty: none. Prefer a config file to the command line, where other
    /// users of the machine can read it.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub requirepass: String,

    /// yes: while no password is set, refuse clients that connect from other hosts (only
    /// loopback clients are served), as Redis's protected mode.
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub protected_mode: bool,

    /// Log commands slower than this many microseconds in the slow log (SLOWLOG GET);
    /// -1 never, 0 every command.
    #[arg(long, default_value_t = 10000, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..))]
    pub slowlog_log_slower_than: i64,

    /// Most entries each shard's slow log keeps.
    #[arg(long, default_value_t = 128)]
    pub slowlog_max_len: u64,

    /// Milliseconds a script may run before SCRIPT KILL / FUNCTION KILL can stop it
    /// (Redis's busy-reply-threshold, alias lua-time-limit).
    #[arg(long, default_value_t = 5000)]
    pub busy_reply_threshold: u64,

    /// Snapshot schedule: "seconds changes" pairs, a snapshot is taken when that many
    /// seconds passed since the last one and at least that many writes were made
    /// (Redis's `save`). "" turns automatic snapshots off (SAVE and BGSAVE still work).
    #[arg(long, default_value = "3600 1 300 100 60 10000", value_parser = parse_save)]
    pub save: SaveSchedule,

    /// Directory of the snapshot file; it must exist.
    #[arg(long, default_value = ".")]
    pub dir: std::path::PathBuf,

    /// The snapshot file's name, inside --dir. Loaded at startup if present.
    #[arg(long, default_value = "dump.rdb")]
    pub dbfilename: String,

    /// yes: LZF-compress long strings in snapshots.
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub rdbcompression: bool,

    /// yes: while the last snapshot failed (and --save has a schedule), refuse writes
    /// with Redis's -MISCONF error, so the failure is not missed.
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub stop_writes_on_bgsave_error: bool,

    /// yes: log every write to append-only files in --appenddirname (inside --dir), and
    /// load them at startup instead of the snapshot file.
    #[arg(long, default_value = "no", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub appendonly: bool,

    /// When the append-only log is synced to disk: always (before each reply that
    /// follows a write), everysec, or no (left to the kernel).
    #[arg(long, default_value = "everysec", value_parser = parse_fsync)]
    pub appendfsync: corekv_shard::aof::Fsync,

    /// Directory of the append-only files, inside --dir.
    #[arg(long, default_value = "appendonlydir")]
    pub appenddirname: String,

    /// The append-only files' names start with this.
    #[arg(long, default_value = "appendonly.aof")]
    pub appendfilename: String,

    /// yes: load an append-only log whose last record was cut short (a crash in the
    /// middle of a write) without that record; no: refuse to start.
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub aof_load_truncated: bool,

    /// Rewrite the append-only files when the log grew by this percentage since the
    /// last rewrite (0: never automatically).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=2147483647))]
    pub auto_aof_rewrite_percentage: u64,

    /// ... and the files are at least this large (bytes, or 64mb, 1gb, ...).
    #[arg(long, default_value = "64mb", value_parser = parse_size)]
    pub auto_aof_rewrite_min_size: u64,

    /// yes: end snapshots with a CRC-64, checked when they are loaded.
    #[arg(long, default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub rdbchecksum: bool,

    /// On SIGTERM, SIGINT or SHUTDOWN, wait at most this many seconds for clients' in-flight
    /// requests to finish and their replies to be written, then exit anyway.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=2147483647))]
    pub shutdown_timeout: u64,

    /// A hash with more fields than this leaves its compact listpack for a hash table.
    #[arg(
        long,
        default_value_t = 128,
        visible_alias = "hash-max-ziplist-entries"
    )]
    pub hash_max_listpack_entries: u64,

    /// A hash with a field or value longer than this leaves its compact listpack.
    #[arg(long, default_value_t = 64, visible_alias = "hash-max-ziplist-value")]
    pub hash_max_listpack_value: u64,

    /// A set of integers with more members than this leaves its compact intset.
    #[arg(long, default_value_t = 512)]
    pub set_max_intset_entries: u64,

    /// What a list node holds: a count of elements if positive, -1 to -5 for 4 to 64 KiB.
    #[arg(
        long,
        default_value_t = -2,
        allow_hyphen_values = true,
        visible_alias = "list-max-ziplist-size"
    )]
    pub list_max_listpack_size: i64,

    /// Accepted for redis.conf compatibility; list nodes are not compressed.
    #[arg(long, default_value_t = 0)]
    pub list_compress_depth: u64,

    /// A sorted set with more members than this leaves its compact listpack.
    #[arg(
        long,
        default_value_t = 128,
        visible_alias = "zset-max-ziplist-entries"
    )]
    pub zset_max_listpack_entries: u64,

    /// A sorted set with a member longer than this leaves its compact listpack.
    #[arg(long, default_value_t = 64, visible_alias = "zset-max-ziplist-value")]
    pub zset_max_listpack_value: u64,

    /// Keyspace notifications: Redis's class letters (`KEA`, `Ex`, ...); empty is off.
    #[arg(long, default_value = "", value_parser = parse_notify)]
    pub notify_keyspace_events: u16,

    /// Serve Prometheus metrics at `http://<bind>:<port>/metrics` (counters, per-shard and
    /// per-command figures, latency histograms). Off unless given; 0 picks a free port.
    #[arg(long)]
    pub metrics_port: Option<u16>,
}

/// Parses `--notify-keyspace-events`.
fn parse_notify(s: &str) -> Result<u16, String> {
    corekv_shard::notify::parse(s.as_bytes())
        .ok_or_else(|| "invalid event class character: use 'Ag$lshzxeKEtmdn'".to_string())
}

/// Parses `--client-output-buffer-limit` (see `corekv_shard::config::parse_output_limit`).
pub fn parse_output_limit(s: &str) -> Result<corekv_shard::config::OutputLimits, String> {
    let mut limits = corekv_shard::config::OutputLimits::default();
    limits.set(&corekv_shard::config::parse_output_limit(s)?);
    Ok(limits)
}

/// Parses a `maxmemory-policy` name.
pub fn parse_policy(s: &str) -> Result<&'static Policy, String> {
    config::policy_named(s)
        .ok_or_else(|| format!("{s:?} is not a policy: one of {}", config::policy_names()))
}

/// A `save` schedule: (seconds, changes) pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveSchedule(pub Vec<(u64, u64)>);

fn parse_save(s: &str) -> Result<SaveSchedule, String> {
    config::parse_save(s)
        .map(SaveSchedule)
        .ok_or_else(|| "expected \"seconds changes\" pairs, or \"\" for none".to_string())
}

/// Parses Redis's `yes`/`no`.
pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    config::parse_yes_no(s).ok_or_else(|| format!("{s:?} is not yes or no"))
}

/// `--appendfsync`: always, everysec or no.
pub fn parse_fsync(s: &str) -> Result<corekv_shard::aof::Fsync, String> {
    corekv_shard::aof::Fsync::parse(s.as_bytes())
        .ok_or_else(|| format!("{s:?} is not always, everysec or no"))
}

/// How `--placement` maps shards to CPUs (see `--help`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementKind {
    /// The `--cpus` list, in its order.
    Fixed,
    /// One shard per physical core first, across NUMA nodes and L3 caches.
    Spread,
    /// As few cores, caches and nodes as possible.
    Pack,
}

impl PlacementKind {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            PlacementKind::Fixed => "fixed",
            PlacementKind::Spread => "spread",
            PlacementKind::Pack => "pack",
        }
    }
}

/// A parsed `--cpus` list, in the order given, without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses `0,2-3` into `[0, 2, 3]`.
pub fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("empty item in CPU list {s:?}"));
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_cpu(a, s)?, parse_cpu(b, s)?),
            None => {
                let c = parse_cpu(part, s)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!("range {part:?} in CPU list {s:?} goes backwards"));
        }
        for c in lo..=hi {
            if cpus.contains(&c) {
                return Err(format!("CPU {c} appears twice in CPU list {s:?}"));
            }
            cpus.push(c);
        }
    }
    Ok(CpuList(cpus))
}

fn parse_cpu(s: &str, list: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| format!("{s:?} in CPU list {list:?} is not a CPU number"))
}

/// Parses a size as Redis does (`512mb`, `1gb`; see `corekv_shard::config::parse_memory`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    corekv_shard::config::parse_memory(s).ok_or_else(|| {
        format!("{s:?} is not a size: a number with an optional unit b, k, kb, m, mb, g or gb")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0").unwrap().0, vec![0]);
        assert_eq!(parse_cpu_list("0,2-3").unwrap().0, vec![0, 2, 3]);
        assert_eq!(parse_cpu_list("3,1").unwrap().0, vec![3, 1]);
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("1,,2").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("1,1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(parse_size("512mb").unwrap(), 512 * 1024 * 1024);
        assert!(parse_size("1tb").unwrap_err().contains("not a size"));
    }

    #[test]
    fn flags_parse() {
        let a = Args::try_parse_from(["corekv", "--port", "7000", "--cpus", "0-1", "--no-pin"])
            .unwrap();
        assert_eq!(a.port, 7000);
        assert_eq!(a.cpus, Some(CpuList(vec![0, 1])));
        assert!(a.no_pin);
        assert_eq!(a.proto_max_bulk_len, 512 * 1024 * 1024);
        assert!(a.protected_mode);
    }

    #[test]
    fn later_flags_override_earlier_ones() {
        let a = Args::try_parse_from([
            "corekv",
            "--port",
            "7000",
            "--protected-mode",
            "no",
            "--port",
            "7001",
            "--slowlog-log-slower-than",
            "-1",
        ])
        .unwrap();
        assert_eq!(a.port, 7001);
        assert!(!a.protected_mode);
        assert_eq!(a.slowlog_log_slower_than, -1);
        assert!(Args::try_parse_from(["corekv", "--slowlog-log-slower-than", "-2"]).is_err());
    }
}
