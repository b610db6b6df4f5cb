//! Incremental parser for client requests: RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! and the inline form (`GET k\r\n`) that `telnet` and `redis-cli` in pipe mode use.
//!
//! The parser is an explicit state machine over the connection's read buffer. It never
//! copies an argument: a parsed request is a run of [`Span`]s, byte ranges into that buffer,
//! valid until [`RequestParser::compact`] drops the bytes of finished requests. Partial
//! requests keep their state across reads, so a 100 MB value arriving in 16 KB pieces is
//! scanned once, not once per piece.
//!
//! Every quirk and error text follows Redis 7 (`processInlineBuffer`,
//! `processMultibulkBuffer` and `sdssplitargs`): `*0` and blank inline lines are skipped,
//! the two bytes after a bulk payload are not checked, lines end at the first NUL as C
//! strings do. Each limit is a [`Limits`] field so the server can expose it as a setting.

use std::ops::Range;

use bytes::{Buf, BytesMut};

use crate::number::parse_i64;

/// Sizes a client may not exceed. Going over any of them is a protocol error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk argument (`proto-max-bulk-len`, 512 MiB by default as in Redis).
    pub max_bulk_len: u64,
    /// Most arguments in one multibulk request (1,048,576 by default).
    pub max_multibulk_len: u64,
    /// Longest inline request, and longest `*`/`$` length line (64 KiB as in Redis).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A malformed request. The server answers with [`ProtocolError::reply`] and closes the
/// connection, as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline request longer than [`Limits::max_inline_len`] without a line end.
    TooBigInline,
    /// An inline request with a quote that is not closed, or closed and not followed by a
    /// space.
    UnbalancedQuotes,
    /// A `*` line longer than [`Limits::max_inline_len`] without `\r`.
    TooBigMbulkCount,
    /// A `*` count that is not an integer or is over [`Limits::max_multibulk_len`].
    InvalidMultibulkLength,
    /// A `$` line longer than [`Limits::max_inline_len`] without `\r`.
    TooBigBulkCount,
    /// A multibulk element that does not start with `$`; carries the byte found.
    ExpectedDollar(u8),
    /// A `$` length that is not an integer, is negative or is over
    /// [`Limits::max_bulk_len`].
    InvalidBulkLength,
}

impl ProtocolError {
    /// The error text after `-ERR `, byte for byte as Redis 7 words it.
    pub fn message(&self) -> Vec<u8> {
        let text: &[u8] = match self {
            ProtocolError::TooBigInline => b"Protocol error: too big inline request",
            ProtocolError::UnbalancedQuotes => b"Protocol error: unbalanced quotes in request",
            ProtocolError::TooBigMbulkCount => b"Protocol error: too big mbulk count string",
            ProtocolError::InvalidMultibulkLength => b"Protocol error: invalid multibulk length",
            ProtocolError::TooBigBulkCount => b"Protocol error: too big bulk count string",
            ProtocolError::InvalidBulkLength => b"Protocol error: invalid bulk length",
            ProtocolError::ExpectedDollar(c) => {
                let mut m = b"Protocol error: expected '$', got '".to_vec();
                match c {
                    // Redis formats with `%c` and then appends with strlen: a NUL ends the
                    // message there. CR and LF are mapped to spaces to keep the reply valid.
                    0 => return m,
                    b'\r' | b'\n' => m.push(b' '),
                    c => m.push(*c),
                }
                m.push(b'\'');
                return m;
            }
        };
        text.to_vec()
    }

    /// The whole reply line: `-ERR Protocol error: …\r\n`.
    pub fn reply(&self) -> Vec<u8> {
        let mut out = b"-ERR ".to_vec();
        out.extend_from_slice(&self.message());
        out.extend_from_slice(b"\r\n");
        out
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.message()))
    }
}

impl std::error::Error for ProtocolError {}

