//! Which shard owns a key: Redis Cluster's hash slot (CRC16-XMODEM of the key, or of its
//! `{hash tag}`, mod 16384) mapped to a shard by [`SlotMap`]. This is the one place that
//! decides ownership; cluster-aware clients will later be shown the same map.

/// Number of hash slots, as in Redis Cluster.
pub const SLOTS: u16 = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses.
pub fn crc16(data: &[u8]) -> u16 {
    static TABLE: [u16; 256] = {
        let mut table = [0u16; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = (i as u16) << 8;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[((crc >> 8) as u8 ^ b) as usize]
    })
}

/// The hash slot of `key`: if the key has a `{...}` with at least one byte inside (the
/// first `{` and the first `}` after it), only that part is hashed.
#[inline]
pub fn key_slot(key: &[u8]) -> u16 {
    if let Some(open) = memchr::memchr(b'{', key) {
        if let Some(len) = memchr::memchr(b'}', &key[open + 1..]) {
            if len > 0 {
                return crc16(&key[open + 1..open + 1 + len]) & (SLOTS - 1);
            }
        }
    }
    crc16(key) & (SLOTS - 1)
}

/// Maps slots to shards: shard `i` of `n` owns the contiguous slot range
/// `[i*16384/n, (i+1)*16384/n)`, the split Redis Cluster tools make for `n` masters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotMap {
    shards: u32,
}

impl SlotMap {
    /// The map for `shards` shards (at least one, at most 16384).
    pub fn new(shards: usize) -> Self {
        assert!(
            (1..=SLOTS as usize).contains(&shards),
            "shard count out of range"
        );
        SlotMap {
            shards: shards as u32,
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards as usize
    }

    /// The shard that owns `slot`.
    #[inline]
    pub fn shard_of_slot(&self, slot: u16) -> usize {
        ((slot as u32 * self.shards) >> 14) as usize
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        self.shard_of_slot(key_slot(key))
    }

    /// The slots shard `shard` owns, as an inclusive range.
    pub fn slots_of(&self, shard: usize) -> std::ops::RangeInclusive<u16> {
        let n = self.shards as usize;
        let first = (shard * SLOTS as usize).div_ceil(n);
        let next = ((shard + 1) * SLOTS as usize).div_ceil(n);
        first as u16..=(next - 1) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_reference_values() {
        // The check value of CRC-16/XMODEM, and slots Redis documents.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(
            key_slot(b"foo{}{bar}"),
            key_slot(b"bar"),
            "empty tag hashes whole key"
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn slot_ranges_cover_everything_once() {
        for n in [1usize, 2, 3, 4, 7, 64] {
            let map = SlotMap::new(n);
            let mut next = 0u32;
            for shard in 0..n {
                let r = map.slots_of(shard);
                assert_eq!(*r.start() as u32, next);
                for slot in r.clone() {
                    assert_eq!(map.shard_of_slot(slot), shard, "n={n} slot={slot}");
                }
                next = *r.end() as u32 + 1;
            }
            assert_eq!(next, SLOTS as u32);
        }
    }
}
