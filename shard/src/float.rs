//! INCRBYFLOAT's arithmetic, delegated to C `long double` (see `csrc/longdouble.c`): the
//! digits Redis prints depend on 80-bit intermediate precision, which Rust cannot express.

use std::os::raw::{c_char, c_int};

/// Capacity of the output buffer the C side writes into (`MAX_LONG_DOUBLE_CHARS`).
const OUT_CAP: usize = 5 * 1024;

extern "C" {
    fn corekv_strtod(s: *const c_char, len: usize, out: *mut f64) -> c_int;
    fn corekv_strtod_loose(s: *const c_char, len: usize, out: *mut f64) -> c_int;
    fn corekv_strtod_sort(s: *const c_char, out: *mut f64) -> c_int;
    fn corekv_fmt_g(d: f64, precision: c_int, out: *mut c_char) -> c_int;
    fn corekv_strtod_prefix(s: *const c_char, out: *mut f64) -> usize;
    fn corekv_fmt_double(d: f64, out: *mut c_char) -> c_int;
    fn corekv_timeout_ms(s: *const c_char, len: usize, ms: *mut i64) -> c_int;
    fn corekv_incrbyfloat(
        cur: *const c_char,
        cur_len: usize,
        incr: *const c_char,
        incr_len: usize,
        out: *mut c_char,
        out_len: *mut usize,
    ) -> c_int;
}

/// Why an increment failed; each maps to one Redis error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatError {
    /// The stored value or the increment does not parse as a float.
    NotAFloat,
    /// The sum is NaN or infinite.
    NanOrInfinity,
}

/// `current + incr` in long double, printed as Redis prints it. `current` is `None` for a
/// missing key (0).
pub fn incr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, FloatError> {
    let mut out = vec![0u8; OUT_CAP];
    let mut out_len = 0usize;
    let (cur_ptr, cur_len) = match current {
        Some(c) => (c.as_ptr(), c.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: every pointer is valid for the length passed with it; `out` holds OUT_CAP
    // bytes, the most the C side writes; `out_len` is a valid place for a usize.
    let rc = unsafe {
        corekv_incrbyfloat(
            cur_ptr.cast(),
            cur_len,
            incr.as_ptr().cast(),
            incr.len(),
            out.as_mut_ptr().cast(),
            &mut out_len,
        )
    };
    match rc {
        0 => {
            out.truncate(out_len);
            Ok(out)
        }
        3 => Err(FloatError::NanOrInfinity),
        _ => Err(FloatError::NotAFloat),
    }
}

/// A double argument as Redis reads it (C's `strtod`: `1e3`, `inf`, `0x10`; no NaN, no
/// leading space, nothing after, no overflow), or `None`.
pub fn parse_double(arg: &[u8]) -> Option<f64> {
    let mut v = 0f64;
    // SAFETY: `arg` is valid for its length; `v` is a valid place for a double.
    let ok = unsafe { corekv_strtod(arg.as_ptr().cast(), arg.len(), &mut v) };
    (ok == 1).then_some(v)
}

/// A score range bound as Redis reads it (plain `strtod`: leading space, overflow to
/// infinity and the empty string as 0 pass; NaN and trailing bytes do not).
pub fn parse_double_loose(arg: &[u8]) -> Option<f64> {
    let mut v = 0f64;
    // SAFETY: `arg` is valid for its length; `v` is a valid place for a double.
    let ok = unsafe { corekv_strtod_loose(arg.as_ptr().cast(), arg.len(), &mut v) };
    (ok == 1).then_some(v)
}

/// A value SORT orders by, as Redis reads it (C's `strtod` up to the first NUL byte:
/// leading space and the empty string, as 0, pass; trailing bytes, a range error and
/// NaN do not).
pub fn parse_sort_score(value: &[u8]) -> Option<f64> {
    let mut c = Vec::with_capacity(value.len() + 1);
    c.extend_from_slice(value);
    c.push(0);
    let mut v = 0f64;
    // SAFETY: `c` is NUL-terminated; `v` is a valid place for a double.
    let ok = unsafe { corekv_strtod_sort(c.as_ptr().cast(), &mut v) };
    (ok == 1).then_some(v)
}

/// Appends a double as C's `%.*g` prints it with `precision` significant digits (1 to
/// 17): `1e+15`, `0.1`, `inf`, `nan`.
pub fn format_g(d: f64, precision: u8, out: &mut Vec<u8>) {
    let mut buf = [0u8; 32];
    // SAFETY: `buf` has the 32 bytes the helper may write; the precision is clamped.
    let n = unsafe {
        corekv_fmt_g(
            d,
            c_int::from(precision.clamp(1, 17)),
            buf.as_mut_ptr().cast(),
        )
    };
    out.extend_from_slice(&buf[..(n.max(0) as usize).min(31)]);
}

/// C's `strtod` at the start of `s`, which must end with a NUL byte: the value and how
/// many bytes form it (0: no number there).
pub fn strtod_prefix(s: &[u8]) -> (f64, usize) {
    assert_eq!(
        s.last(),
        Some(&0),
        "strtod_prefix needs a NUL-terminated buffer"
    );
    let mut v = 0f64;
    // SAFETY: `s` is NUL-terminated, so strtod stops inside it; `v` is a valid place.
    let n = unsafe { corekv_strtod_prefix(s.as_ptr().cast(), &mut v) };
    (v, n)
}

/// C's `(long long)n` where it is defined: `n` truncated, or `None` outside
/// `[-2^63, 2^63)` and for NaN (where x86 gives the smallest value).
pub fn c_i64(n: f64) -> Option<i64> {
    let limit = (1u64 << 63) as f64;
    (-limit..limit).contains(&n).then_some(n as i64)
}

/// Appends a double as Redis prints it: `inf`, `-inf`, or C's `%.17g`.
pub fn format_double(d: f64, out: &mut Vec<u8>) {
    if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    let mut buf = [0u8; 32];
    // SAFETY: `buf` holds the 32 bytes the C side writes at most.
    let n = unsafe { corekv_fmt_double(d, buf.as_mut_ptr().cast()) };
    out.extend_from_slice(&buf[..n.clamp(0, 31) as usize]);
}

/// Why a blocking command's timeout was refused; each maps to one Redis error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutError {
    /// "timeout is not a float or out of range"
    NotAFloat,
    /// "timeout is negative"
    Negative,
}

impl TimeoutError {
    /// Redis's error text (without `ERR `).
    pub fn text(self) -> &'static str {
        match self {
            TimeoutError::NotAFloat => "timeout is not a float or out of range",
            TimeoutError::Negative => "timeout is negative",
        }
    }
}

