//! The Prometheus endpoint (`--metrics-port`): `GET /metrics` over plain HTTP/1.1, served
//! by one shard. Each scrape runs `INFO everything histograms` through an internal
//! connection, so the numbers are exactly INFO's (gathered from every shard the same way),
//! and turns them into Prometheus text: one series per INFO field, per shard, per command
//! and per error code, plus a latency histogram per command.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use corekv_protocol::frame;
use corekv_shard::command::OwnedArgs;
use corekv_shard::{Outcome, Shard};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::spawn_local;

use corekv_shard::session;

/// Largest HTTP request head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// Accepts scrapes until the future is dropped.
pub async fn serve(shard: Rc<RefCell<Shard>>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                spawn_local(handle(shard.clone(), stream)).detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves one HTTP connection: one request, one response, close.
async fn handle(shard: Rc<RefCell<Shard>>, mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            let _ = respond(&mut stream, "431 Request Header Fields Too Large", "").await;
            return;
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", prometheus(&info_text(&shard).await)),
        (b"GET", _) => ("404 Not Found", "not found: try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET\n".to_string()),
    };
    let _ = respond(&mut stream, status, &body).await;
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    stream.write_all(&out).await?;
    stream.close().await
}

/// Runs `INFO everything histograms` on this shard as an internal client.
async fn info_text(shard: &Rc<RefCell<Shard>>) -> String {
    let conn = {
        let mut sh = shard.borrow_mut();
        sh.refresh_now();
        sh.state_mut().connect_internal()
    };
    let args = OwnedArgs::from_slices(&["INFO", "everything", "histograms"]);
    loop {
        let outcome = {
            let mut sh = shard.borrow_mut();
            sh.refresh_now();
            sh.dispatch(conn, args.args())
        };
        match outcome {
            Outcome::Blocked => session::wait_unpaused(shard).await,
            _ => break,
        }
    }
    session::wait_ready(shard, conn).await;
    let mut out = Vec::new();
    {
        let mut sh = shard.borrow_mut();
        sh.take_output(conn, &mut out);
        sh.state_mut().disconnect(conn);
    }
    match frame::parse(&out) {
        Ok(Some((f, _))) => String::from_utf8_lossy(f.as_bytes().unwrap_or_default()).into_owned(),
        _ => String::new(),
    }
}

/// INFO fields that only grow: Prometheus counters (`_total`).
const COUNTERS: &[&str] = &[
    "total_connections_received",
    "total_commands_processed",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "rejected_connections",
    "expired_keys",
    "evicted_keys",
    "keyspace_hits",
    "keyspace_misses",
    "total_error_replies",
    "cross_shard_requests",
    "cross_shard_batches",
    "used_cpu_sys",
    "used_cpu_user",
    "used_cpu_sys_children",
    "used_cpu_user_children",
    "used_cpu_sys_shards",
    "used_cpu_user_shards",
];

/// Numeric INFO fields that are not measurements.
const SKIP: &[&str] = &[
    "redis_git_sha1",
    "redis_git_dirty",
    "redis_build_id",
    "arch_bits",
    "process_id",
    "tcp_port",
    "server_time_usec",
    "uptime_in_days",
    "io_threads_active",
    "numa_node",
];

/// Per-shard fields that only grow.
const SHARD_COUNTERS: &[&str] = &[
    "expired_keys",
    "commands",
    "hops_out",
    "hops_in",
    "batches_out",
    "batches_in",
    "cpu_user",
    "cpu_sys",
    "late_ticks",
    "watchdog_wakes",
];

/// A Prometheus metric family being written: `# HELP`/`# TYPE` once, then samples.
#[derive(Default)]
struct Families {
    out: String,
    seen: std::collections::HashSet<String>,
}

impl Families {
    /// Writes the HELP and TYPE lines of family `name` before its first series.
    fn declare(&mut self, name: &str, kind: &str, help: &str) {
        if self.seen.insert(name.to_string()) {
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {kind}");
        }
    }

