//! Hashes and sets as stored, in Redis 7.0's encodings.
//!
//! Small collections live inside their key's entry block, as Redis keeps them in one
//! listpack or intset allocation:
//!
//! - a **listpack** hash: `count`, then per field `field length, field, value length,
//!   value` (lengths as LEB128 varints), fields in insertion order;
//! - an **intset**: a width byte (2, 4 or 8), then the members as little-endian integers
//!   of that width, sorted ascending; the width grows when a member needs it.
//!
//! Large ones are a [`Table`]: elements each in one `Block` (a hash field's block is
//! `field length, field, value`; a set member's block is the member), in a slab with a
//! hash index of positions, as the keyspace itself is (so HSCAN and SSCAN cursors are
//! slab positions, stable however the table grows). The entry then holds the table's
//! number in its store. A collection moves to a table at Redis's thresholds
//! (`hash-max-listpack-entries`/`-value`, `set-max-intset-entries`, a member that is not
//! an integer) and never back, as in Redis.

use ahash::RandomState;
use hashbrown::HashTable;

use super::block::{get_varint, put_varint, varint_len, Block};

/// The type half of a collection's kind byte: a hash.
pub const HASH: u8 = 0x10;
/// The type half of a collection's kind byte: a set.
pub const SET: u8 = 0x20;
/// The type half of a collection's kind byte: a list (always a [`super::list::List`] in
/// the store's slab).
pub const LIST: u8 = 0x30;
/// The type half of a collection's kind byte: a sorted set (compact inline, or a
/// [`super::zset::ZSet`] in the store's slab).
pub const ZSET: u8 = 0x40;
/// The encoding half: inline (listpack or intset).
pub const COMPACT: u8 = 0x00;
/// The encoding half: a table in the store.
pub const TABLE: u8 = 0x01;

/// Mask of the type half.
pub const TYPE_MASK: u8 = 0xf0;

// ---- listpack ----------------------------------------------------------------------

/// A listpack hash's fields and values, in order.
pub fn listpack_iter(lp: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let (n, mut p) = if lp.is_empty() {
        (0, 0)
    } else {
        get_varint(lp)
    };
    (0..n).map(move |_| {
        let (flen, a) = get_varint(&lp[p..]);
        let field = &lp[p + a..p + a + flen];
        p += a + flen;
        let (vlen, b) = get_varint(&lp[p..]);
        let value = &lp[p + b..p + b + vlen];
        p += b + vlen;
        (field, value)
    })
}

/// How many fields a listpack hash has.
pub fn listpack_len(lp: &[u8]) -> usize {
    if lp.is_empty() {
        0
    } else {
        get_varint(lp).0
    }
}

/// The value of `field` in a listpack hash.
pub fn listpack_get<'a>(lp: &'a [u8], field: &[u8]) -> Option<&'a [u8]> {
    listpack_iter(lp).find(|(f, _)| *f == field).map(|(_, v)| v)
}

/// Appends a listpack of `pairs` (in order) to `out`.
pub fn listpack_build<'a>(
    out: &mut Vec<u8>,
    n: usize,
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) {
    let mut buf = [0u8; 10];
    let k = put_varint(&mut buf, n);
    out.extend_from_slice(&buf[..k]);
    let mut written = 0;
    for (f, v) in pairs {
        let k = put_varint(&mut buf, f.len());
        out.extend_from_slice(&buf[..k]);
        out.extend_from_slice(f);
        let k = put_varint(&mut buf, v.len());
        out.extend_from_slice(&buf[..k]);
        out.extend_from_slice(v);
        written += 1;
    }
    debug_assert_eq!(written, n, "listpack count");
}

/// Bytes a listpack of these pairs takes.
pub fn listpack_size<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> usize {
    let mut n = 0;
    let mut size = 0;
    for (f, v) in pairs {
        size += varint_len(f.len()) + f.len() + varint_len(v.len()) + v.len();
        n += 1;
    }
    varint_len(n) + size
}

// ---- intset ------------------------------------------------------------------------

/// The smallest intset width that holds `v`.
fn width_of(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

fn read_int(b: &[u8], w: usize) -> i64 {
    match w {
        2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_le_bytes(b[..4].try_into().expect("4 bytes"))),
        _ => i64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
    }
}

fn write_int(b: &mut [u8], w: usize, v: i64) {
    match w {
        2 => b[..2].copy_from_slice(&(v as i16).to_le_bytes()),
        4 => b[..4].copy_from_slice(&(v as i32).to_le_bytes()),
        _ => b[..8].copy_from_slice(&v.to_le_bytes()),
    }
}

/// An intset's members, ascending.
pub fn intset_iter(is: &[u8]) -> impl Iterator<Item = i64> + '_ {
    let w = is.first().map_or(2, |&w| w as usize);
    is.get(1..)
        .unwrap_or_default()
        .chunks_exact(w)
        .map(move |c| read_int(c, w))
}

