//! String commands: GET, SET and its variants, counters, ranges, MGET/MSET/MSETNX — each as
//! Redis 7's `t_string.c` behaves, reply type and error text included.

use corekv_protocol::number::parse_i64;
use corekv_protocol::Reply;

use super::merge::{all_ok, array_elements};
use super::{arity_error, errors, is, Args, Coord, Coordinated, Ctx, Registrations, Route, Split};
use crate::assembly::{MergeCtx, MergeData};
use crate::float::{incr_by_float, FloatError};
use crate::notify::{GENERIC, STRING};
use crate::store::{Str, Value};

/// The string family.
pub(super) const COMMANDS: Registrations = &[
    ("get", Route::keyed(get)),
    ("set", Route::keyed(set)),
    ("setnx", Route::keyed(setnx)),
    ("setex", Route::keyed(setex)),
    ("psetex", Route::keyed(psetex)),
    ("getset", Route::keyed(getset)),
    ("getdel", Route::keyed(getdel)),
    ("getex", Route::keyed(getex)),
    ("append", Route::keyed(append)),
    ("strlen", Route::keyed(strlen)),
    ("incr", Route::keyed(incr)),
    ("decr", Route::keyed(decr)),
    ("incrby", Route::keyed(incrby)),
    ("decrby", Route::keyed(decrby)),
    ("incrbyfloat", Route::keyed(incrbyfloat)),
    ("getrange", Route::keyed(getrange)),
    ("substr", Route::keyed(getrange)),
    ("setrange", Route::keyed(setrange)),
    ("mget", Route::split(mget, &MGET)),
    ("mset", Route::split(mset, &MSET)),
    ("msetnx", Route::coordinated(msetnx, &MSETNX)),
];

/// MGET over several shards: each owner's values, put back in key order.
const MGET: Split = Split {
    step: 1,
    merge: mget_merge,
};

/// MSET over several shards: `+OK` once every owner has set its keys.
const MSET: Split = Split {
    step: 2,
    merge: all_ok,
};

/// MSETNX over several shards: all or nothing, atomically.
const MSETNX: Coordinated = Coordinated {
    kind: Coord::Msetnx,
    check: pairs_check,
    blocking: None,
};

/// MSETNX's request must be key-value pairs.
fn pairs_check(out: &mut Reply, name: &'static str, args: Args) -> Option<bool> {
    if args.len() % 2 == 0 {
        arity_error(out, name);
        return None;
    }
    Some(false)
}

/// Interleaves each owner's MGET array back into request order (`data`: each key's
/// `part << 32 | index`).
fn mget_merge(_: &mut MergeCtx, data: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let split: Vec<Vec<&[u8]>> = parts
        .iter()
        .map(|p| array_elements(p).unwrap_or_default())
        .collect();
    let order = data.ints();
    out.array(order.len());
    for &at in order {
        let (part, idx) = ((at >> 32) as usize, (at & 0xffff_ffff) as usize);
        match split.get(part).and_then(|e| e.get(idx)) {
            Some(bytes) => out.raw(bytes),
            None => out.null(),
        }
    }
}

/// Looks `key` up for a string command. `Ok(None)`: missing. `Err(())`: the key holds
/// another type and the WRONGTYPE error has been written.
#[inline]
fn lookup(ctx: &mut Ctx, key: &[u8], read: bool) -> Result<Option<u32>, ()> {
    let found = if read {
        ctx.store.find_read(key, ctx.now)
    } else {
        ctx.store.find(key, ctx.now)
    };
    match found {
        Some(idx) => match ctx.store.entry(idx).value() {
            Value::Str(_) => Ok(Some(idx)),
            #[allow(unreachable_patterns)]
            _ => {
                ctx.out.error(errors::WRONGTYPE);
                Err(())
            }
        },
        None => Ok(None),
    }
}

/// The string at `idx` (which [`lookup`] checked is a string).
#[inline]
fn str_at<'c>(ctx: &'c Ctx, idx: u32) -> Str<'c> {
    match ctx.store.entry(idx).value() {
        Value::Str(s) => s,
        Value::Coll(_) => unreachable!("lookup checked the type"),
    }
}

