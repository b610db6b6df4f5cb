//! One shard's keyspace.
//!
//! Each key is one [`Entry`]: a single heap block holding key, value and (for keys that
//! have one) deadline, see [`entry`]. Entries live in a slab (`Vec<Option<Entry>>`, 8
//! bytes a slot, with a stack of free positions) and a `hashbrown::HashTable<u32>` maps
//! key hashes to slab positions. A position never changes while its key lives, which
//! gives:
//! - SCAN a plain cursor (a slab position) with Redis's guarantee that a key present for
//!   the whole iteration is returned, however the table grows or shrinks meanwhile;
//! - stable handles that the expiry wheel and the eviction hand can point at;
//! - a table of 4-byte indices, so its slack costs 5 bytes a bucket, not a whole entry.
//!
//! Expiry is both lazy and active. A lookup that meets an entry past its deadline removes
//! it (Redis semantics: a key expires when `now > deadline`), so no reader ever sees an
//! expired key. And every entry with a deadline owns one timer in the shard's wheel
//! ([`Timers`], which the shard owns: key deadlines are one kind of its timers), set one
//! millisecond after its deadline; when it fires the shard calls [`Store::expire`], so
//! keys nobody reads are reclaimed within a tick of their expiry — instead of Redis's
//! sampling, which leaves a share of expired keys in memory for a while.
//!
//! Operations that may add, move or drop a deadline take the wheel; keyed commands see
//! the store and the wheel together as a [`Keyspace`].

mod block;
pub mod collection;
pub mod entry;
pub mod list;
pub mod snapshot;
pub mod watch;
pub mod zset;

use crate::notify;

use ahash::RandomState;
use hashbrown::HashTable;

pub use collection::Table;
pub use entry::{Coll, Entry, Str, Value};
pub use list::List;
pub use zset::ZSet;

use crate::pool::ShrinkGate;
use crate::timer::{Timer, Timers};

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

/// Bytes one entry costs besides its block: the slab slot, and the hash index's 4-byte
/// position plus its control byte and slack.
pub const ENTRY_OVERHEAD: usize = std::mem::size_of::<Option<Entry>>() + 8;

/// Bytes the allocator (mimalloc, in the server) hands out for a request of `n`: whole
/// words up to 64 bytes, then four size classes per power of two.
#[inline]
pub fn heap(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let words = n.div_ceil(8);
    if words <= 8 {
        return words * 8;
    }
    let top = usize::BITS - 1 - (words - 1).leading_zeros();
    let step = 1usize << (top - 2);
    words.div_ceil(step) * step * 8
}

/// Everything one entry costs: overhead and its block.
#[inline]
fn entry_bytes(e: &Entry) -> usize {
    ENTRY_OVERHEAD + heap(e.block_len())
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
    /// Large collections freed in slices after their key went (`lazyfreed_objects`).
    pub lazyfreed: u64,
}

/// One shard's keyspace. See the module docs.
pub struct Store {
    index: HashTable<u32>,
    slots: Vec<Option<Entry>>,
    /// Free slab positions, reused last-freed first.
    free: Vec<u32>,
    len: usize,
    volatile: usize,
    hasher: RandomState,
    /// Hit, miss and expiry counters.
    pub stats: StoreStats,
    /// When [`shrink`](Store::shrink) acts.
    shrink: ShrinkGate,
    /// Bytes of every entry (see [`ENTRY_OVERHEAD`]): what `maxmemory` limits.
    used: usize,
    /// The most `used` has been.
    peak: usize,
    /// How reads and writes mark entries for eviction (the policy's kind).
    pub eviction: Eviction,
    /// Where the CLOCK hand is in the slab.
    hand: usize,
    /// Large collections and lists, by number (see [`collection`]); an entry holds its
    /// number.
    tables: Vec<Option<Big>>,
    /// Free table numbers.
    free_tables: Vec<u32>,
    /// Large collections deleted and not yet freed: [`Store::free_some`] frees them in
    /// slices between requests (Redis's lazyfree), so deleting a million elements does
    /// not stall the shard.
    dying: Vec<Big>,
    /// A buffer commands build collections' encodings in, kept between commands.
    scratch: Vec<u8>,
    /// Keys clients WATCH, and whose change they must learn of at EXEC.
    pub watches: watch::Watches,
    /// Keyspace notifications not yet published.
    pub events: crate::notify::Events,
    /// The append-only log's records not yet written (see [`crate::aof`]): every key
    /// the store removes by expiry or eviction logs its `DEL` here.
    pub log: crate::aof::Log,
    /// Keys clients are blocked on (BLPOP and the like), with how many wait on each.
    pub waited: crate::blocking::Queues,
    /// Keys of `waited` a write may have made ready, in the order they became so.
    pub ready: Vec<Box<[u8]>>,
    /// The snapshot in progress, if any (see [`snapshot`]).
    snap: Option<Box<snapshot::Snap>>,
}

