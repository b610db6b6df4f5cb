//! Set commands, as Redis 7.0's `t_set.c` behaves: SADD, SREM, SCARD, SISMEMBER,
//! SMISMEMBER, SMEMBERS, SRANDMEMBER, SPOP and SSCAN (the commands over several sets are
//! in [`super::setops`]).
//!
//! A set of integers is an intset inside its entry while it has at most
//! `set-max-intset-entries` members; a member that is not an integer, or one member too
//! many, makes it a table (see [`crate::store::collection`]), and it never converts back,
//! as in Redis 7.0. An intset keeps its members sorted, as Redis's.

use crate::notify::{GENERIC, SET as SET_EVENTS};
use corekv_protocol::number::parse_i64;
use corekv_protocol::Reply;

use super::{coll, errors, Args, Ctx, Registrations, Route};
use crate::store::collection::{self, intset_iter, intset_len, intset_search, SET};
use crate::store::{Coll, CollRef, Table, Value};

/// The set family's single-key commands.
pub(super) const COMMANDS: Registrations = &[
    ("sadd", Route::keyed(sadd)),
    ("srem", Route::keyed(srem)),
    ("scard", Route::keyed(scard)),
    ("sismember", Route::keyed(sismember)),
    ("smismember", Route::keyed(smismember)),
    ("smembers", Route::keyed(smembers)),
    ("srandmember", Route::keyed(srandmember)),
    ("spop", Route::keyed(spop)),
    ("sscan", Route::keyed(sscan)),
];

/// Looks `key` up for a set command. `Ok(None)`: missing. `Err(())`: the key holds
/// another type and the WRONGTYPE error has been written.
pub(super) fn lookup(ctx: &mut Ctx, key: &[u8], read: bool) -> Result<Option<u32>, ()> {
    coll::lookup_as(ctx, key, read, |c| c.is_set())
}

/// A set's members (integers as their text), in the encoding's order.
pub(super) fn members(s: CollRef) -> Vec<Vec<u8>> {
    match s {
        CollRef::Intset(is) => intset_iter(is)
            .map(|m| itoa::Buffer::new().format(m).as_bytes().to_vec())
            .collect(),
        CollRef::Table(t) => t.iter().map(|(m, _)| m.to_vec()).collect(),
        CollRef::Listpack(_) => Vec::new(),
    }
}

/// Whether the set holds `member`.
pub(super) fn contains(s: CollRef, member: &[u8]) -> bool {
    match s {
        CollRef::Intset(is) => parse_i64(member).is_some_and(|v| intset_search(is, v).is_ok()),
        CollRef::Table(t) => t.contains(member),
        CollRef::Listpack(_) => false,
    }
}

/// How many members.
pub(super) fn card(s: CollRef) -> usize {
    match s {
        CollRef::Intset(is) => intset_len(is),
        CollRef::Table(t) => t.len(),
        CollRef::Listpack(_) => 0,
    }
}

/// Adds `new` to the set at `found` (or a new one at `key`, with deadline `expire_at`,
/// 0 for none) with Redis's encoding rules.
pub(super) fn add(ctx: &mut Ctx, key: &[u8], found: Option<u32>, new: &[&[u8]], expire_at: u64) {
    if let Some(idx) = found {
        if let Value::Coll(c) = ctx.store.entry(idx).value() {
            if c.is_table() {
                ctx.store.with_table(idx, |t| {
                    for m in new {
                        t.insert(m, b"");
                    }
                    ((), false)
                });
                return;
            }
        }
    }
    // An intset (or nothing yet): its members after the change.
    let mut ints: Vec<i64> = match found.and_then(|idx| ctx.store.coll(idx)) {
        Some(CollRef::Intset(is)) => intset_iter(is).collect(),
        _ => Vec::new(),
    };
    let (mut texts, before) = (false, ints.len());
    for m in new {
        match parse_i64(m) {
            Some(v) => {
                if let Err(at) = ints.binary_search(&v) {
                    ints.insert(at, v);
                }
            }
            None => texts = true,
        }
    }
    if !texts && found.is_some() && ints.len() == before {
        // Nothing new: the set is unchanged (and not touched, for WATCH).
        return;
    }
    if !texts && ints.len() as u64 <= ctx.coll.set_intset {
        write_intset(ctx, key, found, &ints, expire_at);
        return;
    }
    let mut t = Table::new(SET);
    for v in &ints {
        t.insert(itoa::Buffer::new().format(*v).as_bytes(), b"");
    }
    for m in new {
        t.insert(m, b"");
    }
    match found {
        Some(idx) => ctx.store.set_table(idx, t),
        None => {
            ctx.store.insert_table(key, SET, t, expire_at);
        }
    }
}

