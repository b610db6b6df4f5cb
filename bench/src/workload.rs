//! What each request is: its operation, its key, its value, and what a correct reply to
//! it looks like. Pure functions of a seeded generator, so they are unit-tested here and
//! cost no locks at run time.
//!
//! Values are a deterministic pattern of their key and length, so a GET reply can be
//! checked byte for byte whichever SET (of whatever length) wrote the key last.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// How keys are picked from the key space `0..keys`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// Key `k` (0-based) with probability proportional to `1 / (k+1)^s`.
    Zipf(f64),
    /// 0, 1, 2, … in turn (per connection, each starting at its own offset).
    Sequential,
}

impl std::str::FromStr for KeyDist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(KeyDist::Uniform),
            "sequential" => Ok(KeyDist::Sequential),
            _ => {
                let exp = s.strip_prefix("zipf:").ok_or_else(|| {
                    format!("{s:?}: use uniform, sequential or zipf:S (e.g. zipf:0.99)")
                })?;
                let exp: f64 = exp
                    .parse()
                    .map_err(|_| format!("{s:?}: the zipf exponent must be a number"))?;
                if !(exp > 0.0 && exp.is_finite()) {
                    return Err(format!("{s:?}: the zipf exponent must be positive"));
                }
                Ok(KeyDist::Zipf(exp))
            }
        }
    }
}

impl std::fmt::Display for KeyDist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDist::Uniform => f.write_str("uniform"),
            KeyDist::Sequential => f.write_str("sequential"),
            KeyDist::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// A value length, fixed (`32`) or drawn uniformly from a range (`32-1024`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeRange {
    /// Smallest length.
    pub min: usize,
    /// Largest length.
    pub max: usize,
}

impl std::str::FromStr for SizeRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?}: a value size is bytes, like 32 or 32-1024"))
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let v = parse(s)?;
                (v, v)
            }
        };
        if min > max {
            return Err(format!("{s:?}: the range goes backwards"));
        }
        if max > 512 * 1024 * 1024 {
            return Err(format!(
                "{s:?}: values over 512 MiB are refused by Redis-protocol servers"
            ));
        }
        Ok(SizeRange { min, max })
    }
}

impl std::fmt::Display for SizeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// The byte at position `i` of every value stored under key `key`: the value's content is
/// a function of its key and position only, so any length can be checked.
#[inline]
pub fn value_byte(key: u64, i: usize) -> u8 {
    let x = key
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i as u64);
    b'a' + (x % 26) as u8
}

/// Appends the value of `len` bytes for `key` to `out`.
pub fn push_value(out: &mut Vec<u8>, key: u64, len: usize) {
    out.extend((0..len).map(|i| value_byte(key, i)));
}

/// Whether `value` is what some SET stored under `key`. Any length is accepted (an
/// earlier run may have written other sizes); every byte must match the key's pattern.
pub fn value_ok(value: &[u8], key: u64) -> bool {
    value
        .iter()
        .enumerate()
        .all(|(i, &b)| b == value_byte(key, i))
}

/// An operation to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// SET key value.
    Set,
    /// GET key.
    Get,
    /// HSET key field value.
    HSet,
    /// HGET key field.
    HGet,
    /// SADD key member.
    SAdd,
    /// SISMEMBER key member.
    SIsMember,
    /// LPUSH key element.
    LPush,
    /// RPOP key.
    RPop,
    /// ZADD key score member.
    ZAdd,
    /// ZRANGEBYSCORE key min max LIMIT 0 10.
    ZRangeByScore,
    /// PING.
    Ping,
    /// A payload for an echo server.
    Echo,
    /// MULTI of a transaction (`+OK`), not measured.
    Multi,
    /// A command queued in a transaction (`+QUEUED`), not measured.
    Queued,
    /// EXEC of `MULTI, INCR k1, INCR k2, EXEC`: the transaction, measured from MULTI.
    Exec,
}

/// Picks operations, keys and value lengths for one connection.
pub struct Generator {
    rng: SmallRng,
    keys: u64,
    dist: KeyDist,
    zipf: Option<Zipf<f64>>,
    next_seq: u64,
    set_weight: u32,
    get_weight: u32,
    sizes: SizeRange,
}

impl Generator {
    /// A generator for one connection. `conn` spreads sequential keys and seeds the RNG;
    /// `ratio` is SET:GET weights.
    pub fn new(
        seed: u64,
        conn: u64,
        keys: u64,
        dist: KeyDist,
        ratio: (u32, u32),
        sizes: SizeRange,
    ) -> Self {
        let keys = keys.max(1);
        Generator {
            rng: SmallRng::seed_from_u64(seed ^ conn.wrapping_mul(0xa076_1d64_78bd_642f)),
            keys,
            dist,
            zipf: match dist {
                KeyDist::Zipf(s) => Some(Zipf::new(keys, s).expect("checked exponent")),
                _ => None,
            },
            next_seq: conn.wrapping_mul(keys / 64 + 1) % keys,
            set_weight: ratio.0,
            get_weight: ratio.1,
            sizes,
        }
    }

    /// Makes sequential keys start at `key` (prefill gives each connection its range).
    pub fn start_at(&mut self, key: u64) {
        self.next_seq = key % self.keys;
    }

