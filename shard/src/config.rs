//! The settings a running server has, as CONFIG GET shows them and CONFIG SET changes them.
//! Parsed by the server (flags), held by every shard (each has its own copy; CONFIG SET
//! reaches all of them).

use corekv_protocol::Limits;

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
    /// Most connections at once (`maxclients`).
    pub maxclients: u64,
    /// Seconds a connection may stay idle before it is closed; 0 never (`timeout`).
    pub timeout: u64,
    /// Path of the binary, for INFO.
    pub executable: String,
    /// Process start, Unix ms.
    pub started_ms: u64,
    /// 40 hex characters identifying this run (INFO `run_id`).
    pub run_id: String,
    /// Operating system, as INFO's `os` line shows it (`Linux 6.1.0 x86_64`).
    pub os: String,
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
            maxclients: 10000,
            timeout: 0,
            executable: String::new(),
            started_ms: 0,
            run_id: "0".repeat(40),
            os: std::env::consts::OS.to_string(),
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

/// A setting CONFIG SET can change, with a value already checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `timeout`, seconds.
    Timeout(u64),
    /// `maxclients`.
    MaxClients(u64),
    /// `proto-max-bulk-len`, bytes.
    ProtoMaxBulkLen(u64),
    /// `client-query-buffer-limit`, bytes.
    QueryBufferLimit(u64),
}

/// Settings whose value CONFIG GET shows but CONFIG SET refuses: corekv cannot rebind,
/// add databases or start persisting at run time.
const IMMUTABLE: &[&str] = &["bind", "port", "databases", "save", "appendonly"];

/// Checks one `name value` pair of CONFIG SET. `Err` is Redis's message after `-ERR `.
/// Names match in any case.
pub fn parse_setting(name: &[u8], value: &[u8]) -> Result<Setting, String> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    let value = String::from_utf8_lossy(value);
    let failed = |canonical: &str, why: &str| {
        format!("CONFIG SET failed (possibly related to argument '{canonical}') - {why}")
    };
    let integer = |canonical: &str, min: i64, max: i64| -> Result<u64, String> {
        let n = corekv_protocol::number::parse_i64(value.as_bytes())
            .ok_or_else(|| failed(canonical, "argument couldn't be parsed into an integer"))?;
        if n < min || n > max {
            return Err(failed(
                canonical,
                &format!("argument must be between {min} and {max} inclusive"),
            ));
        }
        Ok(n as u64)
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
    match lower.as_str() {
        "timeout" => integer("timeout", 0, i64::from(i32::MAX)).map(Setting::Timeout),
        "maxclients" => integer("maxclients", 1, i64::from(u32::MAX)).map(Setting::MaxClients),
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

impl Setting {
    /// The setting's canonical name.
    pub fn name(&self) -> &'static str {
        match self {
            Setting::Timeout(_) => "timeout",
            Setting::MaxClients(_) => "maxclients",
            Setting::ProtoMaxBulkLen(_) => "proto-max-bulk-len",
            Setting::QueryBufferLimit(_) => "client-query-buffer-limit",
        }
    }

    /// The value, as a plain number.
    pub fn value(&self) -> u64 {
        match *self {
            Setting::Timeout(v)
            | Setting::MaxClients(v)
            | Setting::ProtoMaxBulkLen(v)
            | Setting::QueryBufferLimit(v) => v,
        }
    }
}

impl Config {
    /// Every setting CONFIG GET knows, with its current value, in Redis's formats. `save`
    /// and `appendonly` describe corekv truthfully: it keeps nothing on disk.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bind", self.bind.clone()),
            ("port", self.port.to_string()),
            ("databases", "1".into()),
            ("save", String::new()),
            ("appendonly", "no".into()),
            ("proto-max-bulk-len", self.limits.max_bulk_len.to_string()),
            (
                "client-query-buffer-limit",
                self.query_buffer_limit.to_string(),
            ),
            ("maxclients", self.maxclients.to_string()),
            ("timeout", self.timeout.to_string()),
        ]
    }

    /// Applies a checked setting.
    pub fn apply(&mut self, s: Setting) {
        match s {
            Setting::Timeout(v) => self.timeout = v,
            Setting::MaxClients(v) => self.maxclients = v,
            Setting::ProtoMaxBulkLen(v) => self.limits.max_bulk_len = v,
            Setting::QueryBufferLimit(v) => self.query_buffer_limit = v,
        }
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
