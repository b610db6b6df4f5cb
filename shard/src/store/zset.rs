//! Sorted sets as stored, in two encodings.
//!
//! - **Compact** (Redis's `listpack`, up to `zset-max-listpack-entries` members of at
//!   most `zset-max-listpack-value` bytes): inside the key's entry, `count`, then per
//!   member in (score, member) order its score (8 bytes, little-endian `f64`), its
//!   length (LEB128) and its bytes.
//! - **[`ZSet`]** (Redis's `skiplist`): members in a slab of blocks (score and member),
//!   found by a hash index, as a large hash's fields are; the order is a list of sorted
//!   chunks of (score, member number) pairs, at most [`CHUNK_MAX`] each, with a Fenwick
//!   tree over the chunks' lengths. Finding a member's place is a binary search over the
//!   chunks and within one; a rank is a Fenwick prefix sum plus the place in the chunk;
//!   the member at a rank is a Fenwick descent: all O(log n). A member costs its block,
//!   a slab slot, an index entry and 16 bytes in a chunk, against Redis's skiplist node,
//!   `sds`, dict entry and bucket.

use std::cmp::Ordering;

use ahash::RandomState;
use hashbrown::HashTable;

use super::block::{get_varint, put_varint, varint_len, Block};

/// Most pairs in a chunk; a fuller one splits in two.
pub const CHUNK_MAX: usize = 128;
/// A chunk this small merges with its next one when both fit in one.
const CHUNK_MIN: usize = CHUNK_MAX / 4;

/// Compares (score, member) pairs as Redis orders a sorted set.
#[inline]
pub fn order(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    match a.0.partial_cmp(&b.0) {
        Some(Ordering::Equal) | None => a.1.cmp(b.1),
        Some(o) => o,
    }
}

// ---- compact encoding ----------------------------------------------------------------

/// The members of a compact sorted set, in order.
pub fn compact_iter(b: &[u8]) -> impl Iterator<Item = (f64, &[u8])> + '_ {
    let (n, mut p) = if b.is_empty() { (0, 0) } else { get_varint(b) };
    (0..n).map(move |_| {
        let score = f64::from_le_bytes(b[p..p + 8].try_into().expect("8 bytes"));
        let (len, k) = get_varint(&b[p + 8..]);
        let start = p + 8 + k;
        p = start + len;
        (score, &b[start..start + len])
    })
}

/// How many members a compact sorted set has.
pub fn compact_len(b: &[u8]) -> usize {
    if b.is_empty() {
        0
    } else {
        get_varint(b).0
    }
}

/// Appends the compact encoding of `pairs` (already in order) to `out`.
pub fn compact_build(out: &mut Vec<u8>, pairs: &[(f64, &[u8])]) {
    let mut buf = [0u8; 10];
    let k = put_varint(&mut buf, pairs.len());
    out.extend_from_slice(&buf[..k]);
    for (score, m) in pairs {
        // A listpack keeps an integral score as an integer: -0 comes back as 0.
        let score = if *score == 0.0 { 0.0f64 } else { *score };
        out.extend_from_slice(&score.to_le_bytes());
        let k = put_varint(&mut buf, m.len());
        out.extend_from_slice(&buf[..k]);
        out.extend_from_slice(m);
    }
}

/// Bytes the compact encoding of `pairs` takes.
pub fn compact_size(pairs: &[(f64, &[u8])]) -> usize {
    varint_len(pairs.len())
        + pairs
            .iter()
            .map(|(_, m)| 8 + varint_len(m.len()) + m.len())
            .sum::<usize>()
}

// ---- the large encoding ----------------------------------------------------------------

/// A (score, member number) pair in a chunk.
#[derive(Clone, Copy, Debug)]
struct Item {
    score: f64,
    id: u32,
}

/// A large sorted set (see the module docs).
pub struct ZSet {
    slots: Vec<Option<Block>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: RandomState,
    chunks: Vec<Vec<Item>>,
    /// Fenwick tree over the chunks' lengths (1-based).
    tree: Vec<u32>,
    len: usize,
    /// Heap bytes of the members' blocks.
    blocks: usize,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl ZSet {
    /// An empty sorted set.
    pub fn new() -> ZSet {
        ZSet {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            chunks: Vec::new(),
            tree: vec![0],
            len: 0,
            blocks: 0,
        }
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes it uses (for `used_memory`).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<ZSet>()
            + self.blocks
            + self.slots.capacity() * std::mem::size_of::<Option<Block>>()
            + self.index.capacity() * 5
            + self.free.capacity() * 4
            + self.tree.capacity() * 4
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * std::mem::size_of::<Item>())
                .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Item>>()
    }

