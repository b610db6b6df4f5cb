//! Keyspace commands (DEL, EXISTS, TYPE, RENAME, COPY, …) as Redis 7's `db.c` behaves,
//! and the commands that cover every shard (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB,
//! FLUSHALL): each part reads one shard's store and the connection's shard merges them.

use crate::notify::GENERIC;
use corekv_protocol::{number::parse_i64, Reply};

use super::merge::{all_ok, array_elements, concat, int_of, sum};
use super::{
    errors, every_shard, is, Args, Check, Coord, Coordinated, Ctx, Fanout, Flow, Local, OwnedArgs,
    Plan, Registrations, Route, Split, Targets,
};
use crate::assembly::{MergeCtx, MergeData};
use crate::glob;
use crate::state::State;
use crate::store::{Keyspace, Store, Str, Value};

/// The keyspace family.
pub(super) const COMMANDS: Registrations = &[
    ("del", Route::split(del, &COUNT)),
    ("unlink", Route::split(del, &COUNT)),
    ("exists", Route::split(exists, &COUNT)),
    ("touch", Route::split(touch, &COUNT)),
    ("type", Route::keyed(type_)),
    ("rename", Route::coordinated(rename, &RENAME)),
    ("renamenx", Route::coordinated(renamenx, &RENAMENX)),
    ("copy", Route::coordinated(copy, &COPY)),
    ("keys", Route::Fanout(&KEYS)),
    ("scan", Route::Fanout(&SCAN)),
    ("dbsize", Route::Fanout(&DBSIZE)),
    ("flushdb", Route::Fanout(&FLUSH)),
    ("flushall", Route::Fanout(&FLUSH)),
    ("randomkey", Route::Fanout(&RANDOMKEY)),
    ("object|encoding", Route::keyed(object_encoding)),
    ("object|refcount", Route::keyed(object_refcount)),
    ("object|help", Route::Local(object_help)),
];

/// DEL, UNLINK, EXISTS, TOUCH over several shards: the sum of each owner's count.
const COUNT: Split = Split {
    step: 1,
    merge: sum,
};

const RENAME: Coordinated = Coordinated {
    kind: Coord::Rename,
    check: no_check,
    blocking: None,
};

const RENAMENX: Coordinated = Coordinated {
    kind: Coord::RenameNx,
    check: no_check,
    blocking: None,
};

const COPY: Coordinated = Coordinated {
    kind: Coord::Copy,
    check: copy_check,
    blocking: None,
};

fn no_check(_: &mut Reply, _: &'static str, _: Args) -> Option<bool> {
    Some(false)
}

fn copy_check(out: &mut Reply, _: &'static str, args: Args) -> Option<bool> {
    copy_options(out, args).map(|o| o.replace)
}

/// KEYS pattern: every shard's matches, concatenated.
const KEYS: Fanout = Fanout {
    check: |_, args| {
        Some(Plan {
            args: OwnedArgs::from_slices(&[args.get(1)]),
            ..Plan::all()
        })
    },
    part: |st, args, out| keys_part(&st.store, args.get(0), st.now(), out),
    merge: concat,
};

/// DBSIZE: the sum of every shard's count.
const DBSIZE: Fanout = Fanout {
    check: every_shard,
    part: |st, _, out| out.int(st.store.len() as i64),
    merge: sum,
};

/// FLUSHDB / FLUSHALL [SYNC|ASYNC]: every shard empties its keyspace.
const FLUSH: Fanout = Fanout {
    check: |ck, args| flush_options_ok(&mut ck.out, args).then(Plan::all),
    part: |st, _, out| {
        st.keyspace().clear();
        st.store.log.command(&["FLUSHALL"]);
        out.ok();
    },
    merge: all_ok,
};

/// RANDOMKEY: each shard offers `[its size, a random key or null]`; the merge picks a
/// shard weighted by size, so every key is equally likely.
const RANDOMKEY: Fanout = Fanout {
    check: every_shard,
    part: randomkey_part,
    merge: randomkey_merge,
};

fn randomkey_part(st: &mut State, _: Args, out: &mut Reply) {
    out.array(2);
    out.int(st.store.len() as i64);
    let now = st.now();
    match st.store.random(&mut st.rng, now, &mut st.timers) {
        Some(idx) => out.bulk(st.store.entry(idx).key()),
        None => out.null(),
    }
}

