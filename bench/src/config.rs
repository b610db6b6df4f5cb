//! The run's settings: parsed from the command line, checked, and written into the JSON
//! report so a result always carries how it was produced.

use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use crate::workload::{parse_ratio, KeyDist, SizeRange};

/// corekv-bench: a thread-per-core load generator for Redis-protocol and echo servers.
///
/// Closed loop (the default) measures throughput: each connection sends --pipeline
/// requests, waits for their replies, and sends again; latency is from send to reply. It
/// cannot measure latency under a given load: when the server slows down, the client
/// slows down with it and the wait it caused is never recorded.
///
/// Open loop (--rate) measures latency at a fixed offered load: requests are due on a
/// fixed schedule whatever the server does, and latency is measured from each request's
/// intended time, so a stalled server shows its full stall (no coordinated omission).
#[derive(Parser, Debug, Clone)]
#[command(name = "corekv-bench", version, max_term_width = 100)]
pub struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// `resp`: SET/GET (or PING) against any Redis-protocol server. `echo`: payloads
    /// against an echo server (corekv --echo-port), each checked on return.
    #[arg(long, default_value = "resp", value_parser = ["resp", "echo"])]
    pub protocol: String,
    /// Send PING instead of SET/GET (resp only): the protocol path without a keyspace.
    #[arg(long)]
    pub ping: bool,
    /// What the writes and reads are (resp only): `string` SET/GET, `hash` HSET/HGET of
    /// one of --fields fields, `set` SADD/SISMEMBER of one of --fields members. The
    /// ratio is write:read. `tx`: every request is `MULTI, INCR, INCR, EXEC` on two keys
    /// of different hash slots (on different shards of a multi-shard server); `tx1`: the
    /// same on two keys sharing a hash tag (one shard). --pipeline counts commands.
    /// `list`: LPUSH key n (writes) and RPOP key (reads); `zset`: ZADD key n field:n
    /// (writes) and ZRANGEBYSCORE key n n+fields/10 LIMIT 0 10 (reads), n below --fields.
    #[arg(long, default_value = "string", value_parser = ["string", "hash", "set", "list", "zset", "tx", "tx1"])]
    pub workload: String,
    /// Fields per hash, or members per set, the hash and set workloads draw from.
    #[arg(long, default_value_t = 10)]
    pub fields: u64,
    /// Load-generator threads (one executor each).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin the threads to, e.g. "0" or "0,2-3" (thread i on the i-th). Default:
    /// not pinned.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Connections, spread evenly across threads.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// SET:GET weights, e.g. 1:10.
    #[arg(long, default_value = "1:1")]
    pub ratio: String,
    /// Size of the key space.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Key popularity: uniform, zipf:S (e.g. zipf:0.99) or sequential.
    #[arg(long, default_value = "uniform")]
    pub key_dist: String,
    /// Value (or echo payload) bytes: fixed ("32") or a range ("32-1024").
    #[arg(long, default_value = "32")]
    pub value_size: String,
    /// Prefix of every key.
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,
    /// How long to measure, e.g. 10s, 500ms, 2m (conflicts with --requests).
    #[arg(long, conflicts_with = "requests")]
    pub duration: Option<String>,
    /// How many requests to measure, in all (conflicts with --duration).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Run this long before measuring (replies are still checked).
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// Load every key of the key space (pipelined SETs) before the run.
    #[arg(long)]
    pub prefill: bool,
    /// Open loop: offer this many requests per second in total (see above).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// A request without a reply for this long is a timeout; its connection is re-opened.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Write every figure and the full configuration as JSON to this file.
    #[arg(long)]
    pub json: Option<String>,
    /// Write the latency distribution (percentile, value) to this file.
    #[arg(long)]
    pub hist: Option<String>,
    /// Seed of the key and value generators.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// What a RESP run's writes and reads are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// SET and GET.
    String,
    /// HSET and HGET.
    Hash,
    /// SADD and SISMEMBER.
    Set,
    /// MULTI, INCR, INCR, EXEC on keys of two hash slots.
    Tx,
    /// MULTI, INCR, INCR, EXEC on two keys sharing a hash tag.
    TxTagged,
    /// LPUSH (writes) and RPOP (reads): a queue per key.
    List,
    /// ZADD (writes) and ZRANGEBYSCORE ... LIMIT 0 10 (reads).
    Zset,
}

/// Wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Redis protocol.
    Resp,
    /// Raw echo.
    Echo,
}

/// Closed or open loop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "loop", rename_all = "lowercase")]
pub enum Mode {
    /// Send when the previous replies arrived.
    Closed,
    /// Send on a schedule of `rate` requests per second in total.
    Open {
        /// Requests per second offered, all connections together.
        rate: f64,
    },
}

