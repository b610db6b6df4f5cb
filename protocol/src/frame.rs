//! Parsing replies: the client side of RESP2 and RESP3.
//!
//! The server itself only needs [`frame_len`], to find where one encoded reply ends when it
//! gathers the parts of a multi-shard command. Tests, the differential harness and the load
//! generator need whole values, which [`parse`] builds as [`Frame`]s.

use crate::number::{parse_i64, push_i64, push_u64};

/// A malformed reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A type byte RESP does not define.
    UnknownType(u8),
    /// A length or integer line that does not parse.
    BadNumber,
    /// Aggregates nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A payload not followed by CRLF.
    MissingCrlf,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::UnknownType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            FrameError::BadNumber => f.write_str("bad number in RESP header"),
            FrameError::TooDeep => f.write_str("RESP aggregates nested too deep"),
            FrameError::MissingCrlf => f.write_str("RESP payload not followed by CRLF"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Deepest aggregate nesting [`parse`] accepts.
pub const MAX_DEPTH: usize = 64;

/// One decoded reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(Vec<u8>),
    /// `-text`
    Error(Vec<u8>),
    /// `:n`
    Integer(i64),
    /// `$len` payload
    Bulk(Vec<u8>),
    /// `$-1` (RESP2 null bulk)
    NullBulk,
    /// `*-1` (RESP2 null array)
    NullArray,
    /// `_` (RESP3 null)
    Null,
    /// `*n`
    Array(Vec<Frame>),
    /// `%n` (RESP3)
    Map(Vec<(Frame, Frame)>),
    /// `~n` (RESP3)
    Set(Vec<Frame>),
    /// `>n` (RESP3)
    Push(Vec<Frame>),
    /// `,text` (RESP3), kept as text
    Double(Vec<u8>),
    /// `#t` / `#f` (RESP3)
    Boolean(bool),
    /// `(text` (RESP3)
    BigNumber(Vec<u8>),
    /// `=len\r\nfmt:text` (RESP3)
    Verbatim([u8; 3], Vec<u8>),
}

/// What a header line says comes next.
enum Head<'a> {
    /// A complete scalar ending at the given offset.
    Done(usize, Scalar<'a>),
    /// An aggregate of `n` children starting at the given offset (`n` counts map keys and
    /// values separately).
    Aggregate(usize, u8, usize),
}

enum Scalar<'a> {
    Line(u8, &'a [u8]),
    Bulk(u8, &'a [u8]),
    Null(u8),
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = memchr::memchr(b'\r', &buf[i..]) {
        let cr = i + off;
        if cr + 1 >= buf.len() {
            return None;
        }
        if buf[cr + 1] == b'\n' {
            return Some(cr);
        }
        i = cr + 1;
    }
    None
}

fn read_head(buf: &[u8], pos: usize) -> Result<Option<Head<'_>>, FrameError> {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(cr) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..cr];
    let next = cr + 2;
    match tag {
        b'+' | b'-' | b':' | b',' | b'#' | b'(' => {
            if tag == b':' && parse_i64(line).is_none() {
                return Err(FrameError::BadNumber);
            }
            Ok(Some(Head::Done(next, Scalar::Line(tag, line))))
        }
        b'_' => Ok(Some(Head::Done(next, Scalar::Null(tag)))),
        b'$' | b'=' => {
            let n = parse_i64(line).ok_or(FrameError::BadNumber)?;
            if n < 0 {
                return Ok(Some(Head::Done(next, Scalar::Null(tag))));
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(FrameError::MissingCrlf);
            }
            Ok(Some(Head::Done(
                end + 2,
                Scalar::Bulk(tag, &buf[next..end]),
            )))
        }
        b'*' | b'%' | b'~' | b'>' => {
            let n = parse_i64(line).ok_or(FrameError::BadNumber)?;
            if n < 0 {
                return Ok(Some(Head::Done(next, Scalar::Null(tag))));
            }
            let n = if tag == b'%' {
                n as usize * 2
            } else {
                n as usize
            };
            Ok(Some(Head::Aggregate(next, tag, n)))
        }
        other => Err(FrameError::UnknownType(other)),
    }
}

/// Length of the first complete reply in `buf`, or `None` if `buf` holds only part of one.
/// Does not allocate.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut pos = 0;
    let mut pending: usize = 1;
    while pending > 0 {
        pending -= 1;
        match read_head(buf, pos)? {
            None => return Ok(None),
            Some(Head::Done(next, _)) => pos = next,
            Some(Head::Aggregate(next, _, n)) => {
                pos = next;
                pending = pending.checked_add(n).ok_or(FrameError::BadNumber)?;
            }
        }
    }
    Ok(Some(pos))
}