/// How many members an intset has.
pub fn intset_len(is: &[u8]) -> usize {
    match is.first() {
        Some(&w) => (is.len() - 1) / w as usize,
        None => 0,
    }
}

/// The member at position `i` of an intset.
pub fn intset_at(is: &[u8], i: usize) -> i64 {
    let w = is[0] as usize;
    read_int(&is[1 + i * w..], w)
}

/// Whether an intset holds `v`, or where it would go.
pub fn intset_search(is: &[u8], v: i64) -> Result<usize, usize> {
    let n = intset_len(is);
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let m = intset_at(is, mid);
        if m == v {
            return Ok(mid);
        }
        if m < v {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Err(lo)
}

/// Writes the intset of `is` with `v` added (which it must not hold) to `out`.
pub fn intset_with(is: &[u8], v: i64, out: &mut Vec<u8>) {
    let old_w = is.first().map_or(2, |&w| w as usize);
    let w = old_w.max(width_of(v));
    let at = match intset_search(is, v) {
        Ok(_) => unreachable!("adding a present member"),
        Err(at) => at,
    };
    let n = intset_len(is);
    out.push(w as u8);
    let start = out.len();
    out.resize(start + (n + 1) * w, 0);
    let body = &mut out[start..];
    let mut j = 0;
    for (i, m) in intset_iter(is).enumerate() {
        if i == at {
            write_int(&mut body[j * w..], w, v);
            j += 1;
        }
        write_int(&mut body[j * w..], w, m);
        j += 1;
    }
    if at == n {
        write_int(&mut body[j * w..], w, v);
    }
}

/// Writes the intset of `is` without its member at position `at` to `out`.
pub fn intset_without(is: &[u8], at: usize, out: &mut Vec<u8>) {
    let w = is[0] as usize;
    out.push(w as u8);
    out.extend_from_slice(&is[1..1 + at * w]);
    out.extend_from_slice(&is[1 + (at + 1) * w..]);
}

/// Appends an intset of `members` (sorted ascending, distinct) to `out`.
pub fn intset_build(members: &[i64], out: &mut Vec<u8>) {
    let w = members.iter().map(|&v| width_of(v)).max().unwrap_or(2);
    out.push(w as u8);
    let start = out.len();
    out.resize(start + members.len() * w, 0);
    for (i, &m) in members.iter().enumerate() {
        write_int(&mut out[start + i * w..], w, m);
    }
}

// ---- tables ------------------------------------------------------------------------

/// A large hash or set: elements in blocks, in a slab indexed by hash (see the module
/// docs).
pub struct Table {
    /// [`HASH`] or [`SET`].
    pub ty: u8,
    index: HashTable<u32>,
    slots: Vec<Option<Block>>,
    free: Vec<u32>,
    len: usize,
    hasher: RandomState,
    /// Heap bytes of the elements' blocks.
    blocks: usize,
    /// How many times the slab was compacted (see [`Table::epoch`]).
    epoch: u32,
}

/// A table compacts only from this many slab positions up.
const MIN_COMPACT: usize = 64;
/// Epochs wrap at 24 bits, what a cursor has room for above a 40-bit position.
const EPOCH_MASK: u32 = (1 << 24) - 1;

/// Bytes a table costs per element besides its block: the slab slot and the index's
/// 4-byte position, control byte and slack.
const SLOT_OVERHEAD: usize = std::mem::size_of::<Option<Block>>() + 6;

impl Table {
    /// An empty table of type `ty` ([`HASH`] or [`SET`]).
    pub fn new(ty: u8) -> Table {
        Table {
            ty,
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            hasher: RandomState::new(),
            blocks: 0,
            epoch: 0,
        }
    }

    /// How many elements it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the elements' blocks (what a reply listing them all roughly takes).
    pub fn element_bytes(&self) -> usize {
        self.blocks
    }

    /// Heap bytes it uses (for `used_memory`).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Table>()
            + self.blocks
            + self.slots.capacity() * std::mem::size_of::<Option<Block>>()
            + self.index.capacity() * 5
            + self.free.capacity() * 4
    }

    /// The element's key: a hash field, or a set member.
    fn key_of(ty: u8, b: &[u8]) -> &[u8] {
        if ty == HASH {
            let (flen, n) = get_varint(b);
            &b[n..n + flen]
        } else {
            b
        }
    }

    fn used(slots: &[Option<Block>], i: u32) -> &Block {
        slots[i as usize]
            .as_ref()
            .expect("index points at a used slot")
    }

    fn position(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let (slots, ty) = (&self.slots, self.ty);
        self.index
            .find(hash, |&i| Self::key_of(ty, Self::used(slots, i)) == key)
            .copied()
    }

    /// Whether it holds `key` (a field or a member).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.position(key).is_some()
    }

    /// The value of hash field `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        let i = self.position(field)?;
        Some(Self::split(Self::used(&self.slots, i)).1)
    }

    /// A hash field's block as field and value.
    fn split(b: &[u8]) -> (&[u8], &[u8]) {
        let (flen, n) = get_varint(b);
        (&b[n..n + flen], &b[n + flen..])
    }

    fn block_for(ty: u8, key: &[u8], value: &[u8]) -> Block {
        if ty == HASH {
            let n = varint_len(key.len());
            let mut b = Block::zeroed(n + key.len() + value.len());
            put_varint(&mut b, key.len());
            b[n..n + key.len()].copy_from_slice(key);
            b[n + key.len()..].copy_from_slice(value);
            b
        } else {
            let mut b = Block::zeroed(key.len());
            b.copy_from_slice(key);
            b
        }
    }

    /// Sets hash field `key` to `value` (sets ignore `value`); returns whether the key
    /// was new.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> bool {
        if let Some(i) = self.position(key) {
            if self.ty == HASH {
                let b = Self::block_for(self.ty, key, value);
                let old = self.slots[i as usize].replace(b).expect("used slot");
                self.blocks -= old.alloc_size();
                self.blocks += Self::used(&self.slots, i).alloc_size();
            }
            return false;
        }
        let b = Self::block_for(self.ty, key, value);
        self.blocks += b.alloc_size();
        // Free positions past the end were trimmed away: skip them.
        let reuse = loop {
            match self.free.pop() {
                Some(i) if (i as usize) < self.slots.len() => break Some(i),
                Some(_) => {}
                None => break None,
            }
        };
        let i = match reuse {
            Some(i) => {
                self.slots[i as usize] = Some(b);
                i
            }
            None => {
                self.slots.push(Some(b));
                (self.slots.len() - 1) as u32
            }
        };
        let hash = self.hasher.hash_one(key);
        let (slots, hasher, ty) = (&self.slots, &self.hasher, self.ty);
        self.index.insert_unique(hash, i, |&j| {
            hasher.hash_one(Self::key_of(ty, Self::used(slots, j)))
        });
        self.len += 1;
        true
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        let (slots, ty) = (&self.slots, self.ty);
        let Ok(found) = self
            .index
            .find_entry(hash, |&i| Self::key_of(ty, Self::used(slots, i)) == key)
        else {
            return false;
        };
        let (i, _) = found.remove();
        let b = self.slots[i as usize].take().expect("used slot");
        self.blocks -= b.alloc_size();
        self.free.push(i);
        self.len -= 1;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        if self.slots.len() >= MIN_COMPACT && self.len * 4 < self.slots.len() {
            self.compact();
        }
        true
    }

    /// Moves the elements to the front of a slab sized for them, when removals left it
    /// mostly holes: memory comes back, and [`Table::random`] stays O(1) (it probes
    /// positions until one is used). Positions change, so the epoch advances.
    fn compact(&mut self) {
        let slots: Vec<Option<Block>> = std::mem::take(&mut self.slots)
            .into_iter()
            .filter(Option::is_some)
            .collect();
        let mut index = HashTable::with_capacity(slots.len());
        for (i, b) in slots.iter().enumerate() {
            let b = b.as_ref().expect("kept only used slots");
            let hash = self.hasher.hash_one(Self::key_of(self.ty, b));
            index.insert_unique(hash, i as u32, |&j| {
                self.hasher
                    .hash_one(Self::key_of(self.ty, Self::used(&slots, j)))
            });
        }
        self.slots = slots;
        self.index = index;
        self.free = Vec::new();
        self.epoch = (self.epoch + 1) & EPOCH_MASK;
    }

    /// How many times the table was compacted, modulo 2^24. A scan cursor carries it
    /// above the slab position (bit 40 up): a cursor from before a compaction starts
    /// the scan over, so an element present throughout is still returned (maybe twice,
    /// which SCAN allows), and a scan ends: each compaction needs the table to shrink
    /// to a quarter.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Every element as (key, value) — the value is empty for set members — in slab order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let ty = self.ty;
        self.slots.iter().flatten().map(move |b| {
            if ty == HASH {
                Self::split(b)
            } else {
                (&b[..], &b[..0])
            }
        })
    }

    /// The element at slab position `pos`, if used.
    pub fn at(&self, pos: usize) -> Option<(&[u8], &[u8])> {
        let b = self.slots.get(pos)?.as_ref()?;
        Some(if self.ty == HASH {
            Self::split(b)
        } else {
            (&b[..], &b[..0])
        })
    }

    /// Slab positions (used or not) the table spans: the end of a scan.
    pub fn span(&self) -> usize {
        self.slots.len()
    }

    /// A used slab position chosen at random (the table must not be empty).
    pub fn random(&self, rng: &mut fastrand::Rng) -> usize {
        loop {
            let pos = rng.usize(..self.slots.len());
            if self.slots[pos].is_some() {
                return pos;
            }
        }
    }

    /// Drops up to `budget` elements from the end of the slab (freeing a large table in
    /// slices); returns whether any are left.
    pub fn drain_some(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            if self.slots.pop().is_none() {
                break;
            }
        }
        if self.slots.is_empty() {
            self.index = HashTable::new();
            self.slots = Vec::new();
            self.free = Vec::new();
            return false;
        }
        true
    }

    /// Bytes one element costs besides its block, for the accounting's estimates.
    pub const fn slot_overhead() -> usize {
        SLOT_OVERHEAD
    }
}

