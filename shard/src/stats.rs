//! One shard's counters. Plain integers written by one thread; INFO adds them up across
//! shards by asking each shard for its own.

/// Counters INFO reports; every field only grows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_received: u64,
    /// Connections refused (maxclients).
    pub rejected_connections: u64,
    /// Commands processed on behalf of this shard's connections.
    pub commands: u64,
    /// Error replies sent to this shard's connections' local commands.
    pub error_replies: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
    /// Reads from sockets that returned data.
    pub reads_processed: u64,
    /// Writes of replies.
    pub writes_processed: u64,
    /// Requests sent to other shards (cross-shard hops out).
    pub hops_out: u64,
    /// Requests run for other shards (hops in).
    pub hops_in: u64,
    /// Request batches sent.
    pub batches_out: u64,
    /// Request batches received.
    pub batches_in: u64,
    /// Clients closed for going over `client-query-buffer-limit`.
    pub query_limit_disconnections: u64,
    /// Clients closed for going over `client-output-buffer-limit`.
    pub output_limit_disconnections: u64,
    /// Times the server's watchdog woke this shard after its timer task went silent
    /// (the server keeps the count; the shard shows it).
    pub watchdog_wakes: u64,
    /// Timer ticks that ran a whole tick or more late: a wakeup glommio lost (caught by
    /// the backstop timer), or a shard busy or descheduled for that long.
    pub late_ticks: u64,
}

/// Sub-buckets per power of two in a [`LatencyHist`]: bucket bounds grow by 2^(1/4),
/// so a percentile read from it is within 19% of the true value.
const SUB: u32 = 4;

/// Buckets of a [`LatencyHist`]: nanoseconds up to 2^40 (about 18 minutes).
pub const HIST_BUCKETS: usize = 40 * SUB as usize;

/// A latency distribution (in nanoseconds, or any unit), log-linear (see `SUB`): recording is
/// a few instructions, merging is adding arrays, and the buckets nest in powers of two so
/// they can be shown as Redis's `LATENCY HISTOGRAM` or Prometheus buckets.
#[derive(Clone, Debug)]
pub struct LatencyHist {
    /// Counts per bucket; see [`LatencyHist::bucket`].
    pub counts: Box<[u64; HIST_BUCKETS]>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist {
            counts: Box::new([0; HIST_BUCKETS]),
        }
    }
}

impl LatencyHist {
    /// The bucket of `ns`: values in `[lower(b), lower(b + 1))` share bucket `b`.
    #[inline]
    pub fn bucket(ns: u64) -> usize {
        let v = ns.max(1);
        let octave = 63 - v.leading_zeros();
        let sub = if octave >= 2 {
            ((v >> (octave - 2)) & 3) as u32
        } else {
            // 1, 2, 3 ns: too few values to split an octave; some buckets stay empty.
            (v as u32 - (1 << octave)) * (SUB >> octave)
        };
        ((octave * SUB + sub) as usize).min(HIST_BUCKETS - 1)
    }

    /// The smallest value in bucket `b`, in nanoseconds.
    pub fn lower(b: usize) -> u64 {
        let octave = b as u32 / SUB;
        let sub = u64::from(b as u32 % SUB);
        if octave >= 2 {
            (1u64 << octave) + (sub << (octave - 2))
        } else {
            (1u64 << octave) + (sub << octave).div_ceil(u64::from(SUB))
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
    }

    /// The same distribution in another unit: each bucket's count moves to the bucket of
    /// its middle value times `factor` (within one bucket's resolution).
    pub fn rescaled(&self, factor: f64) -> LatencyHist {
        let mut out = LatencyHist::default();
        for (b, &n) in self.counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            let mid = (Self::lower(b) + Self::lower(b + 1)) as f64 / 2.0;
            out.counts[Self::bucket((mid * factor) as u64)] += n;
        }
        out
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &[u64]) {
        for (a, b) in self.counts.iter_mut().zip(other) {
            *a += b;
        }
    }

    /// Number of values recorded.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value at quantile `q` (0..=1), as the upper bound of its bucket, in ns.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower(b + 1);
            }
        }
        Self::lower(HIST_BUCKETS)
    }

    /// How many values fall in the buckets that end at or below `bound_ns`.
    pub fn count_below(&self, bound_ns: u64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .take_while(|(b, _)| Self::lower(b + 1) <= bound_ns)
            .map(|(_, c)| c)
            .sum()
    }

    /// Counts of values below each power of two of microseconds (1 µs, 2 µs, … 2^max µs),
    /// cumulative, as Prometheus buckets want them.
    pub fn cumulative_us(&self, max_pow: u32) -> Vec<(u64, u64)> {
        (0..=max_pow)
            .map(|p| (1u64 << p, self.count_below((1u64 << p) * 1000)))
            .collect()
    }
}