    #[inline]
    fn block(&self, id: u32) -> &Block {
        self.slots[id as usize]
            .as_ref()
            .expect("a used member slot")
    }

    #[inline]
    fn member(&self, id: u32) -> &[u8] {
        &self.block(id)[8..]
    }

    fn position(&self, member: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(member);
        self.index
            .find(hash, |&i| {
                &self.slots[i as usize].as_ref().expect("used")[8..] == member
            })
            .copied()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        let id = self.position(member)?;
        Some(f64::from_le_bytes(
            self.block(id)[..8].try_into().expect("8 bytes"),
        ))
    }

    /// Whether it holds `member`.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.position(member).is_some()
    }

    fn cmp_item(&self, key: (f64, &[u8]), it: Item) -> Ordering {
        order(key, (it.score, self.member(it.id)))
    }

    /// The chunk where `key` is or would go, and its place there.
    fn locate(&self, key: (f64, &[u8])) -> (usize, usize, bool) {
        // The first chunk whose last pair is not below the key.
        let c = self.chunks.partition_point(|ch| {
            self.cmp_item(key, *ch.last().expect("no empty chunk")) == Ordering::Greater
        });
        let c = c.min(self.chunks.len().saturating_sub(1));
        let ch = &self.chunks[c];
        let pos = ch.partition_point(|&it| self.cmp_item(key, it) == Ordering::Greater);
        let found = pos < ch.len() && self.cmp_item(key, ch[pos]) == Ordering::Equal;
        (c, pos, found)
    }

    fn fenwick_add(&mut self, c: usize, delta: i64) {
        let mut i = c + 1;
        while i < self.tree.len() {
            self.tree[i] = (i64::from(self.tree[i]) + delta) as u32;
            i += i & i.wrapping_neg();
        }
    }

    fn fenwick_rebuild(&mut self) {
        let n = self.chunks.len();
        self.tree.clear();
        self.tree.resize(n + 1, 0);
        for i in 1..=n {
            self.tree[i] += self.chunks[i - 1].len() as u32;
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                let v = self.tree[i];
                self.tree[parent] += v;
            }
        }
    }

    /// Pairs in chunks before chunk `c`.
    fn before_chunk(&self, c: usize) -> usize {
        let mut i = c;
        let mut sum = 0usize;
        while i > 0 {
            sum += self.tree[i] as usize;
            i &= i - 1;
        }
        sum
    }

    /// The chunk holding rank `r` (< len) and the place in it.
    fn select(&self, mut r: usize) -> (usize, usize) {
        let n = self.chunks.len();
        let mut pos = 0;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && (self.tree[next] as usize) <= r {
                pos = next;
                r -= self.tree[next] as usize;
            }
            step >>= 1;
        }
        (pos, r)
    }

    fn insert_item(&mut self, it: Item) {
        if self.chunks.is_empty() {
            let mut ch = Vec::with_capacity(CHUNK_MAX + 1);
            ch.push(it);
            self.chunks.push(ch);
            self.fenwick_rebuild();
            return;
        }
        let key = (it.score, self.member(it.id));
        let (c, pos, _) = self.locate(key);
        let (c, pos) = if pos == self.chunks[c].len() && c + 1 < self.chunks.len() {
            (c + 1, 0)
        } else {
            (c, pos)
        };
        self.chunks[c].insert(pos, it);
        if self.chunks[c].len() > CHUNK_MAX {
            let mut tail = Vec::with_capacity(CHUNK_MAX + 1);
            tail.extend(self.chunks[c].drain(CHUNK_MAX / 2..));
            self.chunks.insert(c + 1, tail);
            self.fenwick_rebuild();
        } else {
            self.fenwick_add(c, 1);
        }
    }

    fn remove_item(&mut self, score: f64, id: u32) {
        let key = (score, self.member(id));
        let (c, pos, found) = self.locate(key);
        debug_assert!(found, "a member's pair is in the order");
        self.chunks[c].remove(pos);
        let len = self.chunks[c].len();
        if len == 0 {
            self.chunks.remove(c);
            self.fenwick_rebuild();
        } else if len < CHUNK_MIN
            && c + 1 < self.chunks.len()
            && len + self.chunks[c + 1].len() <= CHUNK_MAX
        {
            let next = self.chunks.remove(c + 1);
            self.chunks[c].extend(next);
            self.fenwick_rebuild();
        } else {
            self.fenwick_add(c, -1);
        }
    }

    /// Sets `member`'s score; returns whether it is new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        if let Some(id) = self.position(member) {
            let old = f64::from_le_bytes(self.block(id)[..8].try_into().expect("8 bytes"));
            if old.to_bits() != score.to_bits() {
                self.remove_item(old, id);
                let b = self.slots[id as usize].as_mut().expect("used");
                b[..8].copy_from_slice(&score.to_le_bytes());
                self.insert_item(Item { score, id });
            }
            return false;
        }
        let mut b = Block::zeroed(8 + member.len());
        b[..8].copy_from_slice(&score.to_le_bytes());
        b[8..].copy_from_slice(member);
        self.blocks += b.alloc_size();
        let reuse = loop {
            match self.free.pop() {
                Some(i) if (i as usize) < self.slots.len() => break Some(i),
                Some(_) => {}
                None => break None,
            }
        };
        let id = match reuse {
            Some(i) => {
                self.slots[i as usize] = Some(b);
                i
            }
            None => {
                self.slots.push(Some(b));
                u32::try_from(self.slots.len() - 1).expect("fewer than 4 billion members")
            }
        };
        let hash = self.hasher.hash_one(member);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, id, |&j| {
            hasher.hash_one(&slots[j as usize].as_ref().expect("used")[8..])
        });
        self.len += 1;
        self.insert_item(Item { score, id });
        true
    }

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let id = self.position(member)?;
        let score = f64::from_le_bytes(self.block(id)[..8].try_into().expect("8 bytes"));
        self.remove_item(score, id);
        let hash = self.hasher.hash_one(member);
        let slots = &self.slots;
        if let Ok(e) = self.index.find_entry(hash, |&i| {
            &slots[i as usize].as_ref().expect("used")[8..] == member
        }) {
            e.remove();
        }
        let b = self.slots[id as usize].take().expect("used");
        self.blocks -= b.alloc_size();
        self.free.push(id);
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        self.len -= 1;
        Some(score)
    }

    /// The 0-based rank of `member` (ascending).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let (c, pos, _) = self.locate((score, member));
        Some(self.before_chunk(c) + pos)
    }

    /// The member at rank `r` (< len).
    pub fn at(&self, r: usize) -> (f64, &[u8]) {
        let (c, pos) = self.select(r);
        let it = self.chunks[c][pos];
        (it.score, self.member(it.id))
    }

    /// The number of members ordered before the first one for which `below` is false
    /// (`below` must hold for a prefix of the order).
    pub fn partition_point(&self, mut below: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let c = self.chunks.partition_point(|ch| {
            let last = *ch.last().expect("no empty chunk");
            below(last.score, self.member(last.id))
        });
        if c == self.chunks.len() {
            return self.len;
        }
        let pos = self.chunks[c].partition_point(|&it| below(it.score, self.member(it.id)));
        self.before_chunk(c) + pos
    }

    /// Members from rank `r` up (`rev`: down), as (score, member).
    /// Past either end it yields nothing; going down from beyond the end starts at the
    /// last member.
    pub fn iter_from(&self, r: usize, rev: bool) -> Iter<'_> {
        let r = if rev {
            r.min(self.len.saturating_sub(1))
        } else {
            r
        };
        let (c, pos, left) = if r < self.len {
            let (c, pos) = self.select(r);
            (c, pos, if rev { r + 1 } else { self.len - r })
        } else {
            (0, 0, 0)
        };
        Iter {
            z: self,
            c,
            pos,
            rev,
            left,
        }
    }

    /// The member at slab position `pos`, if used (ZSCAN, ZRANDMEMBER).
    pub fn slot(&self, pos: usize) -> Option<(f64, &[u8])> {
        let b = self.slots.get(pos)?.as_ref()?;
        Some((
            f64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            &b[8..],
        ))
    }

    /// Slab positions (used or not): the end of a scan.
    pub fn span(&self) -> usize {
        self.slots.len()
    }

    /// A used slab position at random (the set must not be empty).
    pub fn random(&self, rng: &mut fastrand::Rng) -> usize {
        loop {
            let pos = rng.usize(..self.slots.len());
            if self.slots[pos].is_some() {
                return pos;
            }
        }
    }

    /// Drops up to `budget` members' worth (freeing a large set in slices); returns
    /// whether any are left.
    pub fn drain_some(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            if self.slots.pop().is_none() {
                break;
            }
        }
        if self.slots.is_empty() {
            *self = ZSet::new();
            return false;
        }
        true
    }
}