/// Parses the first complete reply in `buf`; returns it with its length, or `None` if `buf`
/// holds only part of one.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    if depth > MAX_DEPTH {
        return Err(FrameError::TooDeep);
    }
    let Some(head) = read_head(buf, pos)? else {
        return Ok(None);
    };
    match head {
        Head::Done(next, scalar) => {
            let frame = match scalar {
                Scalar::Line(b'+', l) => Frame::Simple(l.to_vec()),
                Scalar::Line(b'-', l) => Frame::Error(l.to_vec()),
                Scalar::Line(b':', l) => Frame::Integer(parse_i64(l).unwrap_or_default()),
                Scalar::Line(b',', l) => Frame::Double(l.to_vec()),
                Scalar::Line(b'#', l) => Frame::Boolean(l == b"t"),
                Scalar::Line(_, l) => Frame::BigNumber(l.to_vec()),
                Scalar::Bulk(b'$', data) => Frame::Bulk(data.to_vec()),
                Scalar::Bulk(_, data) => {
                    if data.len() < 4 || data[3] != b':' {
                        return Err(FrameError::BadNumber);
                    }
                    Frame::Verbatim([data[0], data[1], data[2]], data[4..].to_vec())
                }
                Scalar::Null(b'$') => Frame::NullBulk,
                Scalar::Null(b'*') => Frame::NullArray,
                Scalar::Null(_) => Frame::Null,
            };
            Ok(Some((frame, next)))
        }
        Head::Aggregate(mut next, tag, n) => {
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let Some((item, after)) = parse_at(buf, next, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                next = after;
            }
            let frame = match tag {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                _ => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Frame::Map(pairs)
                }
            };
            Ok(Some((frame, next)))
        }
    }
}

impl Frame {
    /// Appends the wire form of this reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn line(out: &mut Vec<u8>, tag: u8, text: &[u8]) {
            out.push(tag);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        fn head(out: &mut Vec<u8>, tag: u8, n: usize) {
            out.push(tag);
            push_u64(out, n as u64);
            out.extend_from_slice(b"\r\n");
        }
        match self {
            Frame::Simple(s) => line(out, b'+', s),
            Frame::Error(s) => line(out, b'-', s),
            Frame::Integer(n) => {
                out.push(b':');
                push_i64(out, *n);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Bulk(data) => {
                head(out, b'$', data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Frame::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Null => out.extend_from_slice(b"_\r\n"),
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                let tag = match self {
                    Frame::Array(_) => b'*',
                    Frame::Set(_) => b'~',
                    _ => b'>',
                };
                head(out, tag, items.len());
                for item in items {
                    item.encode(out);
                }
            }
            Frame::Map(pairs) => {
                head(out, b'%', pairs.len());
                for (k, v) in pairs {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Frame::Double(text) => line(out, b',', text),
            Frame::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
            Frame::BigNumber(text) => line(out, b'(', text),
            Frame::Verbatim(format, text) => {
                head(out, b'=', text.len() + 4);
                out.extend_from_slice(format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// The bytes of a bulk, simple or verbatim string; `None` for other types.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(_, b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths_of_complete_and_partial_frames() {
        assert_eq!(frame_len(b"+OK\r\n").unwrap(), Some(5));
        assert_eq!(frame_len(b"+OK\r").unwrap(), None);
        assert_eq!(frame_len(b"$3\r\nabc\r\n+").unwrap(), Some(9));
        assert_eq!(frame_len(b"$3\r\nab").unwrap(), None);
        assert_eq!(frame_len(b"*2\r\n:1\r\n$-1\r\nrest").unwrap(), Some(13));
        assert_eq!(frame_len(b"*2\r\n:1\r\n").unwrap(), None);
        assert_eq!(frame_len(b"%1\r\n+a\r\n:1\r\n").unwrap(), Some(12));
        assert_eq!(frame_len(b"*-1\r\n").unwrap(), Some(5));
        assert_eq!(frame_len(b"?x\r\n"), Err(FrameError::UnknownType(b'?')));
    }

    #[test]
    fn parses_nested_values() {
        let (f, n) = parse(b"*3\r\n$1\r\na\r\n_\r\n%1\r\n+k\r\n#t\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(n, 26);
        assert_eq!(
            f,
            Frame::Array(vec![
                Frame::Bulk(b"a".to_vec()),
                Frame::Null,
                Frame::Map(vec![(Frame::Simple(b"k".to_vec()), Frame::Boolean(true))]),
            ])
        );
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            "[a-zA-Z0-9 ]{0,8}".prop_map(|s| Frame::Simple(s.into_bytes())),
            "[a-zA-Z0-9 ]{0,8}".prop_map(|s| Frame::Error(s.into_bytes())),
            any::<i64>().prop_map(Frame::Integer),
            prop::collection::vec(any::<u8>(), 0..16).prop_map(Frame::Bulk),
            Just(Frame::NullBulk),
            Just(Frame::NullArray),
            Just(Frame::Null),
            any::<bool>().prop_map(Frame::Boolean),
            "[a-z]{0,8}".prop_map(|s| Frame::Verbatim(*b"txt", s.into_bytes())),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Array),
                prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Set),
                prop::collection::vec((inner.clone(), inner), 0..3).prop_map(Frame::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(f in arb_frame()) {
            let mut wire = Vec::new();
            f.encode(&mut wire);
            prop_assert_eq!(frame_len(&wire).unwrap(), Some(wire.len()));
            prop_assert_eq!(parse(&wire).unwrap(), Some((f, wire.len())));
            for cut in 0..wire.len() {
                prop_assert_eq!(frame_len(&wire[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = frame_len(&input);
            let _ = parse(&input);
        }
    }
}
