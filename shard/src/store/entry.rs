//! One key, its value and its deadline, packed into a single heap block.
//!
//! Redis spends three allocations on a small string key (a `dictEntry`, the key's `sds`
//! and an `embstr` object) plus a second table entry when the key has a TTL. A corekv
//! entry is one `Block` (`store::block`: a thin pointer to bytes that start with their
//! own length), sized to what it holds:
//!
//! ```text
//! [length] meta u8 | deadline u64, timer u32 u32 | key len | value len | key | value | slack
//!                    (keys with a deadline only)   varint    varint
//!                                                            (raw values only)
//! ```
//!
//! `meta` holds the eviction counter (bits 0-3), "has a deadline" (bit 4), "the value
//! is an integer" (bit 5: eight little-endian bytes, Redis's `int` encoding), "the
//! value is a collection" (bit 6: a kind byte, then the collection's payload, see
//! [`super::collection`]) and "a string edited in place" (bit 7: what Redis would keep
//! in its `raw` encoding). Keys without
//! a deadline, most of them in a cache, pay nothing for the field. Slack exists only after
//! APPEND or SETRANGE grew a value: like Redis's `sds`, growth doubles (up to 1 MiB more),
//! so appending byte by byte stays amortized O(1). A SET over a value of similar size
//! rewrites the block in place.

use super::block::{get_varint, put_varint, varint_len, Block};
use crate::wheel::TimerHandle;

/// Bits of `meta` holding the eviction counter.
const HITS: u8 = 0x0f;
/// `meta` bit: the key has a deadline (and the block its 16 bytes).
const VOLATILE: u8 = 0x10;
/// `meta` bit: the value is an `i64`.
const INT: u8 = 0x20;
/// `meta` bit: the value is a collection: a kind byte, then its payload.
const COLL: u8 = 0x40;
/// `meta` bit: a string Redis would hold in its `raw` encoding whatever its length,
/// because APPEND or SETRANGE edited it (OBJECT ENCODING reports it).
const RAW: u8 = 0x80;
/// The `meta` bits that say what kind of value the entry holds.
const KIND: u8 = INT | COLL | RAW;
/// Bytes of a deadline and its timer handle.
const DEADLINE_BYTES: usize = 16;
/// A growing value gets as much slack as its length, at most this much (Redis's
/// `SDS_MAX_PREALLOC`).
const MAX_PREALLOC: usize = 1 << 20;

/// A string value as stored: canonical decimal integers are `i64`s (8 bytes, INCR without
/// parsing), anything else is bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Str<'a> {
    /// A value that is the canonical text of an `i64`.
    Int(i64),
    /// Any other bytes.
    Raw(&'a [u8]),
}