/// One command's numbers (INFO commandstats and latencystats).
#[derive(Clone, Debug, Default)]
pub struct CommandStat {
    /// Times it was called by this shard's clients.
    pub calls: u64,
    /// Time spent running it on this shard, in clock ticks (see `crate::ticks`),
    /// including its parts run here for other shards' clients.
    pub ticks: u64,
    /// Calls refused before running (wrong arity, not authenticated).
    pub rejected: u64,
    /// Calls that ran and replied with an error.
    pub failed: u64,
    /// Latency of each run on this shard, in clock ticks; allocated on first use.
    pub hist: Option<LatencyHist>,
}

/// Per-command and per-error counters of one shard. Commands are indexed by their
/// dense statistics slot (`Spec::stat`).
#[derive(Clone, Debug, Default)]
pub struct CommandStats {
    /// By statistics slot.
    pub commands: Vec<CommandStat>,
    /// Error replies by their code (the first word: `ERR`, `WRONGTYPE`, …), as Redis's
    /// errorstats. At most [`MAX_ERROR_CODES`] codes, as Redis.
    pub errors: Vec<(Vec<u8>, u64)>,
}

/// Most distinct error codes tracked (Redis's `ERROR_STATS_NUMBER`).
pub const MAX_ERROR_CODES: usize = 128;

impl CommandStats {
    /// Room for `n` commands, so counting never grows the table.
    pub fn with_commands(n: usize) -> Self {
        let mut s = CommandStats::default();
        s.commands.resize_with(n, CommandStat::default);
        s
    }
    /// The stats of slot `stat`, growing the table as needed.
    #[inline]
    pub fn get(&mut self, stat: usize) -> &mut CommandStat {
        if stat >= self.commands.len() {
            self.commands.resize_with(stat + 1, CommandStat::default);
        }
        &mut self.commands[stat]
    }

    /// Counts an error reply. `reply` starts at the `-`.
    pub fn error(&mut self, reply: &[u8]) {
        let body = reply.strip_prefix(b"-").unwrap_or(reply);
        let end = body
            .iter()
            .position(|&b| b == b' ' || b == b'\r')
            .unwrap_or(body.len());
        let code = &body[..end];
        if let Some(e) = self.errors.iter_mut().find(|(c, _)| c == code) {
            e.1 += 1;
        } else if self.errors.len() < MAX_ERROR_CODES {
            self.errors.push((code.to_vec(), 1));
        }
    }

    /// Forgets everything (CONFIG RESETSTAT).
    pub fn reset(&mut self) {
        self.commands
            .iter_mut()
            .for_each(|c| *c = CommandStat::default());
        self.errors.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bounds_hold() {
        let mut last = 0;
        for v in (1..5000u64).chain([1 << 20, (1 << 20) + 12345, 1 << 39]) {
            let b = LatencyHist::bucket(v);
            assert!(b >= last || v < 5000, "bucket order at {v}");
            assert!(LatencyHist::lower(b) <= v, "lower({b}) > {v}");
            assert!(v < LatencyHist::lower(b + 1), "{v} >= lower({})", b + 1);
            last = b;
        }
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = LatencyHist::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((500_000.0..=500_000.0 * 1.19).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((990_000.0..=990_000.0 * 1.19).contains(&p99), "p99 {p99}");
        assert_eq!(
            h.quantile(0.0),
            LatencyHist::lower(LatencyHist::bucket(1000) + 1)
        );
    }

    #[test]
    fn cumulative_buckets_count_values_below() {
        let mut h = LatencyHist::default();
        h.record(500); // 0.5 us
        h.record(1_500); // 1.5 us
        h.record(3_000); // 3 us
        h.record(9_000_000); // 9 ms
        let c = h.cumulative_us(4);
        assert_eq!(c, vec![(1, 1), (2, 2), (4, 3), (8, 3), (16, 3)]);
    }

    #[test]
    fn error_codes_are_the_first_word() {
        let mut s = CommandStats::default();
        s.error(b"-ERR syntax error\r\n");
        s.error(b"-WRONGTYPE Operation against a key\r\n");
        s.error(b"-ERR other\r\n");
        s.error(b"-NOAUTH\r\n");
        assert_eq!(
            s.errors,
            vec![
                (b"ERR".to_vec(), 2),
                (b"WRONGTYPE".to_vec(), 1),
                (b"NOAUTH".to_vec(), 1)
            ]
        );
    }
}
