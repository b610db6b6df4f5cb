//! Hash commands, as Redis 7.0's `t_hash.c` behaves: HSET and its variants, HGET and its
//! variants, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS, HVALS, HGETALL, HINCRBY,
//! HINCRBYFLOAT, HRANDFIELD and HSCAN.
//!
//! A hash is a listpack inside its entry until it has more than
//! `hash-max-listpack-entries` fields or a field or value longer than
//! `hash-max-listpack-value`, then a table (see [`crate::store::collection`]); like
//! Redis it never converts back. A listpack keeps fields in insertion order, as Redis's.

use crate::notify::{GENERIC, HASH as HASH_EVENTS};
use corekv_protocol::number::parse_i64;

use super::{coll, errors, Args, Ctx, Registrations, Route};
use crate::float::{incr_by_float, FloatError};
use crate::store::collection::{self, listpack_get, listpack_iter, listpack_len, HASH};
use crate::store::{Coll, CollRef, Table, Value};

/// The hash family.
pub(super) const COMMANDS: Registrations = &[
    ("hset", Route::keyed(hset)),
    ("hmset", Route::keyed(hmset)),
    ("hsetnx", Route::keyed(hsetnx)),
    ("hget", Route::keyed(hget)),
    ("hmget", Route::keyed(hmget)),
    ("hdel", Route::keyed(hdel)),
    ("hlen", Route::keyed(hlen)),
    ("hstrlen", Route::keyed(hstrlen)),
    ("hexists", Route::keyed(hexists)),
    ("hkeys", Route::keyed(hkeys)),
    ("hvals", Route::keyed(hvals)),
    ("hgetall", Route::keyed(hgetall)),
    ("hincrby", Route::keyed(hincrby)),
    ("hincrbyfloat", Route::keyed(hincrbyfloat)),
    ("hrandfield", Route::keyed(hrandfield)),
    ("hscan", Route::keyed(hscan)),
];

/// Looks `key` up for a hash command. `Ok(None)`: missing. `Err(())`: the key holds
/// another type and the WRONGTYPE error has been written.
fn lookup(ctx: &mut Ctx, key: &[u8], read: bool) -> Result<Option<u32>, ()> {
    coll::lookup_as(ctx, key, read, |c| c.is_hash())
}

/// The hash at `idx` (which [`lookup`] checked is one).
fn hash_at<'c>(ctx: &'c Ctx, idx: u32) -> CollRef<'c> {
    ctx.store.coll(idx).expect("lookup checked the type")
}

/// The value of `field`.
pub(crate) fn get<'a>(h: CollRef<'a>, field: &[u8]) -> Option<&'a [u8]> {
    match h {
        CollRef::Listpack(lp) => listpack_get(lp, field),
        CollRef::Table(t) => t.get(field),
        CollRef::Intset(_) => None,
    }
}

/// How many fields.
fn len(h: CollRef) -> usize {
    match h {
        CollRef::Listpack(lp) => listpack_len(lp),
        CollRef::Table(t) => t.len(),
        CollRef::Intset(_) => 0,
    }
}

/// Every field and value, in the encoding's order.
fn pairs<'a>(h: CollRef<'a>) -> Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a> {
    match h {
        CollRef::Listpack(lp) => Box::new(listpack_iter(lp)),
        CollRef::Table(t) => Box::new(t.iter()),
        CollRef::Intset(_) => Box::new(std::iter::empty()),
    }
}

