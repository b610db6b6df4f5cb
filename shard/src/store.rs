//! One shard's keyspace.
//!
//! Entries live in a slab (`Vec` of slots with a free list) and a `hashbrown::HashTable<u32>`
//! maps key hashes to slab positions. An entry never moves once inserted, which gives:
//! - SCAN a plain cursor (a slab position) with Redis's guarantee that a key present for
//!   the whole iteration is returned, however the table grows or shrinks meanwhile;
//! - stable handles that later work (the expiry wheel, eviction) can point at;
//! - a table of 4-byte indices, so its slack costs 5 bytes a bucket, not a whole entry.
//!
//! Expiry is both lazy and active. A lookup that meets an entry past its deadline removes
//! it (Redis semantics: a key expires when `now > deadline`), so no reader ever sees an
//! expired key. And every entry with a deadline owns one timer in the shard's
//! [`TimingWheel`], set one millisecond after its deadline, so [`Store::expire_due`]
//! reclaims keys nobody reads within a tick of their expiry — instead of Redis's sampling,
//! which leaves a share of expired keys in memory for a while.

use ahash::RandomState;
use hashbrown::HashTable;

use crate::wheel::{TimerHandle, TimingWheel};

/// Marks the end of the free list.
const NIL: u32 = u32::MAX;

/// A string value. Canonical decimal integers are kept as integers, as Redis's `int`
/// encoding does: 8 bytes instead of a heap buffer, and INCR without parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Str {
    /// A value that is the canonical text of an `i64`.
    Int(i64),
    /// Any other bytes.
    Raw(Vec<u8>),
}

impl Str {
    /// Builds the most compact form of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Str {
        match corekv_protocol::number::parse_i64(bytes) {
            Some(n) => Str::Int(n),
            None => Str::Raw(bytes.to_vec()),
        }
    }

    /// Length of the value's text.
    pub fn len(&self) -> usize {
        match self {
            Str::Int(n) => itoa::Buffer::new().format(*n).len(),
            Str::Raw(v) => v.len(),
        }
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        matches!(self, Str::Raw(v) if v.is_empty())
    }

    /// Calls `f` with the value's text.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Str::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            Str::Raw(v) => f(v),
        }
    }

    /// The value's text as an owned buffer (turns an integer into its text).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Str::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
            Str::Raw(v) => v,
        }
    }

    /// Makes the value raw bytes and returns them for editing (APPEND, SETRANGE).
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if let Str::Int(n) = *self {
            *self = Str::Raw(itoa::Buffer::new().format(n).as_bytes().to_vec());
        }
        match self {
            Str::Raw(v) => v,
            Str::Int(_) => unreachable!("just made raw"),
        }
    }
}

/// A value of any type. Only strings exist so far; the enum is where lists, hashes and
/// sets will go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Str(Str),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }
}

/// What a timer in the shard's wheel stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The key at this slab position has expired.
    Key(u32),
    /// This connection (table slot and generation) may have been idle too long.
    Conn(u32, u32),
}

/// A key with its value and deadline.
#[derive(Clone, Debug)]
pub struct Entry {
    key: Box<[u8]>,
    /// The value. Read it freely; change it through [`Store::replace_value`] or
    /// [`Store::with_value_mut`], which keep the memory accounting right.
    pub value: Value,
    /// Unix time in milliseconds after which the key is gone; 0 for no deadline.
    expire_at: u64,
    /// The wheel timer of the deadline, when there is one.
    timer: TimerHandle,
    /// Eviction metadata for the CLOCK hand: the reference bit (LRU policies) or a
    /// saturating use counter (LFU policies). Lives in the entry's padding.
    hits: u8,
}

/// How eviction ranks keys (`maxmemory-policy`). See [`Store::evict_one`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Eviction {
    /// Never evict: writes that need memory are refused.
    #[default]
    NoEviction,
    /// Least recently used, approximated by CLOCK (one reference bit).
    Lru,
    /// Least frequently used, approximated by GCLOCK (a 4-bit use counter).
    Lfu,
    /// Uniformly random.
    Random,
    /// Nearest deadline first (volatile keys only).
    Ttl,
}