/// One argument: a byte range of the parser's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The argument's bytes in `buf`, the buffer the parser was given.
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the argument is the empty string.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// Where the parser is inside the current request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between requests.
    Idle,
    /// In an inline request; the first `scanned` bytes hold no line end.
    Inline { scanned: usize },
    /// In the `*<count>` line; the first `scanned` bytes hold no `\r`.
    Count { scanned: usize },
    /// In a `$<len>` line, with `remaining` arguments (this one included) to come.
    BulkLen { remaining: u64, scanned: usize },
    /// In the payload of an argument of `len` bytes.
    Bulk { remaining: u64, len: usize },
}

/// Parses requests out of one connection's read buffer. See the module docs.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    /// Bytes of the buffer before `pos` belong to finished requests or to the parsed part
    /// of the current one.
    pos: usize,
    /// Where the current (unfinished) request starts; equals `pos` when idle.
    req_start: usize,
    /// Arguments of the requests finished since the last `compact`, then those parsed so
    /// far of the current request.
    spans: Vec<Span>,
    /// Index in `spans` of the current request's first argument.
    partial_from: usize,
}

impl RequestParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            state: State::Idle,
            pos: 0,
            req_start: 0,
            spans: Vec::new(),
            partial_from: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the limits; applies from the next request on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Argument spans; index them with the range a parsed request returns.
    #[inline]
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Bytes at the front of the buffer that belong to finished requests.
    pub fn consumed(&self) -> usize {
        self.req_start
    }

    /// Whether part of a request has been seen and the rest is awaited.
    pub fn in_request(&self) -> bool {
        self.state != State::Idle
    }

    /// How many more bytes the current request needs at least, when the parser knows
    /// (inside a bulk payload); 0 otherwise. A hint for sizing the next read, not a promise
    /// from the client: do not allocate on it beyond what the limits allow.
    pub fn wanted(&self, buf_len: usize) -> usize {
        match self.state {
            State::Bulk { len, .. } => (self.pos + len + 2).saturating_sub(buf_len),
            _ => 0,
        }
    }

    /// Parses the next request from `buf`, which must be the same buffer (grown at the end,
    /// compacted only through [`compact`](Self::compact)) on every call.
    ///
    /// Returns the range of [`spans`](Self::spans) holding the request's arguments, or
    /// `None` when the buffer holds no further complete request. Empty requests (`*0`,
    /// `*-1`, blank inline lines) are skipped, as Redis skips them. Inline arguments are
    /// unescaped in place, which is why `buf` is mutable.
    pub fn parse(&mut self, buf: &mut [u8]) -> Result<Option<Range<usize>>, ProtocolError> {
        loop {
            match self.state {
                State::Idle => {
                    if self.pos >= buf.len() {
                        return Ok(None);
                    }
                    self.req_start = self.pos;
                    self.partial_from = self.spans.len();
                    self.state = if buf[self.pos] == b'*' {
                        State::Count { scanned: 0 }
                    } else {
                        State::Inline { scanned: 0 }
                    };
                }
                State::Inline { scanned } => {
                    let from = self.pos;
                    let hay = &buf[from + scanned..];
                    // `strchr` semantics: the search stops at a NUL, so a NUL before the
                    // line end hides it for good (Redis then waits for the size limit).
                    let newline = match memchr::memchr2(b'\n', 0, hay) {
                        Some(i) if hay[i] == b'\n' => from + scanned + i,
                        found => {
                            if buf.len() - from > self.limits.max_inline_len {
                                return Err(ProtocolError::TooBigInline);
                            }
                            let scanned = scanned + found.unwrap_or(hay.len());
                            self.state = State::Inline { scanned };
                            return Ok(None);
                        }
                    };
                    let mut end = newline;
                    if end > from && buf[end - 1] == b'\r' {
                        end -= 1;
                    }
                    split_inline(&mut buf[from..end], from, &mut self.spans)
                        .map_err(|()| ProtocolError::UnbalancedQuotes)?;
                    self.pos = newline + 1;
                    if let Some(done) = self.finish() {
                        return Ok(Some(done));
                    }
                }
                State::Count { scanned } => {
                    let from = self.pos;
                    let Some(cr) =
                        self.find_line_end(buf, from, scanned, |s| State::Count { scanned: s })?
                    else {
                        return Ok(None);
                    };
                    let count = parse_i64(&buf[from + 1..cr])
                        .filter(|&n| n <= i64::from(i32::MAX))
                        .ok_or(ProtocolError::InvalidMultibulkLength)?;
                    if count > 0 && count as u64 > self.limits.max_multibulk_len {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    self.pos = cr + 2;
                    if count <= 0 {
                        self.finish();
                    } else {
                        self.state = State::BulkLen {
                            remaining: count as u64,
                            scanned: 0,
                        };
                    }
                }
                State::BulkLen { remaining, scanned } => {
                    let from = self.pos;
                    let Some(cr) = self.find_line_end(buf, from, scanned, |s| State::BulkLen {
                        remaining,
                        scanned: s,
                    })?
                    else {
                        return Ok(None);
                    };
                    if buf[from] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[from]));
                    }
                    let len = parse_i64(&buf[from + 1..cr])
                        .filter(|&n| n >= 0 && n as u64 <= self.limits.max_bulk_len)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    self.pos = cr + 2;
                    self.state = State::Bulk {
                        remaining,
                        len: len as usize,
                    };
                }
                State::Bulk { remaining, len } => {
                    // Redis skips the two bytes after the payload without looking at them.
                    if buf.len() - self.pos < len + 2 {
                        return Ok(None);
                    }
                    self.spans.push(Span {
                        start: self.pos,
                        end: self.pos + len,
                    });
                    self.pos += len + 2;
                    if remaining == 1 {
                        if let Some(done) = self.finish() {
                            return Ok(Some(done));
                        }
                    } else {
                        self.state = State::BulkLen {
                            remaining: remaining - 1,
                            scanned: 0,
                        };
                    }
                }
            }
        }
    }

    /// Finds the `\r` ending a `*` or `$` line that starts at `from`, as Redis does:
    /// `strchr` for `\r` (stopping at NUL), then at least one more byte after it (not
    /// checked to be `\n`). `Ok(None)` means wait for more; the state remembers how far
    /// the search got.
    fn find_line_end(
        &mut self,
        buf: &[u8],
        from: usize,
        scanned: usize,
        waiting: impl Fn(usize) -> State,
    ) -> Result<Option<usize>, ProtocolError> {
        let hay = &buf[from + scanned..];
        match memchr::memchr2(b'\r', 0, hay) {
            Some(i) if hay[i] == b'\r' => {
                let cr = from + scanned + i;
                if cr + 2 > buf.len() {
                    self.state = waiting(cr - from);
                    return Ok(None);
                }
                Ok(Some(cr))
            }
            found => {
                if buf.len() - from > self.limits.max_inline_len {
                    return Err(match self.state {
                        State::Count { .. } => ProtocolError::TooBigMbulkCount,
                        _ => ProtocolError::TooBigBulkCount,
                    });
                }
                self.state = waiting(scanned + found.unwrap_or(hay.len()));
                Ok(None)
            }
        }
    }

    /// Ends the current request; returns its argument range unless it was empty.
    fn finish(&mut self) -> Option<Range<usize>> {
        self.state = State::Idle;
        self.req_start = self.pos;
        let args = self.partial_from..self.spans.len();
        self.partial_from = self.spans.len();
        (!args.is_empty()).then_some(args)
    }

    /// Drops the bytes and spans of finished requests from the front of `buf`, keeping the
    /// unfinished request (if any) and its parsed arguments, rebased to the new start.
    /// Every range returned by [`parse`](Self::parse) before this call is invalid after it.
    pub fn compact(&mut self, buf: &mut BytesMut) {
        let done = self.discard_consumed();
        buf.advance(done);
    }

    /// [`compact`](Self::compact) for callers that manage their own buffer: forgets the
    /// finished requests and returns how many bytes they took, which the caller must drop
    /// from the front of its buffer before the next [`parse`](Self::parse).
    pub fn discard_consumed(&mut self) -> usize {
        let done = self.req_start;
        self.spans.drain(..self.partial_from);
        self.partial_from = 0;
        if done == 0 {
            return 0;
        }
        for span in &mut self.spans {
            span.start -= done;
            span.end -= done;
        }
        self.pos -= done;
        self.req_start = 0;
        done
    }

    /// Forgets everything, for a buffer that was cleared.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.pos = 0;
        self.req_start = 0;
        self.spans.clear();
        self.partial_from = 0;
    }
}