impl Clone for ZSet {
    fn clone(&self) -> Self {
        let mut z = ZSet::new();
        for (score, m) in self.iter_from(0, false) {
            z.insert(m, score);
        }
        z
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZSet").field("len", &self.len).finish()
    }
}

/// Members in order from a rank (see [`ZSet::iter_from`]).
pub struct Iter<'a> {
    z: &'a ZSet,
    c: usize,
    pos: usize,
    rev: bool,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (f64, &'a [u8]);

    fn next(&mut self) -> Option<(f64, &'a [u8])> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let it = self.z.chunks[self.c][self.pos];
        if self.rev {
            if self.pos == 0 {
                if self.c > 0 {
                    self.c -= 1;
                    self.pos = self.z.chunks[self.c].len() - 1;
                }
            } else {
                self.pos -= 1;
            }
        } else {
            self.pos += 1;
            if self.pos == self.z.chunks[self.c].len() {
                self.c += 1;
                self.pos = 0;
            }
        }
        Some((it.score, self.z.member(it.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn model_order(m: &BTreeMap<Vec<u8>, f64>) -> Vec<(f64, Vec<u8>)> {
        let mut v: Vec<(f64, Vec<u8>)> = m.iter().map(|(k, s)| (*s, k.clone())).collect();
        v.sort_by(|a, b| order((a.0, &a.1), (b.0, &b.1)));
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]
        #[test]
        fn zsets_behave_like_a_sorted_model(ops in prop::collection::vec((0u8..4, 0u16..600, -20i32..20), 1..1500)) {
            let mut z = ZSet::new();
            let mut m: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for (op, k, s) in ops {
                let key = format!("m{k}").into_bytes();
                let score = f64::from(s) / 4.0;
                match op {
                    0 | 1 => prop_assert_eq!(z.insert(&key, score), m.insert(key.clone(), score).is_none()),
                    2 => prop_assert_eq!(z.remove(&key), m.remove(&key)),
                    _ => prop_assert_eq!(z.score(&key), m.get(&key).copied()),
                }
                prop_assert_eq!(z.len(), m.len());
            }
            let want = model_order(&m);
            let got: Vec<(f64, Vec<u8>)> = z.iter_from(0, false).map(|(s, k)| (s, k.to_vec())).collect();
            prop_assert_eq!(&got, &want);
            let back: Vec<(f64, Vec<u8>)> = z.iter_from(want.len().saturating_sub(1), true).map(|(s, k)| (s, k.to_vec())).collect();
            let mut rev = want.clone();
            rev.reverse();
            prop_assert_eq!(back, rev);
            for (r, (s, k)) in want.iter().enumerate() {
                prop_assert_eq!(z.rank(k), Some(r));
                let (s2, k2) = z.at(r);
                prop_assert_eq!((s2, k2), (*s, &k[..]));
                if r % 7 == 0 {
                    let from: Vec<(f64, Vec<u8>)> = z.iter_from(r, false).take(3).map(|(s, k)| (s, k.to_vec())).collect();
                    prop_assert_eq!(&from[..], &want[r..(r + 3).min(want.len())]);
                }
            }
            for t in [-6.0f64, -0.5, 0.0, 0.25, 3.0] {
                let want_n = want.iter().filter(|(s, _)| *s < t).count();
                prop_assert_eq!(z.partition_point(|s, _| s < t), want_n);
            }
            let mut total = 0;
            for ch in &z.chunks {
                prop_assert!(!ch.is_empty() && ch.len() <= CHUNK_MAX);
                total += ch.len();
            }
            prop_assert_eq!(total, z.len());
            let c = z.clone();
            prop_assert_eq!(c.len(), z.len());
        }

        #[test]
        fn compact_sets_keep_their_pairs(pairs in prop::collection::vec((any::<i16>(), prop::collection::vec(any::<u8>(), 0..70)), 0..40)) {
            let pairs: Vec<(f64, &[u8])> = pairs.iter().map(|(s, m)| (f64::from(*s) + 0.0, &m[..])).collect();
            let mut b = Vec::new();
            compact_build(&mut b, &pairs);
            prop_assert_eq!(b.len(), compact_size(&pairs));
            prop_assert_eq!(compact_len(&b), pairs.len());
            let back: Vec<(f64, &[u8])> = compact_iter(&b).collect();
            prop_assert_eq!(back, pairs);
        }
    }

    #[test]
    fn a_million_members_rank_in_order() {
        let mut z = ZSet::new();
        for i in 0..200_000u32 {
            z.insert(
                format!("{:08}", (i * 7919) % 200_000).as_bytes(),
                f64::from(i % 1000),
            );
        }
        assert_eq!(z.len(), 200_000);
        let (s, m) = z.at(123_456);
        assert_eq!(z.rank(m), Some(123_456));
        assert!(s >= 0.0);
    }
}