/// Stores `ints` (sorted, distinct) as the intset of the set at `found` (or a new one at
/// `key`).
fn write_intset(ctx: &mut Ctx, key: &[u8], found: Option<u32>, ints: &[i64], expire_at: u64) {
    let mut buf = ctx.store.take_scratch();
    collection::intset_build(ints, &mut buf);
    let value = Value::Coll(Coll {
        kind: SET | collection::COMPACT,
        bytes: &buf,
    });
    match found {
        Some(idx) => ctx.store.set_value(idx, value),
        None => {
            ctx.store.insert(key, value, expire_at);
        }
    }
    ctx.store.put_scratch(buf);
}

/// Removes `gone` from the set at `idx`; deletes an emptied set. Returns how many were
/// there.
pub(super) fn remove(ctx: &mut Ctx, idx: u32, gone: &[&[u8]]) -> usize {
    let (removed, left) = match ctx.store.entry(idx).value() {
        Value::Coll(c) if c.is_table() => ctx.store.with_table(idx, |t| {
            let removed = gone.iter().filter(|m| t.remove(m)).count();
            ((removed, t.len()), false)
        }),
        _ => {
            let mut ints: Vec<i64> = match ctx.store.coll(idx) {
                Some(CollRef::Intset(is)) => intset_iter(is).collect(),
                _ => Vec::new(),
            };
            let before = ints.len();
            for m in gone {
                if let Some(v) = parse_i64(m) {
                    if let Ok(at) = ints.binary_search(&v) {
                        ints.remove(at);
                    }
                }
            }
            let removed = before - ints.len();
            if removed > 0 && !ints.is_empty() {
                write_intset(ctx, b"", Some(idx), &ints, 0);
            }
            (removed, ints.len())
        }
    };
    let key = ctx.store.entry(idx).key().to_vec();
    if removed > 0 {
        ctx.store.notify(SET_EVENTS, "srem", &key);
    }
    if left == 0 {
        ctx.store.remove_at(idx);
        ctx.store.notify(GENERIC, "del", &key);
    }
    removed
}

/// SADD key member [member ...]
pub fn sadd(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let new: Vec<&[u8]> = args.iter().skip(2).collect();
    let added = count_added(ctx, key, found, &new);
    if added > 0 {
        ctx.store.notify(SET_EVENTS, "sadd", key);
    }
    ctx.out.int(added as i64);
}

/// [`add`], counting exactly the members that were not there.
pub(super) fn count_added(ctx: &mut Ctx, key: &[u8], found: Option<u32>, new: &[&[u8]]) -> usize {
    let before = found.and_then(|idx| ctx.store.coll(idx)).map_or(0, card);
    add(ctx, key, found, new, 0);
    let idx = found.or_else(|| ctx.store.find(key, ctx.now));
    let after = idx.and_then(|idx| ctx.store.coll(idx)).map_or(0, card);
    after - before
}

/// SREM key member [member ...]
pub fn srem(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), false) else {
        return;
    };
    let Some(idx) = found else {
        ctx.out.int(0);
        return;
    };
    let gone: Vec<&[u8]> = args.iter().skip(2).collect();
    let removed = remove(ctx, idx, &gone);
    ctx.out.int(removed as i64);
}

/// SCARD key
pub fn scard(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let n = found.and_then(|idx| ctx.store.coll(idx)).map_or(0, card);
    ctx.out.int(n as i64);
}

