//! Turning a run's merged [`Stats`] into what the user reads: the table on stdout, the
//! `--json` document (every figure plus the full configuration) and the `--hist`
//! percentile distribution.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Mode, Protocol};
use crate::stats::Stats;

/// Latency figures, in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Requests measured.
    pub samples: u64,
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    /// 99.99th percentile.
    #[serde(rename = "p99.99")]
    pub p99_99: f64,
    /// Slowest.
    pub max: f64,
}

/// Errors by kind.
#[derive(Debug, Serialize)]
pub struct Errors {
    /// All of them.
    pub total: u64,
    /// `-ERR …` replies.
    pub error_replies: u64,
    /// Replies that did not match their request.
    pub bad_replies: u64,
    /// Requests with no reply within `--timeout`.
    pub timeouts: u64,
    /// Connections closed by the server mid-run.
    pub disconnects: u64,
    /// Failed connection attempts.
    pub connect_failures: u64,
    /// Connections that gave up.
    pub abandoned: u64,
}

/// What the prefill did.
#[derive(Debug, Serialize)]
pub struct Prefill {
    /// Keys written.
    pub keys: u64,
    /// How long it took, seconds.
    pub seconds: f64,
    /// Its errors (any makes the run fail).
    pub errors: u64,
}

/// Every figure of a run.
#[derive(Debug, Serialize)]
pub struct Results {
    /// Measured window, seconds (end of warmup until every connection finished).
    pub window_s: f64,
    /// Requests answered per second in the window.
    pub throughput_rps: f64,
    /// Requests answered in the window.
    pub requests: u64,
    /// Of which SETs.
    pub sets: u64,
    /// Of which GETs.
    pub gets: u64,
    /// GETs that found their key.
    pub hits: u64,
    /// GETs that did not.
    pub misses: u64,
    /// Of which PINGs.
    pub pings: u64,
    /// Of which echo payloads.
    pub echoes: u64,
    /// Replies checked and right.
    pub verified: u64,
    /// Whether every measured reply was verified and nothing went wrong.
    pub clean: bool,
    /// Latency, microseconds.
    pub latency_us: Latency,
    /// Errors by kind.
    pub errors: Errors,
    /// Request bytes written.
    pub bytes_sent: u64,
    /// Reply bytes read.
    pub bytes_received: u64,
    /// The prefill, if any.
    pub prefill: Option<Prefill>,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// Always "corekv-bench".
    pub tool: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The full configuration.
    pub config: &'a Config,
    /// The figures.
    pub results: &'a Results,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Results {
    /// Figures from merged stats over a measured window.
    pub fn new(stats: &Stats, window: Duration, prefill: Option<Prefill>) -> Results {
        let h = &stats.latency;
        let q = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                us(h.value_at_quantile(q))
            }
        };
        let requests = stats.requests();
        let secs = window.as_secs_f64();
        let errors = Errors {
            total: stats.errors(),
            error_replies: stats.error_replies,
            bad_replies: stats.bad_replies,
            timeouts: stats.timeouts,
            disconnects: stats.disconnects,
            connect_failures: stats.connect_failures,
            abandoned: stats.abandoned,
        };
        Results {
            window_s: secs,
            throughput_rps: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            requests,
            sets: stats.sets,
            gets: stats.gets,
            hits: stats.hits,
            misses: stats.misses,
            pings: stats.pings,
            echoes: stats.echoes,
            verified: stats.verified,
            clean: errors.total == 0
                && stats.verified == requests
                && requests > 0
                && prefill.as_ref().is_none_or(|p| p.errors == 0),
            latency_us: Latency {
                samples: h.len(),
                min: if h.is_empty() { 0.0 } else { us(h.min()) },
                mean: us(h.mean() as u64),
                stdev: us(h.stdev() as u64),
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p99_9: q(0.999),
                p99_99: q(0.9999),
                max: if h.is_empty() { 0.0 } else { us(h.max()) },
            },
            errors,
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            prefill,
        }
    }

    /// What went wrong, one line per kind, for the loud error message; empty when the
    /// run is clean.
    pub fn problems(&self) -> Vec<String> {
        let e = &self.errors;
        let mut out = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                out.push(format!("{} {what}", thousands(n)));
            }
        };
        add(e.error_replies, "error replies from the server");
        add(e.bad_replies, "replies that did not match their request");
        add(e.timeouts, "requests timed out");
        add(e.disconnects, "connections dropped by the server");
        add(e.connect_failures, "failed connection attempts");
        add(e.abandoned, "connections gave up after repeated failures");
        if let Some(p) = &self.prefill {
            add(p.errors, "errors while prefilling");
        }
        if self.requests == 0 {
            out.push("no request was answered in the measured window".into());
        }
        out
    }
}

