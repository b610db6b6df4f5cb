//! The settings a running server has, as CONFIG GET shows them and CONFIG SET changes them.
//! Parsed by the server (flags), held by every shard (each has its own copy; CONFIG SET
//! reaches all of them).

use corekv_protocol::Limits;

use crate::store::Eviction;

/// A `maxmemory-policy`.
#[derive(Debug, PartialEq, Eq)]
pub struct Policy {
    /// Its name, as CONFIG GET and INFO show it.
    pub name: &'static str,
    /// How it ranks keys.
    pub eviction: Eviction,
    /// Whether it only evicts keys that have a deadline.
    pub volatile_only: bool,
}

const fn policy(name: &'static str, eviction: Eviction, volatile_only: bool) -> Policy {
    Policy {
        name,
        eviction,
        volatile_only,
    }
}

/// The `maxmemory-policy`s, in the order Redis lists them.
pub static POLICIES: [Policy; 8] = [
    policy("volatile-lru", Eviction::Lru, true),
    policy("volatile-lfu", Eviction::Lfu, true),
    policy("volatile-random", Eviction::Random, true),
    policy("volatile-ttl", Eviction::Ttl, true),
    policy("allkeys-lru", Eviction::Lru, false),
    policy("allkeys-lfu", Eviction::Lfu, false),
    policy("allkeys-random", Eviction::Random, false),
    policy("noeviction", Eviction::NoEviction, false),
];

/// Redis's default policy.
pub static NOEVICTION: &Policy = &POLICIES[7];

/// The policy named `name` (any case).
pub fn policy_named(name: &str) -> Option<&'static Policy> {
    POLICIES.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The policy names, `, `-separated, as Redis's error lists them.
