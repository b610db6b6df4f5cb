//! Redis's RDB format (version 10, as Redis 7.0 writes it): lengths, strings (plain,
//! integer-encoded, LZF-compressed), the value types and opcodes, the compact encodings
//! Redis stores small collections in (ziplist, listpack, intset, zipmap), the payload
//! footer (RDB version and CRC-64/Jones), and LZF itself.
//!
//! Pure: [`crate::persist`] builds snapshots and loads them with it; FUNCTION DUMP and
//! FUNCTION RESTORE write and read their payloads with it.

/// The RDB version corekv writes and the newest it reads.
pub const RDB_VERSION: u16 = 10;

/// A function library (`RDB_OPCODE_FUNCTION2`).
pub const OPCODE_FUNCTION2: u8 = 245;
/// Redis 7.0's pre-release function format, refused.
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;

/// The newest RDB version a snapshot may have to be loaded (Redis 7.2 writes 11; the
/// types corekv reads are the same).
pub const RDB_LOAD_VERSION: u16 = 11;

/// Value types (`RDB_TYPE_*`).
pub mod ty {
    /// A string.
    pub const STRING: u8 = 0;
    /// A list, element by element.
    pub const LIST: u8 = 1;
    /// A set, member by member.
    pub const SET: u8 = 2;
    /// A sorted set with scores as text.
    pub const ZSET: u8 = 3;
    /// A hash, field by field.
    pub const HASH: u8 = 4;
    /// A sorted set with binary scores.
    pub const ZSET_2: u8 = 5;
    /// A module value (first format).
    pub const MODULE: u8 = 6;
    /// A module value.
    pub const MODULE_2: u8 = 7;
    /// A small hash as a zipmap (Redis < 2.6).
    pub const HASH_ZIPMAP: u8 = 9;
    /// A small list as a ziplist.
    pub const LIST_ZIPLIST: u8 = 10;
    /// A set of integers as an intset.
    pub const SET_INTSET: u8 = 11;
    /// A small sorted set as a ziplist.
    pub const ZSET_ZIPLIST: u8 = 12;
    /// A small hash as a ziplist.
    pub const HASH_ZIPLIST: u8 = 13;
    /// A list as ziplists (Redis 3.2 to 6.2).
    pub const LIST_QUICKLIST: u8 = 14;
    /// A stream.
    pub const STREAM_LISTPACKS: u8 = 15;
    /// A small hash as a listpack.
    pub const HASH_LISTPACK: u8 = 16;
    /// A small sorted set as a listpack.
    pub const ZSET_LISTPACK: u8 = 17;
    /// A list as listpacks (Redis 7).
    pub const LIST_QUICKLIST_2: u8 = 18;
    /// A stream (Redis 7.0).
    pub const STREAM_LISTPACKS_2: u8 = 19;
    /// A small set as a listpack (Redis 7.2).
    pub const SET_LISTPACK: u8 = 20;
    /// A stream (Redis 7.2).
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// Opcodes between values (`RDB_OPCODE_*`).
pub mod op {
    /// Module auxiliary data.
    pub const MODULE_AUX: u8 = 247;
    /// The next key's LRU idle time.
    pub const IDLE: u8 = 248;
    /// The next key's LFU counter.
    pub const FREQ: u8 = 249;
    /// An auxiliary field (name, value).
    pub const AUX: u8 = 250;
    /// Hash table sizes of the database that follows.
    pub const RESIZEDB: u8 = 251;
    /// The next key's deadline, Unix ms.
    pub const EXPIRETIME_MS: u8 = 252;
    /// The next key's deadline, Unix s.
    pub const EXPIRETIME: u8 = 253;
    /// The database of the keys that follow.
    pub const SELECTDB: u8 = 254;
    /// End of the file (the checksum follows).
    pub const EOF: u8 = 255;
}

/// CRC-64/Jones as Redis computes it (reflected, polynomial 0xad93d23594c935a9, no
/// final xor): `crc64(0, b"123456789") == 0xe9c6d914c4b8d9ca`.
///
/// Slicing by 8: eight bytes a step through eight 256-entry tables (a snapshot's whole
/// file goes through it).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let t = &CRC_TABLES;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = crc ^ u64::from_le_bytes(c.try_into().expect("8 bytes"));
        crc = t[7][(v & 0xff) as usize]
            ^ t[6][((v >> 8) & 0xff) as usize]
            ^ t[5][((v >> 16) & 0xff) as usize]
            ^ t[4][((v >> 24) & 0xff) as usize]
            ^ t[3][((v >> 32) & 0xff) as usize]
            ^ t[2][((v >> 40) & 0xff) as usize]
            ^ t[1][((v >> 48) & 0xff) as usize]
            ^ t[0][(v >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// `CRC_TABLES[0]` is the byte-at-a-time table of the reflected polynomial; table `k`
/// advances a byte's contribution by `k` more bytes.
static CRC_TABLES: [[u64; 256]; 8] = crc_tables();

const fn crc_tables() -> [[u64; 256]; 8] {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            k += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
            i += 1;
        }
        k += 1;
    }
    t
}

/// Appends an RDB length.
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a string, stored verbatim.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends a string as Redis saves one: a short canonical integer in its integer
/// encoding, a longer string LZF-compressed when `compress` (`rdbcompression yes`) and
/// compression saves at least 4 bytes, otherwise verbatim.
pub fn put_string_packed(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if let Some(n) = canonical_int(s) {
        if let Ok(v) = i8::try_from(n) {
            out.extend_from_slice(&[0xc0, v as u8]);
            return;
        }
        if let Ok(v) = i16::try_from(n) {
            out.push(0xc1);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
        if let Ok(v) = i32::try_from(n) {
            out.push(0xc2);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
    }
    if compress && s.len() > 20 {
        if let Some(packed) = lzf_compress(s, s.len() - 4) {
            out.push(0xc3);
            put_len(out, packed.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    put_string(out, s);
}

/// `s` as an integer, if it is one written the way Redis writes integers (at most 11
/// characters, no sign on zero, no leading zeros or `+`).
fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 11 {
        return None;
    }
    let n: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    let mut buf = itoa::Buffer::new();
    (buf.format(n).as_bytes() == s).then_some(n)
}

/// Appends the footer of a DUMP payload: the RDB version and the CRC of everything.
pub fn seal(out: &mut Vec<u8>) {
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The body of a DUMP payload whose footer checks out (version not newer than ours,
/// CRC right).
pub fn unseal(payload: &[u8]) -> Option<&[u8]> {
    let body_len = payload.len().checked_sub(10)?;
    let footer = &payload[body_len..];
    if u16::from_le_bytes([footer[0], footer[1]]) > RDB_VERSION {
        return None;
    }
    let crc = u64::from_le_bytes(footer[2..10].try_into().ok()?);
    (crc == crc64(0, &payload[..body_len + 2])).then_some(&payload[..body_len])
}

/// Reads RDB values from a buffer.
pub struct Reader<'b> {
    b: &'b [u8],
    pos: usize,
}

/// What a length read found.
enum Len {
    Plain(u64),
    /// A special encoding (integer or LZF string).
    Encoded(u8),
}

impl<'b> Reader<'b> {
    /// A reader at the start of `b`.
    pub fn new(b: &'b [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// One byte (a type or opcode).
    pub fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn len(&mut self) -> Option<Len> {
        let b = self.byte()?;
        Some(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain(u64::from(b & 0x3f) << 8 | u64::from(self.byte()?)),
            2 if b == 0x80 => Len::Plain(u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().ok()?,
            ))),
            2 if b == 0x81 => Len::Plain(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            2 => return None,
            _ => Len::Encoded(b & 0x3f),
        })
    }

    /// How many bytes were read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'b [u8]> {
        self.take(n)
    }

    /// A length (an element count, a database number).
    pub fn length(&mut self) -> Option<u64> {
        match self.len()? {
            Len::Plain(n) => Some(n),
            Len::Encoded(_) => None,
        }
    }

    /// A count of elements still to read: refused when not even one byte per element
    /// is left, so a corrupt count cannot make a reader reserve memory for it.
    pub fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.length()?).ok()?;
        (n <= self.b.len() - self.pos).then_some(n)
    }

    /// A little-endian `u64` (a deadline in ms).
    pub fn u64_le(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A little-endian `u32` (a deadline in s).
    pub fn u32_le(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A binary double (`ZSET_2` scores).
    pub fn binary_double(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A double as text (`ZSET` scores): a length byte, 253 for NaN, 254 for +inf, 255
    /// for -inf.
    pub fn text_double(&mut self) -> Option<f64> {
        match self.byte()? {
            253 => Some(f64::NAN),
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            n => std::str::from_utf8(self.take(usize::from(n))?)
                .ok()?
                .trim()
                .parse()
                .ok(),
        }
    }

    /// Steps over a string without decoding it.
    pub fn skip_string(&mut self) -> Option<()> {
        match self.len()? {
            Len::Plain(n) => self.take(usize::try_from(n).ok()?).map(drop),
            Len::Encoded(0) => self.take(1).map(drop),
            Len::Encoded(1) => self.take(2).map(drop),
            Len::Encoded(2) => self.take(4).map(drop),
            Len::Encoded(3) => {
                let clen = self.length()?;
                self.length()?;
                self.take(usize::try_from(clen).ok()?).map(drop)
            }
            Len::Encoded(_) => None,
        }
    }

    /// A string in any of its encodings.
    pub fn string(&mut self) -> Option<Vec<u8>> {
        match self.len()? {
            Len::Plain(n) => Some(self.take(usize::try_from(n).ok()?)?.to_vec()),
            Len::Encoded(0) => Some((self.byte()? as i8).to_string().into_bytes()),
            Len::Encoded(1) => {
                let v = i16::from_le_bytes(self.take(2)?.try_into().ok()?);
                Some(v.to_string().into_bytes())
            }
            Len::Encoded(2) => {
                let v = i32::from_le_bytes(self.take(4)?.try_into().ok()?);
                Some(v.to_string().into_bytes())
            }
            Len::Encoded(3) => {
                let Len::Plain(clen) = self.len()? else {
                    return None;
                };
                let Len::Plain(len) = self.len()? else {
                    return None;
                };
                let data = self.take(usize::try_from(clen).ok()?)?;
                lzf_decompress(data, usize::try_from(len).ok()?)
            }
            Len::Encoded(_) => None,
        }
    }
}

/// LZF decompression (the format Redis's RDB strings use): literal runs and back
/// references; `None` unless the output is exactly `len` bytes.
pub fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    // The length comes from the input: reserve no more than the input could expand to.
    let mut out: Vec<u8> = Vec::with_capacity(len.min(input.len().saturating_mul(64)));
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let run = input.get(i..i + ctrl + 1)?;
            out.extend_from_slice(run);
            i += ctrl + 1;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += usize::from(*input.get(i)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..n + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// LZF compression, as liblzf's format defines it (what [`lzf_decompress`] reads):
/// literal runs of up to 32 bytes and back references of 3 to 264 bytes at most 8 KiB
/// back, found through a hash of the next three bytes. `None` when the result would be
/// longer than `max_out`.
pub fn lzf_compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = 264;
    // A table about the input's size (at most 2^14 entries): short strings, the common
    // case, do not pay for clearing a large one.
    let bits = (usize::BITS - input.len().leading_zeros()).clamp(4, 14);
    let mut table = vec![0u32; 1 << bits];
    let hash = |p: &[u8]| {
        let v = u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]);
        (v.wrapping_mul(0x9e37_79b1) >> (32 - bits)) as usize
    };
    let mut out = Vec::with_capacity(max_out.min(input.len()));
    let flush = |out: &mut Vec<u8>, lit: &[u8]| {
        for run in lit.chunks(32) {
            out.push((run.len() - 1) as u8);
            out.extend_from_slice(run);
        }
    };
    let (mut i, mut lit) = (0, 0);
    while i + 2 < input.len() {
        let h = hash(&input[i..]);
        // Positions are stored plus one, so 0 means none.
        let cand = table[h] as usize;
        table[h] = (i + 1) as u32;
        if cand > 0 && i - (cand - 1) <= MAX_OFF && input[cand - 1..cand + 2] == input[i..i + 3] {
            let from = cand - 1;
            let max = MAX_REF.min(input.len() - i);
            let mut n = 3;
            while n < max && input[from + n] == input[i + n] {
                n += 1;
            }
            flush(&mut out, &input[lit..i]);
            let off = i - from - 1;
            let l = n - 2;
            if l < 7 {
                out.push((l << 5 | off >> 8) as u8);
            } else {
                out.push((7 << 5 | off >> 8) as u8);
                out.push((l - 7) as u8);
            }
            out.push(off as u8);
            i += n;
            lit = i;
        } else {
            i += 1;
        }
        if out.len() > max_out {
            return None;
        }
    }
    flush(&mut out, &input[lit..]);
    (out.len() <= max_out).then_some(out)
}

/// The elements of a Redis listpack (7.0's small hashes, sorted sets and list nodes),
/// integers written as text; `None` if it is malformed.
pub fn listpack_entries(lp: &[u8]) -> Option<Vec<Vec<u8>>> {
    let total = u32::from_le_bytes(lp.get(..4)?.try_into().ok()?) as usize;
    if total != lp.len() || total < 7 || lp[total - 1] != 0xff {
        return None;
    }
    let mut out = Vec::new();
    let mut p = 6;
    while lp[p] != 0xff {
        let b = lp[p];
        let (entry, len): (Vec<u8>, usize) = if b & 0x80 == 0 {
            (int_text(i64::from(b & 0x7f)), 1)
        } else if b & 0xc0 == 0x80 {
            let n = usize::from(b & 0x3f);
            (lp.get(p + 1..p + 1 + n)?.to_vec(), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let v = (i64::from(b & 0x1f) << 8 | i64::from(*lp.get(p + 1)?)) << 51 >> 51;
            (int_text(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let n = usize::from(b & 0x0f) << 8 | usize::from(*lp.get(p + 1)?);
            (lp.get(p + 2..p + 2 + n)?.to_vec(), 2 + n)
        } else {
            let int = |w: usize| lp.get(p + 1..p + 1 + w).map(le_int);
            match b {
                0xf0 => {
                    let n = u32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                    (lp.get(p + 5..p + 5 + n)?.to_vec(), 5 + n)
                }
                0xf1 => (int_text(int(2)?), 3),
                0xf2 => (int_text(int(3)?), 4),
                0xf3 => (int_text(int(4)?), 5),
                0xf4 => (int_text(int(8)?), 9),
                _ => return None,
            }
        };
        // The back length: the entry's length in 7-bit groups.
        let back = match len {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        };
        p += len + back;
        if p >= total {
            return None;
        }
        out.push(entry);
    }
    (p == total - 1).then_some(out)
}

/// The elements of a Redis ziplist (small collections before Redis 7), integers
/// written as text; `None` if it is malformed.
pub fn ziplist_entries(zl: &[u8]) -> Option<Vec<Vec<u8>>> {
    let total = u32::from_le_bytes(zl.get(..4)?.try_into().ok()?) as usize;
    if total != zl.len() || total < 11 || zl[total - 1] != 0xff {
        return None;
    }
    let mut out = Vec::new();
    let mut p = 10;
    while *zl.get(p)? != 0xff {
        p += if zl[p] < 254 { 1 } else { 5 };
        let b = *zl.get(p)?;
        let le = |w: usize| zl.get(p + 1..p + 1 + w).map(le_int);
        let (entry, len) = match b >> 6 {
            0 => {
                let n = usize::from(b & 0x3f);
                (zl.get(p + 1..p + 1 + n)?.to_vec(), 1 + n)
            }
            1 => {
                let n = usize::from(b & 0x3f) << 8 | usize::from(*zl.get(p + 1)?);
                (zl.get(p + 2..p + 2 + n)?.to_vec(), 2 + n)
            }
            2 => {
                let n = u32::from_be_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                (zl.get(p + 5..p + 5 + n)?.to_vec(), 5 + n)
            }
            _ => match b {
                0xc0 => (int_text(le(2)?), 3),
                0xd0 => (int_text(le(4)?), 5),
                0xe0 => (int_text(le(8)?), 9),
                0xf0 => (int_text(le(3)?), 4),
                0xfe => (int_text(le(1)?), 2),
                0xf1..=0xfd => (int_text(i64::from(b & 0x0f) - 1), 1),
                _ => return None,
            },
        };
        p += len;
        out.push(entry);
    }
    (p == total - 1).then_some(out)
}

/// The members of a Redis intset, as text; `None` if it is malformed.
pub fn intset_members(is: &[u8]) -> Option<Vec<Vec<u8>>> {
    let w = u32::from_le_bytes(is.get(..4)?.try_into().ok()?) as usize;
    let n = u32::from_le_bytes(is.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(w, 2 | 4 | 8) || is.len() != 8 + n.checked_mul(w)? {
        return None;
    }
    Some(
        is[8..]
            .chunks_exact(w)
            .map(|c| int_text(le_int(c)))
            .collect(),
    )
}

/// The fields and values of a zipmap (hashes written by Redis before 2.6), in order;
/// `None` if it is malformed.
pub fn zipmap_entries(zm: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut p = 1;
    loop {
        let len = |p: &mut usize| -> Option<Option<usize>> {
            let b = *zm.get(*p)?;
            *p += 1;
            Some(match b {
                255 => None,
                254 => {
                    let n = u32::from_le_bytes(zm.get(*p..*p + 4)?.try_into().ok()?);
                    *p += 4;
                    Some(n as usize)
                }
                n => Some(usize::from(n)),
            })
        };
        let Some(klen) = len(&mut p)? else {
            break;
        };
        out.push(zm.get(p..p + klen)?.to_vec());
        p += klen;
        let vlen = len(&mut p)??;
        let free = usize::from(*zm.get(p)?);
        out.push(zm.get(p + 1..p + 1 + vlen)?.to_vec());
        p += 1 + vlen + free;
    }
    (out.len() % 2 == 0).then_some(out)
}

/// A little-endian two's-complement integer of 1 to 8 bytes (the compact encodings').
fn le_int(bytes: &[u8]) -> i64 {
    let mut v = 0i64;
    for (k, &x) in bytes.iter().enumerate() {
        v |= i64::from(x) << (8 * k);
    }
    let shift = 64 - 8 * bytes.len() as u32;
    if shift == 0 {
        v
    } else {
        v << shift >> shift
    }
}

fn int_text(v: i64) -> Vec<u8> {
    itoa::Buffer::new().format(v).as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        // Any split gives the same CRC as the bitwise definition.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let bitwise = data.iter().fold(0u64, |mut crc, &b| {
            crc ^= u64::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5
                } else {
                    crc >> 1
                };
            }
            crc
        });
        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            assert_eq!(
                crc64(crc64(0, &data[..cut]), &data[cut..]),
                bitwise,
                "{cut}"
            );
        }
    }

    #[test]
    fn lengths_and_strings_round_trip() {
        for n in [0u64, 63, 64, 16383, 16384, 1 << 32] {
            let mut b = Vec::new();
            put_len(&mut b, n);
            let mut r = Reader::new(&b);
            assert!(matches!(r.len(), Some(Len::Plain(m)) if m == n), "{n}");
        }
        let mut b = Vec::new();
        put_string(&mut b, b"hello");
        b.extend_from_slice(&[0xc0, 0xfe]);
        let mut r = Reader::new(&b);
        assert_eq!(r.string().as_deref(), Some(&b"hello"[..]));
        assert_eq!(r.string().as_deref(), Some(&b"-2"[..]));
        assert!(r.is_empty());
    }

    #[test]
    fn lzf_compression_round_trips() {
        let mut rng = fastrand::Rng::with_seed(7);
        for n in [0usize, 1, 2, 3, 21, 100, 5000, 70_000] {
            for alphabet in [2u8, 4, 255] {
                let input: Vec<u8> = (0..n)
                    .map(|_| rng.u8(..alphabet).wrapping_add(b'a'))
                    .collect();
                match lzf_compress(&input, input.len() + input.len() / 16 + 64) {
                    Some(packed) => assert_eq!(
                        lzf_decompress(&packed, input.len()).as_deref(),
                        Some(&input[..]),
                        "n {n} alphabet {alphabet}"
                    ),
                    None => panic!("incompressible within bounds: n {n}"),
                }
            }
        }
        let repetitive = b"abcabcabcabcabcabcabcabcabcabcabcabc".repeat(50);
        let packed = lzf_compress(&repetitive, repetitive.len()).expect("compresses");
        assert!(packed.len() < repetitive.len() / 10);
        // Strings as Redis saves them: integers encoded, long ones compressed.
        let mut b = Vec::new();
        for s in [&b"-129"[..], b"40000", b"0123", b"12345678901", &repetitive] {
            put_string_packed(&mut b, s, true);
        }
        assert_eq!(&b[..3], &[0xc1, 0x7f, 0xff]);
        let mut r = Reader::new(&b);
        assert_eq!(r.string().as_deref(), Some(&b"-129"[..]));
        assert_eq!(r.string().as_deref(), Some(&b"40000"[..]));
        assert_eq!(r.string().as_deref(), Some(&b"0123"[..]));
        assert_eq!(r.string().as_deref(), Some(&b"12345678901"[..]));
        assert_eq!(r.string().as_deref(), Some(&repetitive[..]));
        assert!(r.is_empty());
    }

    #[test]
    fn compact_encodings_decode_as_redis_writes_them() {
        // A listpack with 7-bit, 13-bit, 16-bit ints and a 6-bit string.
        let mut lp = vec![0, 0, 0, 0, 4, 0];
        lp.extend_from_slice(&[5, 1]);
        lp.extend_from_slice(&[0xdf, 0xff, 2]); // 13-bit -1
        lp.extend_from_slice(&[0xf1, 0x39, 0x30, 3]); // 12345
        lp.extend_from_slice(&[0x82, b'h', b'i', 3]);
        lp.push(0xff);
        let n = lp.len() as u32;
        lp[..4].copy_from_slice(&n.to_le_bytes());
        let got = listpack_entries(&lp).expect("valid");
        assert_eq!(
            got,
            vec![
                b"5".to_vec(),
                b"-1".to_vec(),
                b"12345".to_vec(),
                b"hi".to_vec()
            ]
        );
        lp[6] = 0xf9;
        assert_eq!(listpack_entries(&lp), None);
        // A ziplist: "ab", immediate 7, int16 -2.
        let mut zl = vec![0; 10];
        zl.extend_from_slice(&[0, 0x02, b'a', b'b']);
        zl.extend_from_slice(&[4, 0xf8]);
        zl.extend_from_slice(&[2, 0xc0, 0xfe, 0xff]);
        zl.push(0xff);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        let got = ziplist_entries(&zl).expect("valid");
        assert_eq!(got, vec![b"ab".to_vec(), b"7".to_vec(), b"-2".to_vec()]);
        // An intset of two 16-bit members.
        let is = [2, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 7, 0];
        assert_eq!(
            intset_members(&is),
            Some(vec![b"-1".to_vec(), b"7".to_vec()])
        );
        assert_eq!(intset_members(&is[..11]), None);
    }

    #[test]
    fn lzf_back_references_and_payload_footers() {
        // "abcabcabc": a literal run of 3, then a back reference of 6 bytes 3 back.
        let packed = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(
            lzf_decompress(&packed, 9).as_deref(),
            Some(&b"abcabcabc"[..])
        );
        assert_eq!(lzf_decompress(&packed, 8), None);
        let mut p = vec![1, 2, 3];
        seal(&mut p);
        assert_eq!(unseal(&p), Some(&[1u8, 2, 3][..]));
        p[0] = 9;
        assert_eq!(unseal(&p), None);
    }
}