/// Highest value of the LFU use counter.
const LFU_MAX: u8 = 15;

/// Bytes one entry costs besides its key and value bytes: the slab slot, and the hash
/// index's 4-byte position plus its control byte and slack.
pub const ENTRY_OVERHEAD: usize = std::mem::size_of::<Slot>() + 8;

/// Heap bytes the allocator gives for a request of `n` (rounded to 8).
#[inline]
fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 7) & !7
    }
}

/// Heap bytes a value holds.
#[inline]
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Str(Str::Int(_)) => 0,
        Value::Str(Str::Raw(b)) => heap(b.capacity()),
    }
}

/// Everything one entry costs: overhead, key and value.
#[inline]
fn entry_bytes(e: &Entry) -> usize {
    ENTRY_OVERHEAD + heap(e.key.len()) + value_bytes(&e.value)
}

impl Entry {
    /// The key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The deadline, if any (Unix milliseconds).
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }

    /// Whether the key is gone at `now` (Unix milliseconds): Redis expires when
    /// `now > deadline`.
    #[inline]
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && now > self.expire_at
    }
}

enum Slot {
    Used(Entry),
    /// Free; holds the next free position.
    Free(u32),
}

/// Counters Redis reports in INFO stats.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Keys removed because their deadline passed.
    pub expired: u64,
    /// Keys removed to stay under `maxmemory`.
    pub evicted: u64,
}

/// One shard's keyspace. See the module docs.
pub struct Store {
    index: HashTable<u32>,
    slots: Vec<Slot>,
    free: u32,
    len: usize,
    volatile: usize,
    hasher: RandomState,
    /// Hit, miss and expiry counters.
    pub stats: StoreStats,
    /// The shard's timing wheel: key deadlines, and the connection timers the shard adds.
    pub timers: TimingWheel<Timer>,
    /// [`shrink`](Store::shrink) runs again only once fewer keys than this remain (or the
    /// slab grew): a live key at the end of the slab must not make every call a full pass.
    shrink_below: usize,
    /// Bytes of every entry (see [`ENTRY_OVERHEAD`]): what `maxmemory` limits.
    used: usize,
    /// The most `used` has been.
    peak: usize,
    /// How reads and writes mark entries for eviction (the policy's kind).
    pub eviction: Eviction,
    /// Where the CLOCK hand is in the slab.
    hand: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// Wheel deadline of a key expiring at `expire_at`: the first millisecond at which
/// `now > expire_at`.
#[inline]
fn timer_deadline(expire_at: u64) -> u64 {
    expire_at.saturating_add(1)
}

impl Store {
    /// An empty keyspace whose wheel clock starts at 0 (tests; see [`Store::with_clock`]).
    pub fn new() -> Self {
        Store::with_clock(0)
    }

    /// An empty keyspace whose wheel clock starts at `now` (Unix ms).
    pub fn with_clock(now: u64) -> Self {
        Store {
            index: HashTable::new(),
            slots: Vec::new(),
            free: NIL,
            len: 0,
            volatile: 0,
            hasher: RandomState::new(),
            stats: StoreStats::default(),
            timers: TimingWheel::new(now),
            shrink_below: usize::MAX,
            used: 0,
            peak: 0,
            eviction: Eviction::NoEviction,
            hand: 0,
        }
    }

    /// Bytes the keyspace holds (entries, keys, values, index).
    #[inline]
    pub fn used_memory(&self) -> usize {
        self.used
    }

    /// The most [`used_memory`](Self::used_memory) has been.
    pub fn peak_memory(&self) -> usize {
        self.peak
    }

    #[inline]
    fn grew(&mut self, bytes: usize) {
        self.used += bytes;
        if self.used > self.peak {
            self.peak = self.used;
        }
    }

    /// Number of keys (including expired ones not yet removed, as Redis's DBSIZE).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no keys.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of keys with a deadline.
    pub fn volatile(&self) -> usize {
        self.volatile
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn used(slots: &[Slot], idx: u32) -> &Entry {
        match &slots[idx as usize] {
            Slot::Used(e) => e,
            Slot::Free(_) => unreachable!("index points at a free slot"),
        }
    }

    /// The position of `key`, expired or not.
    #[inline]
    fn position(&self, key: &[u8], hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| &*Self::used(slots, i).key == key)
            .copied()
    }