    /// The next key index.
    #[inline]
    pub fn key(&mut self) -> u64 {
        match self.dist {
            KeyDist::Uniform => self.rng.gen_range(0..self.keys),
            KeyDist::Sequential => {
                let k = self.next_seq;
                self.next_seq = (self.next_seq + 1) % self.keys;
                k
            }
            KeyDist::Zipf(_) => {
                // Zipf samples 1..=n as a float; rank 1 is the most popular.
                let z = self
                    .zipf
                    .as_ref()
                    .expect("zipf sampler")
                    .sample(&mut self.rng);
                (z as u64).clamp(1, self.keys) - 1
            }
        }
    }

    /// SET or GET, by the ratio.
    #[inline]
    pub fn op(&mut self) -> Op {
        let total = self.set_weight + self.get_weight;
        if self.rng.gen_range(0..total) < self.set_weight {
            Op::Set
        } else {
            Op::Get
        }
    }

    /// A number in `0..n` (a hash's field, a set's member).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.gen_range(0..n.max(1))
    }

    /// A value length.
    #[inline]
    pub fn size(&mut self) -> usize {
        if self.sizes.min == self.sizes.max {
            self.sizes.min
        } else {
            self.rng.gen_range(self.sizes.min..=self.sizes.max)
        }
    }
}

/// The seed of the value of field `field` of hash `key`: values are checked like a
/// string key's, by this number (fields are fewer than 2^20).
#[inline]
pub fn field_seed(key: u64, field: u64) -> u64 {
    key << 20 | field
}

/// Parses `SET:GET` weights like `1:10`.
pub fn parse_ratio(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: the ratio is SET:GET, like 1:10"))?;
    let a: u32 = a
        .parse()
        .map_err(|_| format!("{s:?}: the ratio is SET:GET, like 1:10"))?;
    let b: u32 = b
        .parse()
        .map_err(|_| format!("{s:?}: the ratio is SET:GET, like 1:10"))?;
    if a == 0 && b == 0 {
        return Err(format!(
            "{s:?}: at least one of SET and GET must have a weight"
        ));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        assert_eq!("uniform".parse::<KeyDist>(), Ok(KeyDist::Uniform));
        assert_eq!("zipf:0.99".parse::<KeyDist>(), Ok(KeyDist::Zipf(0.99)));
        assert!("zipf:-1".parse::<KeyDist>().is_err());
        assert!("zipf".parse::<KeyDist>().is_err());
        assert_eq!(
            "32".parse::<SizeRange>(),
            Ok(SizeRange { min: 32, max: 32 })
        );
        assert_eq!(
            "32-1024".parse::<SizeRange>(),
            Ok(SizeRange { min: 32, max: 1024 })
        );
        assert!("9-3".parse::<SizeRange>().is_err());
        assert_eq!(parse_ratio("1:10"), Ok((1, 10)));
        assert!(parse_ratio("0:0").is_err());
        assert!(parse_ratio("1").is_err());
    }

    #[test]
    fn values_verify_by_key() {
        let mut v = Vec::new();
        push_value(&mut v, 42, 17);
        assert!(value_ok(&v, 42));
        assert!(!value_ok(&v, 43), "another key's value");
        v[5] ^= 1;
        assert!(!value_ok(&v, 42), "a corrupted byte");
    }

    #[test]
    fn ratio_is_respected() {
        let mut g = Generator::new(
            1,
            0,
            100,
            KeyDist::Uniform,
            (1, 10),
            SizeRange { min: 1, max: 1 },
        );
        let sets = (0..110_000).filter(|_| g.op() == Op::Set).count();
        assert!(
            (9_000..11_000).contains(&sets),
            "{sets} SETs of 110000 at 1:10"
        );
    }

    #[test]
    fn uniform_and_sequential_cover_the_key_space() {
        let mut g = Generator::new(
            1,
            3,
            1000,
            KeyDist::Sequential,
            (1, 1),
            SizeRange { min: 1, max: 1 },
        );
        let first = g.key();
        let keys: Vec<u64> = (0..999).map(|_| g.key()).collect();
        assert_eq!(keys[0], (first + 1) % 1000);
        let mut all: Vec<u64> = std::iter::once(first).chain(keys).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 1000, "sequential visits every key once per lap");
        let mut g = Generator::new(
            1,
            0,
            10,
            KeyDist::Uniform,
            (1, 1),
            SizeRange { min: 1, max: 1 },
        );
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[g.key() as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn zipf_skew_is_measurably_right() {
        // With exponent s, P(rank r) ∝ r^-s: key 0 should be hit 2^s times as often as
        // key 1 and 10^s times as often as key 9.
        let s = 0.99;
        let n = 1000;
        let mut g = Generator::new(
            7,
            0,
            n,
            KeyDist::Zipf(s),
            (1, 1),
            SizeRange { min: 1, max: 1 },
        );
        let draws = 2_000_000;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[g.key() as usize] += 1;
        }
        let harmonic: f64 = (1..=n).map(|r| (r as f64).powf(-s)).sum();
        for (rank, &count) in counts.iter().enumerate().take(10) {
            let want = draws as f64 * ((rank + 1) as f64).powf(-s) / harmonic;
            let err = (count as f64 - want).abs() / want;
            assert!(err < 0.05, "rank {rank}: {count} draws, expected {want:.0}");
        }
        let ratio = counts[0] as f64 / counts[9] as f64;
        assert!(
            (ratio - 10f64.powf(s)).abs() < 0.6,
            "head/10th ratio {ratio}"
        );
        // The top 1% of keys take the expected share of all draws.
        let top: u64 = counts[..10].iter().sum();
        let want: f64 = (1..=10).map(|r| (r as f64).powf(-s)).sum::<f64>() / harmonic;
        assert!((top as f64 / draws as f64 - want).abs() < 0.01);
    }
}