pub fn policy_names() -> String {
    let names: Vec<&str> = POLICIES.iter().map(|p| p.name).collect();
    names.join(", ")
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the listeners bind (`bind`).
    pub bind: String,
    /// RESP port (`port`).
    pub port: u16,
    /// Raw echo port, if enabled.
    pub echo_port: Option<u16>,
    /// Number of shards.
    pub shards: usize,
    /// Where each shard is pinned, in shard order; `None` when shards are not pinned.
    pub cpus: Option<Vec<CpuPlace>>,
    /// How the CPUs were chosen (`fixed`, `spread`, `pack`; INFO `placement`).
    pub placement: &'static str,
    /// The NUMA node shards and memory are confined to (`--numa-node`).
    pub numa_node: Option<usize>,
    /// Which shards accept connections (`--listen-shards`), in shard order.
    pub listening: Vec<bool>,
    /// Request size limits (`proto-max-bulk-len` and the multibulk and inline limits).
    pub limits: Limits,
    /// Largest unparsed input a client may accumulate (`client-query-buffer-limit`).
    pub query_buffer_limit: u64,
    /// `client-output-buffer-limit`: corekv enforces the normal class (the only kind of
    /// client it has) and keeps the others as set, for CONFIG GET.
    pub output_limits: OutputLimits,
    /// Most bytes the keyspace may use, divided evenly across shards; 0 for no limit
    /// (`maxmemory`).
    pub maxmemory: u64,
    /// `maxmemory-policy`, one of [`POLICIES`].
    pub maxmemory_policy: &'static Policy,
    /// Most connections at once (`maxclients`).
    pub maxclients: u64,
    /// Seconds a connection may stay idle before it is closed; 0 never (`timeout`).
    pub timeout: u64,
    /// The password clients must give with AUTH or HELLO … AUTH; empty for none
    /// (`requirepass`).
    pub requirepass: Vec<u8>,
    /// Refuse clients from other hosts while no password is set (`protected-mode`).
    pub protected_mode: bool,
    /// Commands that run longer than this many microseconds go to the slow log; -1 never,
    /// 0 every command (`slowlog-log-slower-than`).
    pub slowlog_slower_than: i64,
    /// Most entries each shard's slow log keeps (`slowlog-max-len`).
    pub slowlog_max_len: u64,
    /// Most bytes each shard's Lua state may hold (`--script-heap-limit`).
    pub script_heap_limit: u64,
    /// Milliseconds a script runs before SCRIPT KILL and FUNCTION KILL can stop it
    /// (`busy-reply-threshold`, alias `lua-time-limit`).
    pub busy_reply_threshold: u64,
    /// Seconds SHUTDOWN, SIGTERM and SIGINT wait for connections to finish
    /// (`shutdown-timeout`).
    pub shutdown_timeout: u64,
    /// Snapshot when this many seconds passed and this many changes were made (`save`);
    /// empty: no automatic snapshots.
    pub save: Vec<(u64, u64)>,
    /// Directory of the snapshot file (`dir`), absolute.
    pub dir: String,
    /// The snapshot file's name (`dbfilename`).
    pub dbfilename: String,
    /// LZF-compress long strings in snapshots (`rdbcompression`).
    pub rdbcompression: bool,
    /// End snapshots with a CRC-64 and check it on load (`rdbchecksum`).
    pub rdbchecksum: bool,
    /// Refuse writes while the last snapshot failed and `save` has a schedule
    /// (`stop-writes-on-bgsave-error`).
    pub stop_writes_on_bgsave_error: bool,
    /// Log every write to the append-only files (`appendonly`; set at start).
    pub appendonly: bool,
    /// When the log is synced (`appendfsync`).
    pub appendfsync: crate::aof::Fsync,
    /// The append-only files' directory, inside `dir` (`appenddirname`).
    pub appenddirname: String,
    /// The append-only files' names start with this (`appendfilename`).
    pub appendfilename: String,
    /// Load a log whose last record was cut short, without it (`aof-load-truncated`).
    pub aof_load_truncated: bool,
    /// Rewrite the log when it grew by this percentage of the base
    /// (`auto-aof-rewrite-percentage`; 0: never).
    pub auto_aof_rewrite_percentage: u64,
    /// ... and is at least this large (`auto-aof-rewrite-min-size`).
    pub auto_aof_rewrite_min_size: u64,
    /// The configuration file the server was started with, if any (INFO `config_file`).
    pub config_file: String,
    /// Path of the binary, for INFO.
    pub executable: String,
    /// Process start, Unix ms.
    pub started_ms: u64,
    /// 40 hex characters identifying this run (INFO `run_id`).
    pub run_id: String,
    /// When hashes and sets leave their compact encodings.
    pub coll: CollLimits,
    /// `notify-keyspace-events`, as [`crate::notify`] flags (0: off, Redis's default).
    pub notify_keyspace_events: u16,
    /// Operating system, as INFO's `os` line shows it (`Linux 6.1.0 x86_64`).
    pub os: String,
}

/// `client-output-buffer-limit` for one class of clients: a client whose pending replies
/// exceed `hard` bytes, or stay above `soft` bytes for `soft_secs` seconds, is
/// disconnected. 0 disables a limit. Redis's default for normal clients is `0 0 0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    /// Hard limit, bytes.
    pub hard: u64,
    /// Soft limit, bytes.
    pub soft: u64,
    /// How long a client may stay above the soft limit, seconds.
    pub soft_secs: u64,
}

/// `client-output-buffer-limit` for each of Redis's client classes, in the order CONFIG
/// GET lists them: normal, replica (`slave`), pubsub. Defaults are Redis's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits(pub [OutputLimit; 3]);

impl Default for OutputLimits {
    fn default() -> Self {
        let limit = |hard, soft, soft_secs| OutputLimit {
            hard,
            soft,
            soft_secs,
        };
        OutputLimits([
            limit(0, 0, 0),
            limit(256 << 20, 64 << 20, 60),
            limit(32 << 20, 8 << 20, 60),
        ])
    }
}

impl OutputLimits {
    /// The limit of normal clients, which corekv enforces.
    pub fn normal(&self) -> OutputLimit {
        self.0[0]
    }