/// A sorted set as the zset family reads it.
#[derive(Clone, Copy, Debug)]
pub enum ZRef<'a> {
    /// The compact encoding (see [`zset`]).
    Compact(&'a [u8]),
    /// A large one.
    Big(&'a ZSet),
}

/// A collection as the families read it.
#[derive(Clone, Copy, Debug)]
pub enum CollRef<'a> {
    /// A hash's listpack.
    Listpack(&'a [u8]),
    /// A set's intset.
    Intset(&'a [u8]),
    /// A large hash or set.
    Table(&'a Table),
}

/// A collection kept in the store's slab: a large hash or set, a list, a large sorted
/// set. Boxed, so a slab slot is 16 bytes whatever the kind.
#[derive(Clone, Debug)]
enum Big {
    Table(Box<Table>),
    List(Box<List>),
    ZSet(Box<ZSet>),
}

impl Big {
    fn bytes(&self) -> usize {
        match self {
            Big::Table(t) => t.bytes(),
            Big::List(l) => l.bytes(),
            Big::ZSet(z) => z.bytes(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Big::Table(t) => t.len(),
            Big::List(l) => l.len(),
            Big::ZSet(z) => z.len(),
        }
    }

    fn drain_some(&mut self, budget: usize) -> bool {
        match self {
            Big::Table(t) => t.drain_some(budget),
            Big::List(l) => l.drain_some(budget),
            Big::ZSet(z) => z.drain_some(budget),
        }
    }
}

/// The dump type of a string edited in place.
const RAW_STRING: &[u8] = b"string/raw";

/// Tables with more elements than this are freed in slices, not at once.
const LAZYFREE_THRESHOLD: usize = 64;

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
    /// An empty keyspace.
    pub fn new() -> Self {
        Store {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            volatile: 0,
            hasher: RandomState::new(),
            stats: StoreStats::default(),
            shrink: ShrinkGate::new(),
            used: 0,
            peak: 0,
            eviction: Eviction::NoEviction,
            hand: 0,
            tables: Vec::new(),
            free_tables: Vec::new(),
            dying: Vec::new(),
            scratch: Vec::new(),
            watches: Default::default(),
            events: Default::default(),
            log: Default::default(),
            waited: Default::default(),
            ready: Vec::new(),
            snap: None,
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
    fn used(slots: &[Option<Entry>], idx: u32) -> &Entry {
        slots[idx as usize]
            .as_ref()
            .expect("index points at a free slot")
    }

    /// The position of `key`, expired or not.
    #[inline]
    fn position(&self, key: &[u8], hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| Self::used(slots, i).key() == key)
            .copied()
    }

    /// The position of `key` if it is present and not expired at `now`; removes it if it
    /// expired.
    #[inline]
    pub fn find(&mut self, key: &[u8], now: u64, timers: &mut Timers) -> Option<u32> {
        let hash = self.hash(key);
        let idx = self.position(key, hash)?;
        if Self::used(&self.slots, idx).is_expired(now) {
            self.note_removal(idx, notify::EXPIRED, "expired");
            self.remove_at_hashed(idx, hash, timers);
            self.stats.expired += 1;
            return None;
        }
        match self.eviction {
            Eviction::NoEviction | Eviction::Random | Eviction::Ttl => {}
            Eviction::Lru => self.entry_mut(idx).set_hits(1),
            Eviction::Lfu => {
                let e = self.entry_mut(idx);
                e.set_hits((e.hits() + 1).min(LFU_MAX));
            }
        }
        Some(idx)
    }

    /// [`find`](Self::find) for a read: counts a keyspace hit or miss.
    #[inline]
    pub fn find_read(&mut self, key: &[u8], now: u64, timers: &mut Timers) -> Option<u32> {
        let found = self.find(key, now, timers);
        if found.is_some() {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
            self.events.push(notify::KEY_MISS, "keymiss", key);
        }
        found
    }

    /// Whether `key` exists at `now` (removes it if it expired).
    pub fn contains(&mut self, key: &[u8], now: u64, timers: &mut Timers) -> bool {
        self.find(key, now, timers).is_some()
    }

    /// The entry at a position returned by a lookup.
    #[inline]
    pub fn entry(&self, idx: u32) -> &Entry {
        Self::used(&self.slots, idx)
    }

    /// Records the expiry or eviction of the key at `idx` (keyspace notifications).
    #[inline]
    fn note_removal(&mut self, idx: u32, class: u16, event: &'static str) {
        if self.events.wants(class) {
            self.events
                .push(class, event, Self::used(&self.slots, idx).key());
        }
        if self.log.on {
            self.log.del(Self::used(&self.slots, idx).key());
        }
    }

    /// Records `event` of `class` on `key`, if `notify-keyspace-events` asks for it.
    #[inline]
    pub fn notify(&mut self, class: u16, event: &'static str, key: &[u8]) {
        self.events.push(class, event, key);
    }

    /// The key at `idx` is about to change: its watchers learn of it (WATCH).
    #[inline]
    pub fn touch(&mut self, idx: u32) {
        self.preserve(idx);
        if !self.watches.is_empty() {
            self.watches.touch(Self::used(&self.slots, idx).key());
        }
    }

    #[inline]
    fn entry_mut(&mut self, idx: u32) -> &mut Entry {
        self.slots[idx as usize]
            .as_mut()
            .expect("index points at a free slot")
    }

    /// Runs `f` on the entry at `idx`, keeping the memory accounting right.
    #[inline]
    fn resize_entry<R>(&mut self, idx: u32, f: impl FnOnce(&mut Entry) -> R) -> R {
        self.touch(idx);
        let e = self.entry_mut(idx);
        let before = heap(e.block_len());
        let r = f(e);
        let after = heap(e.block_len());
        self.used -= before;
        self.grew(after);
        r
    }

    /// Replaces the value at `idx` (keeping its deadline). A value of similar size is
    /// written in place: no allocation.
    pub fn set_value(&mut self, idx: u32, value: Value<'_>) {
        let old = self.table_of(idx);
        self.resize_entry(idx, |e| e.set_value(value));
        self.release_replaced(idx, old);
    }

    /// The number of the table the entry at `idx` holds, if it holds one.
    #[inline]
    fn table_of(&self, idx: u32) -> Option<u32> {
        match self.entry(idx).value() {
            Value::Coll(c) if c.is_table() => Some(c.table_id()),
            _ => None,
        }
    }

    /// Drops table `old` (what the entry at `idx` held before a write) unless the entry
    /// still holds it.
    #[inline]
    fn release_replaced(&mut self, idx: u32, old: Option<u32>) {
        if let Some(id) = old {
            if self.table_of(idx) != Some(id) {
                self.drop_table(id);
            }
        }
    }

    /// Makes the value at `idx` raw bytes of length `len` (extended with zeros; growth
    /// keeps slack so repeated appends are cheap) and edits them with `f`: APPEND and
    /// SETRANGE. The caller checked the value is a string.
    pub fn edit_raw<R>(&mut self, idx: u32, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.resize_entry(idx, |e| e.edit_raw(len, f))
    }

    /// Sets or clears (`0`) the deadline of the entry at `idx`, moving its wheel timer.
    pub fn set_expire(&mut self, idx: u32, expire_at: u64, timers: &mut Timers) {
        if self.entry(idx).expire_at().unwrap_or(0) != expire_at {
            self.retime(idx, expire_at, timers, |e| e.set_deadline(expire_at));
        }
    }

    /// Replaces the value and the deadline (`expire_at`, 0 for none) of the entry at `idx`
    /// in one layout of its block: SET. A value of similar size is written in place.
    pub fn replace(&mut self, idx: u32, value: Value<'_>, expire_at: u64, timers: &mut Timers) {
        if self.entry(idx).expire_at().unwrap_or(0) == expire_at {
            self.set_value(idx, value);
        } else {
            let old = self.table_of(idx);
            self.retime(idx, expire_at, timers, |e| e.replace(value, expire_at));
            self.release_replaced(idx, old);
        }
    }

    /// Gives the entry at `idx` the new deadline `expire_at` (which differs from its
    /// current one) through `f`, which lays the entry out with it: cancels the old wheel
    /// timer, starts the new one, keeps the volatile count.
    fn retime(
        &mut self,
        idx: u32,
        expire_at: u64,
        timers: &mut Timers,
        f: impl FnOnce(&mut Entry),
    ) {
        let e = self.entry(idx);
        let had = e.is_volatile();
        let old = e.timer();
        if !old.is_none() {
            timers.cancel(old);
        }
        self.resize_entry(idx, f);
        if expire_at != 0 {
            let t = timers.insert(timer_deadline(expire_at), Timer::Key(idx));
            self.entry_mut(idx).set_timer(t);
        }
        match (had, expire_at != 0) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Inserts `key`, which must be absent (look it up first). Returns its position.
    pub fn insert(
        &mut self,
        key: &[u8],
        value: Value<'_>,
        expire_at: u64,
        timers: &mut Timers,
    ) -> u32 {
        self.insert_entry(Entry::new(key, value, expire_at), timers)
    }

    /// Inserts a copy of the entry at `idx` (value and deadline) under `key`, which must
    /// be absent: COPY. Returns its position.
    pub fn duplicate(&mut self, idx: u32, key: &[u8], timers: &mut Timers) -> u32 {
        let e = self.entry(idx);
        let expire_at = e.expire_at().unwrap_or(0);
        if let Value::Coll(c) = e.value() {
            if c.is_table() {
                let kind = c.kind;
                let copy = self.big(c.table_id()).clone();
                let id = self.add_big(copy);
                let value = Value::Coll(Coll {
                    kind,
                    bytes: &id.to_le_bytes(),
                });
                return self.insert(key, value, expire_at, timers);
            }
        }
        let mut copy = Entry::new(key, e.value(), expire_at);
        if e.is_raw_string() {
            copy.mark_raw();
        }
        self.insert_entry(copy, timers)
    }

    /// Moves the entry at `idx` (value, deadline, a large collection without copying it)
    /// to `key`, which must be absent: RENAME. Returns its new position.
    pub fn rename(&mut self, idx: u32, key: &[u8], timers: &mut Timers) -> u32 {
        let hash = self.hash(Self::used(&self.slots, idx).key());
        let e = self.unlink(idx, hash, timers);
        let mut moved = Entry::new(key, e.value(), e.expire_at().unwrap_or(0));
        if e.is_raw_string() {
            moved.mark_raw();
        }
        self.insert_entry(moved, timers)
    }

    fn insert_entry(&mut self, entry: Entry, timers: &mut Timers) -> u32 {
        let hash = self.hash(entry.key());
        debug_assert!(
            self.position(entry.key(), hash).is_none(),
            "insert of a present key"
        );
        let expire_at = entry.expire_at().unwrap_or(0);
        if !self.watches.is_empty() {
            self.watches.touch(entry.key());
        }
        self.events.push(notify::NEW, "new", entry.key());
        self.grew(entry_bytes(&entry));
        let idx = match self.free.pop() {
            Some(idx) => {
                debug_assert!(self.slots[idx as usize].is_none(), "free slot in use");
                self.slots[idx as usize] = Some(entry);
                idx
            }
            None => {
                let idx =
                    u32::try_from(self.slots.len()).expect("more than 4 billion keys in a shard");
                self.slots.push(Some(entry));
                self.shrink.grew();
                idx
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, idx, |&i| hasher.hash_one(Self::used(slots, i).key()));
        self.len += 1;
        if expire_at != 0 {
            self.volatile += 1;
            let t = timers.insert(timer_deadline(expire_at), Timer::Key(idx));
            self.entry_mut(idx).set_timer(t);
        }
        idx
    }

    /// Sets `key` to `value`: replaces the value of a live key (keeping its deadline when
    /// `keep_ttl`, clearing it otherwise) or inserts it. Returns its position.
    pub fn set(
        &mut self,
        key: &[u8],
        value: Value<'_>,
        keep_ttl: bool,
        now: u64,
        timers: &mut Timers,
    ) -> u32 {
        match self.find(key, now, timers) {
            Some(idx) => {
                if keep_ttl {
                    self.set_value(idx, value);
                } else {
                    self.replace(idx, value, 0, timers);
                }
                idx
            }
            None => self.insert(key, value, 0, timers),
        }
    }

    /// Removes the entry at `idx` (and its large collection, if it has one) and returns it.
    pub fn remove_at(&mut self, idx: u32, timers: &mut Timers) -> Entry {
        let hash = self.hash(Self::used(&self.slots, idx).key());
        self.remove_at_hashed(idx, hash, timers)
    }

    fn remove_at_hashed(&mut self, idx: u32, hash: u64, timers: &mut Timers) -> Entry {
        let e = self.unlink(idx, hash, timers);
        if let Value::Coll(c) = e.value() {
            if c.is_table() {
                self.drop_table(c.table_id());
            }
        }
        e
    }

    /// Takes the entry at `idx` out of the keyspace, leaving a large collection of its in
    /// the table slab.
    fn unlink(&mut self, idx: u32, hash: u64, timers: &mut Timers) -> Entry {
        self.touch(idx);
        match self.index.find_entry(hash, |&i| i == idx) {
            Ok(found) => {
                found.remove();
            }
            Err(_) => unreachable!("entry missing from the index"),
        }
        let e = self.slots[idx as usize]
            .take()
            .expect("removing a free slot");
        self.free.push(idx);
        self.len -= 1;
        self.used -= entry_bytes(&e);
        if e.is_volatile() {
            self.volatile -= 1;
            let t = e.timer();
            if !t.is_none() {
                // Stale (already fired) when the wheel is what removes the key.
                timers.cancel(t);
            }
        }
        e
    }

    /// Removes `key` if it is present and live; returns whether it was.
    pub fn remove(&mut self, key: &[u8], now: u64, timers: &mut Timers) -> Option<Entry> {
        let idx = self.find(key, now, timers)?;
        Some(self.remove_at(idx, timers))
    }

    /// Removes every key; returns how many there were.
    pub fn clear(&mut self, timers: &mut Timers) -> usize {
        self.preserve_all();
        let n = self.len;
        if !self.watches.is_empty() {
            let (index, slots, hasher) = (&self.index, &self.slots, &self.hasher);
            self.watches.touch_existing(|k| {
                index
                    .find(hasher.hash_one(k), |&i| Self::used(slots, i).key() == k)
                    .is_some()
            });
        }
        for e in self.slots.iter().flatten() {
            let t = e.timer();
            if !t.is_none() {
                timers.cancel(t);
            }
        }
        self.index = HashTable::new();
        self.slots = Vec::new();
        self.free = Vec::new();
        self.len = 0;
        self.volatile = 0;
        self.used = 0;
        self.hand = 0;
        for t in std::mem::take(&mut self.tables).into_iter().flatten() {
            if t.len() > LAZYFREE_THRESHOLD {
                self.dying.push(t);
            }
        }
        self.free_tables = Vec::new();
        n
    }

    // ---- large collections -----------------------------------------------------------

    fn big(&self, id: u32) -> &Big {
        self.tables[id as usize]
            .as_ref()
            .expect("an entry's table exists")
    }

    /// The table numbered `id`.
    pub fn table(&self, id: u32) -> &Table {
        match self.big(id) {
            Big::Table(t) => t,
            _ => panic!("table {id} is not a hash or set"),
        }
    }

    /// The list at `idx`, if the entry holds one.
    pub fn list(&self, idx: u32) -> Option<&List> {
        match self.entry(idx).value() {
            Value::Coll(c) if c.is_list() => match self.big(c.table_id()) {
                Big::List(l) => Some(l),
                _ => None,
            },
            _ => None,
        }
    }

    /// Runs `f` on the list at `idx` (which must hold one), keeping the memory
    /// accounting right; the key counts as changed (WATCH). The caller deletes a list
    /// `f` leaves empty, as Redis deletes emptied lists.
    pub fn with_list<R>(&mut self, idx: u32, f: impl FnOnce(&mut List) -> R) -> R {
        self.preserve(idx);
        let id = self.table_of(idx).expect("a list");
        let Some(Big::List(l)) = self.tables[id as usize].as_mut() else {
            panic!("entry {idx} holds no list");
        };
        let before = l.bytes();
        let r = f(l);
        let after = l.bytes();
        self.used -= before;
        self.grew(after);
        self.touch(idx);
        r
    }

    /// Whether `key` holds a list or a sorted set with elements (not counted as a read).
    pub fn has_elements(&mut self, key: &[u8], now: u64, timers: &mut Timers) -> bool {
        match self.find(key, now, timers) {
            Some(idx) => self.list(idx).is_some_and(|l| !l.is_empty()) || self.zset(idx).is_some(),
            None => false,
        }
    }

    /// The sorted set at `idx`, if the entry holds one.
    pub fn zset(&self, idx: u32) -> Option<ZRef<'_>> {
        match self.entry(idx).value() {
            Value::Coll(c) if c.is_zset() && c.is_table() => match self.big(c.table_id()) {
                Big::ZSet(z) => Some(ZRef::Big(z)),
                _ => None,
            },
            Value::Coll(c) if c.is_zset() => Some(ZRef::Compact(c.bytes)),
            _ => None,
        }
    }

    /// Runs `f` on the large sorted set at `idx` (which must hold one), keeping the
    /// memory accounting right; the key counts as changed (WATCH).
    pub fn with_zset<R>(&mut self, idx: u32, f: impl FnOnce(&mut ZSet) -> R) -> R {
        self.preserve(idx);
        let id = self.table_of(idx).expect("a large sorted set");
        let Some(Big::ZSet(z)) = self.tables[id as usize].as_mut() else {
            panic!("entry {idx} holds no large sorted set");
        };
        let before = z.bytes();
        let r = f(z);
        let after = z.bytes();
        self.used -= before;
        self.grew(after);
        self.touch(idx);
        r
    }

    /// Makes the value at `idx` (or a new key, `key` absent) the large sorted set `z`.
    pub fn put_zset(&mut self, idx: Option<u32>, key: &[u8], z: ZSet, timers: &mut Timers) -> u32 {
        let id = self.add_big(Big::ZSet(Box::new(z)));
        let value = Value::Coll(Coll {
            kind: collection::ZSET | collection::TABLE,
            bytes: &id.to_le_bytes(),
        });
        match idx {
            Some(idx) => {
                self.set_value(idx, value);
                idx
            }
            None => self.insert(key, value, 0, timers),
        }
    }

    /// Inserts `key`, which must be absent, holding `list`.
    pub fn insert_list(
        &mut self,
        key: &[u8],
        list: List,
        expire_at: u64,
        timers: &mut Timers,
    ) -> u32 {
        let id = self.add_big(Big::List(Box::new(list)));
        let value = Value::Coll(Coll {
            kind: collection::LIST | collection::TABLE,
            bytes: &id.to_le_bytes(),
        });
        self.insert(key, value, expire_at, timers)
    }

    /// Runs `f` on the table of the collection at `idx` (which must have one), keeping
    /// the memory accounting right; the key counts as changed (WATCH) when the table's
    /// size or contents' bytes changed, or when `f` says so.
    pub fn with_table<R>(&mut self, idx: u32, f: impl FnOnce(&mut Table) -> (R, bool)) -> R {
        self.preserve(idx);
        let id = self.table_of(idx).expect("a table-encoded collection");
        let Some(Big::Table(t)) = self.tables[id as usize].as_mut() else {
            panic!("entry {idx} holds no table");
        };
        let (before, len) = (t.bytes(), t.len());
        let (r, changed) = f(t);
        let (after, len_after) = (t.bytes(), t.len());
        self.used -= before;
        self.grew(after);
        if changed || before != after || len != len_after {
            self.touch(idx);
        }
        r
    }

    /// Puts `table` in the slab; returns its number.
    fn add_table(&mut self, table: Table) -> u32 {
        self.add_big(Big::Table(Box::new(table)))
    }

    /// Puts `table` in the slab; returns its number.
    fn add_big(&mut self, table: Big) -> u32 {
        self.grew(table.bytes());
        match self.free_tables.pop() {
            Some(id) => {
                self.tables[id as usize] = Some(table);
                id
            }
            None => {
                self.tables.push(Some(table));
                u32::try_from(self.tables.len() - 1).expect("fewer than 4 billion tables")
            }
        }
    }

    /// Takes the table numbered `id` out of the slab and frees it, in slices when large.
    fn drop_table(&mut self, id: u32) {
        let t = self.tables[id as usize]
            .take()
            .expect("an entry's table exists");
        self.used -= t.bytes();
        self.free_tables.push(id);
        if t.len() > LAZYFREE_THRESHOLD {
            self.dying.push(t);
        }
    }

    /// Inserts `key`, which must be absent, holding `table` (whose kind is `kind`).
    pub fn insert_table(
        &mut self,
        key: &[u8],
        kind: u8,
        table: Table,
        expire_at: u64,
        timers: &mut Timers,
    ) -> u32 {
        let id = self.add_table(table);
        let value = Value::Coll(Coll {
            kind: kind | collection::TABLE,
            bytes: &id.to_le_bytes(),
        });
        self.insert(key, value, expire_at, timers)
    }

    /// Makes the collection at `idx` the large `table` (its kind's type, table encoding):
    /// the conversion from a listpack or intset.
    pub fn set_table(&mut self, idx: u32, table: Table) {
        let ty = table.ty;
        let id = self.add_table(table);
        let value = Value::Coll(Coll {
            kind: ty | collection::TABLE,
            bytes: &id.to_le_bytes(),
        });
        self.set_value(idx, value);
    }

    /// The collection at `idx`, if the entry holds one.
    pub fn coll(&self, idx: u32) -> Option<CollRef<'_>> {
        match self.entry(idx).value() {
            Value::Coll(c) if c.is_list() || c.is_zset() => None,
            Value::Coll(c) if c.is_table() => Some(CollRef::Table(self.table(c.table_id()))),
            Value::Coll(c) if c.is_hash() => Some(CollRef::Listpack(c.bytes)),
            Value::Coll(c) => Some(CollRef::Intset(c.bytes)),
            Value::Str(_) => None,
        }
    }

    /// Whether deleted large collections wait for [`Store::free_some`].
    pub fn is_freeing(&self) -> bool {
        !self.dying.is_empty()
    }

    /// How many deleted large collections wait to be freed (`lazyfree_pending_objects`).
    pub fn lazyfree_pending(&self) -> usize {
        self.dying.len()
    }

    /// Frees up to `budget` elements of deleted large collections; returns whether more
    /// are left (call again after letting others run).
    pub fn free_some(&mut self, mut budget: usize) -> bool {
        while budget > 0 {
            let Some(t) = self.dying.last_mut() else {
                return false;
            };
            let n = budget.min(4096);
            budget -= n;
            if !t.drain_some(n) {
                self.dying.pop();
                self.stats.lazyfreed += 1;
            }
        }
        !self.dying.is_empty()
    }

    /// Encodes the value at `idx` to move it between shards: a string's bytes, or a
    /// collection's kind byte and content (a large one's elements as a listpack: field
    /// and value for hashes, member and nothing for sets).
    pub fn dump_value(&self, idx: u32, out: &mut Vec<u8>) {
        match self.entry(idx).value() {
            Value::Str(s) => s.with_bytes(|b| out.extend_from_slice(b)),
            Value::Coll(c) if c.is_table() => {
                out.push(c.kind);
                match self.big(c.table_id()) {
                    Big::Table(t) => collection::listpack_build(out, t.len(), t.iter()),
                    Big::List(l) => {
                        collection::listpack_build(out, l.len(), l.iter().map(|e| (e, &b""[..])))
                    }
                    Big::ZSet(z) => {
                        let pairs: Vec<(f64, &[u8])> = z.iter_from(0, false).collect();
                        zset::compact_build(out, &pairs);
                    }
                }
            }
            Value::Coll(c) => {
                out.push(c.kind);
                out.extend_from_slice(c.bytes);
            }
        }
    }

    /// The type [`Store::dump_type`] gives a string edited in place, so that it stays
    /// `raw` where it is restored.
    pub const RAW_STRING: &'static [u8] = RAW_STRING;

    /// The type to move the entry at `idx` between shards with: what TYPE says, or
    /// [`Store::RAW_STRING`].
    pub fn dump_type(&self, idx: u32) -> &'static [u8] {
        let e = self.entry(idx);
        if e.is_raw_string() {
            RAW_STRING
        } else {
            e.value().type_name().as_bytes()
        }
    }

    /// Inserts `key`, which must be absent, with a value [`Store::dump_value`] encoded as
    /// type `ty` ([`Store::dump_type`]). `None` when the payload is not one.
    pub fn restore_value(
        &mut self,
        key: &[u8],
        ty: &[u8],
        payload: &[u8],
        expire_at: u64,
        timers: &mut Timers,
    ) -> Option<u32> {
        if ty == b"string" {
            return Some(self.insert(key, Value::Str(Str::from_bytes(payload)), expire_at, timers));
        }
        if ty == RAW_STRING {
            let idx = self.insert(key, Value::Str(Str::Raw(payload)), expire_at, timers);
            self.entry_mut(idx).mark_raw();
            return Some(idx);
        }
        let (&kind, content) = payload.split_first()?;
        if kind & collection::TYPE_MASK == collection::ZSET && kind & collection::TABLE != 0 {
            let mut z = ZSet::new();
            for (score, m) in zset::compact_iter(content) {
                z.insert(m, score);
            }
            return Some(self.put_zset(None, key, z, timers));
        }
        if kind & collection::TYPE_MASK == collection::LIST {
            let mut l = List::new();
            for (e, _) in collection::listpack_iter(content) {
                l.push_back(e, list::DEFAULT_FILL);
            }
            return Some(self.insert_list(key, l, expire_at, timers));
        }
        if kind & collection::TABLE != 0 {
            let mut t = Table::new(kind & collection::TYPE_MASK);
            for (k, v) in collection::listpack_iter(content) {
                t.insert(k, v);
            }
            return Some(self.insert_table(
                key,
                kind & collection::TYPE_MASK,
                t,
                expire_at,
                timers,
            ));
        }
        let value = Value::Coll(Coll {
            kind,
            bytes: content,
        });
        Some(self.insert(key, value, expire_at, timers))
    }

    /// Evicts one key by `policy` (`volatile`: only keys with a deadline) and returns
    /// the bytes freed, or `None` when no key qualifies.
    ///
    /// LRU and LFU are a CLOCK hand over the slab, not Redis's sampling: on each access
    /// a key sets its reference bit (LRU) or bumps a 4-bit counter (LFU, GCLOCK); the
    /// hand clears or decrements as it passes and evicts the first key at zero. It costs
    /// four bits per key, in the entry's first byte, and O(1) amortized work.
    /// TTL samples 16 volatile keys and evicts the one expiring first.
    pub fn evict_one(
        &mut self,
        policy: Eviction,
        volatile: bool,
        rng: &mut fastrand::Rng,
        timers: &mut Timers,
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
                .min_by_key(|&i| Self::used(&self.slots, i).expire_at()),
            Eviction::Lru | Eviction::Lfu => self.clock_victim(volatile),
        }?;
        let before = self.used;
        self.note_removal(victim, notify::EVICTED, "evicted");
        self.remove_at(victim, timers);
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
            if let Some(e) = &self.slots[pos] {
                if (!volatile || e.is_volatile()) && !out.contains(&(pos as u32)) {
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
            if let Some(e) = &mut self.slots[pos] {
                if volatile && !e.is_volatile() {
                    continue;
                }
                let hits = e.hits();
                if hits == 0 {
                    return Some(pos as u32);
                }
                e.set_hits(hits - 1);
            }
        }
        None
    }

    /// Gives back memory after the keyspace has mostly emptied (at most 1/16 of the slab
    /// in use, or none): free slots at the end of the slab and the index's excess
    /// buckets. Entries never move, so only trailing slots can go. The pass is O(slab),
    /// so the shard calls it from housekeeping, not per expiry batch.
    pub fn shrink(&mut self) {
        if !self.shrink.open(self.len, self.slots.len()) {
            return;
        }
        let keep = self
            .slots
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        self.slots.truncate(keep);
        self.slots.shrink_to_fit();
        // Lowest positions on top of the stack, as a fresh slab would fill.
        self.free = (0..keep as u32)
            .rev()
            .filter(|&i| self.slots[i as usize].is_none())
            .collect();
        self.free.shrink_to_fit();
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .shrink_to_fit(|&i| hasher.hash_one(Self::used(slots, i).key()));
    }

    /// Active expiry: the wheel fired the timer of the key at `idx` (its deadline passed,
    /// `now` is past it): removes it.
    pub fn expire(&mut self, idx: u32, now: u64, timers: &mut Timers) {
        debug_assert!(self.entry(idx).is_expired(now), "key timer fired early");
        self.note_removal(idx, notify::EXPIRED, "expired");
        self.remove_at(idx, timers);
        self.stats.expired += 1;
    }

    /// Every entry, expired ones included, in slab order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
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
        timers: &mut Timers,
        mut f: impl FnMut(&Entry),
    ) -> Option<usize> {
        let mut pos = cursor;
        let mut seen = 0usize;
        let mut budget = count.saturating_mul(10).max(1);
        while pos < self.slots.len() && seen < count && budget > 0 {
            budget -= 1;
            if let Some(e) = &self.slots[pos] {
                if e.is_expired(now) {
                    self.note_removal(pos as u32, notify::EXPIRED, "expired");
                    self.remove_at(pos as u32, timers);
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
    pub fn random(
        &mut self,
        rng: &mut fastrand::Rng,
        now: u64,
        timers: &mut Timers,
    ) -> Option<u32> {
        // Random probes find a used slot quickly unless the slab is mostly holes; then walk
        // from a random start. Bounded either way.
        for _ in 0..64 {
            if self.len == 0 {
                return None;
            }
            let pos = rng.usize(..self.slots.len());
            if let Some(e) = &self.slots[pos] {
                if e.is_expired(now) {
                    self.note_removal(pos as u32, notify::EXPIRED, "expired");
                    self.remove_at(pos as u32, timers);
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
            if let Some(e) = &self.slots[pos] {
                if !e.is_expired(now) {
                    return Some(pos as u32);
                }
            }
        }
        None
    }
}

/// A shard's keyspace as keyed commands see it: the store and the shard's wheel, which
/// holds the keys' deadlines. Each method is the [`Store`] method of the same name.
pub struct Keyspace<'a> {
    store: &'a mut Store,
    timers: &'a mut Timers,
}

impl<'a> Keyspace<'a> {
    /// The store with the wheel its deadlines are in.
    pub fn new(store: &'a mut Store, timers: &'a mut Timers) -> Self {
        Keyspace { store, timers }
    }

    /// While the keyspace is over `limit` bytes (0: no limit), evicts by `policy`. False
    /// when it stays over (noeviction, or nothing the policy may evict): a command that
    /// may grow memory must be refused.
    pub fn admit(
        &mut self,
        limit: u64,
        policy: &crate::config::Policy,
        rng: &mut fastrand::Rng,
    ) -> bool {
        if limit == 0 {
            return true;
        }
        while self.store.used_memory() as u64 > limit {
            if self
                .store
                .evict_one(policy.eviction, policy.volatile_only, rng, self.timers)
                .is_none()
            {
                return false;
            }
        }
        true
    }

    /// The same keyspace, borrowed again (for the commands a script runs).
    pub fn reborrow(&mut self) -> Keyspace<'_> {
        Keyspace {
            store: self.store,
            timers: self.timers,
        }
    }

    /// The store alone (reading entries, counters).
    pub fn store(&mut self) -> &mut Store {
        self.store
    }

    /// [`Store::find`].
    #[inline]
    pub fn find(&mut self, key: &[u8], now: u64) -> Option<u32> {
        self.store.find(key, now, self.timers)
    }

    /// [`Store::find_read`].
    #[inline]
    pub fn find_read(&mut self, key: &[u8], now: u64) -> Option<u32> {
        self.store.find_read(key, now, self.timers)
    }

    /// [`Store::contains`].
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.store.contains(key, now, self.timers)
    }

    /// [`Store::entry`].
    #[inline]
    pub fn entry(&self, idx: u32) -> &Entry {
        self.store.entry(idx)
    }

    /// [`Store::set_value`].
    #[inline]
    pub fn set_value(&mut self, idx: u32, value: Value<'_>) {
        self.store.set_value(idx, value);
    }

    /// [`Store::edit_raw`].
    pub fn edit_raw<R>(&mut self, idx: u32, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.store.edit_raw(idx, len, f)
    }

    /// [`Store::set_expire`].
    pub fn set_expire(&mut self, idx: u32, expire_at: u64) {
        self.store.set_expire(idx, expire_at, self.timers);
    }

    /// [`Store::replace`].
    #[inline]
    pub fn replace(&mut self, idx: u32, value: Value<'_>, expire_at: u64) {
        self.store.replace(idx, value, expire_at, self.timers);
    }

    /// [`Store::insert`].
    #[inline]
    pub fn insert(&mut self, key: &[u8], value: Value<'_>, expire_at: u64) -> u32 {
        self.store.insert(key, value, expire_at, self.timers)
    }

    /// [`Store::duplicate`].
    pub fn duplicate(&mut self, idx: u32, key: &[u8]) -> u32 {
        self.store.duplicate(idx, key, self.timers)
    }

    /// [`Store::set`].
    pub fn set(&mut self, key: &[u8], value: Value<'_>, keep_ttl: bool, now: u64) -> u32 {
        self.store.set(key, value, keep_ttl, now, self.timers)
    }

    /// [`Store::remove_at`].
    pub fn remove_at(&mut self, idx: u32) -> Entry {
        self.store.remove_at(idx, self.timers)
    }

    /// [`Store::remove`].
    pub fn remove(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        self.store.remove(key, now, self.timers)
    }

    /// [`Store::clear`].
    pub fn clear(&mut self) -> usize {
        self.store.clear(self.timers)
    }

    /// [`Store::scan`].
    pub fn scan(
        &mut self,
        cursor: usize,
        count: usize,
        now: u64,
        f: impl FnMut(&Entry),
    ) -> Option<usize> {
        self.store.scan(cursor, count, now, self.timers, f)
    }

    /// [`Store::random`].
    pub fn random(&mut self, rng: &mut fastrand::Rng, now: u64) -> Option<u32> {
        self.store.random(rng, now, self.timers)
    }

    /// The store's buffer for building encodings, empty; give it back with
    /// [`Keyspace::put_scratch`].
    pub fn take_scratch(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.store.scratch);
        buf.clear();
        buf
    }

    /// Gives the buffer back (freed instead when it grew large).
    pub fn put_scratch(&mut self, mut buf: Vec<u8>) {
        crate::message::recycle(&mut buf, crate::message::KEEP_BYTES);
        self.store.scratch = buf;
    }

    /// [`Store::notify`].
    #[inline]
    pub fn notify(&mut self, class: u16, event: &'static str, key: &[u8]) {
        self.store.notify(class, event, key);
    }

    /// [`Store::rename`].
    pub fn rename(&mut self, idx: u32, key: &[u8]) -> u32 {
        self.store.rename(idx, key, self.timers)
    }

    /// [`Store::coll`].
    pub fn coll(&self, idx: u32) -> Option<CollRef<'_>> {
        self.store.coll(idx)
    }

    /// [`Store::insert_table`].
    pub fn insert_table(&mut self, key: &[u8], kind: u8, table: Table, expire_at: u64) -> u32 {
        self.store
            .insert_table(key, kind, table, expire_at, self.timers)
    }

    /// [`Store::set_table`].
    pub fn set_table(&mut self, idx: u32, table: Table) {
        self.store.set_table(idx, table);
    }

    /// [`Store::with_table`].
    pub fn with_table<R>(&mut self, idx: u32, f: impl FnOnce(&mut Table) -> (R, bool)) -> R {
        self.store.with_table(idx, f)
    }

    /// A write may have made `key` ready for the clients blocked on it (a push): they are
    /// served once the command (or the EXEC) is done.
    #[inline]
    pub fn signal_ready(&mut self, key: &[u8]) {
        let s = &mut *self.store;
        if !s.waited.is_empty()
            && s.waited.contains_key(key)
            && !s.ready.iter().any(|k| &**k == key)
        {
            s.ready.push(key.into());
        }
    }

    /// [`Store::list`].
    pub fn list(&self, idx: u32) -> Option<&List> {
        self.store.list(idx)
    }

    /// [`Store::zset`].
    pub fn zset(&self, idx: u32) -> Option<ZRef<'_>> {
        self.store.zset(idx)
    }

    /// [`Store::with_zset`].
    pub fn with_zset<R>(&mut self, idx: u32, f: impl FnOnce(&mut ZSet) -> R) -> R {
        self.store.with_zset(idx, f)
    }

    /// [`Store::put_zset`].
    pub fn put_zset(&mut self, idx: Option<u32>, key: &[u8], z: ZSet) -> u32 {
        self.store.put_zset(idx, key, z, self.timers)
    }

    /// Whether `key` holds a list or sorted set with elements (a blocked client could
    /// be served).
    pub fn has_elements(&mut self, key: &[u8], now: u64) -> bool {
        self.store.has_elements(key, now, self.timers)
    }

    /// [`Store::with_list`].
    pub fn with_list<R>(&mut self, idx: u32, f: impl FnOnce(&mut List) -> R) -> R {
        self.store.with_list(idx, f)
    }

    /// [`Store::insert_list`].
    pub fn insert_list(&mut self, key: &[u8], list: List, expire_at: u64) -> u32 {
        self.store.insert_list(key, list, expire_at, self.timers)
    }

    /// [`Store::dump_value`].
    pub fn dump_value(&self, idx: u32, out: &mut Vec<u8>) {
        self.store.dump_value(idx, out);
    }

    /// [`Store::dump_type`].
    pub fn dump_type(&self, idx: u32) -> &'static [u8] {
        self.store.dump_type(idx)
    }

    /// [`Store::restore_value`].
    pub fn restore_value(
        &mut self,
        key: &[u8],
        ty: &[u8],
        payload: &[u8],
        expire_at: u64,
    ) -> Option<u32> {
        self.store
            .restore_value(key, ty, payload, expire_at, self.timers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with its wheel, as a shard holds them.
    struct Ks {
        st: Store,
        w: Timers,
    }

    impl Ks {
        fn new(now: u64) -> Ks {
            Ks {
                st: Store::new(),
                w: Timers::new(now),
            }
        }

        fn ks(&mut self) -> Keyspace<'_> {
            Keyspace::new(&mut self.st, &mut self.w)
        }

        /// What the shard's timer task does with the keys' timers.
        fn expire_due(&mut self, now: u64, budget: usize) -> bool {
            let mut fired = Vec::new();
            let more = self.w.advance(now, budget, &mut fired);
            for t in fired {
                match t {
                    Timer::Key(idx) => self.st.expire(idx, now, &mut self.w),
                    Timer::Conn(..) | Timer::Blocked(..) => unreachable!("only keys here"),
                }
            }
            more
        }

        /// What the shard's housekeeping does: shrink the store and the wheel.
        fn housekeeping(&mut self) {
            self.st.shrink();
            self.w.shrink();
        }

        fn evict_one(
            &mut self,
            p: Eviction,
            volatile: bool,
            rng: &mut fastrand::Rng,
        ) -> Option<usize> {
            self.st.evict_one(p, volatile, rng, &mut self.w)
        }
    }

    impl std::ops::Deref for Ks {
        type Target = Store;
        fn deref(&self) -> &Store {
            &self.st
        }
    }

    impl std::ops::DerefMut for Ks {
        fn deref_mut(&mut self) -> &mut Store {
            &mut self.st
        }
    }
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    const XS: [u8; 2000] = [b'x'; 2000];

    fn raw(n: usize) -> Value<'static> {
        Value::Str(Str::Raw(&XS[..n]))
    }

    #[test]
    fn heap_sizes_follow_mimallocs_classes() {
        let classes: Vec<usize> = [1, 8, 9, 51, 64, 65, 100, 119, 129, 200, 1000]
            .iter()
            .map(|&n| heap(n))
            .collect();
        assert_eq!(classes, [8, 8, 16, 56, 64, 80, 112, 128, 160, 224, 1024]);
        assert_eq!(heap(0), 0);
        for n in 1..100_000 {
            assert!(heap(n) >= n && heap(n) <= n + n / 4 + 8, "{n}");
        }
    }

    #[test]
    fn memory_accounting_follows_every_change_and_returns_to_zero() {
        let mut s = Ks::new(0);
        let a = s.ks().insert(b"a", raw(100), 0);
        let one = s.used_memory();
        // Block length, meta, key length, value length, key, value.
        assert_eq!(one, ENTRY_OVERHEAD + heap(1 + 3 + 1 + 100));
        s.edit_raw(a, 1100, |v| v[100..].fill(b'y'));
        assert!(s.used_memory() >= one + 1000);
        s.set_value(a, Value::Str(Str::Int(7)));
        assert_eq!(s.used_memory(), ENTRY_OVERHEAD + heap(1 + 2 + 1 + 8));
        s.ks().set(b"b", raw(10), false, 0);
        s.ks().insert(b"c", raw(10), 5);
        assert!(s.peak_memory() >= one + 1000);
        s.ks().remove(b"a", 0);
        s.ks().remove(b"b", 0);
        s.ks().remove(b"c", 0);
        assert_eq!(s.used_memory(), 0);
        s.ks().insert(b"d", raw(10), 0);
        s.ks().clear();
        assert_eq!(s.used_memory(), 0);
    }

    #[test]
    fn clock_lru_evicts_keys_not_touched_since_the_hand_passed() {
        let mut s = Ks::new(0);
        s.eviction = Eviction::Lru;
        let mut rng = fastrand::Rng::with_seed(1);
        for i in 0..100u32 {
            s.ks().insert(format!("k{i}").as_bytes(), raw(10), 0);
        }
        // Reads mark 0..50; the hand clears their bits as it passes and takes 50.. .
        for i in 0..50u32 {
            s.ks().find(format!("k{i}").as_bytes(), 0);
        }
        for _ in 0..40 {
            s.evict_one(Eviction::Lru, false, &mut rng).unwrap();
        }
        let survivors = (0..50u32)
            .filter(|i| s.ks().contains(format!("k{i}").as_bytes(), 0))
            .count();
        assert_eq!(survivors, 50, "recently read keys survive");
        assert_eq!(s.stats.evicted, 40);
        assert!(
            !s.ks().contains(b"k50", 0) && s.ks().contains(b"k99", 0),
            "in hand order"
        );
    }

    #[test]
    fn lfu_keeps_frequent_keys() {
        let mut s = Ks::new(0);
        s.eviction = Eviction::Lfu;
        let mut rng = fastrand::Rng::with_seed(2);
        for i in 0..100u32 {
            s.ks().insert(format!("k{i}").as_bytes(), raw(10), 0);
        }
        for _ in 0..10 {
            for i in 0..10u32 {
                s.ks().find(format!("k{i}").as_bytes(), 0);
            }
        }
        for i in 10..100u32 {
            s.ks().find(format!("k{i}").as_bytes(), 0);
        }
        for _ in 0..80 {
            s.evict_one(Eviction::Lfu, false, &mut rng).unwrap();
        }
        let hot = (0..10u32)
            .filter(|i| s.ks().contains(format!("k{i}").as_bytes(), 0))
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
            let mut s = Ks::new(0);
            let mut rng = fastrand::Rng::with_seed(3);
            for i in 0..50u64 {
                s.ks().insert(format!("p{i}").as_bytes(), raw(10), 0);
                s.ks().insert(format!("v{i}").as_bytes(), raw(10), 1000 + i);
            }
            for _ in 0..50 {
                s.evict_one(policy, true, &mut rng).unwrap();
            }
            assert!(s.evict_one(policy, true, &mut rng).is_none(), "{policy:?}");
            assert_eq!(s.len(), 50);
            assert_eq!(s.volatile(), 0);
        }
        // volatile-ttl takes the nearest deadline among its samples.
        let mut s = Ks::new(0);
        let mut rng = fastrand::Rng::with_seed(4);
        for i in 0..10u64 {
            s.ks().insert(format!("v{i}").as_bytes(), raw(10), 1000 + i);
        }
        s.evict_one(Eviction::Ttl, true, &mut rng).unwrap();
        assert!(
            !s.ks().contains(b"v0", 0),
            "the earliest deadline goes first"
        );
    }

    fn s(v: &str) -> Value<'_> {
        Value::Str(Str::from_bytes(v.as_bytes()))
    }

    #[test]
    fn int_encoding_is_canonical_only() {
        assert_eq!(Str::from_bytes(b"42"), Str::Int(42));
        assert_eq!(Str::from_bytes(b"042"), Str::Raw(b"042"));
        assert_eq!(Str::from_bytes(b"-0"), Str::Raw(b"-0"));
        assert_eq!(Str::Int(-17).len(), 3);
        assert_eq!(Str::Int(5).with_bytes(<[u8]>::to_vec), b"5");
    }

    #[test]
    fn set_get_remove() {
        let mut st = Ks::new(0);
        let a = st.ks().set(b"a", s("1"), false, 0);
        assert_eq!(st.entry(a).value(), s("1"));
        assert_eq!(st.ks().find(b"a", 0), Some(a));
        assert!(st.ks().remove(b"a", 0).is_some());
        assert_eq!(st.ks().find(b"a", 0), None);
        assert!(st.is_empty());
    }

    #[test]
    fn lazy_expiry_is_strictly_after_the_deadline() {
        let mut st = Ks::new(0);
        let idx = st.ks().insert(b"k", s("v"), 100);
        assert_eq!(st.volatile(), 1);
        assert_eq!(st.ks().find(b"k", 100), Some(idx), "alive at the deadline");
        assert_eq!(st.ks().find(b"k", 101), None, "gone after it");
        assert_eq!(st.stats.expired, 1);
        assert_eq!(st.len(), 0);
        assert_eq!(st.volatile(), 0);
    }

    #[test]
    fn active_expiry_reclaims_keys_nobody_reads() {
        let mut st = Ks::new(1000);
        for i in 0..1000u64 {
            st.ks().insert(format!("k{i}").as_bytes(), s("v"), 1000 + i);
        }
        st.ks().insert(b"forever", s("v"), 0);
        let moved = st.ks().insert(b"moved", s("v"), 1100);
        st.ks().set_expire(moved, 5000);
        // Nothing is due at or before a deadline itself: keys expire when now > deadline.
        assert!(!st.expire_due(1000, usize::MAX));
        assert_eq!(st.len(), 1002);
        // Up to 1499 (deadlines 1000..=1498 passed), in budgeted steps.
        let mut calls = 0;
        while st.expire_due(1499, 100) {
            calls += 1;
        }
        assert!(calls >= 4, "the budget splits the work");
        assert_eq!(st.stats.expired, 499);
        assert_eq!(st.len(), 1002 - 499);
        assert!(st.ks().find(b"k498", 1499).is_none());
        assert!(st.ks().find(b"k499", 1499).is_some());
        while st.expire_due(4000, usize::MAX) {}
        assert_eq!(st.len(), 2, "forever and moved remain");
        assert_eq!(st.volatile(), 1);
        while st.expire_due(5001, usize::MAX) {}
        assert_eq!(st.len(), 1);
        assert!(st.w.is_empty());
    }

    #[test]
    fn an_emptied_store_gives_its_memory_back() {
        let mut st = Ks::new(0);
        for i in 0..20_000u64 {
            st.ks()
                .insert(format!("k{i}").as_bytes(), s("v"), 10 + i % 50);
        }
        st.ks().insert(b"stays", s("v"), 0);
        while st.expire_due(1000, usize::MAX) {}
        st.housekeeping();
        assert_eq!(st.len(), 1);
        assert!(
            st.ks().find(b"stays", 1000).is_some(),
            "the survivor is still found"
        );
        assert!(st.slots.len() <= 20_001);
        st.ks().remove(b"stays", 1000);
        st.housekeeping();
        assert_eq!(st.slots.len(), 0);
        assert_eq!(st.w.capacity(), 0);
        st.ks().insert(b"again", s("v"), 0);
        assert!(st.ks().find(b"again", 0).is_some());
    }

    #[test]
    fn removing_or_persisting_cancels_the_timer() {
        let mut st = Ks::new(0);
        let a = st.ks().insert(b"a", s("v"), 10);
        st.ks().insert(b"b", s("v"), 10);
        st.ks().insert(b"c", s("v"), 10);
        st.ks().set_expire(a, 0);
        st.ks().remove(b"b", 0);
        assert_eq!(st.w.len(), 1);
        st.ks().clear();
        assert!(st.w.is_empty());
    }

    #[test]
    fn a_duplicate_has_the_value_deadline_and_a_timer_of_its_own() {
        let mut st = Ks::new(0);
        let a = st.ks().insert(b"a", s("value"), 100);
        let b = st.ks().duplicate(a, b"b");
        assert_eq!(st.entry(b).key(), b"b");
        assert_eq!(st.entry(b).value(), s("value"));
        assert_eq!(st.entry(b).expire_at(), Some(100));
        assert_eq!((st.volatile(), st.w.len()), (2, 2));
        assert_eq!(st.used_memory(), 2 * entry_bytes(st.entry(a)));
        st.ks().remove(b"a", 0);
        while st.expire_due(101, usize::MAX) {}
        assert!(st.is_empty(), "b's own timer removed it");
        assert_eq!(st.used_memory(), 0);
    }

    #[test]
    fn set_clears_or_keeps_ttl() {
        let mut st = Ks::new(0);
        let idx = st.ks().insert(b"k", s("v"), 1000);
        st.ks().set(b"k", s("w"), true, 0);
        assert_eq!(st.entry(idx).expire_at(), Some(1000));
        st.ks().set(b"k", s("x"), false, 0);
        assert_eq!(st.entry(idx).expire_at(), None);
        assert_eq!(st.volatile(), 0);
    }

    #[test]
    fn scan_returns_every_key_present_throughout() {
        let mut st = Ks::new(0);
        for i in 0..1000 {
            st.ks().insert(format!("k{i}").as_bytes(), s("v"), 0);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let next = st.ks().scan(cursor, 10, 0, |e| {
                seen.insert(e.key().to_vec());
            });
            // Churn between steps: delete some keys, add others.
            step += 1;
            st.ks().remove(format!("k{}", 999 - step).as_bytes(), 0);
            st.ks().insert(format!("new{step}").as_bytes(), s("v"), 0);
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
            let mut st = Ks::new(0);
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            for op in ops {
                match op {
                    Op::Set(k, v) => {
                        let key = vec![k];
                        st.ks().set(&key, Value::Str(Str::Raw(&[v])), false, 0);
                        model.insert(key, vec![v]);
                    }
                    Op::Del(k) => {
                        prop_assert_eq!(st.ks().remove(&[k], 0).is_some(), model.remove(&vec![k]).is_some());
                    }
                    Op::Get(k) => {
                        let got = st.ks().find(&[k], 0).map(|i| match st.entry(i).value() {
                            Value::Str(s) => s.with_bytes(<[u8]>::to_vec),
                            Value::Coll(_) => unreachable!("only strings here"),
                        });
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
            while let Some(next) = st.ks().scan(cursor, 3, 0, |e| { scanned.insert(e.key().to_vec()); }) {
                cursor = next;
            }
            prop_assert_eq!(&scanned, &want);
        }
    }
}