fn randomkey_merge(ctx: &mut MergeCtx, _: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let candidates: Vec<(i64, &[u8])> = parts
        .iter()
        .filter_map(|p| {
            let e = array_elements(p)?;
            let size = int_of(e.first()?)?;
            let key = *e.get(1)?;
            (size > 0 && key.first() == Some(&b'$') && key.get(1) != Some(&b'-'))
                .then_some((size, key))
        })
        .collect();
    let total: i64 = candidates.iter().map(|c| c.0).sum();
    if total == 0 {
        out.null();
        return;
    }
    let mut pick = ctx.rng.i64(0..total);
    for (size, key) in &candidates {
        if pick < *size {
            out.raw(key);
            return;
        }
        pick -= size;
    }
    out.null();
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: the cursor names a shard and a place
/// in it (`position * shards + shard`); that shard's part scans on from there, and the
/// merge turns its next position back into a cursor (moving to the next shard at the end
/// of this one).
const SCAN: Fanout = Fanout {
    check: scan_check,
    part: |st, args, out| {
        let req = decode_scan(args);
        let now = st.now();
        scan_part(st.keyspace(), &req, now, out);
    },
    merge: scan_merge,
};

fn scan_check(ck: &mut Check, args: Args) -> Option<Plan> {
    let Some(cursor) = parse_cursor(args.get(1)) else {
        ck.out.err("invalid cursor");
        return None;
    };
    let mut req = parse_scan_options(&mut ck.out, args)?;
    let n = ck.shards as u64;
    let shard = (cursor % n) as usize;
    req.pos = usize::try_from(cursor / n).unwrap_or(usize::MAX);
    Some(Plan {
        targets: Targets::One(shard),
        args: encode_scan(&req),
        data: MergeData::Ints(vec![shard as i64, n as i64]),
    })
}

fn scan_merge(_: &mut MergeCtx, data: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let (shard, shards) = match data.ints() {
        &[shard, shards] => (shard as u64, shards as u64),
        _ => (0, 1),
    };
    let Some(e) = parts.first().and_then(|p| array_elements(p)) else {
        out.err("internal error in SCAN");
        return;
    };
    let next = e.first().and_then(|b| int_of(b)).unwrap_or(-1);
    let cursor: u64 = if next >= 0 {
        next as u64 * shards + shard
    } else if shard + 1 < shards {
        shard + 1
    } else {
        0
    };
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    match e.get(1) {
        Some(keys) => out.raw(keys),
        None => out.array(0),
    }
}

fn encode_scan(req: &ScanRequest) -> OwnedArgs {
    let mut a = OwnedArgs::new();
    a.push(req.pos.to_string().as_bytes());
    a.push(req.count.to_string().as_bytes());
    a.push(if req.pattern.is_some() { b"1" } else { b"0" });
    a.push(req.pattern.as_deref().unwrap_or_default());
    a.push(if req.type_name.is_some() { b"1" } else { b"0" });
    a.push(req.type_name.as_deref().unwrap_or_default());
    a
}

fn decode_scan(args: Args) -> ScanRequest {
    let num = |i: usize| {
        std::str::from_utf8(args.get(i))
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or_default()
    };
    ScanRequest {
        pos: num(0),
        count: num(1).max(1),
        pattern: (args.get(2) == b"1").then(|| args.get(3).to_vec()),
        type_name: (args.get(4) == b"1").then(|| args.get(5).to_vec()),
    }
}

/// DEL key [key ...] and UNLINK key [key ...]: how many were removed.
pub fn del(ctx: &mut Ctx, args: Args) {
    let mut n = 0;
    for key in args.iter().skip(1) {
        if ctx.store.remove(key, ctx.now).is_some() {
            ctx.store.notify(GENERIC, "del", key);
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
    ctx.store.rename(idx, dst);
    ctx.store.notify(GENERIC, "rename_from", src);
    ctx.store.notify(GENERIC, "rename_to", dst);
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
    ctx.store.notify(GENERIC, "copy_to", dst);
    ctx.out.int(1);
}

/// An entry on its way between shards (RENAME and COPY across shards): its value and
/// deadline, encoded as a RESP array so it travels like any reply.
pub fn dump_entry(mut store: Keyspace, key: &[u8], now: u64, out: &mut Reply) {
    let Some(idx) = store.find(key, now) else {
        out.null();
        return;
    };
    let entry = store.entry(idx);
    out.array(3);
    out.bulk(store.dump_type(idx));
    out.int(entry.expire_at().map_or(0, |d| d as i64));
    let mut payload = Vec::new();
    store.dump_value(idx, &mut payload);
    out.bulk(&payload);
}

/// Writes an entry produced by [`dump_entry`] (of type `ty`) under `key`: replaces a
/// live key when `replace`, otherwise leaves it and replies 0. Replies 1 when written.
#[allow(clippy::too_many_arguments)]
pub fn restore_entry(
    mut store: Keyspace,
    key: &[u8],
    ty: &[u8],
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
    match store.restore_value(key, ty, payload, expire_at) {
        Some(_) => out.int(1),
        None => out.err("internal error: a value that does not restore"),
    }
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
pub fn scan_part(mut store: Keyspace, req: &ScanRequest, now: u64, out: &mut Reply) {
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
    parse_scan_options_from(out, args, 2, true)
}

/// Parses the options of SCAN (from argument `start`, TYPE allowed) or HSCAN and SSCAN
/// (from argument 3, no TYPE).
pub fn parse_scan_options_from(
    out: &mut Reply,
    args: Args,
    start: usize,
    allow_type: bool,
) -> Option<ScanRequest> {
    let mut req = ScanRequest {
        count: 10,
        ..ScanRequest::default()
    };
    let mut i = start;
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
        } else if allow_type && is(opt, "type") && j >= 2 {
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

/// Redis's `OBJ_SHARED_INTEGERS`: integer values below it are one shared object.
const SHARED_INTEGERS: i64 = 10_000;

/// OBJECT ENCODING key: the name of the encoding Redis 7.0 would hold the value in.
/// Strings: `int` for an integer, `embstr` up to 44 bytes, `raw` beyond or once APPEND
/// or SETRANGE edited it; hashes `listpack` or `hashtable`; sets `intset` or
/// `hashtable`.
pub fn object_encoding(ctx: &mut Ctx, args: Args) {
    let Some(idx) = ctx.store.find_read(args.get(2), ctx.now) else {
        ctx.out.null();
        return;
    };
    let entry = ctx.store.entry(idx);
    let name = match entry.value() {
        Value::Str(Str::Int(_)) => "int",
        Value::Str(Str::Raw(b)) if !entry.is_raw_string() && b.len() <= 44 => "embstr",
        Value::Str(_) => "raw",
        Value::Coll(c) if c.is_hash() => super::hash::encoding_name(c),
        Value::Coll(c) if c.is_list() => "quicklist",
        Value::Coll(c) if c.is_zset() && c.is_table() => "skiplist",
        Value::Coll(c) if c.is_zset() => "listpack",
        Value::Coll(c) => super::set::encoding_name(c),
    };
    ctx.out.bulk(name.as_bytes());
}

/// OBJECT REFCOUNT key: 1, or `INT_MAX` for an integer value Redis would share.
pub fn object_refcount(ctx: &mut Ctx, args: Args) {
    let Some(idx) = ctx.store.find_read(args.get(2), ctx.now) else {
        ctx.out.null();
        return;
    };
    let shared = matches!(
        ctx.store.entry(idx).value(),
        Value::Str(Str::Int(n)) if (0..SHARED_INTEGERS).contains(&n)
    ) && ctx.shared_ints;
    ctx.out.int(if shared { i64::from(i32::MAX) } else { 1 });
}

/// OBJECT HELP: the subcommands corekv has. FREQ and IDLETIME are not among them: the
/// eviction clock keeps neither an access time nor Redis's logarithmic counter.
fn object_help(l: &mut Local, args: Args) -> Flow {
    super::connection::help(
        &mut l.reply(),
        args.get(0),
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    Flow::Continue
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

#[cfg(test)]
mod fanout_tests {
    use crate::command::merge::array_elements;
    use crate::testkit::{call, key_on, shards};

    #[test]
    fn scan_walks_every_shard_and_keys_dbsize_flush_cover_them() {
        let mut s = shards(3);
        let me = s[0].state_mut().connect("a".into(), "b".into(), 3);
        let keys: Vec<String> = (0..3).map(|i| key_on(i, 3)).collect();
        for k in &keys {
            assert_eq!(call(&mut s, 0, me, &["SET", k, "v"]), "+OK\r\n");
        }
        assert_eq!(call(&mut s, 0, me, &["DBSIZE"]), ":3\r\n");
        let mut seen = Vec::new();
        let mut cursor = "0".to_string();
        for _ in 0..10 {
            let reply = call(&mut s, 0, me, &["SCAN", &cursor, "COUNT", "100"]);
            let parts = array_elements(reply.as_bytes()).unwrap();
            let next = String::from_utf8_lossy(parts[0]).into_owned();
            cursor = next
                .trim_start_matches('$')
                .split("\r\n")
                .nth(1)
                .unwrap()
                .to_string();
            for k in array_elements(parts[1]).unwrap() {
                seen.push(
                    String::from_utf8_lossy(k)
                        .split("\r\n")
                        .nth(1)
                        .unwrap()
                        .to_string(),
                );
            }
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(seen, want, "SCAN returns every key once");
        let all = call(&mut s, 0, me, &["KEYS", "*"]);
        assert!(all.starts_with("*3\r\n"), "{all}");
        let random = call(&mut s, 0, me, &["RANDOMKEY"]);
        assert!(keys.iter().any(|k| random.contains(k.as_str())), "{random}");
        assert_eq!(call(&mut s, 0, me, &["FLUSHALL", "SYNC"]), "+OK\r\n");
        assert_eq!(call(&mut s, 0, me, &["DBSIZE"]), ":0\r\n");
        assert_eq!(call(&mut s, 0, me, &["RANDOMKEY"]), "$-1\r\n");
        assert_eq!(
            call(&mut s, 0, me, &["FLUSHALL", "LATER"]),
            "-ERR syntax error\r\n"
        );
    }

    #[test]
    fn coordinated_commands_check_before_pausing_anything() {
        // The session drives the plan; the router checks the request first.
        let mut s = shards(2);
        let me = s[0].state_mut().connect("a".into(), "b".into(), 3);
        assert_eq!(
            call(&mut s, 0, me, &["COPY", "x", "x"]),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(
            call(&mut s, 0, me, &["MSETNX", "a", "1", "b"]),
            "-ERR wrong number of arguments for 'msetnx' command\r\n"
        );
    }
}