    /// The `pubsub` class: clients that subscribe to anything.
    pub fn pubsub(&self) -> OutputLimit {
        self.0[2]
    }

    /// Applies the groups [`parse_output_limit`] returned; classes not named keep theirs.
    pub fn set(&mut self, groups: &[(usize, OutputLimit)]) {
        for &(class, limit) in groups {
            self.0[class] = limit;
        }
    }

    /// The value CONFIG GET shows.
    fn text(&self) -> String {
        let mut out = String::new();
        for (name, l) in ["normal", "slave", "pubsub"].iter().zip(&self.0) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("{name} {} {} {}", l.hard, l.soft, l.soft_secs));
        }
        out
    }
}

/// Parses `client-output-buffer-limit`'s value: one or more `<class> <hard> <soft>
/// <seconds>` groups, classes `normal`, `slave`/`replica`, `pubsub`. Returns each group
/// as (index into [`OutputLimits`], limit), all checked before any is applied.
pub fn parse_output_limit(value: &str) -> Result<Vec<(usize, OutputLimit)>, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || words.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut groups = Vec::new();
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let (Some(hard), Some(soft), Ok(secs)) = (
            parse_memory(group[1]),
            parse_memory(group[2]),
            group[3].parse::<u64>(),
        ) else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit \
                        configuration."
                    .into(),
            );
        };
        groups.push((
            class,
            OutputLimit {
                hard,
                soft,
                soft_secs: secs,
            },
        ));
    }
    Ok(groups)
}

/// Where a pinned shard runs: its CPU and that CPU's socket, core and NUMA node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuPlace {
    /// Logical CPU number.
    pub cpu: usize,
    /// Physical package.
    pub socket: usize,
    /// Core id within the socket.
    pub core: usize,
    /// NUMA node.
    pub node: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            echo_port: None,
            shards: 1,
            cpus: None,
            placement: "fixed",
            numa_node: None,
            listening: vec![true],
            limits: Limits::default(),
            query_buffer_limit: 1024 * 1024 * 1024,
            output_limits: OutputLimits::default(),
            maxmemory: 0,
            maxmemory_policy: NOEVICTION,
            maxclients: 10000,
            timeout: 0,
            requirepass: Vec::new(),
            protected_mode: true,
            slowlog_slower_than: 10_000,
            slowlog_max_len: 128,
            busy_reply_threshold: 5000,
            script_heap_limit: 1 << 30,
            shutdown_timeout: 10,
            save: DEFAULT_SAVE.to_vec(),
            dir: std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_else(|_| ".".into()),
            dbfilename: "dump.rdb".into(),
            rdbcompression: true,
            rdbchecksum: true,
            stop_writes_on_bgsave_error: true,
            appendonly: false,
            appendfsync: crate::aof::Fsync::EverySec,
            appenddirname: "appendonlydir".into(),
            appendfilename: "appendonly.aof".into(),
            aof_load_truncated: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            config_file: String::new(),
            executable: String::new(),
            started_ms: 0,
            run_id: "0".repeat(40),
            os: std::env::consts::OS.to_string(),
            coll: CollLimits::default(),
            notify_keyspace_events: 0,
        }
    }
}

/// Parses a size as Redis's `memtoull` does: digits with an optional unit, `b`, `k`=1000,
/// `kb`=1024, `m`=1000², `mb`=1024², `g`=1000³, `gb`=1024³, in any case.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// When a hash leaves its listpack and a set its intset (Redis 7.0's settings and
/// defaults; the `ziplist` names are aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CollLimits {
    /// `hash-max-listpack-entries`: most fields of a listpack hash.
    pub hash_entries: u64,
    /// `hash-max-listpack-value`: longest field or value of a listpack hash.
    pub hash_value: u64,
    /// `set-max-intset-entries`: most members of an intset.
    pub set_intset: u64,
    /// `list-max-listpack-size`: what a list node holds (elements if positive, a size
    /// class if negative; see [`crate::store::list`]).
    pub list_fill: i64,
    /// `list-compress-depth`: accepted and shown; nodes are not compressed.
    pub list_compress: u64,
    /// `zset-max-listpack-entries`: most members of a compact sorted set.
    pub zset_entries: u64,
    /// `zset-max-listpack-value`: longest member of a compact sorted set.
    pub zset_value: u64,
}