/// Sets `pairs` (field, value) on the hash at `found` (or a new one at `key`), keeping
/// Redis's encoding rules: a listpack while it stays within both limits, else a table.
/// `convert` forces the table (an argument was too long). Returns how many fields
/// were new.
fn set_fields(
    ctx: &mut Ctx,
    key: &[u8],
    found: Option<u32>,
    pairs: &[(&[u8], &[u8])],
    convert: bool,
) -> usize {
    let max_entries = ctx.coll.hash_entries as usize;
    let long = |b: &[u8]| b.len() as u64 > ctx.coll.hash_value;
    let convert = convert || pairs.iter().any(|(f, v)| long(f) || long(v));
    // A table already: insert each.
    if let Some(idx) = found {
        if let Value::Coll(c) = ctx.store.entry(idx).value() {
            if c.is_table() {
                // HSET changes the key even when every field kept its value (Redis).
                return ctx.store.with_table(idx, |t| {
                    (pairs.iter().filter(|(f, v)| t.insert(f, v)).count(), true)
                });
            }
        }
    }
    // A listpack (or nothing yet): written anew in one pass, without copying fields
    // out. As Redis's HSET, a field already there keeps its place and takes the
    // request's last value for it; new fields follow in the order they first appear.
    let last_value = |f: &[u8]| pairs.iter().rev().find(|(g, _)| *g == f).map(|(_, v)| *v);
    let mut buf = ctx.store.take_scratch();
    let outcome = {
        let old = match found.and_then(|idx| ctx.store.coll(idx)) {
            Some(CollRef::Listpack(lp)) => Some(lp),
            _ => None,
        };
        let in_old = |f: &[u8]| old.is_some_and(|lp| listpack_get(lp, f).is_some());
        let new_fields: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .enumerate()
            .filter(|&(i, (f, _))| !in_old(f) && !pairs[..i].iter().any(|(g, _)| g == f))
            .map(|(_, &(f, _))| (f, last_value(f).expect("the field is in the request")))
            .collect();
        let added = new_fields.len();
        let total = old.map_or(0, listpack_len) + added;
        let merged = old
            .into_iter()
            .flat_map(listpack_iter)
            .map(|(f, v)| (f, last_value(f).unwrap_or(v)))
            .chain(new_fields.iter().copied());
        if convert || total > max_entries {
            let mut t = Table::new(HASH);
            for (f, v) in merged {
                t.insert(f, v);
            }
            Err((t, added))
        } else {
            collection::listpack_build(&mut buf, total, merged);
            Ok(added)
        }
    };
    let added = match outcome {
        Ok(added) => {
            let value = Value::Coll(Coll {
                kind: HASH | collection::COMPACT,
                bytes: &buf,
            });
            match found {
                Some(idx) => ctx.store.set_value(idx, value),
                None => {
                    ctx.store.insert(key, value, 0);
                }
            }
            added
        }
        Err((t, added)) => {
            match found {
                Some(idx) => ctx.store.set_table(idx, t),
                None => {
                    ctx.store.insert_table(key, HASH, t, 0);
                }
            }
            added
        }
    };
    ctx.store.put_scratch(buf);
    added
}