impl<'a> Str<'a> {
    /// The most compact form of `bytes`: an integer when they are one's canonical text.
    pub fn from_bytes(bytes: &'a [u8]) -> Str<'a> {
        match corekv_protocol::number::parse_i64(bytes) {
            Some(n) => Str::Int(n),
            None => Str::Raw(bytes),
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
}

/// A collection as stored in an entry: its kind (type and encoding, see
/// [`super::collection`]) and its payload (the listpack or intset itself, or the number
/// of its table in the store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coll<'a> {
    /// Type and encoding.
    pub kind: u8,
    /// The payload.
    pub bytes: &'a [u8],
}

impl Coll<'_> {
    /// Its type: [`super::collection::HASH`], `SET` or `LIST`.
    pub fn ty(&self) -> u8 {
        self.kind & super::collection::TYPE_MASK
    }

    /// Whether it is a hash.
    pub fn is_hash(&self) -> bool {
        self.ty() == super::collection::HASH
    }

    /// Whether it is a set.
    pub fn is_set(&self) -> bool {
        self.ty() == super::collection::SET
    }

    /// Whether it is a list.
    pub fn is_list(&self) -> bool {
        self.ty() == super::collection::LIST
    }

    /// Whether it is a sorted set.
    pub fn is_zset(&self) -> bool {
        self.ty() == super::collection::ZSET
    }

    /// Whether it is a table in the store (else inline).
    pub fn is_table(&self) -> bool {
        self.kind & super::collection::TABLE != 0
    }

    /// The table's number, for a table.
    pub fn table_id(&self) -> u32 {
        u32::from_le_bytes(self.bytes[..4].try_into().expect("a table number"))
    }
}

/// A value of any type, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string.
    Str(Str<'a>),
    /// A hash, a set or a list.
    Coll(Coll<'a>),
}

impl Value<'_> {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Coll(c) if c.is_hash() => "hash",
            Value::Coll(c) if c.is_list() => "list",
            Value::Coll(c) if c.is_zset() => "zset",
            Value::Coll(_) => "set",
        }
    }

    /// The `meta` bits of the value's kind, and the length of its stored bytes.
    #[inline]
    fn shape(&self) -> (u8, usize) {
        match self {
            Value::Str(Str::Int(_)) => (INT, 8),
            Value::Str(Str::Raw(b)) => (0, b.len()),
            Value::Coll(c) => (COLL, 1 + c.bytes.len()),
        }
    }

    /// Writes the stored bytes (`shape().1` of them) to `dst`.
    #[inline]
    fn put(&self, dst: &mut [u8]) {
        match self {
            Value::Str(Str::Int(n)) => dst.copy_from_slice(&n.to_le_bytes()),
            Value::Str(Str::Raw(b)) => dst.copy_from_slice(b),
            Value::Coll(c) => {
                dst[0] = c.kind;
                dst[1..].copy_from_slice(c.bytes);
            }
        }
    }
}

/// Where the parts of a block are.
#[derive(Clone, Copy)]
struct Layout {
    /// Start of the key.
    key: usize,
    /// Length of the key.
    klen: usize,
    /// Start of the value (right after the key).
    val: usize,
    /// Length of the value's stored bytes (8 for an integer).
    vlen: usize,
}

/// Length of the header for these fields.
#[inline]
fn header_len(volatile: bool, kind: u8, klen: usize, vlen: usize) -> usize {
    let int = kind & INT != 0;
    1 + if volatile { DEADLINE_BYTES } else { 0 }
        + varint_len(klen)
        + if int { 0 } else { varint_len(vlen) }
}

/// Writes a header of exactly `buf.len()` bytes.
fn write_header(
    buf: &mut [u8],
    meta: u8,
    deadline: Option<(u64, TimerHandle)>,
    klen: usize,
    vlen: usize,
) {
    buf[0] = meta;
    let mut p = 1;
    if let Some((at, timer)) = deadline {
        let (idx, gen) = timer.to_parts();
        buf[1..9].copy_from_slice(&at.to_le_bytes());
        buf[9..13].copy_from_slice(&idx.to_le_bytes());
        buf[13..17].copy_from_slice(&gen.to_le_bytes());
        p = 1 + DEADLINE_BYTES;
    }
    p += put_varint(&mut buf[p..], klen);
    if meta & INT == 0 {
        p += put_varint(&mut buf[p..], vlen);
    }
    debug_assert_eq!(p, buf.len(), "header length");
}

/// How [`Entry::relayout`] may reuse the current block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Only if it is exactly the size needed (a deadline removed: give the bytes back).
    Exact,
    /// If it fits without wasting more than about half (a SET of a similar size).
    Similar,
    /// Whenever it fits; a new block gets slack (APPEND, SETRANGE).
    Grow,
}

/// A key with its value and deadline, in one heap block (see the module docs).
#[derive(Debug)]
pub struct Entry {
    block: Block,
}

impl Entry {
    /// An entry for `key` holding `value`, expiring after `expire_at` (Unix ms; 0: never),
    /// with no timer yet.
    pub fn new(key: &[u8], value: Value<'_>, expire_at: u64) -> Entry {
        let (kind, vlen) = value.shape();
        let volatile = expire_at != 0;
        let hdr = header_len(volatile, kind, key.len(), vlen);
        let mut block = Block::zeroed(hdr + key.len() + vlen);
        let meta = if volatile { VOLATILE } else { 0 } | kind;
        let deadline = volatile.then_some((expire_at, TimerHandle::NONE));
        write_header(&mut block[..hdr], meta, deadline, key.len(), vlen);
        block[hdr..hdr + key.len()].copy_from_slice(key);
        value.put(&mut block[hdr + key.len()..]);
        Entry { block }
    }

