//! Glob-style matching with Redis's exact rules (`stringmatchlen` in `util.c`), used by
//! KEYS, SCAN MATCH and CONFIG GET.
//!
//! `*`, `?`, `[abc]`, `[^a]`, `[a-z]` (ends in either order), `\x` escapes. Quirks kept on
//! purpose: an unterminated `[` matches as if closed at the end of the pattern, range ends
//! compare as signed C `char`s, and a nesting limit (1000 stars deep) stops abusive
//! patterns. The "skip longer matches" cut makes patterns like `*a*a*a*b` linear-ish
//! instead of exponential, as in Redis.

/// Whether `string` matches `pattern`; `nocase` folds ASCII letters.
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, 0, string, 0, nocase, &mut skip_longer, 0)
}

/// Byte at `i`, or NUL past the end (patterns are C strings in Redis).
#[inline]
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

#[inline]
fn fold(c: u8, nocase: bool) -> u8 {
    if nocase {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// `pat[p..]` against `string[s..]`; indices rather than slices because, like the C code,
/// an unterminated class steps the pattern position back by one.
fn match_impl(
    pat: &[u8],
    mut p: usize,
    string: &[u8],
    mut s: usize,
    nocase: bool,
    skip_longer: &mut bool,
    nesting: u32,
) -> bool {
    if nesting > 1000 {
        return false;
    }
    while p < pat.len() && s < string.len() {
        match pat[p] {
            b'*' => {
                while p + 1 < pat.len() && pat[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pat.len() {
                    return true;
                }
                while s < string.len() {
                    if match_impl(pat, p + 1, string, s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                let ch = string[s];
                loop {
                    let rest = pat.len().saturating_sub(p);
                    let c = at(pat, p);
                    if c == b'\\' && rest >= 2 {
                        p += 1;
                        if at(pat, p) == ch {
                            matched = true;
                        }
                    } else if c == b']' {
                        break;
                    } else if rest == 0 {
                        // Unterminated: step back so the shared advance lands on the end.
                        p -= 1;
                        break;
                    } else if rest >= 3 && at(pat, p + 1) == b'-' {
                        // Signed char comparison, as in C on x86.
                        let mut start = at(pat, p) as i8 as i32;
                        let mut end = at(pat, p + 2) as i8 as i32;
                        let mut c = ch as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = fold_signed(start);
                            end = fold_signed(end);
                            c = fold_signed(c);
                        }
                        p += 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if fold(c, nocase) == fold(ch, nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            first => {
                let mut c = first;
                if first == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    c = pat[p];
                }
                if fold(c, nocase) != fold(string[s], nocase) {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(pat, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && s == string.len()
}

#[inline]
fn fold_signed(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) {
        c + 32
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn basics() {
        // As in Redis: a pattern never matches the empty string (KEYS and SCAN special-case
        // a lone `*` themselves).
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed range");
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("user:*:name", "user:42:name"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(m("a**", "a"));
        assert!(m("a*", "a"));
    }

    #[test]
    fn redis_quirks() {
        // Unterminated class: behaves as if closed at the end.
        assert!(m("[abc", "a"));
        assert!(!m("[abc", "d"));
        // A trailing backslash matches itself.
        assert!(m("a\\", "a\\"));
        // Escapes inside classes.
        assert!(m("[\\]]", "]"));
        // `[^` at the very end matches any one byte.
        assert!(m("a[^", "ab"));
        assert!(!m("a[", "ab"));
        assert!(matches(b"HELLO", b"hello", true));
        assert!(matches(b"[A-C]", b"b", true));
    }

    #[test]
    fn pathological_patterns_finish() {
        let p = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let s = "a".repeat(60);
        assert!(!m(p, &s));
    }
}