/// Writes the value at `idx` as a bulk string.
#[inline]
fn reply_value(ctx: &mut Ctx, idx: u32) {
    let Ctx { store, out, .. } = ctx;
    match store.entry(idx).value() {
        Value::Str(Str::Raw(v)) => out.bulk(v),
        Value::Str(Str::Int(n)) => out.bulk_int(n),
        Value::Coll(_) => unreachable!("lookup checked the type"),
    }
}

/// `getGenericCommand`: replies with the value or null; `Err` after WRONGTYPE.
fn get_generic(ctx: &mut Ctx, key: &[u8]) -> Result<Option<u32>, ()> {
    let found = lookup(ctx, key, true)?;
    match found {
        Some(idx) => reply_value(ctx, idx),
        None => ctx.out.null(),
    }
    Ok(found)
}

fn int_arg(ctx: &mut Ctx, arg: &[u8]) -> Option<i64> {
    let v = parse_i64(arg);
    if v.is_none() {
        ctx.out.err(errors::NOT_INTEGER);
    }
    v
}

/// GET key
pub fn get(ctx: &mut Ctx, args: Args) {
    let _ = get_generic(ctx, args.get(1));
}

/// The options of SET (after the value) and GETEX (after the key).
#[derive(Default)]
pub(crate) struct ExtOptions {
    pub(crate) nx: bool,
    pub(crate) xx: bool,
    pub(crate) get: bool,
    pub(crate) keep_ttl: bool,
    pub(crate) persist: bool,
    /// Position of the expire argument, and its unit.
    pub(crate) expire: Option<(usize, Unit)>,
}

/// How an expire argument is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// EX: relative seconds.
    Ex,
    /// PX: relative milliseconds.
    Px,
    /// EXAT: absolute seconds.
    ExAt,
    /// PXAT: absolute milliseconds.
    PxAt,
}