/// The request's field-value pairs, from argument 2 on.
fn arg_pairs<'a>(args: Args<'a>) -> Vec<(&'a [u8], &'a [u8])> {
    (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect()
}

/// HSET key field value [field value ...]: how many fields were new.
pub fn hset(ctx: &mut Ctx, args: Args) {
    if args.len() % 2 == 1 {
        super::arity_error(&mut ctx.out, ctx.name);
        return;
    }
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let added = set_fields(ctx, key, found, &arg_pairs(args), false);
    ctx.store.notify(HASH_EVENTS, "hset", key);
    ctx.out.int(added as i64);
}

/// HMSET key field value [field value ...]: `+OK`.
pub fn hmset(ctx: &mut Ctx, args: Args) {
    if args.len() % 2 == 1 {
        super::arity_error(&mut ctx.out, ctx.name);
        return;
    }
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    set_fields(ctx, key, found, &arg_pairs(args), false);
    ctx.store.notify(HASH_EVENTS, "hset", key);
    ctx.out.ok();
}

/// HSETNX key field value: sets the field only if it is new. As in Redis, the arguments'
/// lengths are checked against the listpack limit first, whether the field is set or not.
pub fn hsetnx(ctx: &mut Ctx, args: Args) {
    let (key, field, value) = (args.get(1), args.get(2), args.get(3));
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let long = |b: &[u8]| b.len() as u64 > ctx.coll.hash_value;
    let exists = found.is_some_and(|idx| get(hash_at(ctx, idx), field).is_some());
    if exists {
        if long(field) || long(value) {
            // hashTypeTryConversion ran before the field was looked up.
            if let Some(idx) = found {
                set_fields(ctx, key, Some(idx), &[], true);
            }
        }
        ctx.out.int(0);
        return;
    }
    set_fields(ctx, key, found, &[(field, value)], false);
    ctx.store.notify(HASH_EVENTS, "hset", key);
    ctx.out.int(1);
}

/// HGET key field
pub fn hget(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Ctx { store, out, .. } = ctx;
    match found.and_then(|idx| get(store.coll(idx)?, args.get(2))) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
}

/// HMGET key field [field ...]
pub fn hmget(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Ctx { store, out, .. } = ctx;
    let h = found.and_then(|idx| store.coll(idx));
    out.array(args.len() - 2);
    for f in args.iter().skip(2) {
        match h.and_then(|h| get(h, f)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

/// HDEL key field [field ...]: how many were removed; an emptied hash is deleted.
pub fn hdel(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let Some(idx) = found else {
        ctx.out.int(0);
        return;
    };
    let fields: Vec<&[u8]> = args.iter().skip(2).collect();
    let (removed, left) = match ctx.store.entry(idx).value() {
        Value::Coll(c) if c.is_table() => ctx.store.with_table(idx, |t| {
            let removed = fields.iter().filter(|f| t.remove(f)).count();
            ((removed, t.len()), false)
        }),
        _ => {
            let mut buf = ctx.store.take_scratch();
            let (before, left) = {
                let h = hash_at(ctx, idx);
                let before = len(h);
                let kept = || pairs(h).filter(|(f, _)| !fields.contains(f));
                let left = kept().count();
                if left < before && left > 0 {
                    collection::listpack_build(&mut buf, left, kept());
                }
                (before, left)
            };
            if left < before && left > 0 {
                ctx.store.set_value(
                    idx,
                    Value::Coll(Coll {
                        kind: HASH | collection::COMPACT,
                        bytes: &buf,
                    }),
                );
            }
            ctx.store.put_scratch(buf);
            (before - left, left)
        }
    };
    if removed > 0 {
        ctx.store.notify(HASH_EVENTS, "hdel", key);
    }
    if left == 0 {
        ctx.store.remove_at(idx);
        ctx.store.notify(GENERIC, "del", key);
    }
    ctx.out.int(removed as i64);
}

/// HLEN key
pub fn hlen(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let n = found.map_or(0, |idx| len(hash_at(ctx, idx)));
    ctx.out.int(n as i64);
}

/// HSTRLEN key field: the value's length, 0 when missing.
pub fn hstrlen(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let n = found.and_then(|idx| get(hash_at(ctx, idx), args.get(2)).map(<[u8]>::len));
    ctx.out.int(n.unwrap_or(0) as i64);
}

/// HEXISTS key field
pub fn hexists(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let there = found.is_some_and(|idx| get(hash_at(ctx, idx), args.get(2)).is_some());
    ctx.out.int(i64::from(there));
}

/// What HKEYS, HVALS and HGETALL reply with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Fields,
    Values,
    Both,
}

fn getall(ctx: &mut Ctx, args: Args, part: Part) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Ctx { store, out, .. } = ctx;
    let h = found.and_then(|idx| store.coll(idx));
    let n = h.map_or(0, len);
    match part {
        // RESP3: a map; RESP2: a flat array of field, value.
        Part::Both => out.map(n),
        _ => out.array(n),
    }
    coll::reserve_reply(out, h);
    if let Some(h) = h {
        for (f, v) in pairs(h) {
            if part != Part::Values {
                out.bulk(f);
            }
            if part != Part::Fields {
                out.bulk(v);
            }
        }
    }
}

/// HKEYS key
pub fn hkeys(ctx: &mut Ctx, args: Args) {
    getall(ctx, args, Part::Fields);
}

/// HVALS key
pub fn hvals(ctx: &mut Ctx, args: Args) {
    getall(ctx, args, Part::Values);
}

/// HGETALL key
pub fn hgetall(ctx: &mut Ctx, args: Args) {
    getall(ctx, args, Part::Both);
}

/// HINCRBY key field increment
pub fn hincrby(ctx: &mut Ctx, args: Args) {
    let (key, field) = (args.get(1), args.get(2));
    let Some(incr) = parse_i64(args.get(3)) else {
        ctx.out.err(errors::NOT_INTEGER);
        return;
    };
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let current = match found.and_then(|idx| get(hash_at(ctx, idx), field)) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => {
                ctx.out.err("hash value is not an integer");
                return;
            }
        },
    };
    let Some(value) = current.checked_add(incr) else {
        ctx.out.err("increment or decrement would overflow");
        return;
    };
    let text = itoa::Buffer::new().format(value).as_bytes().to_vec();
    set_fields(ctx, key, found, &[(field, &text)], false);
    ctx.store.notify(HASH_EVENTS, "hincrby", key);
    ctx.out.int(value);
}

/// HINCRBYFLOAT key field increment, in `long double` as Redis computes it.
pub fn hincrbyfloat(ctx: &mut Ctx, args: Args) {
    let (key, field, incr) = (args.get(1), args.get(2), args.get(3));
    // The increment alone first: Redis checks it before the key.
    match incr_by_float(None, incr) {
        Ok(_) => {}
        Err(FloatError::NotAFloat) => {
            ctx.out.err("value is not a valid float");
            return;
        }
        Err(FloatError::NanOrInfinity) => {
            ctx.out.err("value is NaN or Infinity");
            return;
        }
    }
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let current = found.and_then(|idx| get(hash_at(ctx, idx), field).map(<[u8]>::to_vec));
    let text = match incr_by_float(current.as_deref(), incr) {
        Ok(text) => text,
        Err(FloatError::NotAFloat) => {
            ctx.out.err("hash value is not a float");
            return;
        }
        Err(FloatError::NanOrInfinity) => {
            ctx.out.err("increment would produce NaN or Infinity");
            return;
        }
    };
    set_fields(ctx, key, found, &[(field, &text)], false);
    ctx.store.notify(HASH_EVENTS, "hincrbyfloat", key);
    ctx.out.bulk(&text);
}

