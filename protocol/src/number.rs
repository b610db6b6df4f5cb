//! Integer parsing exactly as Redis does it.
//!
//! Redis accepts a decimal integer only in its canonical spelling (`string2ll` in
//! `util.c`): no sign other than a leading `-`, no leading zeros, no spaces, at most 20
//! characters, within `i64`. Length lines of the wire protocol and integer arguments of
//! commands (`INCRBY k 5`, `SET k v EX 10`) both go through it, so one function here serves
//! both and keeps their edge cases identical to Redis.

/// Longest text `string2ll` looks at: `LONG_STR_SIZE` (21) minus one.
const MAX_LEN: usize = 20;

/// Parses `s` as Redis's `string2ll` does; `None` where Redis would reject it.
///
/// ```
/// use corekv_protocol::number::parse_i64;
/// assert_eq!(parse_i64(b"-42"), Some(-42));
/// assert_eq!(parse_i64(b"042"), None); // leading zero
/// assert_eq!(parse_i64(b"+1"), None); // explicit plus
/// ```
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > MAX_LEN {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Appends the decimal form of `v` to `out`.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Appends the decimal form of `v` to `out`.
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_canonical_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"7"), Some(7));
        assert_eq!(parse_i64(b"-7"), Some(-7));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn rejects_what_redis_rejects() {
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"123456789012345678901",
            b"1.0",
            b"0x10",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn round_trips_every_i64(v in any::<i64>()) {
            let mut s = Vec::new();
            push_i64(&mut s, v);
            prop_assert_eq!(parse_i64(&s), Some(v));
        }

        #[test]
        fn agrees_with_std_on_canonical_forms(s in "-?[0-9]{1,20}") {
            let canonical = s.parse::<i64>().ok().filter(|v| v.to_string() == s);
            prop_assert_eq!(parse_i64(s.as_bytes()), canonical);
        }
    }
}
