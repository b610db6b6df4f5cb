//! What one thread measured: a latency histogram and counters. Each thread owns its own;
//! they are merged once, at the end.

use hdrhistogram::Histogram;

/// Highest latency recorded, in nanoseconds (anything slower is clamped here).
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Measurements of one thread (or, merged, of the whole run).
#[derive(Clone, Debug)]
pub struct Stats {
    /// Latency of each measured request, nanoseconds.
    pub latency: Histogram<u64>,
    /// SETs answered.
    pub sets: u64,
    /// GETs answered.
    pub gets: u64,
    /// GETs that found their key.
    pub hits: u64,
    /// GETs that did not.
    pub misses: u64,
    /// PINGs answered.
    pub pings: u64,
    /// Echo payloads returned.
    pub echoes: u64,
    /// Replies checked and found right.
    pub verified: u64,
    /// Error replies (`-ERR …`) from the server.
    pub error_replies: u64,
    /// Replies that were not what the request must get back (wrong value, bad frame).
    pub bad_replies: u64,
    /// Requests that got no reply in time (their connection is then re-opened).
    pub timeouts: u64,
    /// Connections the server closed or reset mid-run.
    pub disconnects: u64,
    /// Connection attempts that failed (refused, unreachable, timed out).
    pub connect_failures: u64,
    /// Connections that gave up after repeated failures with no reply in between.
    pub abandoned: u64,
    /// When the last reply arrived, ns since the run's epoch.
    pub last_reply_ns: u64,
    /// When the thread's last connection finished, ns since the epoch: the end of the
    /// measured window (a stall at the end of a run stays inside the window).
    pub ended_ns: u64,
    /// Request bytes written.
    pub bytes_sent: u64,
    /// Reply bytes read.
    pub bytes_received: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid bounds"),
            sets: 0,
            gets: 0,
            hits: 0,
            misses: 0,
            pings: 0,
            echoes: 0,
            verified: 0,
            error_replies: 0,
            bad_replies: 0,
            timeouts: 0,
            disconnects: 0,
            connect_failures: 0,
            abandoned: 0,
            last_reply_ns: 0,
            ended_ns: 0,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }
}

impl Stats {
    /// Requests answered (of every kind).
    pub fn requests(&self) -> u64 {
        self.sets + self.gets + self.pings + self.echoes
    }

    /// Errors of every kind.
    pub fn errors(&self) -> u64 {
        self.error_replies
            + self.bad_replies
            + self.timeouts
            + self.disconnects
            + self.connect_failures
            + self.abandoned
    }

    /// Records one latency.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.latency.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Adds another thread's measurements to these.
    pub fn merge(&mut self, other: &Stats) {
        self.latency
            .add(&other.latency)
            .expect("histograms share their bounds");
        self.sets += other.sets;
        self.gets += other.gets;
        self.hits += other.hits;
        self.misses += other.misses;
        self.pings += other.pings;
        self.echoes += other.echoes;
        self.verified += other.verified;
        self.error_replies += other.error_replies;
        self.bad_replies += other.bad_replies;
        self.timeouts += other.timeouts;
        self.disconnects += other.disconnects;
        self.connect_failures += other.connect_failures;
        self.abandoned += other.abandoned;
        self.last_reply_ns = self.last_reply_ns.max(other.last_reply_ns);
        self.ended_ns = self.ended_ns.max(other.ended_ns);
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_keeps_percentiles() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for v in 1..=1000 {
            a.record(v * 1000);
        }
        for v in 1001..=2000 {
            b.record(v * 1000);
        }
        a.gets = 1000;
        b.sets = 1000;
        b.timeouts = 2;
        a.last_reply_ns = 7;
        b.last_reply_ns = 5;
        a.merge(&b);
        assert_eq!(a.last_reply_ns, 7, "the window ends at the latest reply");
        assert_eq!(a.latency.len(), 2000);
        assert_eq!(a.requests(), 2000);
        assert_eq!(a.errors(), 2);
        let p50 = a.latency.value_at_quantile(0.5);
        assert!((990_000..=1_010_000).contains(&p50), "p50 {p50}");
        let max = a.latency.max();
        assert!((1_998_000..=2_002_000).contains(&max), "max {max}");
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let mut s = Stats::default();
        s.record(0);
        s.record(u64::MAX);
        assert_eq!(s.latency.len(), 2);
    }
}