    /// The position of `key` if it is present and not expired at `now`; removes it if it
    /// expired.
    #[inline]
    pub fn find(&mut self, key: &[u8], now: u64) -> Option<u32> {
        let hash = self.hash(key);
        let idx = self.position(key, hash)?;
        if Self::used(&self.slots, idx).is_expired(now) {
            self.remove_at_hashed(idx, hash);
            self.stats.expired += 1;
            return None;
        }
        match self.eviction {
            Eviction::NoEviction | Eviction::Random | Eviction::Ttl => {}
            Eviction::Lru => self.entry_mut(idx).hits = 1,
            Eviction::Lfu => {
                let e = self.entry_mut(idx);
                e.hits = (e.hits + 1).min(LFU_MAX);
            }
        }
        Some(idx)
    }

    /// [`find`](Self::find) for a read: counts a keyspace hit or miss.
    #[inline]
    pub fn find_read(&mut self, key: &[u8], now: u64) -> Option<u32> {
        let found = self.find(key, now);
        if found.is_some() {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
        }
        found
    }

    /// Whether `key` exists at `now` (removes it if it expired).
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.find(key, now).is_some()
    }

    /// The entry at a position returned by a lookup.
    #[inline]
    pub fn entry(&self, idx: u32) -> &Entry {
        Self::used(&self.slots, idx)
    }

    /// Replaces the value at `idx`.
    pub fn replace_value(&mut self, idx: u32, value: Value) {
        self.with_value_mut(idx, |v| *v = value);
    }

    /// Changes the value at `idx` through `f`, keeping the memory accounting right.
    #[inline]
    pub fn with_value_mut<R>(&mut self, idx: u32, f: impl FnOnce(&mut Value) -> R) -> R {
        let e = self.entry_mut(idx);
        let before = value_bytes(&e.value);
        let r = f(&mut e.value);
        let after = value_bytes(&e.value);
        self.used -= before;
        self.grew(after);
        r
    }

    #[inline]
    fn entry_mut(&mut self, idx: u32) -> &mut Entry {
        match &mut self.slots[idx as usize] {
            Slot::Used(e) => e,
            Slot::Free(_) => unreachable!("index points at a free slot"),
        }
    }

    /// Sets or clears (`0`) the deadline of the entry at `idx`, moving its wheel timer.
    pub fn set_expire(&mut self, idx: u32, expire_at: u64) {
        let e = match &mut self.slots[idx as usize] {
            Slot::Used(e) => e,
            Slot::Free(_) => unreachable!("index points at a free slot"),
        };
        if e.expire_at == expire_at {
            return;
        }
        let had = e.expire_at != 0;
        e.expire_at = expire_at;
        let old = std::mem::take(&mut e.timer);
        if !old.is_none() {
            self.timers.cancel(old);
        }
        if expire_at != 0 {
            let t = self
                .timers
                .insert(timer_deadline(expire_at), Timer::Key(idx));
            self.entry_mut(idx).timer = t;
        }
        match (had, expire_at != 0) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Inserts `key`, which must be absent (look it up first). Returns its position.
    pub fn insert(&mut self, key: &[u8], value: Value, expire_at: u64) -> u32 {
        let hash = self.hash(key);
        debug_assert!(
            self.position(key, hash).is_none(),
            "insert of a present key"
        );
        let entry = Entry {
            key: key.into(),
            value,
            expire_at,
            timer: TimerHandle::NONE,
            hits: 0,
        };
        self.grew(entry_bytes(&entry));
        let idx = if self.free != NIL {
            let idx = self.free;
            match std::mem::replace(&mut self.slots[idx as usize], Slot::Used(entry)) {
                Slot::Free(next) => self.free = next,
                Slot::Used(_) => unreachable!("free list points at a used slot"),
            }
            idx
        } else {
            let idx = u32::try_from(self.slots.len()).expect("more than 4 billion keys in a shard");
            assert!(idx != NIL, "more than 4 billion keys in a shard");
            self.slots.push(Slot::Used(entry));
            self.shrink_below = usize::MAX;
            idx
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, idx, |&i| hasher.hash_one(&*Self::used(slots, i).key));
        self.len += 1;
        if expire_at != 0 {
            self.volatile += 1;
            let t = self
                .timers
                .insert(timer_deadline(expire_at), Timer::Key(idx));
            self.entry_mut(idx).timer = t;
        }
        idx
    }

    /// Sets `key` to `value`: replaces the value of a live key (keeping its deadline when
    /// `keep_ttl`, clearing it otherwise) or inserts it. Returns its position.
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool, now: u64) -> u32 {
        match self.find(key, now) {
            Some(idx) => {
                self.replace_value(idx, value);
                if !keep_ttl {
                    self.set_expire(idx, 0);
                }
                idx
            }
            None => self.insert(key, value, 0),
        }
    }