/// `n` with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The human-readable table.
pub fn table(cfg: &Config, r: &Results) -> String {
    let mut s = String::new();
    let what = match (cfg.protocol, cfg.ping) {
        (Protocol::Echo, _) => format!("echo, payloads {} B", cfg.value_size),
        (Protocol::Resp, true) => "PING".to_string(),
        (Protocol::Resp, false) => format!(
            "SET:GET {}:{}, {} keys {}, values {} B",
            cfg.ratio.0, cfg.ratio.1, cfg.keys, cfg.key_dist, cfg.value_size
        ),
    };
    let mode = match cfg.mode {
        Mode::Closed => "closed loop".to_string(),
        Mode::Open { rate } => format!("open loop at {} req/s", thousands(rate as u64)),
    };
    let _ = writeln!(s, "corekv-bench {}:{}  {what}", cfg.host, cfg.port);
    let _ = writeln!(
        s,
        "  {mode}, {} connections x pipeline {}, {} thread(s){}",
        cfg.connections,
        cfg.pipeline,
        cfg.threads,
        match &cfg.cpus {
            Some(c) => format!(" on CPU {c:?}"),
            None => String::new(),
        }
    );
    if let Some(p) = &r.prefill {
        let _ = writeln!(
            s,
            "  prefilled {} keys in {:.2} s",
            thousands(p.keys),
            p.seconds
        );
    }
    let _ = writeln!(
        s,
        "  measured {:.2} s after {:.2} s warmup\n",
        r.window_s,
        cfg.warmup.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "  throughput  {:>14} req/s   ({} requests; {:.1} MB/s out, {:.1} MB/s in)",
        thousands(r.throughput_rps.round() as u64),
        thousands(r.requests),
        r.bytes_sent as f64 / 1e6 / r.window_s.max(1e-9),
        r.bytes_received as f64 / 1e6 / r.window_s.max(1e-9),
    );
    if r.sets + r.gets > 0 {
        let hit = if r.gets > 0 {
            100.0 * r.hits as f64 / r.gets as f64
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "  SET / GET   {} / {}   (GET hit rate {hit:.1}%)",
            thousands(r.sets),
            thousands(r.gets)
        );
    }
    let l = &r.latency_us;
    let _ = writeln!(
        s,
        "\n  latency (us)      p50      p90      p99    p99.9   p99.99      max     mean"
    );
    let _ = writeln!(
        s,
        "              {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}\n",
        l.p50, l.p90, l.p99, l.p99_9, l.p99_99, l.max, l.mean
    );
    let _ = writeln!(
        s,
        "  verified    {} of {} replies",
        thousands(r.verified),
        thousands(r.requests)
    );
    let problems = r.problems();
    if problems.is_empty() {
        let _ = writeln!(s, "  errors      none");
    } else {
        let _ = writeln!(s, "  ERRORS      {}", problems.join("; "));
    }
    s
}

/// The latency distribution in HdrHistogram's percentile format (values in
/// microseconds), as `HistogramLogProcessor` and the online plotter read it.
pub fn percentile_distribution(stats: &Stats) -> String {
    let h = &stats.latency;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - q))
        } else {
            format!("{:>14}", "inf")
        };
        let _ = writeln!(
            s,
            "{:>12.3} {:>14.12} {:>10} {inv}",
            us(v.value_iterated_to()),
            q,
            total
        );
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        us(h.mean() as u64),
        us(h.stdev() as u64)
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        us(h.max()),
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        // What HdrHistogram calls the sub-bucket count: the values a bucket resolves,
        // 2 * 10^digits rounded up to a power of two.
        (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn figures_and_problems() {
        let mut st = Stats::default();
        for v in 1..=100u64 {
            st.record(v * 1000);
        }
        st.gets = 60;
        st.sets = 40;
        st.hits = 60;
        st.verified = 100;
        st.last_reply_ns = 2_000_000_000;
        let r = Results::new(&st, Duration::from_secs(2), None);
        assert_eq!(r.throughput_rps, 50.0);
        assert!(r.clean);
        assert!(
            (r.latency_us.p50 - 50.0).abs() < 0.1,
            "{}",
            r.latency_us.p50
        );
        assert!((r.latency_us.max - 100.0).abs() < 0.1);
        assert!(r.problems().is_empty());
        st.timeouts = 3;
        let r = Results::new(&st, Duration::from_secs(2), None);
        assert!(!r.clean);
        assert_eq!(r.problems(), vec!["3 requests timed out".to_string()]);
        assert!(table(&test_config(), &r).contains("ERRORS"));
    }

    #[test]
    fn distribution_ends_at_the_total() {
        let mut st = Stats::default();
        for v in 1..=1000u64 {
            st.record(v * 1000);
        }
        let text = percentile_distribution(&st);
        let last = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap();
        let cols: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(cols[2], "1000", "{last}");
        assert!(text.contains("Total count    =         1000"));
    }

    fn test_config() -> Config {
        use clap::Parser;
        let a = crate::config::Args::try_parse_from(["corekv-bench"]).unwrap();
        Config::from_args(&a).unwrap()
    }
}
