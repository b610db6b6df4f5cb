//! Keyspace commands (DEL, EXISTS, TYPE, RENAME, COPY, …) as Redis 7's `db.c` behaves,
//! and the per-shard parts of the commands that cover every shard (KEYS, SCAN, DBSIZE,
//! RANDOMKEY, FLUSHDB): each part reads one shard's store and the connection's shard
//! gathers them.

use corekv_protocol::{number::parse_i64, Reply};

use super::{errors, is, Args, Ctx};
use crate::glob;
use crate::store::{Store, Str, Value};

/// DEL key [key ...] and UNLINK key [key ...]: how many were removed.
pub fn del(ctx: &mut Ctx, args: Args) {
    let mut n = 0;
    for key in args.iter().skip(1) {
        if ctx.store.remove(key, ctx.now).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
}

/// EXISTS key [key ...]: how many exist (a key named twice counts twice).
pub fn exists(ctx: &mut Ctx, args: Args) {
    let mut n = 0;
    for key in args.iter().skip(1) {
        if ctx.store.find_read(key, ctx.now).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
}

/// TOUCH key [key ...]: how many exist.
pub fn touch(ctx: &mut Ctx, args: Args) {
    exists(ctx, args);
}

/// TYPE key
pub fn type_(ctx: &mut Ctx, args: Args) {
    let name = match ctx.store.find_read(args.get(1), ctx.now) {
        Some(idx) => ctx.store.entry(idx).value().type_name(),
        None => "none",
    };
    ctx.out.simple(name.as_bytes());
}

/// `renameGenericCommand` when both keys are on this shard.
fn rename_generic(ctx: &mut Ctx, args: Args, nx: bool) {
    let (src, dst) = (args.get(1), args.get(2));
    let Some(idx) = ctx.store.find(src, ctx.now) else {
        ctx.out.err(errors::NO_SUCH_KEY);
        return;
    };
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return;
    }
    if ctx.store.contains(dst, ctx.now) {
        if nx {
            ctx.out.int(0);
            return;
        }
        ctx.store.remove(dst, ctx.now);
    }
    let entry = ctx.store.remove_at(idx);
    let expire = entry.expire_at().unwrap_or(0);
    ctx.store.insert(dst, entry.value(), expire);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
}

/// RENAME key newkey
pub fn rename(ctx: &mut Ctx, args: Args) {
    rename_generic(ctx, args, false);
}

/// RENAMENX key newkey
pub fn renamenx(ctx: &mut Ctx, args: Args) {
    rename_generic(ctx, args, true);
}

/// COPY's options, checked before any key is looked at.
pub struct CopyOptions {
    /// REPLACE was given.
    pub replace: bool,
}

/// Parses COPY's options (`REPLACE`, `DB 0`) or writes the error Redis gives. With one
/// database only index 0 exists; source and destination equal is an error.
pub fn copy_options(out: &mut Reply, args: Args) -> Option<CopyOptions> {
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        let additional = args.len() - j - 1;
        if is(args.get(j), "replace") {
            replace = true;
        } else if is(args.get(j), "db") && additional >= 1 {
            match super::int32_arg(out, args.get(j + 1)) {
                None => return None,
                Some(0) => {}
                Some(_) => {
                    out.err(errors::DB_RANGE);
                    return None;
                }
            }
            j += 1;
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
        j += 1;
    }
    if args.get(1) == args.get(2) {
        out.err(errors::SAME_OBJECT);
        return None;
    }
    Some(CopyOptions { replace })
}

/// `COPY source destination [DB 0] [REPLACE]`, both keys on this shard.
pub fn copy(ctx: &mut Ctx, args: Args) {
    let Some(opts) = copy_options(&mut ctx.out, args) else {
        return;
    };
    let (src, dst) = (args.get(1), args.get(2));
    let Some(idx) = ctx.store.find_read(src, ctx.now) else {
        ctx.out.int(0);
        return;
    };
    if ctx.store.contains(dst, ctx.now) {
        if !opts.replace {
            ctx.out.int(0);
            return;
        }
        ctx.store.remove(dst, ctx.now);
    }
    ctx.store.duplicate(idx, dst);
    ctx.out.int(1);
}

/// An entry on its way between shards (RENAME and COPY across shards): its value and
/// deadline, encoded as a RESP array so it travels like any reply.
pub fn dump_entry(store: &mut Store, key: &[u8], now: u64, out: &mut Reply) {
    let Some(idx) = store.find(key, now) else {
        out.null();
        return;
    };
    let entry = store.entry(idx);
    out.array(3);
    out.bulk(entry.value().type_name().as_bytes());
    out.int(entry.expire_at().map_or(0, |d| d as i64));
    match entry.value() {
        Value::Str(s) => s.with_bytes(|b| out.bulk(b)),
    }
}

/// Writes an entry produced by [`dump_entry`] under `key`: replaces a live key when
/// `replace`, otherwise leaves it and replies 0. Replies 1 when written.
pub fn restore_entry(
    store: &mut Store,
    key: &[u8],
    replace: bool,
    expire_at: u64,
    payload: &[u8],
    now: u64,
    out: &mut Reply,
) {
    if store.contains(key, now) {
        if !replace {
            out.int(0);
            return;
        }
        store.remove(key, now);
    }
    store.insert(key, Value::Str(Str::from_bytes(payload)), expire_at);
    out.int(1);
}

/// One shard's part of KEYS: its live keys matching `pattern`, as an array.
pub fn keys_part(store: &Store, pattern: &[u8], now: u64, out: &mut Reply) {
    let all = pattern == b"*";
    // The count comes first on the wire: encode the keys aside, then the header.
    let mut n = 0usize;
    let mut body = Vec::new();
    let mut r = Reply::new(&mut body, out.proto());
    for e in store.iter() {
        if (all || glob::matches(pattern, e.key(), false)) && !e.is_expired(now) {
            r.bulk(e.key());
            n += 1;
        }
    }
    out.array(n);
    out.raw(&body);
}

/// One shard's part of SCAN from slab position `pos`: `[next position or -1, [keys]]`.
pub fn scan_part(store: &mut Store, req: &ScanRequest, now: u64, out: &mut Reply) {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let next = store.scan(req.pos, req.count, now, |e| {
        let wanted = req
            .pattern
            .as_deref()
            .is_none_or(|p| glob::matches(p, e.key(), false))
            && req
                .type_name
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case(e.value().type_name().as_bytes()));
        if wanted {
            keys.push(e.key().to_vec());
        }
    });
    out.array(2);
    out.int(next.map_or(-1, |n| n as i64));
    out.array(keys.len());
    for k in &keys {
        out.bulk(k);
    }
}