impl Default for CollLimits {
    fn default() -> Self {
        CollLimits {
            hash_entries: 128,
            hash_value: 64,
            set_intset: 512,
            list_fill: crate::store::list::DEFAULT_FILL,
            list_compress: 0,
            zset_entries: 128,
            zset_value: 64,
        }
    }
}

/// A setting CONFIG SET can change, with a value already checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `timeout`, seconds.
    Timeout(u64),
    /// `maxclients`.
    MaxClients(u64),
    /// `proto-max-bulk-len`, bytes.
    ProtoMaxBulkLen(u64),
    /// `client-query-buffer-limit`, bytes.
    QueryBufferLimit(u64),
    /// `requirepass`; empty removes the password.
    RequirePass(Vec<u8>),
    /// `protected-mode`.
    ProtectedMode(bool),
    /// `slowlog-log-slower-than`, microseconds.
    SlowlogSlowerThan(i64),
    /// `slowlog-max-len`.
    SlowlogMaxLen(u64),
    /// `busy-reply-threshold` (`lua-time-limit`), milliseconds.
    BusyReplyThreshold(u64),
    /// `shutdown-timeout`, seconds.
    ShutdownTimeout(u64),
    /// `client-output-buffer-limit`: the classes named, each with its limit.
    OutputLimit(Vec<(usize, OutputLimit)>),
    /// `maxmemory`, bytes.
    MaxMemory(u64),
    /// `maxmemory-policy`.
    MaxMemoryPolicy(&'static Policy),
    /// `hash-max-listpack-entries`.
    HashMaxEntries(u64),
    /// `hash-max-listpack-value`.
    HashMaxValue(u64),
    /// `set-max-intset-entries`.
    SetMaxIntset(u64),
    /// `list-max-listpack-size`.
    ListMaxSize(i64),
    /// `list-compress-depth`.
    ListCompressDepth(u64),
    /// `zset-max-listpack-entries`.
    ZsetMaxEntries(u64),
    /// `zset-max-listpack-value`.
    ZsetMaxValue(u64),
    /// `notify-keyspace-events`, as [`crate::notify`] flags.
    NotifyKeyspaceEvents(u16),
    /// `save`: seconds and changes pairs.
    Save(Vec<(u64, u64)>),
    /// `rdbcompression`.
    RdbCompression(bool),
    /// `stop-writes-on-bgsave-error`.
    StopWritesOnBgsaveError(bool),
    /// `appendfsync`.
    AppendFsync(crate::aof::Fsync),
    /// `aof-load-truncated`.
    AofLoadTruncated(bool),
    /// `auto-aof-rewrite-percentage`.
    AutoAofRewritePercentage(u64),
    /// `auto-aof-rewrite-min-size`.
    AutoAofRewriteMinSize(u64),
}

/// Redis's default snapshot schedule: after an hour if one key changed, 5 minutes if
/// 100 did, a minute if 10,000 did.
pub const DEFAULT_SAVE: &[(u64, u64)] = &[(3600, 1), (300, 100), (60, 10000)];

/// Parses a `save` value (`"3600 1 300 100"`, `""` for none), as Redis checks it.
pub fn parse_save(value: &str) -> Option<Vec<(u64, u64)>> {
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    if words.len() % 2 != 0 {
        return None;
    }
    words
        .chunks(2)
        .map(|p| {
            let secs = p[0].parse::<i64>().ok().filter(|&n| n >= 1)?;
            let changes = p[1].parse::<i64>().ok().filter(|&n| n >= 0)?;
            Some((secs as u64, changes as u64))
        })
        .collect()
}