/// SISMEMBER key member
pub fn sismember(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let there = found
        .and_then(|idx| ctx.store.coll(idx))
        .is_some_and(|s| contains(s, args.get(2)));
    ctx.out.int(i64::from(there));
}

/// SMISMEMBER key member [member ...]
pub fn smismember(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Ctx { store, out, .. } = ctx;
    let s = found.and_then(|idx| store.coll(idx));
    out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        out.int(i64::from(s.is_some_and(|s| contains(s, m))));
    }
}

/// Writes `items` as a set (RESP3) or an array.
pub(super) fn reply_set(out: &mut Reply, items: &[Vec<u8>]) {
    out.set(items.len());
    for m in items {
        out.bulk(m);
    }
}

/// SMEMBERS key
pub fn smembers(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Ctx { store, out, .. } = ctx;
    let s = found.and_then(|idx| store.coll(idx));
    out.set(s.map_or(0, card));
    coll::reserve_reply(out, s);
    if let Some(s) = s {
        coll::for_each(s, |m, _| out.bulk(m));
    }
}

/// `SRANDMEMBER key [count]`
pub fn srandmember(ctx: &mut Ctx, args: Args) {
    if args.len() > 3 {
        ctx.out.err(errors::SYNTAX);
        return;
    }
    let count = if args.len() == 3 {
        let Some(n) = parse_i64(args.get(2)) else {
            ctx.out.err(errors::NOT_INTEGER);
            return;
        };
        if n == i64::MIN {
            ctx.out.err(
                "value is out of range, value must between -9223372036854775807 and \
                 9223372036854775807",
            );
            return;
        }
        Some(n)
    } else {
        None
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let max_bulk_len = ctx.max_bulk_len;
    let Ctx { store, out, .. } = ctx;
    let s = found.and_then(|idx| store.coll(idx));
    let mut rng = fastrand::Rng::new();
    match (s, count) {
        (None, None) => out.null(),
        (Some(s), None) => coll::random_one(s, &mut rng, |m, _| out.bulk(m)),
        (None, Some(_)) => out.array(0),
        (Some(s), Some(n)) if coll::sample_too_large(s, n, max_bulk_len) => {
            out.err(coll::SAMPLE_TOO_LARGE);
        }
        (Some(s), Some(n)) => {
            out.array(coll::sample_len(card(s), n));
            coll::sample(s, n, &mut rng, |m, _| out.bulk(m));
        }
    }
}

/// `SPOP key [count]`
pub fn spop(ctx: &mut Ctx, args: Args) {
    if args.len() > 3 {
        ctx.out.err(errors::SYNTAX);
        return;
    }
    let count = if args.len() == 3 {
        match parse_i64(args.get(2)) {
            None => {
                ctx.out.err(errors::NOT_INTEGER);
                return;
            }
            Some(n) if n < 0 => {
                ctx.out.err("value is out of range, must be positive");
                return;
            }
            Some(n) => Some(n as usize),
        }
    } else {
        None
    };
    let Ok(found) = lookup(ctx, args.get(1), false) else {
        return;
    };
    let Some(idx) = found else {
        match count {
            None => ctx.out.null(),
            Some(_) => reply_set(&mut ctx.out, &[]),
        }
        return;
    };
    let n = ctx.store.coll(idx).map_or(0, card);
    let key = args.get(1);
    if count != Some(0) {
        ctx.store.notify(SET_EVENTS, "spop", key);
    }
    let mut rng = fastrand::Rng::new();
    match count {
        None => {
            let popped = pop_random(ctx, idx, 1, &mut rng);
            if n == 1 {
                ctx.store.notify(GENERIC, "del", key);
            }
            ctx.out.bulk(&popped[0]);
        }
        Some(k) if k >= n => {
            // The whole set, in its order, and the key goes.
            let all = ctx.store.coll(idx).map_or_else(Vec::new, members);
            ctx.store.remove_at(idx);
            ctx.store.notify(GENERIC, "del", key);
            reply_set(&mut ctx.out, &all);
        }
        Some(k) if (n - k) * SPOP_MOVE_STRATEGY_MUL > k => {
            let popped = pop_random(ctx, idx, k, &mut rng);
            reply_set(&mut ctx.out, &popped);
        }
        Some(k) => {
            // Most of the set goes: draw the few that stay into a new set, reply the
            // rest in the old set's order (Redis's third case, encoding rules included).
            let kept = pop_random(ctx, idx, n - k, &mut rng);
            let rest = ctx.store.coll(idx).map_or_else(Vec::new, members);
            let kept: Vec<&[u8]> = kept.iter().map(|m| &m[..]).collect();
            let expire = ctx.store.entry(idx).expire_at().unwrap_or(0);
            let key = ctx.store.entry(idx).key().to_vec();
            ctx.store.remove_at(idx);
            // Redis overwrites the key: no "new" event.
            let flags = ctx.store.store().events.flags;
            ctx.store.store().events.flags &= !crate::notify::NEW;
            add(ctx, &key, None, &kept, expire);
            ctx.store.store().events.flags = flags;
            reply_set(&mut ctx.out, &rest);
        }
    }
}

/// SPOP pops one at a time while at least a fifth of the set stays (Redis's
/// `SPOP_MOVE_STRATEGY_MUL`).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// Removes `k` (fewer than its size, or exactly 1) members chosen at random from the set
/// at `idx`, in the order drawn; deletes the set if that empties it.
fn pop_random(ctx: &mut Ctx, idx: u32, k: usize, rng: &mut fastrand::Rng) -> Vec<Vec<u8>> {
    match ctx.store.entry(idx).value() {
        Value::Coll(c) if c.is_table() => {
            let (popped, left) = ctx.store.with_table(idx, |t| {
                let mut popped = Vec::with_capacity(k);
                for _ in 0..k.min(t.len()) {
                    let m = t.at(t.random(rng)).expect("a used position").0.to_vec();
                    t.remove(&m);
                    popped.push(m);
                }
                ((popped, t.len()), false)
            });
            if left == 0 {
                ctx.store.remove_at(idx);
            }
            popped
        }
        _ => {
            let mut ints: Vec<i64> = match ctx.store.coll(idx) {
                Some(CollRef::Intset(is)) => intset_iter(is).collect(),
                _ => Vec::new(),
            };
            let mut popped = Vec::with_capacity(k);
            for _ in 0..k.min(ints.len()) {
                let v = ints.remove(rng.usize(..ints.len()));
                popped.push(itoa::Buffer::new().format(v).as_bytes().to_vec());
            }
            if ints.is_empty() {
                ctx.store.remove_at(idx);
            } else {
                write_intset(ctx, b"", Some(idx), &ints, 0);
            }
            popped
        }
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(ctx: &mut Ctx, args: Args) {
    coll::scan(ctx, args, lookup);
}

/// Intset or table, as OBJECT ENCODING names a set's encoding.
pub fn encoding_name(c: Coll) -> &'static str {
    if c.is_table() {
        "hashtable"
    } else {
        "intset"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Keys;

    #[test]
    fn integers_stay_an_intset_sorted_until_a_text_member_or_too_many() {
        let mut k = Keys::new(0);
        assert_eq!(
            k.run(sadd, "sadd", &["SADD", "s", "3", "1", "2", "1"]),
            ":3\r\n"
        );
        assert_eq!(
            k.run(smembers, "smembers", &["SMEMBERS", "s"]),
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
        );
        let idx = k.keyspace().find(b"s", 0).unwrap();
        assert!(matches!(k.store.coll(idx), Some(CollRef::Intset(_))));
        assert_eq!(k.run(sadd, "sadd", &["SADD", "s", "a", "2"]), ":1\r\n");
        assert!(matches!(k.store.coll(idx), Some(CollRef::Table(_))));
        assert_eq!(k.run(scard, "scard", &["SCARD", "s"]), ":4\r\n");
        assert_eq!(
            k.run(srem, "srem", &["SREM", "s", "1", "2", "3", "a", "z"]),
            ":4\r\n"
        );
        assert!(k.store.is_empty());
        assert_eq!(k.run(spop, "spop", &["SPOP", "s"]), "$-1\r\n");
    }
}