    /// Removes the entry at `idx` and returns it.
    pub fn remove_at(&mut self, idx: u32) -> Entry {
        let hash = self.hash(&Self::used(&self.slots, idx).key);
        self.remove_at_hashed(idx, hash)
    }

    fn remove_at_hashed(&mut self, idx: u32, hash: u64) -> Entry {
        match self.index.find_entry(hash, |&i| i == idx) {
            Ok(found) => {
                found.remove();
            }
            Err(_) => unreachable!("entry missing from the index"),
        }
        let slot = std::mem::replace(&mut self.slots[idx as usize], Slot::Free(self.free));
        self.free = idx;
        self.len -= 1;
        match slot {
            Slot::Used(mut e) => {
                self.used -= entry_bytes(&e);
                if e.expire_at != 0 {
                    self.volatile -= 1;
                }
                let t = std::mem::take(&mut e.timer);
                if !t.is_none() {
                    // Stale (already fired) when the wheel is what removes the key.
                    self.timers.cancel(t);
                }
                e
            }
            Slot::Free(_) => unreachable!("removing a free slot"),
        }
    }

    /// Removes `key` if it is present and live; returns whether it was.
    pub fn remove(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        let idx = self.find(key, now)?;
        Some(self.remove_at(idx))
    }

    /// Removes every key; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        for slot in &self.slots {
            if let Slot::Used(e) = slot {
                if !e.timer.is_none() {
                    self.timers.cancel(e.timer);
                }
            }
        }
        self.index = HashTable::new();
        self.slots = Vec::new();
        self.free = NIL;
        self.len = 0;
        self.volatile = 0;
        self.used = 0;
        self.hand = 0;
        n
    }

    /// Evicts one key by `policy` (`volatile`: only keys with a deadline) and returns
    /// the bytes freed, or `None` when no key qualifies.
    ///
    /// LRU and LFU are a CLOCK hand over the slab, not Redis's sampling: on each access
    /// a key sets its reference bit (LRU) or bumps a 4-bit counter (LFU, GCLOCK); the
    /// hand clears or decrements as it passes and evicts the first key at zero. It costs
    /// one byte per key, which the entry's padding already had, and O(1) amortized work.
    /// TTL samples 16 volatile keys and evicts the one expiring first.
    pub fn evict_one(
        &mut self,
        policy: Eviction,
        volatile: bool,
        rng: &mut fastrand::Rng,
    ) -> Option<usize> {
        if self.len == 0 || (volatile && self.volatile == 0) {
            return None;
        }
        let victim = match policy {
            Eviction::NoEviction => return None,
            Eviction::Random => self.sample(rng, volatile, 1).first().copied(),
            Eviction::Ttl => self
                .sample(rng, true, 16)
                .into_iter()
                .min_by_key(|&i| Self::used(&self.slots, i).expire_at),
            Eviction::Lru | Eviction::Lfu => self.clock_victim(volatile),
        }?;
        let before = self.used;
        self.remove_at(victim);
        self.stats.evicted += 1;
        Some(before - self.used)
    }

    /// Up to `n` random live positions (with a deadline when `volatile`).
    fn sample(&mut self, rng: &mut fastrand::Rng, volatile: bool, n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(n);
        let slab = self.slots.len();
        // Random probes first; a sparse slab or few volatile keys fall back to a walk.
        let start = rng.usize(..slab);
        let probes = (0..n * 64).map(|_| rng.usize(..slab));
        let walk = (0..slab).map(|step| (start + step) % slab);
        for pos in probes.chain(walk) {
            if out.len() == n {
                break;
            }
            if let Slot::Used(e) = &self.slots[pos] {
                if (!volatile || e.expire_at != 0) && !out.contains(&(pos as u32)) {
                    out.push(pos as u32);
                }
            }
        }
        out
    }

    /// Advances the CLOCK hand to the next victim (see [`Store::evict_one`]).
    fn clock_victim(&mut self, volatile: bool) -> Option<u32> {
        let slab = self.slots.len();
        // Every counter reaches zero within LFU_MAX + 1 turns.
        for _ in 0..slab * (LFU_MAX as usize + 2) {
            if self.hand >= slab {
                self.hand = 0;
            }
            let pos = self.hand;
            self.hand += 1;
            if let Slot::Used(e) = &mut self.slots[pos] {
                if volatile && e.expire_at == 0 {
                    continue;
                }
                if e.hits == 0 {
                    return Some(pos as u32);
                }
                e.hits -= 1;
            }
        }
        None
    }

    /// Gives back memory after the keyspace has mostly emptied (at most 1/16 of the slab
    /// in use, or none): free slots at the end of the slab, the index's excess buckets,
    /// and the wheel's free nodes. Entries never move, so only trailing slots can go. The
    /// pass is O(slab), so the shard calls it from housekeeping, not per expiry batch.
    pub fn shrink(&mut self) {
        self.timers.shrink();
        let sparse =
            self.len * 16 < self.slots.len() && (self.len == 0 || self.len < self.shrink_below);
        if self.slots.len() < 4096 || !sparse {
            return;
        }
        self.shrink_below = self.len / 2;
        let keep = self
            .slots
            .iter()
            .rposition(|s| matches!(s, Slot::Used(_)))
            .map_or(0, |i| i + 1);
        self.slots.truncate(keep);
        self.slots.shrink_to_fit();
        self.free = NIL;
        for i in (0..self.slots.len()).rev() {
            if let Slot::Free(next) = &mut self.slots[i] {
                *next = self.free;
                self.free = i as u32;
            }
        }
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .shrink_to_fit(|&i| hasher.hash_one(&*Self::used(slots, i).key));
    }

    /// Active expiry: advances the wheel to `now`, removes up to `budget` keys whose
    /// deadline passed and collects the connection timers that fired into `conns`.
    /// Returns whether more timers are due (call again after letting others run).
    pub fn expire_due(&mut self, now: u64, budget: usize, conns: &mut Vec<(u32, u32)>) -> bool {
        let mut fired = Vec::new();
        let more = self.timers.advance(now, budget, &mut fired);
        for t in fired {
            match t {
                Timer::Key(idx) => {
                    debug_assert!(self.entry(idx).is_expired(now), "key timer fired early");
                    self.remove_at(idx);
                    self.stats.expired += 1;
                }
                Timer::Conn(slot, gen) => conns.push((slot, gen)),
            }
        }
        more
    }

    /// Every entry, expired ones included, in slab order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Used(e) => Some(e),
            Slot::Free(_) => None,
        })
    }

    /// One SCAN step from slab position `cursor`: visits live entries until `count` were
    /// seen or `10 * count` positions were looked at (Redis's bound), removing expired ones
    /// it meets, and calls `f` on each live entry. Returns the position to resume from, or
    /// `None` when the end was reached.
    pub fn scan(
        &mut self,
        cursor: usize,
        count: usize,
        now: u64,
        mut f: impl FnMut(&Entry),
    ) -> Option<usize> {
        let mut pos = cursor;
        let mut seen = 0usize;
        let mut budget = count.saturating_mul(10).max(1);
        while pos < self.slots.len() && seen < count && budget > 0 {
            budget -= 1;
            if let Slot::Used(e) = &self.slots[pos] {
                if e.is_expired(now) {
                    self.remove_at(pos as u32);
                    self.stats.expired += 1;
                } else {
                    f(e);
                    seen += 1;
                }
            }
            pos += 1;
        }
        (pos < self.slots.len()).then_some(pos)
    }

    /// A live entry chosen at random, or `None` if there are none. Removes expired entries
    /// it meets.
    pub fn random(&mut self, rng: &mut fastrand::Rng, now: u64) -> Option<u32> {
        // Random probes find a used slot quickly unless the slab is mostly holes; then walk
        // from a random start. Bounded either way.
        for _ in 0..64 {
            if self.len == 0 {
                return None;
            }
            let pos = rng.usize(..self.slots.len());
            if let Slot::Used(e) = &self.slots[pos] {
                if e.is_expired(now) {
                    self.remove_at(pos as u32);
                    self.stats.expired += 1;
                    continue;
                }
                return Some(pos as u32);
            }
        }
        if self.len == 0 {
            return None;
        }
        let n = self.slots.len();
        let start = rng.usize(..n);
        for step in 0..n {
            let pos = (start + step) % n;
            if let Slot::Used(e) = &self.slots[pos] {
                if !e.is_expired(now) {
                    return Some(pos as u32);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    fn raw(n: usize) -> Value {
        Value::Str(Str::Raw(vec![b'x'; n]))
    }

    #[test]
    fn memory_accounting_follows_every_change_and_returns_to_zero() {
        let mut s = Store::new();
        let a = s.insert(b"a", raw(100), 0);
        let one = s.used_memory();
        assert_eq!(one, ENTRY_OVERHEAD + 8 + 104);
        s.with_value_mut(a, |v| match v {
            Value::Str(st) => st.make_raw().extend_from_slice(&[b'y'; 1000]),
        });
        assert!(s.used_memory() >= one + 1000);
        s.replace_value(a, Value::Str(Str::Int(7)));
        assert_eq!(s.used_memory(), ENTRY_OVERHEAD + 8);
        s.set(b"b", raw(10), false, 0);
        s.insert(b"c", raw(10), 5);
        assert!(s.peak_memory() >= one + 1000);
        s.remove(b"a", 0);
        s.remove(b"b", 0);
        s.remove(b"c", 0);
        assert_eq!(s.used_memory(), 0);
        s.insert(b"d", raw(10), 0);
        s.clear();
        assert_eq!(s.used_memory(), 0);
    }

    #[test]
    fn clock_lru_evicts_keys_not_touched_since_the_hand_passed() {
        let mut s = Store::new();
        s.eviction = Eviction::Lru;
        let mut rng = fastrand::Rng::with_seed(1);
        for i in 0..100u32 {
            s.insert(format!("k{i}").as_bytes(), raw(10), 0);
        }
        // Reads mark 0..50; the hand clears their bits as it passes and takes 50.. .
        for i in 0..50u32 {
            s.find(format!("k{i}").as_bytes(), 0);
        }
        for _ in 0..40 {
            s.evict_one(Eviction::Lru, false, &mut rng).unwrap();
        }
        let survivors = (0..50u32)
            .filter(|i| s.contains(format!("k{i}").as_bytes(), 0))
            .count();
        assert_eq!(survivors, 50, "recently read keys survive");
        assert_eq!(s.stats.evicted, 40);
        assert!(
            !s.contains(b"k50", 0) && s.contains(b"k99", 0),
            "in hand order"
        );
    }

    #[test]
    fn lfu_keeps_frequent_keys() {
        let mut s = Store::new();
        s.eviction = Eviction::Lfu;
        let mut rng = fastrand::Rng::with_seed(2);
        for i in 0..100u32 {
            s.insert(format!("k{i}").as_bytes(), raw(10), 0);
        }
        for _ in 0..10 {
            for i in 0..10u32 {
                s.find(format!("k{i}").as_bytes(), 0);
            }
        }
        for i in 10..100u32 {
            s.find(format!("k{i}").as_bytes(), 0);
        }
        for _ in 0..80 {
            s.evict_one(Eviction::Lfu, false, &mut rng).unwrap();
        }
        let hot = (0..10u32)
            .filter(|i| s.contains(format!("k{i}").as_bytes(), 0))
            .count();
        assert_eq!(hot, 10, "keys used ten times outlive keys used once");
    }

    #[test]
    fn volatile_policies_only_take_keys_with_a_deadline() {
        for policy in [
            Eviction::Lru,
            Eviction::Lfu,
            Eviction::Random,
            Eviction::Ttl,
        ] {
            let mut s = Store::new();
            let mut rng = fastrand::Rng::with_seed(3);
            for i in 0..50u64 {
                s.insert(format!("p{i}").as_bytes(), raw(10), 0);
                s.insert(format!("v{i}").as_bytes(), raw(10), 1000 + i);
            }
            for _ in 0..50 {
                s.evict_one(policy, true, &mut rng).unwrap();
            }
            assert!(s.evict_one(policy, true, &mut rng).is_none(), "{policy:?}");
            assert_eq!(s.len(), 50);
            assert_eq!(s.volatile(), 0);
        }
        // volatile-ttl takes the nearest deadline among its samples.
        let mut s = Store::new();
        let mut rng = fastrand::Rng::with_seed(4);
        for i in 0..10u64 {
            s.insert(format!("v{i}").as_bytes(), raw(10), 1000 + i);
        }
        s.evict_one(Eviction::Ttl, true, &mut rng).unwrap();
        assert!(!s.contains(b"v0", 0), "the earliest deadline goes first");
    }

    fn s(v: &str) -> Value {
        Value::Str(Str::from_bytes(v.as_bytes()))
    }

    #[test]
    fn int_encoding_is_canonical_only() {
        assert_eq!(Str::from_bytes(b"42"), Str::Int(42));
        assert_eq!(Str::from_bytes(b"042"), Str::Raw(b"042".to_vec()));
        assert_eq!(Str::from_bytes(b"-0"), Str::Raw(b"-0".to_vec()));
        assert_eq!(Str::Int(-17).len(), 3);
        assert_eq!(Str::Int(5).into_bytes(), b"5");
    }

    #[test]
    fn set_get_remove() {
        let mut st = Store::new();
        let a = st.set(b"a", s("1"), false, 0);
        assert_eq!(st.entry(a).value, s("1"));
        assert_eq!(st.find(b"a", 0), Some(a));
        assert!(st.remove(b"a", 0).is_some());
        assert_eq!(st.find(b"a", 0), None);
        assert!(st.is_empty());
    }

    #[test]
    fn lazy_expiry_is_strictly_after_the_deadline() {
        let mut st = Store::new();
        let idx = st.insert(b"k", s("v"), 100);
        assert_eq!(st.volatile(), 1);
        assert_eq!(st.find(b"k", 100), Some(idx), "alive at the deadline");
        assert_eq!(st.find(b"k", 101), None, "gone after it");
        assert_eq!(st.stats.expired, 1);
        assert_eq!(st.len(), 0);
        assert_eq!(st.volatile(), 0);
    }

    #[test]
    fn active_expiry_reclaims_keys_nobody_reads() {
        let mut st = Store::with_clock(1000);
        for i in 0..1000u64 {
            st.insert(format!("k{i}").as_bytes(), s("v"), 1000 + i);
        }
        st.insert(b"forever", s("v"), 0);
        let moved = st.insert(b"moved", s("v"), 1100);
        st.set_expire(moved, 5000);
        let mut conns = Vec::new();
        // Nothing is due at or before a deadline itself: keys expire when now > deadline.
        assert!(!st.expire_due(1000, usize::MAX, &mut conns));
        assert_eq!(st.len(), 1002);
        // Up to 1499 (deadlines 1000..=1498 passed), in budgeted steps.
        let mut calls = 0;
        while st.expire_due(1499, 100, &mut conns) {
            calls += 1;
        }
        assert!(calls >= 4, "the budget splits the work");
        assert_eq!(st.stats.expired, 499);
        assert_eq!(st.len(), 1002 - 499);
        assert!(st.find(b"k498", 1499).is_none());
        assert!(st.find(b"k499", 1499).is_some());
        while st.expire_due(4000, usize::MAX, &mut conns) {}
        assert_eq!(st.len(), 2, "forever and moved remain");
        assert_eq!(st.volatile(), 1);
        while st.expire_due(5001, usize::MAX, &mut conns) {}
        assert_eq!(st.len(), 1);
        assert!(st.timers.is_empty());
        assert!(conns.is_empty());
    }

    #[test]
    fn an_emptied_store_gives_its_memory_back() {
        let mut st = Store::with_clock(0);
        for i in 0..20_000u64 {
            st.insert(format!("k{i}").as_bytes(), s("v"), 10 + i % 50);
        }
        st.insert(b"stays", s("v"), 0);
        let mut conns = Vec::new();
        while st.expire_due(1000, usize::MAX, &mut conns) {}
        st.shrink();
        assert_eq!(st.len(), 1);
        assert!(
            st.find(b"stays", 1000).is_some(),
            "the survivor is still found"
        );
        assert!(st.slots.len() <= 20_001);
        st.remove(b"stays", 1000);
        st.shrink();
        assert_eq!(st.slots.len(), 0);
        assert_eq!(st.timers.capacity(), 0);
        st.insert(b"again", s("v"), 0);
        assert!(st.find(b"again", 0).is_some());
    }

    #[test]
    fn removing_or_persisting_cancels_the_timer() {
        let mut st = Store::with_clock(0);
        let a = st.insert(b"a", s("v"), 10);
        st.insert(b"b", s("v"), 10);
        st.insert(b"c", s("v"), 10);
        st.set_expire(a, 0);
        st.remove(b"b", 0);
        assert_eq!(st.timers.len(), 1);
        st.clear();
        assert!(st.timers.is_empty());
    }

    #[test]
    fn set_clears_or_keeps_ttl() {
        let mut st = Store::new();
        let idx = st.insert(b"k", s("v"), 1000);
        st.set(b"k", s("w"), true, 0);
        assert_eq!(st.entry(idx).expire_at(), Some(1000));
        st.set(b"k", s("x"), false, 0);
        assert_eq!(st.entry(idx).expire_at(), None);
        assert_eq!(st.volatile(), 0);
    }

    #[test]
    fn scan_returns_every_key_present_throughout() {
        let mut st = Store::new();
        for i in 0..1000 {
            st.insert(format!("k{i}").as_bytes(), s("v"), 0);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let next = st.scan(cursor, 10, 0, |e| {
                seen.insert(e.key().to_vec());
            });
            // Churn between steps: delete some keys, add others.
            step += 1;
            st.remove(format!("k{}", 999 - step).as_bytes(), 0);
            st.insert(format!("new{step}").as_bytes(), s("v"), 0);
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
        for i in 0..(999 - step) {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, u8),
        Del(u8),
        Get(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..32, any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
            (0u8..32).prop_map(Op::Del),
            (0u8..32).prop_map(Op::Get),
        ]
    }

    proptest! {
        /// The store agrees with a `HashMap` under random sets, deletes and reads, and its
        /// iteration, length and scan see exactly the model's keys.
        #[test]
        fn behaves_like_a_hashmap(ops in prop::collection::vec(op(), 1..300)) {
            let mut st = Store::new();
            let mut model: HashMap<Vec<u8>, Value> = HashMap::new();
            for op in ops {
                match op {
                    Op::Set(k, v) => {
                        let key = vec![k];
                        st.set(&key, Value::Str(Str::Raw(vec![v])), false, 0);
                        model.insert(key, Value::Str(Str::Raw(vec![v])));
                    }
                    Op::Del(k) => {
                        prop_assert_eq!(st.remove(&[k], 0).is_some(), model.remove(&vec![k]).is_some());
                    }
                    Op::Get(k) => {
                        let got = st.find(&[k], 0).map(|i| st.entry(i).value.clone());
                        prop_assert_eq!(got.as_ref(), model.get(&vec![k]));
                    }
                }
                prop_assert_eq!(st.len(), model.len());
            }
            let keys: BTreeSet<Vec<u8>> = st.iter().map(|e| e.key().to_vec()).collect();
            let want: BTreeSet<Vec<u8>> = model.keys().cloned().collect();
            prop_assert_eq!(&keys, &want);
            let mut scanned = BTreeSet::new();
            let mut cursor = 0;
            while let Some(next) = st.scan(cursor, 3, 0, |e| { scanned.insert(e.key().to_vec()); }) {
                cursor = next;
            }
            prop_assert_eq!(&scanned, &want);
        }
    }
}
