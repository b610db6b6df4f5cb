//! Reply encoding for RESP2 and RESP3.
//!
//! A [`Reply`] appends encoded values to a byte buffer. Command code calls the same methods
//! whatever protocol the client chose with `HELLO`; the few types RESP2 lacks (null, map,
//! set, double, boolean, verbatim string) are written the way Redis writes them to RESP2
//! clients. Nothing here allocates beyond growing the output buffer.

use crate::number::{push_i64, push_u64};

/// The reply protocol a connection speaks: RESP2 until `HELLO 3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Proto {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Proto {
    /// The protocol number clients use (2 or 3).
    pub fn version(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

/// Appends replies for one protocol to an output buffer.
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    proto: Proto,
}

impl<'a> Reply<'a> {
    /// A writer appending to `out` in `proto`.
    #[inline]
    pub fn new(out: &'a mut Vec<u8>, proto: Proto) -> Self {
        Reply { out, proto }
    }

    /// The protocol replies are written in.
    #[inline]
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The buffer written so far.
    #[inline]
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// Bytes written so far (the whole buffer, not only by this writer).
    #[inline]
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether the buffer is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// `+OK`.
    #[inline]
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string: `+text`. `text` must not contain CR or LF.
    #[inline]
    pub fn simple(&mut self, text: &[u8]) {
        self.out.push(b'+');
        self.out.extend_from_slice(text);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error: `-text`, where `text` starts with its code (`ERR …`, `WRONGTYPE …`).
    /// CR and LF inside `text` become spaces, as Redis makes them.
    pub fn error(&mut self, text: &[u8]) {
        self.out.push(b'-');
        let start = self.out.len();
        self.out.extend_from_slice(text);
        for b in &mut self.out[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error with the `ERR` code: `-ERR text`.
    pub fn err(&mut self, text: &str) {
        self.out.extend_from_slice(b"-ERR ");
        let start = self.out.len();
        self.out.extend_from_slice(text.as_bytes());
        for b in &mut self.out[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer: `:n`.
    #[inline]
    pub fn int(&mut self, n: i64) {
        self.out.push(b':');
        push_i64(self.out, n);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string: `$len` then the bytes.
    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.out.push(b'$');
        push_u64(self.out, data.len() as u64);
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal text of `n` (how Redis returns integer-encoded
    /// strings).
    #[inline]
    pub fn bulk_int(&mut self, n: i64) {
        let mut buf = itoa::Buffer::new();
        self.bulk(buf.format(n).as_bytes());
    }

    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Proto::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
            Proto::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// An array header for `n` elements; the elements follow.
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n);
    }

    /// A push header for `n` elements (`>n`; an array in RESP2): pub/sub messages.
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n),
            Proto::Resp3 => self.header(b'>', n),
        }
    }

    /// A map header for `n` key/value pairs (`%n`; a flat array of `2n` in RESP2).
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n * 2),
            Proto::Resp3 => self.header(b'%', n),
        }
    }

    /// A set header for `n` elements (`~n`; an array in RESP2).
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n),
            Proto::Resp3 => self.header(b'~', n),
        }
    }

    /// A boolean (`#t`/`#f`; `:1`/`:0` in RESP2).
    pub fn boolean(&mut self, b: bool) {
        match self.proto {
            Proto::Resp2 => self.int(i64::from(b)),
            Proto::Resp3 => self
                .out
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// A verbatim string with a three-letter format (`=len\r\ntxt:…`; a bulk string in
    /// RESP2). INFO and CLIENT LIST reply this way.
    pub fn verbatim(&mut self, format: &[u8; 3], text: &[u8]) {
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                self.header(b'=', text.len() + 4);
                self.out.extend_from_slice(format);
                self.out.push(b':');
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Appends bytes that are already an encoded reply.
    #[inline]
    pub fn raw(&mut self, encoded: &[u8]) {
        self.out.extend_from_slice(encoded);
    }

    #[inline]
    fn header(&mut self, tag: u8, n: usize) {
        self.out.push(tag);
        push_u64(self.out, n as u64);
        self.out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(proto: Proto, f: impl FnOnce(&mut Reply)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut Reply::new(&mut out, proto));
        out
    }

    #[test]
    fn scalars() {
        use Proto::*;
        assert_eq!(enc(Resp2, |r| r.ok()), b"+OK\r\n");
        assert_eq!(enc(Resp2, |r| r.int(-5)), b":-5\r\n");
        assert_eq!(enc(Resp2, |r| r.bulk(b"hi")), b"$2\r\nhi\r\n");
        assert_eq!(enc(Resp2, |r| r.bulk(b"")), b"$0\r\n\r\n");
        assert_eq!(enc(Resp2, |r| r.bulk_int(-12)), b"$3\r\n-12\r\n");
        assert_eq!(enc(Resp2, |r| r.null()), b"$-1\r\n");
        assert_eq!(enc(Resp3, |r| r.null()), b"_\r\n");
        assert_eq!(enc(Resp2, |r| r.null_array()), b"*-1\r\n");
        assert_eq!(enc(Resp2, |r| r.boolean(true)), b":1\r\n");
        assert_eq!(enc(Resp3, |r| r.boolean(false)), b"#f\r\n");
    }

    #[test]
    fn errors_never_break_the_line() {
        assert_eq!(
            enc(Proto::Resp2, |r| r.error(b"ERR a\r\nb")),
            b"-ERR a  b\r\n"
        );
        assert_eq!(enc(Proto::Resp2, |r| r.err("x\ny")), b"-ERR x y\r\n");
    }

    #[test]
    fn aggregates_by_protocol() {
        assert_eq!(enc(Proto::Resp2, |r| r.map(2)), b"*4\r\n");
        assert_eq!(enc(Proto::Resp3, |r| r.map(2)), b"%2\r\n");
        assert_eq!(enc(Proto::Resp2, |r| r.set(3)), b"*3\r\n");
        assert_eq!(enc(Proto::Resp3, |r| r.set(3)), b"~3\r\n");
        assert_eq!(
            enc(Proto::Resp3, |r| r.verbatim(b"txt", b"a:1")),
            b"=7\r\ntxt:a:1\r\n"
        );
        assert_eq!(
            enc(Proto::Resp2, |r| r.verbatim(b"txt", b"a:1")),
            b"$3\r\na:1\r\n"
        );
    }
}
