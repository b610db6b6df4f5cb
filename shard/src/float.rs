//! INCRBYFLOAT's arithmetic, delegated to C `long double` (see `csrc/longdouble.c`): the
//! digits Redis prints depend on 80-bit intermediate precision, which Rust cannot express.

use std::os::raw::{c_char, c_int};

/// Capacity of the output buffer the C side writes into (`MAX_LONG_DOUBLE_CHARS`).
const OUT_CAP: usize = 5 * 1024;

extern "C" {
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

#[cfg(test)]
mod tests {
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