/// `save` as CONFIG GET shows it.
pub fn format_save(save: &[(u64, u64)]) -> String {
    save.iter()
        .map(|(s, c)| format!("{s} {c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Settings whose value CONFIG GET shows but CONFIG SET refuses: corekv cannot rebind,
/// add databases or start persisting at run time.
pub const IMMUTABLE: &[&str] = &[
    "bind",
    "port",
    "databases",
    "appendonly",
    "rdbchecksum",
    "appenddirname",
    "appendfilename",
];

/// Checks one `name value` pair of CONFIG SET. `Err` is Redis's message after `-ERR `.
/// Names match in any case.
pub fn parse_setting(name: &[u8], value: &[u8]) -> Result<Setting, String> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    let value_bytes = value;
    let value = String::from_utf8_lossy(value);
    let failed = |canonical: &str, why: &str| {
        format!("CONFIG SET failed (possibly related to argument '{canonical}') - {why}")
    };
    let integer = |canonical: &str, min: i64, max: i64| -> Result<i64, String> {
        let n = corekv_protocol::number::parse_i64(value.as_bytes())
            .ok_or_else(|| failed(canonical, "argument couldn't be parsed into an integer"))?;
        if n < min || n > max {
            return Err(failed(
                canonical,
                &format!("argument must be between {min} and {max} inclusive"),
            ));
        }
        Ok(n)
    };
    let count = |canonical: &str, min: u32, max: i64| -> Result<u64, String> {
        integer(canonical, i64::from(min), max).map(|n| n as u64)
    };
    let memory = |canonical: &str| -> Result<u64, String> {
        let n = parse_memory(&value)
            .ok_or_else(|| failed(canonical, "argument must be a memory value"))?;
        let (min, max) = (1024 * 1024, i64::MAX as u64);
        if n < min || n > max {
            return Err(failed(
                canonical,
                &format!("argument must be between {min} and {max} inclusive"),
            ));
        }
        Ok(n)
    };
    let yes_no = |canonical: &str| -> Result<bool, String> {
        parse_yes_no(&value).ok_or_else(|| failed(canonical, "argument must be 'yes' or 'no'"))
    };
    match lower.as_str() {
        "requirepass" => Ok(Setting::RequirePass(value_bytes.to_vec())),
        "maxmemory" => parse_memory(&value)
            .map(Setting::MaxMemory)
            .ok_or_else(|| failed("maxmemory", "argument must be a memory value")),
        "maxmemory-policy" => policy_named(&value)
            .map(Setting::MaxMemoryPolicy)
            .ok_or_else(|| {
                failed(
                    "maxmemory-policy",
                    &format!(
                        "argument(s) must be one of the following: {}",
                        policy_names()
                    ),
                )
            }),
        "client-output-buffer-limit" => parse_output_limit(&value)
            .map(Setting::OutputLimit)
            .map_err(|why| failed("client-output-buffer-limit", &why)),
        "protected-mode" => yes_no("protected-mode").map(Setting::ProtectedMode),
        "slowlog-log-slower-than" => {
            integer("slowlog-log-slower-than", -1, i64::MAX).map(Setting::SlowlogSlowerThan)
        }
        "slowlog-max-len" => count("slowlog-max-len", 0, i64::MAX).map(Setting::SlowlogMaxLen),
        "busy-reply-threshold" | "lua-time-limit" => {
            count(&lower, 0, i64::MAX).map(Setting::BusyReplyThreshold)
        }
        "shutdown-timeout" => {
            count("shutdown-timeout", 0, i64::from(i32::MAX)).map(Setting::ShutdownTimeout)
        }
        "timeout" => count("timeout", 0, i64::from(i32::MAX)).map(Setting::Timeout),
        "save" => parse_save(&value)
            .map(Setting::Save)
            .ok_or_else(|| failed("save", "Invalid save parameters")),
        // Redis 7.0 protects these unless `enable-protected-configs`, which corekv does
        // not offer: they are set at start (--dir, --dbfilename).
        "dir" | "dbfilename" => Err(failed(&lower, "can't set protected config")),
        "rdbcompression" => yes_no("rdbcompression").map(Setting::RdbCompression),
        "appendfsync" => crate::aof::Fsync::parse(value_bytes)
            .map(Setting::AppendFsync)
            .ok_or_else(|| {
                failed(
                    "appendfsync",
                    "argument(s) must be one of the following: everysec, always, no",
                )
            }),
        "aof-load-truncated" => yes_no("aof-load-truncated").map(Setting::AofLoadTruncated),
        "auto-aof-rewrite-percentage" => {
            count("auto-aof-rewrite-percentage", 0, i64::from(i32::MAX))
                .map(Setting::AutoAofRewritePercentage)
        }
        "auto-aof-rewrite-min-size" => parse_memory(&value)
            .filter(|&n| n <= i64::MAX as u64)
            .map(Setting::AutoAofRewriteMinSize)
            .ok_or_else(|| {
                failed(
                    "auto-aof-rewrite-min-size",
                    "argument must be a memory value",
                )
            }),
        "stop-writes-on-bgsave-error" => {
            yes_no("stop-writes-on-bgsave-error").map(Setting::StopWritesOnBgsaveError)
        }
        "hash-max-listpack-entries" | "hash-max-ziplist-entries" => {
            count("hash-max-listpack-entries", 0, i64::MAX).map(Setting::HashMaxEntries)
        }
        "hash-max-listpack-value" | "hash-max-ziplist-value" => {
            count("hash-max-listpack-value", 0, i64::MAX).map(Setting::HashMaxValue)
        }
        "set-max-intset-entries" => {
            count("set-max-intset-entries", 0, i64::MAX).map(Setting::SetMaxIntset)
        }
        "list-max-listpack-size" | "list-max-ziplist-size" => integer(
            "list-max-listpack-size",
            i64::from(i32::MIN),
            i64::from(i32::MAX),
        )
        .map(Setting::ListMaxSize),
        "zset-max-listpack-entries" | "zset-max-ziplist-entries" => {
            count("zset-max-listpack-entries", 0, i64::MAX).map(Setting::ZsetMaxEntries)
        }
        "zset-max-listpack-value" | "zset-max-ziplist-value" => {
            count("zset-max-listpack-value", 0, i64::MAX).map(Setting::ZsetMaxValue)
        }
        "list-compress-depth" => {
            count("list-compress-depth", 0, i64::from(i32::MAX)).map(Setting::ListCompressDepth)
        }
        "maxclients" => count("maxclients", 1, i64::from(u32::MAX)).map(Setting::MaxClients),
        "notify-keyspace-events" => crate::notify::parse(value_bytes)
            .map(Setting::NotifyKeyspaceEvents)
            .ok_or_else(|| {
                failed(
                    "notify-keyspace-events",
                    "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
                )
            }),
        "proto-max-bulk-len" => memory("proto-max-bulk-len").map(Setting::ProtoMaxBulkLen),
        "client-query-buffer-limit" => {
            memory("client-query-buffer-limit").map(Setting::QueryBufferLimit)
        }
        other if IMMUTABLE.contains(&other) => Err(failed(
            &String::from_utf8_lossy(name),
            "can't set immutable config",
        )),
        _ => Err(format!(
            "Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(name)
        )),
    }
}

impl Config {
    /// Whether Redis would share the integers 0..10000 among values (OBJECT REFCOUNT):
    /// unless `maxmemory` is set with an LRU or LFU policy, which needs per-value access
    /// data.
    pub fn shared_ints(&self) -> bool {
        self.maxmemory == 0
            || !matches!(
                self.maxmemory_policy.eviction,
                Eviction::Lru | Eviction::Lfu
            )
    }

    /// Each shard's share of `maxmemory` (0: no limit).
    pub fn shard_maxmemory(&self) -> u64 {
        self.maxmemory.div_ceil(self.shards.max(1) as u64)
    }

    /// Every setting CONFIG GET knows, with its current value, in Redis's formats. `save`
    /// and `appendonly` describe corekv truthfully: it keeps nothing on disk.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bind", self.bind.clone()),
            ("port", self.port.to_string()),
            ("databases", "1".into()),
            ("save", format_save(&self.save)),
            ("dir", self.dir.clone()),
            ("dbfilename", self.dbfilename.clone()),
            ("rdbcompression", yes_no(self.rdbcompression).into()),
            ("rdbchecksum", yes_no(self.rdbchecksum).into()),
            (
                "stop-writes-on-bgsave-error",
                yes_no(self.stop_writes_on_bgsave_error).into(),
            ),
            ("appendonly", yes_no(self.appendonly).into()),
            ("appendfsync", self.appendfsync.name().into()),
            ("appenddirname", self.appenddirname.clone()),
            ("appendfilename", self.appendfilename.clone()),
            ("aof-load-truncated", yes_no(self.aof_load_truncated).into()),
            (
                "auto-aof-rewrite-percentage",
                self.auto_aof_rewrite_percentage.to_string(),
            ),
            (
                "auto-aof-rewrite-min-size",
                self.auto_aof_rewrite_min_size.to_string(),
            ),
            ("proto-max-bulk-len", self.limits.max_bulk_len.to_string()),
            (
                "client-query-buffer-limit",
                self.query_buffer_limit.to_string(),
            ),
            ("maxclients", self.maxclients.to_string()),
            ("timeout", self.timeout.to_string()),
            (
                "requirepass",
                String::from_utf8_lossy(&self.requirepass).into_owned(),
            ),
            ("protected-mode", yes_no(self.protected_mode).into()),
            (
                "slowlog-log-slower-than",
                self.slowlog_slower_than.to_string(),
            ),
            ("slowlog-max-len", self.slowlog_max_len.to_string()),
            (
                "busy-reply-threshold",
                self.busy_reply_threshold.to_string(),
            ),
            ("lua-time-limit", self.busy_reply_threshold.to_string()),
            ("shutdown-timeout", self.shutdown_timeout.to_string()),
            ("client-output-buffer-limit", self.output_limits.text()),
            ("maxmemory", self.maxmemory.to_string()),
            ("maxmemory-policy", self.maxmemory_policy.name.to_string()),
            (
                "hash-max-listpack-entries",
                self.coll.hash_entries.to_string(),
            ),
            (
                "hash-max-ziplist-entries",
                self.coll.hash_entries.to_string(),
            ),
            ("hash-max-listpack-value", self.coll.hash_value.to_string()),
            ("hash-max-ziplist-value", self.coll.hash_value.to_string()),
            ("set-max-intset-entries", self.coll.set_intset.to_string()),
            ("list-max-listpack-size", self.coll.list_fill.to_string()),
            ("list-max-ziplist-size", self.coll.list_fill.to_string()),
            ("list-compress-depth", self.coll.list_compress.to_string()),
            (
                "zset-max-listpack-entries",
                self.coll.zset_entries.to_string(),
            ),
            (
                "zset-max-ziplist-entries",
                self.coll.zset_entries.to_string(),
            ),
            ("zset-max-listpack-value", self.coll.zset_value.to_string()),
            ("zset-max-ziplist-value", self.coll.zset_value.to_string()),
            (
                "notify-keyspace-events",
                crate::notify::format(self.notify_keyspace_events),
            ),
        ]
    }

    /// Applies a checked setting.
    pub fn apply(&mut self, s: Setting) {
        match s {
            Setting::Timeout(v) => self.timeout = v,
            Setting::MaxClients(v) => self.maxclients = v,
            Setting::ProtoMaxBulkLen(v) => self.limits.max_bulk_len = v,
            Setting::QueryBufferLimit(v) => self.query_buffer_limit = v,
            Setting::RequirePass(p) => self.requirepass = p,
            Setting::ProtectedMode(b) => self.protected_mode = b,
            Setting::SlowlogSlowerThan(v) => self.slowlog_slower_than = v,
            Setting::SlowlogMaxLen(v) => self.slowlog_max_len = v,
            Setting::BusyReplyThreshold(v) => self.busy_reply_threshold = v,
            Setting::ShutdownTimeout(v) => self.shutdown_timeout = v,
            Setting::OutputLimit(groups) => self.output_limits.set(&groups),
            Setting::MaxMemory(v) => self.maxmemory = v,
            Setting::MaxMemoryPolicy(p) => self.maxmemory_policy = p,
            Setting::HashMaxEntries(v) => self.coll.hash_entries = v,
            Setting::HashMaxValue(v) => self.coll.hash_value = v,
            Setting::SetMaxIntset(v) => self.coll.set_intset = v,
            Setting::ListMaxSize(v) => self.coll.list_fill = v,
            Setting::ListCompressDepth(v) => self.coll.list_compress = v,
            Setting::ZsetMaxEntries(v) => self.coll.zset_entries = v,
            Setting::ZsetMaxValue(v) => self.coll.zset_value = v,
            Setting::NotifyKeyspaceEvents(v) => self.notify_keyspace_events = v,
            Setting::Save(v) => self.save = v,
            Setting::RdbCompression(v) => self.rdbcompression = v,
            Setting::StopWritesOnBgsaveError(v) => self.stop_writes_on_bgsave_error = v,
            Setting::AppendFsync(v) => self.appendfsync = v,
            Setting::AofLoadTruncated(v) => self.aof_load_truncated = v,
            Setting::AutoAofRewritePercentage(v) => self.auto_aof_rewrite_percentage = v,
            Setting::AutoAofRewriteMinSize(v) => self.auto_aof_rewrite_min_size = v,
        }
    }
}