    #[inline]
    fn layout(&self) -> Layout {
        let b = &self.block;
        let meta = b[0];
        let mut p = if meta & VOLATILE != 0 {
            1 + DEADLINE_BYTES
        } else {
            1
        };
        let (klen, n) = get_varint(&b[p..]);
        p += n;
        let vlen = if meta & INT != 0 {
            8
        } else {
            let (vlen, n) = get_varint(&b[p..]);
            p += n;
            vlen
        };
        Layout {
            key: p,
            klen,
            val: p + klen,
            vlen,
        }
    }

    /// The key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        let l = self.layout();
        &self.block[l.key..l.val]
    }

    /// The value.
    #[inline]
    pub fn value(&self) -> Value<'_> {
        let l = self.layout();
        let bytes = &self.block[l.val..l.val + l.vlen];
        let meta = self.block[0];
        if meta & INT != 0 {
            let n = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
            Value::Str(Str::Int(n))
        } else if meta & COLL != 0 {
            Value::Coll(Coll {
                kind: bytes[0],
                bytes: &bytes[1..],
            })
        } else {
            Value::Str(Str::Raw(bytes))
        }
    }

    /// Whether the value is a string APPEND or SETRANGE edited: Redis's `raw` encoding
    /// at any length.
    #[inline]
    pub fn is_raw_string(&self) -> bool {
        self.block[0] & RAW != 0
    }

    /// Marks a string value as edited in place (see [`Entry::is_raw_string`]).
    pub(crate) fn mark_raw(&mut self) {
        debug_assert!(matches!(self.value(), Value::Str(Str::Raw(_))));
        self.block[0] |= RAW;
    }

    /// Whether the key has a deadline.
    #[inline]
    pub fn is_volatile(&self) -> bool {
        self.block[0] & VOLATILE != 0
    }

    /// The deadline and its timer, when there is one.
    #[inline]
    fn deadline(&self) -> Option<(u64, TimerHandle)> {
        if !self.is_volatile() {
            return None;
        }
        let b = &self.block;
        let at = u64::from_le_bytes(b[1..9].try_into().expect("8 bytes"));
        let idx = u32::from_le_bytes(b[9..13].try_into().expect("4 bytes"));
        let gen = u32::from_le_bytes(b[13..17].try_into().expect("4 bytes"));
        Some((at, TimerHandle::from_parts(idx, gen)))
    }

    /// The deadline, if any (Unix milliseconds).
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        self.deadline().map(|(at, _)| at)
    }

    /// Whether the key is gone at `now` (Unix milliseconds): Redis expires when
    /// `now > deadline`.
    #[inline]
    pub fn is_expired(&self, now: u64) -> bool {
        matches!(self.expire_at(), Some(at) if now > at)
    }

    /// The wheel timer of the deadline ([`TimerHandle::NONE`] without one).
    #[inline]
    pub(crate) fn timer(&self) -> TimerHandle {
        self.deadline().map_or(TimerHandle::NONE, |(_, t)| t)
    }

    /// Records the wheel timer of the deadline; the entry must have one.
    #[inline]
    pub(crate) fn set_timer(&mut self, timer: TimerHandle) {
        assert!(self.is_volatile(), "a timer without a deadline");
        let (idx, gen) = timer.to_parts();
        self.block[9..13].copy_from_slice(&idx.to_le_bytes());
        self.block[13..17].copy_from_slice(&gen.to_le_bytes());
    }

    /// The eviction counter (0..=15).
    #[inline]
    pub(crate) fn hits(&self) -> u8 {
        self.block[0] & HITS
    }

    /// Sets the eviction counter (`hits` at most 15).
    #[inline]
    pub(crate) fn set_hits(&mut self, hits: u8) {
        debug_assert!(hits <= HITS);
        self.block[0] = (self.block[0] & !HITS) | hits;
    }

    /// Bytes of the block (what the entry asks of the allocator).
    #[inline]
    pub fn block_len(&self) -> usize {
        self.block.alloc_size()
    }

    /// Lays the entry out again for a new deadline, value kind and value length, keeping
    /// the key and the first `keep` bytes of the value (both kinds unchanged then) and
    /// zeroing the rest of the value. Rewrites the block in place when `fit` allows,
    /// otherwise moves to a new block. Returns where the value starts.
    fn relayout(
        &mut self,
        deadline: Option<(u64, TimerHandle)>,
        kind: u8,
        vlen: usize,
        keep: usize,
        fit: Fit,
    ) -> usize {
        let old = self.layout();
        debug_assert!(keep <= old.vlen.min(vlen));
        debug_assert!(keep == 0 || (self.block[0] & (INT | COLL)) == kind & (INT | COLL));
        let meta = (self.block[0] & HITS) | if deadline.is_some() { VOLATILE } else { 0 } | kind;
        let hdr = header_len(deadline.is_some(), kind, old.klen, vlen);
        let val = hdr + old.klen;
        let need = val + vlen;
        let len = self.block.len();
        let reuse = match fit {
            Fit::Exact => need == len,
            Fit::Similar => need <= len && len <= 2 * need + 16,
            Fit::Grow => need <= len,
        };
        if reuse {
            // Key and kept value are contiguous: one move to where the new header ends.
            self.block.copy_within(old.key..old.val + keep, hdr);
            write_header(&mut self.block[..hdr], meta, deadline, old.klen, vlen);
            self.block[val + keep..need].fill(0);
        } else {
            let cap = if fit == Fit::Grow {
                need + vlen.min(MAX_PREALLOC)
            } else {
                need
            };
            let mut block = Block::zeroed(cap);
            write_header(&mut block[..hdr], meta, deadline, old.klen, vlen);
            block[hdr..val + keep].copy_from_slice(&self.block[old.key..old.val + keep]);
            self.block = block;
        }
        val
    }

    /// Replaces the value, keeping key, deadline and eviction counter; reuses the block
    /// when the new value is of similar size.
    pub(crate) fn set_value(&mut self, value: Value<'_>) {
        self.write_value(self.deadline(), value);
    }

    /// Replaces value and deadline (`expire_at`, 0 for none) in one layout: SET. The
    /// timer becomes [`TimerHandle::NONE`], as with [`Entry::set_deadline`].
    pub(crate) fn replace(&mut self, value: Value<'_>, expire_at: u64) {
        self.write_value(
            (expire_at != 0).then_some((expire_at, TimerHandle::NONE)),
            value,
        );
    }

    fn write_value(&mut self, deadline: Option<(u64, TimerHandle)>, value: Value<'_>) {
        let (kind, vlen) = value.shape();
        let val = self.relayout(deadline, kind, vlen, 0, Fit::Similar);
        value.put(&mut self.block[val..val + vlen]);
    }

    /// Makes the value raw bytes of length `len` (extending with zeros, growing with
    /// slack) and lets `f` edit them: APPEND and SETRANGE.
    pub(crate) fn edit_raw<R>(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let deadline = self.deadline();
        let val = if let Value::Str(Str::Int(n)) = self.value() {
            // The integer's text goes straight into the new layout: one block, not two.
            let mut buf = itoa::Buffer::new();
            let text = buf.format(n).as_bytes();
            let val = self.relayout(deadline, RAW, len, 0, Fit::Grow);
            let n = text.len().min(len);
            self.block[val..val + n].copy_from_slice(&text[..n]);
            val
        } else {
            let old = self.layout();
            if len == old.vlen {
                self.block[0] |= RAW;
                old.val
            } else {
                self.relayout(deadline, RAW, len, old.vlen.min(len), Fit::Grow)
            }
        };
        f(&mut self.block[val..val + len])
    }

    /// Sets (`expire_at` > 0) or clears the deadline; the timer becomes
    /// [`TimerHandle::NONE`] (the store cancels the old one and records the new one).
    pub(crate) fn set_deadline(&mut self, expire_at: u64) {
        if expire_at != 0 && self.is_volatile() {
            self.block[1..9].copy_from_slice(&expire_at.to_le_bytes());
            self.set_timer(TimerHandle::NONE);
            return;
        }
        if expire_at == 0 && !self.is_volatile() {
            return;
        }
        let l = self.layout();
        let kind = self.block[0] & KIND;
        let deadline = (expire_at != 0).then_some((expire_at, TimerHandle::NONE));
        // Gaining a deadline may use slack; losing one gives its 16 bytes back.
        let fit = if deadline.is_some() {
            Fit::Similar
        } else {
            Fit::Exact
        };
        self.relayout(deadline, kind, l.vlen, l.vlen, fit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(b: &[u8]) -> Value<'_> {
        Value::Str(Str::Raw(b))
    }

    #[test]
    fn a_small_entry_is_its_bytes_plus_three() {
        let e = Entry::new(b"key:000000000001", raw(&[b'x'; 32]), 0);
        // Length prefix, meta, key length, value length, key, value.
        assert_eq!(e.block_len(), 1 + 3 + 16 + 32);
        assert_eq!(e.key(), b"key:000000000001");
        assert_eq!(e.value(), raw(&[b'x'; 32]));
        assert_eq!(e.expire_at(), None);
        assert!(e.timer().is_none());
        let n = Entry::new(b"counter", Value::Str(Str::Int(-42)), 7);
        assert_eq!(n.block_len(), 1 + 2 + 16 + 7 + 8);
        assert_eq!(n.value(), Value::Str(Str::Int(-42)));
        assert_eq!(n.expire_at(), Some(7));
        assert!(n.is_expired(8) && !n.is_expired(7));
    }

    #[test]
    fn a_similar_value_is_written_in_place_and_appends_are_amortized() {
        let mut e = Entry::new(b"k", raw(&[b'a'; 100]), 0);
        let before = e.block.as_ptr();
        e.set_value(raw(&[b'b'; 90]));
        assert_eq!(e.block.as_ptr(), before, "no new block for a similar size");
        assert_eq!(e.value(), raw(&[b'b'; 90]));
        let mut blocks = 0;
        let mut last = e.block.as_ptr();
        for i in 0..10_000usize {
            let len = 90 + i + 1;
            e.edit_raw(len, |v| v[len - 1] = b'c');
            if e.block.as_ptr() != last {
                blocks += 1;
                last = e.block.as_ptr();
            }
        }
        assert!(blocks <= 8, "{blocks} new blocks for 10,000 appends");
        match e.value() {
            Value::Str(Str::Raw(v)) => {
                assert_eq!(v.len(), 10_090);
                assert!(v[..90].iter().all(|&b| b == b'b'));
                assert!(v[90..].iter().all(|&b| b == b'c'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn losing_a_deadline_gives_its_bytes_back() {
        let mut e = Entry::new(b"k", raw(b"v"), 5);
        let with = e.block_len();
        e.set_deadline(0);
        assert_eq!(e.block_len(), with - DEADLINE_BYTES);
        assert_eq!(
            (e.key(), e.value(), e.expire_at()),
            (&b"k"[..], raw(b"v"), None)
        );
    }

    #[test]
    fn an_integer_becomes_text_when_edited() {
        let mut e = Entry::new(b"n", Value::Str(Str::Int(12)), 0);
        e.edit_raw(4, |v| v[2..].copy_from_slice(b"ab"));
        assert_eq!(e.value(), raw(b"12ab"));
    }

    /// What an entry should hold.
    #[derive(Debug, Clone)]
    struct Model {
        value: Vec<u8>,
        int: Option<i64>,
        expire_at: u64,
        timer: (u32, u32),
        hits: u8,
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(Vec<u8>),
        SetInt(i64),
        Append(Vec<u8>),
        SetRange(usize, Vec<u8>),
        Deadline(u64),
        Replace(Vec<u8>, u64),
        Timer(u32, u32),
        Hits(u8),
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 100..300),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            bytes().prop_map(Op::Set),
            any::<i64>().prop_map(Op::SetInt),
            bytes().prop_map(Op::Append),
            (0usize..200, bytes()).prop_map(|(o, b)| Op::SetRange(o, b)),
            prop_oneof![Just(0u64), 1u64..u64::MAX].prop_map(Op::Deadline),
            (bytes(), prop_oneof![Just(0u64), 1u64..u64::MAX])
                .prop_map(|(b, at)| Op::Replace(b, at)),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Op::Timer(a, b)),
            (0u8..16).prop_map(Op::Hits),
        ]
    }

    proptest! {
        /// Every field reads back what a plain model says after any sequence of writes,
        /// and the block never wastes more than the rules allow.
        #[test]
        fn behaves_like_separate_fields(
            key in prop::collection::vec(any::<u8>(), 0..200),
            ops in prop::collection::vec(op(), 1..40),
        ) {
            let mut e = Entry::new(&key, raw(b""), 0);
            let mut m = Model {
                value: Vec::new(),
                int: None,
                expire_at: 0,
                timer: (u32::MAX, 0),
                hits: 0,
            };
            for op in ops {
                match op {
                    Op::Set(b) => {
                        e.set_value(raw(&b));
                        m.value = b;
                        m.int = None;
                    }
                    Op::SetInt(n) => {
                        e.set_value(Value::Str(Str::Int(n)));
                        m.value = n.to_string().into_bytes();
                        m.int = Some(n);
                    }
                    Op::Append(b) => {
                        let cur = m.value.len();
                        e.edit_raw(cur + b.len(), |v| v[cur..].copy_from_slice(&b));
                        m.value.extend_from_slice(&b);
                        m.int = None;
                    }
                    Op::SetRange(off, b) => {
                        let len = m.value.len().max(off + b.len());
                        e.edit_raw(len, |v| v[off..off + b.len()].copy_from_slice(&b));
                        m.value.resize(len, 0);
                        m.value[off..off + b.len()].copy_from_slice(&b);
                        m.int = None;
                    }
                    Op::Deadline(at) => {
                        e.set_deadline(at);
                        m.expire_at = at;
                        m.timer = (u32::MAX, 0);
                    }
                    Op::Replace(b, at) => {
                        e.replace(raw(&b), at);
                        m.value = b;
                        m.int = None;
                        m.expire_at = at;
                        m.timer = (u32::MAX, 0);
                    }
                    Op::Timer(a, b) => {
                        if m.expire_at != 0 {
                            e.set_timer(TimerHandle::from_parts(a, b));
                            m.timer = (a, b);
                        }
                    }
                    Op::Hits(h) => {
                        e.set_hits(h);
                        m.hits = h;
                    }
                }
                prop_assert_eq!(e.key(), &key[..]);
                match (e.value(), m.int) {
                    (Value::Str(Str::Int(n)), Some(want)) => prop_assert_eq!(n, want),
                    (Value::Str(Str::Raw(v)), None) => prop_assert_eq!(v, &m.value[..]),
                    (got, _) => prop_assert!(false, "{:?} vs {:?}", got, m),
                }
                prop_assert_eq!(e.expire_at(), (m.expire_at != 0).then_some(m.expire_at));
                prop_assert_eq!(e.is_volatile(), m.expire_at != 0);
                let timer = if m.expire_at != 0 { m.timer } else { (u32::MAX, 0) };
                prop_assert_eq!(e.timer().to_parts(), timer);
                prop_assert_eq!(e.hits(), m.hits);
                let stored = if m.int.is_some() { 8 } else { m.value.len() };
                let kind = if m.int.is_some() { INT } else { 0 };
                let hdr = header_len(m.expire_at != 0, kind, key.len(), stored);
                let need = hdr + key.len() + stored;
                let most = 2 * need + 16 + MAX_PREALLOC.min(2 * need) + 4;
                prop_assert!(e.block_len() >= need && e.block_len() <= most, "{} for {}", e.block_len(), need);
            }
        }
    }
}