    fn sample(&mut self, name: &str, kind: &str, help: &str, labels: &str, value: &str) {
        self.declare(name, kind, help);
        let series = match kind {
            "counter" => format!("{name}_total"),
            _ => name.to_string(),
        };
        let _ = writeln!(self.out, "{series}{labels} {value}");
    }
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Whether `v` is a number Prometheus accepts.
fn numeric(v: &str) -> bool {
    !v.is_empty() && v.parse::<f64>().is_ok()
}

/// `k=v,k=v` pairs.
fn pairs(v: &str) -> impl Iterator<Item = (&str, &str)> {
    v.split(',').filter_map(|kv| kv.split_once('='))
}

/// Turns INFO text into Prometheus exposition text.
pub fn prometheus(info: &str) -> String {
    let mut f = Families::default();
    for line in info.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if let Some(cmd) = key.strip_prefix("cmdstat_") {
            let labels = format!("{{cmd=\"{}\"}}", label(cmd));
            for (k, v) in pairs(value) {
                let (name, help) = match k {
                    "calls" => ("corekv_command_calls", "Calls by clients of this command."),
                    "usec" => (
                        "corekv_command_usec",
                        "Microseconds spent running this command, on every shard.",
                    ),
                    "rejected_calls" => (
                        "corekv_command_rejected_calls",
                        "Calls refused before running (arity, authentication).",
                    ),
                    "failed_calls" => (
                        "corekv_command_failed_calls",
                        "Calls that replied with an error.",
                    ),
                    _ => continue,
                };
                f.sample(name, "counter", help, &labels, v);
            }
        } else if let Some(code) = key.strip_prefix("errorstat_") {
            let labels = format!("{{code=\"{}\"}}", label(code));
            if let Some((_, v)) = pairs(value).find(|(k, _)| *k == "count") {
                f.sample(
                    "corekv_errors",
                    "counter",
                    "Error replies by error code.",
                    &labels,
                    v,
                );
            }
        } else if let Some(cmd) = key.strip_prefix("hist_") {
            let name = "corekv_command_duration_seconds";
            f.declare(name, "histogram", "Time to run a command on one shard.");
            let cmd = label(cmd);
            let mut count = "0";
            for (k, v) in pairs(value) {
                if let Some(us) = k.strip_prefix("le_") {
                    let secs = us.parse::<f64>().unwrap_or(0.0) / 1e6;
                    let _ = writeln!(f.out, "{name}_bucket{{cmd=\"{cmd}\",le=\"{secs}\"}} {v}");
                } else if k == "count" {
                    count = v;
                } else if k == "sum_usec" {
                    let secs = v.parse::<f64>().unwrap_or(0.0) / 1e6;
                    let _ = writeln!(f.out, "{name}_sum{{cmd=\"{cmd}\"}} {secs}");
                }
            }
            let _ = writeln!(f.out, "{name}_bucket{{cmd=\"{cmd}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(f.out, "{name}_count{{cmd=\"{cmd}\"}} {count}");
        } else if let Some(shard) = key.strip_prefix("shard").filter(|s| numeric(s)) {
            let labels = format!("{{shard=\"{shard}\"}}");
            for (k, v) in pairs(value).filter(|(_, v)| numeric(v)) {
                let kind = if SHARD_COUNTERS.contains(&k) {
                    "counter"
                } else {
                    "gauge"
                };
                let name = format!("corekv_shard_{}", k.replace('-', "_"));
                f.sample(
                    &name,
                    kind,
                    &format!("Per-shard {k} (INFO shards)."),
                    &labels,
                    v,
                );
            }
        } else if let Some(db) = key.strip_prefix("db").filter(|s| numeric(s)) {
            let labels = format!("{{db=\"{db}\"}}");
            for (k, v) in pairs(value).filter(|(_, v)| numeric(v)) {
                let name = format!("corekv_keyspace_{k}");
                f.sample(
                    &name,
                    "gauge",
                    &format!("Keyspace {k} (INFO keyspace)."),
                    &labels,
                    v,
                );
            }
        } else if key.starts_with("latency_percentiles_usec_") {
            // The histogram above carries the same information in Prometheus's form.
        } else if numeric(value) && !SKIP.contains(&key) {
            let kind = if COUNTERS.contains(&key) {
                "counter"
            } else {
                "gauge"
            };
            let name = format!("corekv_{}", key.replace('-', "_"));
            f.sample(&name, kind, &format!("INFO field {key}."), "", value);
        }
    }
    f.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_becomes_prometheus() {
        let info = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:5\r\n\
                    # Stats\r\ntotal_commands_processed:42\r\n\
                    # Commandstats\r\ncmdstat_get:calls=3,usec=9,usec_per_call=3.00,\
                    rejected_calls=0,failed_calls=1\r\n\
                    # Errorstats\r\nerrorstat_ERR:count=2\r\n\
                    # Histograms\r\nhist_get:le_1=1,le_2=3,count=3,sum_usec=9\r\n\
                    # Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=0\r\n\
                    # Shards\r\nplacement:fixed\r\n\
                    shard0:cpu=1,socket=0,keys=5,commands=40,cpu_user=0.5\r\n";
        let p = prometheus(info);
        assert!(p.contains("# TYPE corekv_uptime_in_seconds gauge\ncorekv_uptime_in_seconds 5\n"));
        assert!(p.contains("corekv_total_commands_processed_total 42\n"));
        assert!(!p.contains("redis_version"));
        assert!(p.contains("corekv_command_calls_total{cmd=\"get\"} 3\n"));
        assert!(p.contains("corekv_command_failed_calls_total{cmd=\"get\"} 1\n"));
        assert!(p.contains("corekv_errors_total{code=\"ERR\"} 2\n"));
        assert!(
            p.contains("corekv_command_duration_seconds_bucket{cmd=\"get\",le=\"0.000002\"} 3\n")
        );
        assert!(p.contains("corekv_command_duration_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 3\n"));
        assert!(p.contains("corekv_command_duration_seconds_sum{cmd=\"get\"} 0.000009\n"));
        assert!(p.contains("corekv_keyspace_keys{db=\"0\"} 5\n"));
        assert!(p.contains("corekv_shard_keys{shard=\"0\"} 5\n"));
        assert!(p.contains("corekv_shard_commands_total{shard=\"0\"} 40\n"));
        assert!(p.contains("# TYPE corekv_shard_cpu_user counter\n"));
        assert!(!p.contains("placement"));
        // Every family is declared once.
        assert_eq!(p.matches("# TYPE corekv_command_calls ").count(), 1);
    }
}