impl Clone for Table {
    fn clone(&self) -> Self {
        let mut t = Table::new(self.ty);
        for (k, v) in self.iter() {
            t.insert(k, v);
        }
        t
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("ty", &self.ty)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    proptest! {
        #[test]
        fn listpacks_keep_pairs_in_order(pairs in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 0..200)), 0..60)) {
            let mut lp = Vec::new();
            listpack_build(&mut lp, pairs.len(), pairs.iter().map(|(f, v)| (&f[..], &v[..])));
            prop_assert_eq!(lp.len(), listpack_size(pairs.iter().map(|(f, v)| (&f[..], &v[..]))));
            prop_assert_eq!(listpack_len(&lp), pairs.len());
            let back: Vec<(Vec<u8>, Vec<u8>)> = listpack_iter(&lp).map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(&back, &pairs);
            if let Some((f, v)) = pairs.first() {
                let first = pairs.iter().find(|(g, _)| g == f).map(|(_, v)| v.clone());
                prop_assert_eq!(listpack_get(&lp, f).map(<[u8]>::to_vec), first.or(Some(v.clone())));
            }
        }

        #[test]
        fn intsets_behave_like_a_sorted_set(ops in prop::collection::vec((any::<bool>(), any::<i64>().prop_map(|v| v % 100_000 * if v % 3 == 0 { 1_000_000 } else { 1 })), 0..200)) {
            let mut is = Vec::new();
            intset_build(&[], &mut is);
            let mut model = BTreeSet::new();
            for (add, v) in ops {
                let mut out = Vec::new();
                match (add, intset_search(&is, v)) {
                    (true, Err(_)) => { intset_with(&is, v, &mut out); is = out; model.insert(v); }
                    (false, Ok(at)) => { intset_without(&is, at, &mut out); is = out; model.remove(&v); }
                    (true, Ok(_)) => prop_assert!(model.contains(&v)),
                    (false, Err(_)) => prop_assert!(!model.contains(&v)),
                }
                prop_assert_eq!(intset_iter(&is).collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(intset_len(&is), model.len());
            }
        }

        #[test]
        fn tables_behave_like_std_maps(ops in prop::collection::vec((0u8..3, 0u16..300, any::<u16>()), 1..400)) {
            let mut t = Table::new(HASH);
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            for (op, k, v) in ops {
                let key = format!("f{k}").into_bytes();
                let value = v.to_string().into_bytes();
                match op {
                    0 => prop_assert_eq!(t.insert(&key, &value), model.insert(key.clone(), value).is_none()),
                    1 => prop_assert_eq!(t.remove(&key), model.remove(&key).is_some()),
                    _ => prop_assert_eq!(t.get(&key), model.get(&key).map(|v| &v[..])),
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let got: BTreeMap<Vec<u8>, Vec<u8>> = t.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            let want: BTreeMap<Vec<u8>, Vec<u8>> = model.into_iter().collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn set_tables_hold_members_and_slab_positions_are_stable() {
        let mut t = Table::new(SET);
        for i in 0..1000 {
            assert!(t.insert(format!("m{i}").as_bytes(), b""));
        }
        assert!(!t.insert(b"m5", b""));
        let pos_of = |t: &Table, m: &[u8]| (0..t.span()).find(|&p| t.at(p).map(|e| e.0) == Some(m));
        let before = pos_of(&t, b"m999");
        for i in 0..500 {
            assert!(t.remove(format!("m{i}").as_bytes()));
        }
        for i in 1000..3000 {
            t.insert(format!("m{i}").as_bytes(), b"");
        }
        assert_eq!(pos_of(&t, b"m999"), before, "a member keeps its position");
        assert_eq!(t.len(), 2500);
        assert!(t.contains(b"m2999") && !t.contains(b"m0"));
        let mut big = t.clone();
        while big.drain_some(100) {}
        assert_eq!(t.len(), 2500, "the clone is its own");
    }
}