/// C `isspace` in the C locale.
#[inline]
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline line into arguments exactly as Redis's `sdssplitargs`, unescaping in
/// place: every argument is written over the line at or before where it was read, so the
/// spans pushed (offset by `base`) point into `line` itself. Past the end of `line` reads
/// as NUL, the C string terminator. `Err` means unbalanced quotes.
fn split_inline(line: &mut [u8], base: usize, spans: &mut Vec<Span>) -> Result<(), ()> {
    let n = line.len();
    let at = |line: &[u8], i: usize| if i < n { line[i] } else { 0 };
    let mut p = 0;
    let mut w = 0;
    loop {
        while at(line, p) != 0 && is_c_space(at(line, p)) {
            p += 1;
        }
        if at(line, p) == 0 {
            return Ok(());
        }
        let start = w;
        let (mut in_dq, mut in_sq, mut done) = (false, false, false);
        while !done {
            let c = at(line, p);
            if in_dq {
                let hex = (at(line, p + 1) == b'x')
                    .then(|| Some(hex_value(at(line, p + 2))? * 16 + hex_value(at(line, p + 3))?))
                    .flatten();
                if c == b'\\' && hex.is_some() {
                    line[w] = hex.unwrap_or_default();
                    w += 1;
                    p += 3;
                } else if c == b'\\' && at(line, p + 1) != 0 {
                    p += 1;
                    line[w] = match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    w += 1;
                } else if c == b'"' {
                    let next = at(line, p + 1);
                    if next != 0 && !is_c_space(next) {
                        return Err(());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(());
                } else {
                    line[w] = c;
                    w += 1;
                }
            } else if in_sq {
                if c == b'\\' && at(line, p + 1) == b'\'' {
                    p += 1;
                    line[w] = b'\'';
                    w += 1;
                } else if c == b'\'' {
                    let next = at(line, p + 1);
                    if next != 0 && !is_c_space(next) {
                        return Err(());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(());
                } else {
                    line[w] = c;
                    w += 1;
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => {
                        line[w] = c;
                        w += 1;
                    }
                }
            }
            if at(line, p) != 0 {
                p += 1;
            }
        }
        spans.push(Span {
            start: base + start,
            end: base + w,
        });
    }
}

/// Appends `args` to `out` as one RESP multibulk request, the form clients send.
pub fn encode_request<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.push(b'*');
    crate::number::push_u64(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.push(b'$');
        crate::number::push_u64(out, arg.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parses everything in `input` fed in one piece; returns requests as argument lists.
    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        parse_with(Limits::default(), input)
    }

    fn parse_with(limits: Limits, input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new(limits);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(r) = p.parse(&mut buf)? {
            out.push(p.spans()[r].iter().map(|s| s.of(&buf).to_vec()).collect());
        }
        Ok(out)
    }

    /// Feeds `input` in pieces of `step` bytes, compacting after each, as a connection does.
    fn parse_chunked(input: &[u8], step: usize) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            buf.extend_from_slice(chunk);
            while let Some(r) = p.parse(&mut buf)? {
                out.push(p.spans()[r].iter().map(|s| s.of(&buf).to_vec()).collect());
            }
            p.compact(&mut buf);
        }
        Ok(out)
    }

    fn args(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk() {
        assert_eq!(
            parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap(),
            vec![args(&["GET", "k"])]
        );
        assert_eq!(
            parse_all(b"*1\r\n$0\r\n\r\n").unwrap(),
            vec![vec![Vec::<u8>::new()]]
        );
    }

    #[test]
    fn pipelined_mixed_forms() {
        let got = parse_all(b"PING\r\n*1\r\n$4\r\nPING\r\nECHO hi\n").unwrap();
        assert_eq!(
            got,
            vec![args(&["PING"]), args(&["PING"]), args(&["ECHO", "hi"])]
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n\r\n\n   \r\nPING\r\n").unwrap(),
            vec![args(&["PING"])]
        );
    }

    #[test]
    fn incomplete_input_waits() {
        for input in [
            &b"*"[..],
            b"*2",
            b"*2\r",
            b"*2\r\n$3\r\nGE",
            b"*2\r\n$3\r\nGET\r\n",
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r",
            b"PING",
            b"PING\r",
        ] {
            assert_eq!(parse_all(input).unwrap(), Vec::<Vec<Vec<u8>>>::new());
        }
    }

    #[test]
    fn trailing_bytes_after_payload_are_not_checked() {
        // Redis skips the two bytes after a bulk payload whatever they are.
        assert_eq!(
            parse_all(b"*1\r\n$4\r\nPINGxx").unwrap(),
            vec![args(&["PING"])]
        );
        // ...and accepts any byte after the `\r` of a length line.
        assert_eq!(
            parse_all(b"*1\rX$4\rYPING\r\n").unwrap(),
            vec![args(&["PING"])]
        );
    }

    #[test]
    fn protocol_errors_match_redis() {
        use ProtocolError::*;
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*x\r\n", InvalidMultibulkLength),
            (b"*01\r\n", InvalidMultibulkLength),
            (b"*2147483648\r\n", InvalidMultibulkLength),
            (b"*1048577\r\n", InvalidMultibulkLength),
            (b"*1\r\nx3\r\n", ExpectedDollar(b'x')),
            (b"*1\r\n\r\n", ExpectedDollar(b'\r')),
            (b"*1\r\n$-1\r\n", InvalidBulkLength),
            (b"*1\r\n$x\r\n", InvalidBulkLength),
            (b"*1\r\n$536870913\r\n", InvalidBulkLength),
            (b"\"abc\r\n", UnbalancedQuotes),
            (b"'abc\r\n", UnbalancedQuotes),
            (b"\"abc\"def\r\n", UnbalancedQuotes),
            (b"'abc'def\r\n", UnbalancedQuotes),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_all(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            ProtocolError::ExpectedDollar(b'x').reply(),
            b"-ERR Protocol error: expected '$', got 'x'\r\n"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(b'\n').reply(),
            b"-ERR Protocol error: expected '$', got ' '\r\n"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(0).reply(),
            b"-ERR Protocol error: expected '$', got '\r\n"
        );
        assert_eq!(
            ProtocolError::InvalidBulkLength.reply(),
            b"-ERR Protocol error: invalid bulk length\r\n"
        );
    }

    #[test]
    fn requests_before_an_error_are_returned_first() {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"PING\r\n*x\r\n"[..]);
        let r = p.parse(&mut buf).unwrap().unwrap();
        assert_eq!(p.spans()[r][0].of(&buf), b"PING");
        assert_eq!(
            p.parse(&mut buf),
            Err(ProtocolError::InvalidMultibulkLength)
        );
    }

    #[test]
    fn size_limits() {
        let limits = Limits {
            max_bulk_len: 10,
            max_multibulk_len: 3,
            max_inline_len: 16,
        };
        assert_eq!(
            parse_with(limits, b"*1\r\n$11\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_with(limits, b"*1\r\n$10\r\n0123456789\r\n").unwrap(),
            vec![args(&["0123456789"])]
        );
        assert_eq!(
            parse_with(limits, b"*4\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_with(limits, b"GET aaaaaaaaaaaaaaaaa"),
            Err(ProtocolError::TooBigInline)
        );
        assert_eq!(
            parse_with(limits, b"*11111111111111111"),
            Err(ProtocolError::TooBigMbulkCount)
        );
        assert_eq!(
            parse_with(limits, b"*1\r\n$1111111111111111"),
            Err(ProtocolError::TooBigBulkCount)
        );
        // A line end within the limit is fine even when the buffer is larger.
        assert_eq!(
            parse_with(limits, b"GET a\r\nGET b\r\nGET c\r\n")
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn default_inline_limit_is_64k() {
        let mut long = vec![b'a'; 64 * 1024];
        assert_eq!(parse_all(&long).unwrap().len(), 0);
        long.push(b'a');
        assert_eq!(parse_all(&long), Err(ProtocolError::TooBigInline));
    }

    #[test]
    fn nul_hides_the_line_end_as_in_c() {
        // strchr stops at the NUL: no request is seen, the bytes wait for the limit.
        assert_eq!(parse_all(b"PI\0NG\r\n").unwrap().len(), 0);
        assert_eq!(parse_all(b"*1\0\r\n").unwrap().len(), 0);
    }

    #[test]
    fn inline_quoting_like_sdssplitargs() {
        assert_eq!(
            parse_all(b"SET \"a b\" 'c d'\r\n").unwrap(),
            vec![args(&["SET", "a b", "c d"])]
        );
        assert_eq!(
            parse_all(b"SET \"\\x41\\n\\t\\\\\\\"\\q\" '\\'\\n'\r\n").unwrap(),
            vec![vec![
                b"SET".to_vec(),
                b"A\n\t\\\"q".to_vec(),
                b"'\\n".to_vec()
            ]]
        );
        // A quote may open mid-token; an empty quoted string is an argument.
        assert_eq!(
            parse_all(b"a\"b c\"d\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(b"ab\"c d\" \"\"\r\n").unwrap(),
            vec![args(&["abc d", ""])]
        );
        // Leading blanks include \v and \f, token ends do not.
        assert_eq!(
            parse_all(b"\x0b\x0cPING a\x0bb\r\n").unwrap(),
            vec![vec![b"PING".to_vec(), b"a\x0bb".to_vec()]]
        );
        // \x with a bad digit is a literal backslash escape of 'x'.
        assert_eq!(parse_all(b"\"\\xZZ\"\r\n").unwrap(), vec![args(&["xZZ"])]);
    }

    #[test]
    fn compact_keeps_a_partial_request() {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nk"[..]);
        assert!(p.parse(&mut buf).unwrap().is_some());
        assert!(p.parse(&mut buf).unwrap().is_none());
        p.compact(&mut buf);
        assert_eq!(&buf[..], b"*2\r\n$3\r\nGET\r\n$3\r\nk");
        buf.extend_from_slice(b"ey\r\n");
        let r = p.parse(&mut buf).unwrap().unwrap();
        let got: Vec<&[u8]> = p.spans()[r].iter().map(|s| s.of(&buf)).collect();
        assert_eq!(got, vec![&b"GET"[..], b"key"]);
        p.compact(&mut buf);
        assert!(buf.is_empty());
        assert!(p.spans().is_empty());
    }

    #[test]
    fn wanted_reports_missing_payload() {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$100\r\nab"[..]);
        assert!(p.parse(&mut buf).unwrap().is_none());
        assert_eq!(p.wanted(buf.len()), 100);
    }

    fn arb_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8)
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(reqs in prop::collection::vec(arb_args(), 1..10), step in 1usize..64) {
            let mut wire = Vec::new();
            for r in &reqs {
                encode_request(&mut wire, r);
            }
            prop_assert_eq!(&parse_all(&wire).unwrap(), &reqs);
            prop_assert_eq!(&parse_chunked(&wire, step).unwrap(), &reqs);
        }

        #[test]
        fn inline_words_round_trip(words in prop::collection::vec("[a-zA-Z0-9_:{}.-]{1,12}", 1..6), step in 1usize..16) {
            let line = format!("{}\r\n", words.join(" "));
            let want: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            prop_assert_eq!(parse_chunked(line.as_bytes(), step).unwrap(), vec![want]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256), step in 1usize..32) {
            let _ = parse_all(&input);
            let _ = parse_chunked(&input, step);
        }
    }
}