/// `parseExtendedStringArgumentsOrReply`: options from position `from`; `set` selects
/// SET's options (NX, XX, GET, KEEPTTL) or GETEX's (PERSIST). The same acceptance rules
/// as Redis: an expiry unit may repeat (the last wins) but not mix with another unit,
/// KEEPTTL or PERSIST. `None` is a syntax error.
pub(crate) fn parse_extended(args: Args, from: usize, set: bool) -> Option<ExtOptions> {
    let mut o = ExtOptions::default();
    let mut j = from;
    while j < args.len() {
        let opt = args.get(j);
        let has_next = j + 1 < args.len();
        let unit = o.expire.map(|(_, u)| u);
        let asked = if is(opt, "ex") {
            Some(Unit::Ex)
        } else if is(opt, "px") {
            Some(Unit::Px)
        } else if is(opt, "exat") {
            Some(Unit::ExAt)
        } else if is(opt, "pxat") {
            Some(Unit::PxAt)
        } else {
            None
        };
        if set && is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if set && is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if set && is(opt, "get") {
            o.get = true;
        } else if set && is(opt, "keepttl") && !o.persist && unit.is_none() {
            o.keep_ttl = true;
        } else if !set && is(opt, "persist") && unit.is_none() && !o.keep_ttl {
            o.persist = true;
        } else if let Some(asked) =
            asked.filter(|&a| !o.keep_ttl && !o.persist && unit.is_none_or(|u| u == a) && has_next)
        {
            o.expire = Some((j + 1, asked));
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// `getExpireMillisecondsOrReply`: the absolute deadline in Unix milliseconds.
pub(crate) fn expire_deadline(ctx: &mut Ctx, arg: &[u8], unit: Unit) -> Option<u64> {
    let mut ms = int_arg(ctx, arg)?;
    let seconds = matches!(unit, Unit::Ex | Unit::ExAt);
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        ctx.out
            .err(&format!("invalid expire time in '{}' command", ctx.name));
        return None;
    }
    if seconds {
        ms *= 1000;
    }
    if matches!(unit, Unit::Ex | Unit::Px) {
        ms = ms.wrapping_add(ctx.now as i64);
    }
    if ms <= 0 {
        ctx.out
            .err(&format!("invalid expire time in '{}' command", ctx.name));
        return None;
    }
    Some(ms as u64)
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ts-ms | KEEPTTL]`
pub fn set(ctx: &mut Ctx, args: Args) {
    let Some(opts) = parse_extended(args, 3, true) else {
        ctx.out.err(errors::SYNTAX);
        return;
    };
    let deadline = match opts.expire {
        Some((pos, unit)) => match expire_deadline(ctx, args.get(pos), unit) {
            Some(d) => d,
            None => return,
        },
        None => 0,
    };
    let key = args.get(1);
    let found = if opts.get {
        match get_generic(ctx, key) {
            Ok(found) => found,
            Err(()) => return,
        }
    } else {
        ctx.store.find(key, ctx.now)
    };
    if (opts.nx && found.is_some()) || (opts.xx && found.is_none()) {
        if !opts.get {
            ctx.out.null();
        }
        return;
    }
    let ttl = match (deadline, opts.keep_ttl) {
        (0, true) => Ttl::Keep,
        (0, false) => Ttl::Clear,
        (d, _) => Ttl::At(d),
    };
    set_value(ctx, key, found, args.get(2), ttl);
    if !opts.get {
        ctx.out.ok();
    }
}

/// What a write does to the key's deadline.
#[derive(Clone, Copy)]
enum Ttl {
    /// Remove it (SET, GETSET, MSET).
    Clear,
    /// Leave it (SET … KEEPTTL).
    Keep,
    /// Set it to this Unix ms time.
    At(u64),
}

/// Stores `value` under `key` (found at `found`, or absent) and applies `ttl`.
#[inline]
fn set_value(ctx: &mut Ctx, key: &[u8], found: Option<u32>, value: &[u8], ttl: Ttl) {
    match found {
        Some(idx) => {
            // Value and deadline go into the entry's block in one layout; a value of
            // similar size is written over the old one: no allocation on the steady-state
            // SET path.
            let value = Value::Str(Str::from_bytes(value));
            match ttl {
                Ttl::Clear => ctx.store.replace(idx, value, 0),
                Ttl::Keep => ctx.store.set_value(idx, value),
                Ttl::At(d) => ctx.store.replace(idx, value, d),
            }
        }
        None => {
            let deadline = match ttl {
                Ttl::At(d) => d,
                _ => 0,
            };
            ctx.store
                .insert(key, Value::Str(Str::from_bytes(value)), deadline);
        }
    }
    ctx.store.notify(STRING, "set", key);
    if let Ttl::At(_) = ttl {
        ctx.store.notify(GENERIC, "expire", key);
    }
}

fn set_with_expire(ctx: &mut Ctx, args: Args, unit: Unit) {
    let Some(deadline) = expire_deadline(ctx, args.get(2), unit) else {
        return;
    };
    let key = args.get(1);
    let found = ctx.store.find(key, ctx.now);
    set_value(ctx, key, found, args.get(3), Ttl::At(deadline));
    ctx.out.ok();
}

/// SETEX key seconds value
pub fn setex(ctx: &mut Ctx, args: Args) {
    set_with_expire(ctx, args, Unit::Ex);
}

/// PSETEX key milliseconds value
pub fn psetex(ctx: &mut Ctx, args: Args) {
    set_with_expire(ctx, args, Unit::Px);
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT ts-ms | PERSIST]
pub fn getex(ctx: &mut Ctx, args: Args) {
    let Some(opts) = parse_extended(args, 2, false) else {
        ctx.out.err(errors::SYNTAX);
        return;
    };
    let idx = match lookup(ctx, args.get(1), true) {
        Ok(Some(idx)) => idx,
        Ok(None) => {
            ctx.out.null();
            return;
        }
        Err(()) => return,
    };
    let deadline = match opts.expire {
        Some((pos, unit)) => match expire_deadline(ctx, args.get(pos), unit) {
            Some(d) => Some((d, unit)),
            None => return,
        },
        None => None,
    };
    reply_value(ctx, idx);
    let key = args.get(1);
    match deadline {
        Some((d, Unit::ExAt | Unit::PxAt)) if d <= ctx.now => {
            ctx.store.remove_at(idx);
            ctx.store.notify(GENERIC, "del", key);
        }
        Some((d, _)) => {
            ctx.store.set_expire(idx, d);
            ctx.store.notify(GENERIC, "expire", key);
        }
        None if opts.persist && ctx.store.entry(idx).expire_at().is_some() => {
            ctx.store.set_expire(idx, 0);
            ctx.store.notify(GENERIC, "persist", key);
        }
        None => {}
    }
}

/// SETNX key value
pub fn setnx(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    if ctx.store.find(key, ctx.now).is_some() {
        ctx.out.int(0);
        return;
    }
    set_value(ctx, key, None, args.get(2), Ttl::Clear);
    ctx.out.int(1);
}

/// GETSET key value
pub fn getset(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let Ok(found) = get_generic(ctx, key) else {
        return;
    };
    set_value(ctx, key, found, args.get(2), Ttl::Clear);
}

/// GETDEL key
pub fn getdel(ctx: &mut Ctx, args: Args) {
    if let Ok(Some(idx)) = get_generic(ctx, args.get(1)) {
        ctx.store.remove_at(idx);
        ctx.store.notify(GENERIC, "del", args.get(1));
    }
}

/// MGET key [key ...]: non-strings read as null.
pub fn mget(ctx: &mut Ctx, args: Args) {
    ctx.out.array(args.len() - 1);
    for key in args.iter().skip(1) {
        match ctx.store.find_read(key, ctx.now) {
            Some(idx) => match ctx.store.entry(idx).value() {
                Value::Str(_) => reply_value(ctx, idx),
                Value::Coll(_) => ctx.out.null(),
            },
            None => ctx.out.null(),
        }
    }
}

fn mset_generic(ctx: &mut Ctx, args: Args, nx: bool) {
    if args.len() % 2 == 0 {
        arity_error(&mut ctx.out, ctx.name);
        return;
    }
    if nx {
        for j in (1..args.len()).step_by(2) {
            if ctx.store.find(args.get(j), ctx.now).is_some() {
                ctx.out.int(0);
                return;
            }
        }
    }
    for j in (1..args.len()).step_by(2) {
        let key = args.get(j);
        let found = ctx.store.find(key, ctx.now);
        set_value(ctx, key, found, args.get(j + 1), Ttl::Clear);
    }
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
}

/// MSET key value [key value ...]
pub fn mset(ctx: &mut Ctx, args: Args) {
    mset_generic(ctx, args, false);
}

/// MSETNX key value [key value ...]
pub fn msetnx(ctx: &mut Ctx, args: Args) {
    mset_generic(ctx, args, true);
}

/// `checkStringLength`: whether a string of `size + append` bytes is allowed.
fn length_ok(ctx: &mut Ctx, size: usize, append: usize) -> bool {
    let total = size as u64 + append as u64;
    if total > ctx.max_bulk_len {
        ctx.out
            .err("string exceeds maximum allowed size (proto-max-bulk-len)");
        return false;
    }
    true
}

/// APPEND key value
pub fn append(ctx: &mut Ctx, args: Args) {
    let (key, tail) = (args.get(1), args.get(2));
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let total = match found {
        None => {
            ctx.store.insert(key, Value::Str(Str::from_bytes(tail)), 0);
            tail.len()
        }
        Some(idx) => {
            let cur = str_at(ctx, idx).len();
            if !length_ok(ctx, cur, tail.len()) {
                return;
            }
            let total = cur + tail.len();
            ctx.store
                .edit_raw(idx, total, |raw| raw[cur..].copy_from_slice(tail));
            total
        }
    };
    ctx.store.notify(STRING, "append", key);
    ctx.out.int(total as i64);
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx, args: Args) {
    match lookup(ctx, args.get(1), true) {
        Ok(Some(idx)) => {
            let n = str_at(ctx, idx).len();
            ctx.out.int(n as i64);
        }
        Ok(None) => ctx.out.int(0),
        Err(()) => {}
    }
}

/// `incrDecrCommand`
fn incr_decr(ctx: &mut Ctx, key: &[u8], by: i64) {
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let current = match found {
        None => 0,
        Some(idx) => match str_at(ctx, idx) {
            Str::Int(n) => n,
            Str::Raw(v) => match parse_i64(v) {
                Some(n) => n,
                None => {
                    ctx.out.err(errors::NOT_INTEGER);
                    return;
                }
            },
        },
    };
    let Some(value) = current.checked_add(by) else {
        ctx.out.err("increment or decrement would overflow");
        return;
    };
    match found {
        Some(idx) => ctx.store.set_value(idx, Value::Str(Str::Int(value))),
        None => {
            ctx.store.insert(key, Value::Str(Str::Int(value)), 0);
        }
    }
    ctx.store.notify(STRING, "incrby", key);
    ctx.out.int(value);
}

/// INCR key
pub fn incr(ctx: &mut Ctx, args: Args) {
    incr_decr(ctx, args.get(1), 1);
}

/// DECR key
pub fn decr(ctx: &mut Ctx, args: Args) {
    incr_decr(ctx, args.get(1), -1);
}

/// INCRBY key increment
pub fn incrby(ctx: &mut Ctx, args: Args) {
    if let Some(by) = int_arg(ctx, args.get(2)) {
        incr_decr(ctx, args.get(1), by);
    }
}

/// DECRBY key decrement
pub fn decrby(ctx: &mut Ctx, args: Args) {
    let Some(by) = int_arg(ctx, args.get(2)) else {
        return;
    };
    if by == i64::MIN {
        ctx.out.err("decrement would overflow");
        return;
    }
    incr_decr(ctx, args.get(1), -by);
}

/// INCRBYFLOAT key increment, in C `long double` like Redis.
pub fn incrbyfloat(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let result = match found {
        None => incr_by_float(None, args.get(2)),
        Some(idx) => str_at(ctx, idx).with_bytes(|cur| incr_by_float(Some(cur), args.get(2))),
    };
    let text = match result {
        Ok(text) => text,
        Err(FloatError::NotAFloat) => {
            ctx.out.err("value is not a valid float");
            return;
        }
        Err(FloatError::NanOrInfinity) => {
            ctx.out.err("increment would produce NaN or Infinity");
            return;
        }
    };
    ctx.out.bulk(&text);
    // Redis keeps the result as text (`embstr`), even when it reads as an integer.
    let value = Str::Raw(&text);
    match found {
        Some(idx) => ctx.store.set_value(idx, Value::Str(value)),
        None => {
            ctx.store.insert(key, Value::Str(value), 0);
        }
    }
    ctx.store.notify(STRING, "incrbyfloat", key);
}

/// GETRANGE key start end (and SUBSTR, its old name).
pub fn getrange(ctx: &mut Ctx, args: Args) {
    let Some(mut start) = int_arg(ctx, args.get(2)) else {
        return;
    };
    let Some(mut end) = int_arg(ctx, args.get(3)) else {
        return;
    };
    let idx = match lookup(ctx, args.get(1), true) {
        Ok(Some(idx)) => idx,
        Ok(None) => {
            ctx.out.bulk(b"");
            return;
        }
        Err(()) => return,
    };
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return;
    }
    let Ctx { store, out, .. } = ctx;
    let value = match store.entry(idx).value() {
        Value::Str(value) => value,
        Value::Coll(_) => unreachable!("lookup checked the type"),
    };
    value.with_bytes(|s| {
        let len = s.len() as i64;
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if start > end || len == 0 {
            out.bulk(b"");
        } else {
            out.bulk(&s[start as usize..=end as usize]);
        }
    });
}

/// SETRANGE key offset value
pub fn setrange(ctx: &mut Ctx, args: Args) {
    let (key, value) = (args.get(1), args.get(3));
    let Some(offset) = int_arg(ctx, args.get(2)) else {
        return;
    };
    if offset < 0 {
        ctx.out.err("offset is out of range");
        return;
    }
    let offset = offset as usize;
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let idx = match found {
        None => {
            if value.is_empty() {
                ctx.out.int(0);
                return;
            }
            if !length_ok(ctx, offset, value.len()) {
                return;
            }
            ctx.store.insert(key, Value::Str(Str::Raw(&[])), 0)
        }
        Some(idx) => {
            if value.is_empty() {
                let n = str_at(ctx, idx).len();
                ctx.out.int(n as i64);
                return;
            }
            if !length_ok(ctx, offset, value.len()) {
                return;
            }
            idx
        }
    };
    let end = offset + value.len();
    let n = str_at(ctx, idx).len().max(end);
    ctx.store
        .edit_raw(idx, n, |raw| raw[offset..end].copy_from_slice(value));
    ctx.store.notify(STRING, "setrange", key);
    ctx.out.int(n as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Keys;

    /// Runs one command against `st`; returns the reply bytes as a string.
    fn run(st: &mut Keys, f: super::super::KeyFn, args: &[&str]) -> String {
        st.run(f, "set", args)
    }

    #[test]
    fn set_options_follow_redis() {
        let mut st = Keys::new(1_000_000);
        assert_eq!(run(&mut st, set, &["set", "k", "v"]), "+OK\r\n");
        assert_eq!(run(&mut st, set, &["set", "k", "v", "nx"]), "$-1\r\n");
        assert_eq!(
            run(&mut st, set, &["set", "k", "w", "xx", "get"]),
            "$1\r\nv\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "nx", "xx"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "ex"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "ex", "1", "px", "1"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "keepttl", "ex", "1"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "ex", "1", "ex", "2"]),
            "+OK\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "persist"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "ex", "0"]),
            "-ERR invalid expire time in 'set' command\r\n"
        );
        assert_eq!(
            run(&mut st, set, &["set", "k", "v", "ex", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(run(&mut st, set, &["set", "k", "v", "ex", "10"]), "+OK\r\n");
        let idx = st.keyspace().find(b"k", 0).unwrap();
        assert_eq!(st.store.entry(idx).expire_at(), Some(1_010_000));
        assert_eq!(run(&mut st, set, &["set", "k", "v", "keepttl"]), "+OK\r\n");
        assert_eq!(st.store.entry(idx).expire_at(), Some(1_010_000));
        assert_eq!(run(&mut st, set, &["set", "k", "v"]), "+OK\r\n");
        assert_eq!(st.store.entry(idx).expire_at(), None);
    }

    #[test]
    fn counters() {
        let mut st = Keys::new(1_000_000);
        assert_eq!(run(&mut st, incr, &["incr", "n"]), ":1\r\n");
        assert_eq!(run(&mut st, incrby, &["incrby", "n", "41"]), ":42\r\n");
        assert_eq!(
            run(&mut st, decrby, &["decrby", "n", "-9223372036854775808"]),
            "-ERR decrement would overflow\r\n"
        );
        assert_eq!(
            run(&mut st, incrby, &["incrby", "n", "9223372036854775807"]),
            "-ERR increment or decrement would overflow\r\n"
        );
        run(&mut st, set, &["set", "s", "abc"]);
        assert_eq!(
            run(&mut st, incr, &["incr", "s"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            run(&mut st, incrbyfloat, &["incrbyfloat", "f", "10.5"]),
            "$4\r\n10.5\r\n"
        );
        assert_eq!(
            run(&mut st, incrbyfloat, &["incrbyfloat", "f", "0.1"]),
            "$4\r\n10.6\r\n"
        );
    }

    #[test]
    fn ranges() {
        let mut st = Keys::new(1_000_000);
        run(&mut st, set, &["set", "s", "Hello World"]);
        assert_eq!(
            run(&mut st, getrange, &["getrange", "s", "0", "4"]),
            "$5\r\nHello\r\n"
        );
        assert_eq!(
            run(&mut st, getrange, &["getrange", "s", "-5", "-1"]),
            "$5\r\nWorld\r\n"
        );
        assert_eq!(
            run(&mut st, getrange, &["getrange", "s", "5", "1"]),
            "$0\r\n\r\n"
        );
        assert_eq!(
            run(&mut st, getrange, &["getrange", "s", "0", "100"]),
            "$11\r\nHello World\r\n"
        );
        assert_eq!(
            run(&mut st, setrange, &["setrange", "s", "6", "Redis"]),
            ":11\r\n"
        );
        assert_eq!(
            run(&mut st, setrange, &["setrange", "z", "3", "ab"]),
            ":5\r\n"
        );
        assert_eq!(run(&mut st, get, &["get", "z"]), "$5\r\n\0\0\0ab\r\n");
        assert_eq!(
            run(&mut st, setrange, &["setrange", "z", "-1", "ab"]),
            "-ERR offset is out of range\r\n"
        );
        assert_eq!(run(&mut st, append, &["append", "z", "cd"]), ":7\r\n");
        run(&mut st, set, &["set", "i", "12"]);
        assert_eq!(run(&mut st, append, &["append", "i", "3"]), ":3\r\n");
        assert_eq!(run(&mut st, strlen, &["strlen", "i"]), ":3\r\n");
    }
}