/// Redis's `yes`/`no` (any case).
pub fn parse_yes_no(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// `yes` or `no`, as Redis writes booleans.
fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_values_like_redis() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("512mb"), Some(512 * 1024 * 1024));
        assert_eq!(parse_memory("2g"), Some(2_000_000_000));
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory("mb"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn output_limits_parse_like_redis() {
        let mut l = OutputLimits::default();
        l.set(&parse_output_limit("normal 1mb 512kb 10").unwrap());
        assert_eq!(
            l.normal(),
            OutputLimit {
                hard: 1024 * 1024,
                soft: 512 * 1024,
                soft_secs: 10
            }
        );
        let normal = l.normal();
        l.set(&parse_output_limit("pubsub 1 2 3 replica 4mb 2mb 5").unwrap());
        assert_eq!(
            l.normal(),
            normal,
            "other classes leave the normal limit alone"
        );
        assert!(parse_output_limit("normal 1 2").is_err());
        assert!(parse_output_limit("master 1 2 3").is_err());
        assert!(parse_output_limit("normal x 2 3").is_err());
        assert_eq!(
            l.text(),
            "normal 1048576 524288 10 slave 4194304 2097152 5 pubsub 1 2 3"
        );
        assert_eq!(
            OutputLimits::default().text(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
    }

    #[test]
    fn config_set_errors_match_redis() {
        assert_eq!(parse_setting(b"TIMEOUT", b"5"), Ok(Setting::Timeout(5)));
        assert_eq!(
            parse_setting(b"timeout", b"x").unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer"
        );
        assert_eq!(
            parse_setting(b"timeout", b"-1").unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"
        );
        assert_eq!(
            parse_setting(b"nosuch", b"1").unwrap_err(),
            "Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        );
        assert_eq!(
            parse_setting(b"proto-max-bulk-len", b"1k").unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive"
        );
        assert_eq!(
            parse_setting(b"Databases", b"2").unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'Databases') - can't set immutable config"
        );
    }
}
