//! A point-in-time copy of the keyspace in RDB form, written while the shard keeps serving
//! (snapshots without fork).
//!
//! At the snapshot's instant the store marks every occupied slab slot pending, one bit a
//! slot. The saver then takes the keyspace in chunks ([`Store::snapshot_chunk`]), walking
//! the slab and encoding each pending entry. Every write reaches an entry through
//! [`Store::touch`] or a collection editor first, and those encode a pending entry before
//! it changes (and clear its bit): copy-on-write per key. A key created after the instant
//! sits in a slot whose bit is clear. So each key present at the instant is written once,
//! as it was then, and the memory a snapshot costs beyond its chunk is what changed
//! before the walk reached it, not the dataset.

use super::{Big, Store, Value, ZRef};
use crate::rdb::{self, op, ty};

/// A snapshot in progress.
pub(super) struct Snap {
    /// One bit a slab slot: the entry there is still to be written.
    pending: Vec<u64>,
    /// Where the walk goes on.
    next: usize,
    /// Entries written ahead of the walk because a write was about to change them.
    early: Vec<u8>,
    /// `rdbcompression`.
    compress: bool,
    /// Keys written so far.
    keys: u64,
}

impl Snap {
    #[inline]
    fn take(&mut self, idx: usize) -> bool {
        let (word, bit) = (idx / 64, 1u64 << (idx % 64));
        match self.pending.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                true
            }
            _ => false,
        }
    }
}

impl Store {
    /// Starts a snapshot of the keyspace as it is now; false if one is in progress.
    pub fn begin_snapshot(&mut self, compress: bool) -> bool {
        if self.snap.is_some() {
            return false;
        }
        let mut pending = vec![0u64; self.slots.len().div_ceil(64)];
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.is_some() {
                pending[i / 64] |= 1 << (i % 64);
            }
        }
        self.snap = Some(Box::new(Snap {
            pending,
            next: 0,
            early: Vec::new(),
            compress,
            keys: 0,
        }));
        true
    }

    /// Whether a snapshot is in progress.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snap.is_some()
    }

    /// Appends the next part of the snapshot in progress (at least `budget` bytes unless
    /// it ends) to `out`, after what it holds; true when nothing of it is left. Keys the snapshot holds are
    /// counted by [`Store::end_snapshot`].
    pub fn snapshot_chunk(&mut self, out: &mut Vec<u8>, budget: usize) -> bool {
        let Some(mut snap) = self.snap.take() else {
            return true;
        };
        let start = out.len();
        out.append(&mut snap.early);
        let limit = snap.pending.len() * 64;
        while out.len() - start < budget && snap.next < limit {
            let word = snap.pending[snap.next / 64];
            if word == 0 {
                snap.next = (snap.next / 64 + 1) * 64;
                continue;
            }
            let i = snap.next;
            snap.next += 1;
            if snap.take(i) {
                self.encode_entry(i as u32, out, snap.compress);
                snap.keys += 1;
            }
        }
        let done = snap.next >= limit;
        self.snap = Some(snap);
        done
    }

    /// Ends the snapshot in progress; returns how many keys it wrote.
    pub fn end_snapshot(&mut self) -> u64 {
        self.snap.take().map_or(0, |s| s.keys)
    }

    /// The entry at `idx` is about to change: if the snapshot in progress has not
    /// written it yet, write it now, as it is.
    #[inline]
    pub(super) fn preserve(&mut self, idx: u32) {
        if self.snap.is_some() {
            self.preserve_slow(idx);
        }
    }

    #[cold]
    fn preserve_slow(&mut self, idx: u32) {
        let Some(mut snap) = self.snap.take() else {
            return;
        };
        if snap.take(idx as usize) {
            let mut early = std::mem::take(&mut snap.early);
            self.encode_entry(idx, &mut early, snap.compress);
            snap.early = early;
            snap.keys += 1;
        }
        self.snap = Some(snap);
    }

    /// Every entry is about to go (FLUSHALL): write every one the snapshot has not.
    pub(super) fn preserve_all(&mut self) {
        if let Some(mut snap) = self.snap.take() {
            let mut early = std::mem::take(&mut snap.early);
            for i in 0..self.slots.len() {
                if snap.take(i) {
                    self.encode_entry(i as u32, &mut early, snap.compress);
                    snap.keys += 1;
                }
            }
            snap.early = early;
            self.snap = Some(snap);
        }
    }

    /// Appends the entry at `idx` in RDB form: its deadline, type, key and value. Lists,
    /// sets, hashes and sorted sets use the element-by-element types every Redis since
    /// 2.0 loads (`LIST`, `SET`, `HASH`, `ZSET_2`); strings are integer-encoded or
    /// compressed as Redis does.
    pub fn encode_entry(&self, idx: u32, out: &mut Vec<u8>, compress: bool) {
        let e = self.entry(idx);
        if let Some(at) = e.expire_at() {
            out.push(op::EXPIRETIME_MS);
            out.extend_from_slice(&at.to_le_bytes());
        }
        let string = |out: &mut Vec<u8>, s: &[u8]| rdb::put_string_packed(out, s, compress);
        let header = |out: &mut Vec<u8>, t: u8, n: usize| {
            out.push(t);
            string(out, e.key());
            rdb::put_len(out, n as u64);
        };
        match e.value() {
            Value::Str(s) => {
                out.push(ty::STRING);
                string(out, e.key());
                s.with_bytes(|b| string(out, b));
            }
            Value::Coll(c) if c.is_list() => {
                let Big::List(l) = self.big(c.table_id()) else {
                    unreachable!("a list entry holds a list");
                };
                header(out, ty::LIST, l.len());
                for item in l.iter() {
                    string(out, item);
                }
            }
            Value::Coll(c) if c.is_zset() => {
                let mut put = |n: usize, pairs: &mut dyn Iterator<Item = (f64, &[u8])>| {
                    header(out, ty::ZSET_2, n);
                    for (score, member) in pairs {
                        string(out, member);
                        out.extend_from_slice(&score.to_le_bytes());
                    }
                };
                match self.zset(idx).expect("a sorted set entry holds one") {
                    ZRef::Compact(b) => put(
                        super::zset::compact_len(b),
                        &mut super::zset::compact_iter(b),
                    ),
                    ZRef::Big(z) => put(z.len(), &mut z.iter_from(0, false)),
                }
            }
            Value::Coll(c) if c.is_table() => {
                let t = self.table(c.table_id());
                let hash = c.is_hash();
                header(out, if hash { ty::HASH } else { ty::SET }, t.len());
                for (k, v) in t.iter() {
                    string(out, k);
                    if hash {
                        string(out, v);
                    }
                }
            }
            Value::Coll(c) if c.is_hash() => {
                let n = super::collection::listpack_iter(c.bytes).count();
                header(out, ty::HASH, n);
                for (k, v) in super::collection::listpack_iter(c.bytes) {
                    string(out, k);
                    string(out, v);
                }
            }
            Value::Coll(c) => {
                header(out, ty::SET, super::collection::intset_len(c.bytes));
                let mut buf = itoa::Buffer::new();
                for m in super::collection::intset_iter(c.bytes) {
                    string(out, buf.format(m).as_bytes());
                }
            }
        }
    }
}