/// A SCAN call, parsed by the connection's shard and run by the shard its cursor names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanRequest {
    /// Slab position to resume from on the target shard.
    pub pos: usize,
    /// COUNT (10 by default).
    pub count: usize,
    /// MATCH pattern, unless absent or `*`.
    pub pattern: Option<Vec<u8>>,
    /// TYPE filter.
    pub type_name: Option<Vec<u8>>,
}

/// Parses SCAN's cursor as `strtoul` does (sign allowed, `-1` wraps, no spaces, overflow
/// is an error). `None` is Redis's "invalid cursor".
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    // strtoul reads a C string: bytes after a NUL are not seen.
    let s = super::cstr(arg);
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.iter().any(|c| !c.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        // strtoul parses nothing and points at the start: valid only for "".
        return s.is_empty().then_some(0);
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses SCAN's options after the cursor (`scanGenericCommand` step 1), writing Redis's
/// error when they are wrong.
pub fn parse_scan_options(out: &mut Reply, args: Args) -> Option<ScanRequest> {
    let mut req = ScanRequest {
        count: 10,
        ..ScanRequest::default()
    };
    let mut i = 2;
    while i < args.len() {
        let j = args.len() - i;
        let opt = args.get(i);
        if is(opt, "count") && j >= 2 {
            let Some(count) = parse_i64(args.get(i + 1)) else {
                out.err(errors::NOT_INTEGER);
                return None;
            };
            if count < 1 {
                out.err(errors::SYNTAX);
                return None;
            }
            req.count = count as usize;
        } else if is(opt, "match") && j >= 2 {
            let pat = args.get(i + 1);
            req.pattern = (pat != b"*").then(|| pat.to_vec());
        } else if is(opt, "type") && j >= 2 {
            req.type_name = Some(super::cstr(args.get(i + 1)).to_vec());
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
        i += 2;
    }
    Some(req)
}

/// FLUSHDB / FLUSHALL's optional `SYNC` or `ASYNC`; `false` after writing a syntax error.
pub fn flush_options_ok(out: &mut Reply, args: Args) -> bool {
    match args.len() {
        1 => true,
        2 if is(args.get(1), "sync") || is(args.get(1), "async") => true,
        _ => {
            out.err(errors::SYNTAX);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_is_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"+12"), Some(12));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
    }
}