/// A blocking command's timeout in seconds (`0.5`, `1e1`, `0x10`: whatever C's `strtold`
/// reads) as whole milliseconds, rounded up, as Redis 7.0 reads it; 0 is "forever".
pub fn timeout_ms(arg: &[u8]) -> Result<u64, TimeoutError> {
    let mut ms = 0i64;
    // SAFETY: `arg` is valid for its length; `ms` is a valid place for an i64.
    let rc = unsafe { corekv_timeout_ms(arg.as_ptr().cast(), arg.len(), &mut ms) };
    match rc {
        0 => Ok(ms as u64),
        2 => Err(TimeoutError::Negative),
        _ => Err(TimeoutError::NotAFloat),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn doubles_read_and_print_as_redis_does() {
        use super::{format_double, parse_double};
        let show = |d: f64| {
            let mut v = Vec::new();
            format_double(d, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(parse_double(b"0x10"), Some(16.0));
        assert_eq!(parse_double(b"1e-320").map(|d| d > 0.0), Some(true));
        assert_eq!(parse_double(b"1e400"), None);
        assert_eq!(parse_double(b"nan"), None);
        assert_eq!(parse_double(b" 1"), None);
        assert_eq!(parse_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(show(1.1), "1.1000000000000001");
        assert_eq!(show(2.0), "2");
        assert_eq!(show(f64::INFINITY), "inf");
        assert_eq!(show(-0.0), "-0");
        assert_eq!(show(1e-320), "9.9998886718268301e-321");
    }

    #[test]
    fn timeouts_read_as_redis_reads_them() {
        use super::{timeout_ms, TimeoutError::*};
        assert_eq!(timeout_ms(b"0"), Ok(0));
        assert_eq!(timeout_ms(b"0.0001"), Ok(1));
        assert_eq!(timeout_ms(b"1.5"), Ok(1500));
        assert_eq!(timeout_ms(b"1e-1"), Ok(100));
        assert_eq!(timeout_ms(b"0x10"), Ok(16000));
        assert_eq!(timeout_ms(b"-1"), Err(Negative));
        assert_eq!(timeout_ms(b"inf"), Err(Negative));
        assert_eq!(timeout_ms(b"99999999999999999"), Err(Negative));
        assert_eq!(timeout_ms(b"x"), Err(NotAFloat));
        assert_eq!(timeout_ms(b"0.5.5"), Err(NotAFloat));
        assert_eq!(timeout_ms(b" 1"), Err(NotAFloat));
        assert_eq!(timeout_ms(b"nan"), Err(NotAFloat));
    }

    use super::*;

    fn incr(cur: Option<&str>, by: &str) -> Result<String, FloatError> {
        incr_by_float(cur.map(str::as_bytes), by.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn matches_redis_documentation_examples() {
        assert_eq!(incr(Some("10.50"), "0.1").unwrap(), "10.6");
        assert_eq!(incr(Some("10.6"), "-5").unwrap(), "5.6");
        assert_eq!(incr(Some("5.0e3"), "2.0e2").unwrap(), "5200");
        assert_eq!(incr(None, "3").unwrap(), "3");
        assert_eq!(incr(Some("-0.5"), "0.5").unwrap(), "0");
    }

    #[test]
    fn rejects_what_redis_rejects() {
        assert_eq!(incr(Some("abc"), "1"), Err(FloatError::NotAFloat));
        assert_eq!(incr(Some("1"), " 1"), Err(FloatError::NotAFloat));
        assert_eq!(incr(Some("1"), "nan"), Err(FloatError::NotAFloat));
        assert_eq!(incr(Some("1"), ""), Err(FloatError::NotAFloat));
        assert_eq!(incr(Some("1"), "inf"), Err(FloatError::NanOrInfinity));
        assert_eq!(
            incr(Some("1e4932"), "1e4932"),
            Err(FloatError::NanOrInfinity)
        );
    }
}
