//! The settings a running server has, as CONFIG GET and INFO show them. Parsed by the
//! server (flags), read here by every shard (each holds its own copy).

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
    /// CPU of each shard; `None` when shards are not pinned.
    pub cpus: Option<Vec<usize>>,
    /// Request size limits (`proto-max-bulk-len` and the multibulk and inline limits).
    pub limits: Limits,
    /// Largest unparsed input a client may accumulate (`client-query-buffer-limit`).
    pub query_buffer_limit: u64,
    /// Most connections at once (`maxclients`).
    pub maxclients: u64,
    /// Path of the binary, for INFO.
    pub executable: String,
    /// Process start, Unix ms.
    pub started_ms: u64,
    /// 40 hex characters identifying this run (INFO `run_id`).
    pub run_id: String,
    /// Operating system, as INFO's `os` line shows it (`Linux 6.1.0 x86_64`).
    pub os: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            echo_port: None,
            shards: 1,
            cpus: None,
            limits: Limits::default(),
            query_buffer_limit: 1024 * 1024 * 1024,
            maxclients: 10000,
            executable: String::new(),
            started_ms: 0,
            run_id: "0".repeat(40),
            os: std::env::consts::OS.to_string(),
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
        ]
    }
}