/// `HRANDFIELD key [count [WITHVALUES]]`
pub fn hrandfield(ctx: &mut Ctx, args: Args) {
    let Some((count, with_values)) = coll::rand_args(&mut ctx.out, args, "withvalues") else {
        return;
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let max_bulk_len = ctx.max_bulk_len;
    let Ctx { store, out, .. } = ctx;
    let h = found.and_then(|idx| store.coll(idx));
    let mut rng = fastrand::Rng::new();
    let Some(count) = count else {
        match h {
            Some(h) => coll::random_one(h, &mut rng, |f, _| out.bulk(f)),
            None => out.null(),
        }
        return;
    };
    let Some(h) = h else {
        out.array(0);
        return;
    };
    if coll::sample_too_large(h, count, max_bulk_len) {
        out.err(coll::SAMPLE_TOO_LARGE);
        return;
    }
    let n = coll::sample_len(coll::len(h), count);
    let resp3 = out.proto() == corekv_protocol::Proto::Resp3;
    if with_values && resp3 {
        out.array(n);
    } else {
        out.array(n * if with_values { 2 } else { 1 });
    }
    coll::sample(h, count, &mut rng, |f, v| {
        if with_values && resp3 {
            out.array(2);
        }
        out.bulk(f);
        if with_values {
            out.bulk(v);
        }
    });
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
pub fn hscan(ctx: &mut Ctx, args: Args) {
    coll::scan(ctx, args, lookup);
}

/// Table or listpack, as OBJECT ENCODING names a hash's encoding.
pub fn encoding_name(c: Coll) -> &'static str {
    if c.is_table() {
        "hashtable"
    } else {
        "listpack"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Keys;

    #[test]
    fn a_hash_stays_a_listpack_in_insertion_order_until_a_limit() {
        let mut k = Keys::new(0);
        assert_eq!(
            k.run(hset, "hset", &["HSET", "h", "b", "1", "a", "2"]),
            ":2\r\n"
        );
        assert_eq!(
            k.run(hset, "hset", &["HSET", "h", "b", "3", "c", "4"]),
            ":1\r\n"
        );
        assert_eq!(
            k.run(hgetall, "hgetall", &["HGETALL", "h"]),
            "*6\r\n$1\r\nb\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n4\r\n"
        );
        let idx = k.keyspace().find(b"h", 0).unwrap();
        assert!(matches!(k.store.coll(idx), Some(CollRef::Listpack(_))));
        let long = "x".repeat(65);
        k.run(hset, "hset", &["HSET", "h", "d", &long]);
        assert!(matches!(k.store.coll(idx), Some(CollRef::Table(_))));
        assert_eq!(k.run(hlen, "hlen", &["HLEN", "h"]), ":4\r\n");
        assert_eq!(
            k.run(hdel, "hdel", &["HDEL", "h", "a", "b", "c", "d", "zz"]),
            ":4\r\n"
        );
        assert!(k.store.is_empty(), "an emptied hash is gone");
    }

    #[test]
    fn counters_follow_redis() {
        let mut k = Keys::new(0);
        assert_eq!(
            k.run(hincrby, "hincrby", &["HINCRBY", "h", "n", "5"]),
            ":5\r\n"
        );
        assert_eq!(
            k.run(
                hincrby,
                "hincrby",
                &["HINCRBY", "h", "n", "9223372036854775807"]
            ),
            "-ERR increment or decrement would overflow\r\n"
        );
        k.run(hset, "hset", &["HSET", "h", "s", "abc"]);
        assert_eq!(
            k.run(hincrby, "hincrby", &["HINCRBY", "h", "s", "1"]),
            "-ERR hash value is not an integer\r\n"
        );
        assert_eq!(
            k.run(
                hincrbyfloat,
                "hincrbyfloat",
                &["HINCRBYFLOAT", "h", "n", "0.5"]
            ),
            "$3\r\n5.5\r\n"
        );
        assert_eq!(
            k.run(
                hincrbyfloat,
                "hincrbyfloat",
                &["HINCRBYFLOAT", "h", "s", "1"]
            ),
            "-ERR hash value is not a float\r\n"
        );
    }
}