/// Checked settings.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Wire protocol.
    pub protocol: Protocol,
    /// PING instead of SET/GET.
    pub ping: bool,
    /// What the writes and reads are.
    pub workload: Workload,
    /// Fields per hash or members per set drawn from.
    pub fields: u64,
    /// Threads.
    pub threads: usize,
    /// CPU of each thread, if pinned.
    pub cpus: Option<Vec<usize>>,
    /// Connections.
    pub connections: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// SET and GET weights.
    pub ratio: (u32, u32),
    /// Key space size.
    pub keys: u64,
    /// Key popularity.
    #[serde(serialize_with = "as_string")]
    pub key_dist: KeyDist,
    /// Value sizes.
    #[serde(serialize_with = "as_string")]
    pub value_size: SizeRange,
    /// Key prefix.
    pub key_prefix: String,
    /// Measured time, if by time.
    #[serde(serialize_with = "opt_secs")]
    pub duration: Option<Duration>,
    /// Measured requests, if by count.
    pub requests: Option<u64>,
    /// Warmup.
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    /// Prefill first.
    pub prefill: bool,
    /// Loop mode.
    pub mode: Mode,
    /// Per-request timeout.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    /// Generator seed.
    pub seed: u64,
}

fn as_string<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (like 10s, 500ms, 2m)"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("{s:?}: a duration cannot be negative"));
    }
    Ok(Duration::from_secs_f64(v * mul))
}

/// Parses a CPU list like `0,2-3`.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let bad = || format!("{s:?} is not a CPU list (like 0 or 0,2-3)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

impl Config {
    /// Checks the arguments; `Err` is a message for the user.
    pub fn from_args(a: &Args) -> Result<Config, String> {
        let protocol = if a.protocol == "echo" {
            Protocol::Echo
        } else {
            Protocol::Resp
        };
        if a.ping && protocol == Protocol::Echo {
            return Err("--ping goes with --protocol resp".into());
        }
        if a.prefill && (a.ping || protocol == Protocol::Echo) {
            return Err("--prefill loads keys for SET/GET; it has no meaning with --ping or --protocol echo".into());
        }
        let workload = match a.workload.as_str() {
            "hash" => Workload::Hash,
            "set" => Workload::Set,
            "tx" => Workload::Tx,
            "tx1" => Workload::TxTagged,
            "list" => Workload::List,
            "zset" => Workload::Zset,
            _ => Workload::String,
        };
        if workload != Workload::String && (a.ping || protocol == Protocol::Echo) {
            return Err(
                "--workload hash|set|list|zset|tx|tx1 goes with --protocol resp and without --ping"
                    .into(),
            );
        }
        if a.fields == 0 || a.fields > 1 << 20 {
            return Err("--fields must be between 1 and 1048576".into());
        }
        if a.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if a.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if a.connections < a.threads {
            return Err(format!(
                "--connections {} is fewer than --threads {}: every thread needs a connection",
                a.connections, a.threads
            ));
        }
        if a.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if a.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        let cpus = match &a.cpus {
            Some(list) => {
                let cpus = parse_cpus(list)?;
                if cpus.len() < a.threads {
                    return Err(format!(
                        "--cpus {list} names {} CPU(s) for {} threads",
                        cpus.len(),
                        a.threads
                    ));
                }
                Some(cpus[..a.threads].to_vec())
            }
            None => None,
        };
        let mode = match a.rate {
            Some(r) if r > 0.0 && r.is_finite() => Mode::Open { rate: r },
            Some(_) => return Err("--rate must be a positive number of requests per second".into()),
            None => Mode::Closed,
        };
        let duration = match (&a.duration, a.requests) {
            (Some(d), _) => Some(parse_duration(d)?),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        };
        if a.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        Ok(Config {
            host: a.host.clone(),
            port: a.port,
            protocol,
            ping: a.ping,
            workload,
            fields: a.fields,
            threads: a.threads,
            cpus,
            connections: a.connections,
            pipeline: a.pipeline,
            ratio: parse_ratio(&a.ratio)?,
            keys: a.keys,
            key_dist: a.key_dist.parse()?,
            value_size: a.value_size.parse()?,
            key_prefix: a.key_prefix.clone(),
            duration,
            requests: a.requests,
            warmup: parse_duration(&a.warmup)?,
            prefill: a.prefill,
            mode,
            timeout: parse_duration(&a.timeout)?,
            seed: a.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Result<Config, String> {
        let a = Args::try_parse_from(std::iter::once("corekv-bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::from_args(&a)
    }

    #[test]
    fn durations_and_cpus() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert_eq!(parse_cpus("0,2-3"), Ok(vec![0, 2, 3]));
        assert!(parse_cpus("3-1").is_err());
    }

    #[test]
    fn bad_arguments_get_clear_messages() {
        assert!(cfg(&["--connections", "0"])
            .unwrap_err()
            .contains("--connections"));
        assert!(cfg(&["--threads", "4", "--connections", "2"])
            .unwrap_err()
            .contains("every thread"));
        assert!(cfg(&["--rate", "-5"]).unwrap_err().contains("--rate"));
        assert!(cfg(&["--key-dist", "zipf:x"])
            .unwrap_err()
            .contains("exponent"));
        assert!(cfg(&["--ratio", "1-2"]).unwrap_err().contains("SET:GET"));
        assert!(cfg(&["--threads", "2", "--cpus", "0"])
            .unwrap_err()
            .contains("CPU"));
        assert!(cfg(&["--duration", "1s", "--requests", "5"]).is_err());
        assert!(cfg(&["--protocol", "echo", "--ping"]).is_err());
    }

    #[test]
    fn defaults_are_a_ten_second_closed_loop() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.mode, Mode::Closed);
        assert_eq!(c.duration, Some(Duration::from_secs(10)));
        assert_eq!(c.connections, 50);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"key_dist\":\"uniform\""), "{json}");
    }
}
