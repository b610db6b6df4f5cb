//! Pieces of Redis's RDB format (version 10, as Redis 7.0 writes it) that DUMP-style
//! payloads need: lengths, strings (plain, integer-encoded and LZF-compressed when
//! read; plain when written, as Redis writes them with `rdbcompression no`), and the
//! payload footer (RDB version and CRC-64/Jones).
//!
//! FUNCTION DUMP and FUNCTION RESTORE use it today; snapshots will build on it.

/// The RDB version corekv writes and the newest it reads.
pub const RDB_VERSION: u16 = 10;

/// A function library (`RDB_OPCODE_FUNCTION2`).
pub const OPCODE_FUNCTION2: u8 = 245;
/// Redis 7.0's pre-release function format, refused.
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;

/// CRC-64/Jones as Redis computes it (reflected, polynomial 0xad93d23594c935a9, no
/// final xor): `crc64(0, b"123456789") == 0xe9c6d914c4b8d9ca`.
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
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
    let mut out: Vec<u8> = Vec::with_capacity(len);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
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
