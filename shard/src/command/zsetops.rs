//! The sorted-set commands that combine or copy sets, as Redis 7.0's `t_zset.c` behaves:
//! ZUNION, ZINTER, ZDIFF, ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, ZINTERCARD and
//! ZRANGESTORE.
//!
//! Each runs in one of two ways, with the same algorithms:
//!
//! - keys on one shard: there, over the stored values ([`Route::Keyed`]);
//! - keys on several: atomic across shards as a [`Gather`] with every owner paused: each
//!   source read on its owner (its whole value; ZRANGESTORE's range with ZRANGE ...
//!   WITHSCORES), the result computed on the client's shard, and a destination written
//!   on its owner (DEL, then ZADD of the result).
//!
//! A source may be a set as well as a sorted set (its members score 1), as in Redis.
//! The sorted-set representation and its reading and writing are [`super::zset`]'s.

use corekv_protocol::frame::Frame;
use corekv_protocol::number::parse_i64;
use corekv_protocol::{Proto, Reply};

use super::zset::{reply_members, write, zrange_run, Form, View};
use super::{errors, is, Args, Coordinated, Ctx, OwnedArgs, Registrations, Route};
use crate::coord::{Coord, Gather, Writes};
use crate::float::{format_double, parse_double, parse_double_loose};
use crate::notify::GENERIC;
use crate::store::zset::{compact_iter, order};
use crate::store::Value;

/// The sorted-set commands that combine or copy sets.
pub(super) const COMMANDS: Registrations = &[
    ("zunion", Route::coordinated(zunion, &ZUNION)),
    ("zinter", Route::coordinated(zinter, &ZINTER)),
    ("zdiff", Route::coordinated(zdiff, &ZDIFF)),
    ("zunionstore", Route::coordinated(zunionstore, &ZUNIONSTORE)),
    ("zinterstore", Route::coordinated(zinterstore, &ZINTERSTORE)),
    ("zdiffstore", Route::coordinated(zdiffstore, &ZDIFFSTORE)),
    ("zintercard", Route::coordinated(zintercard, &ZINTERCARD)),
    ("zrangestore", Route::coordinated(zrangestore, &ZRANGESTORE)),
];

// ---- combining sets: ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD ------------

/// Which combination.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// How scores combine (AGGREGATE).
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// A source as read: its members and scores (a set's members score 1), or missing.
type Source = Option<Vec<(f64, Vec<u8>)>>;

/// What a combining command asked for.
struct Combine {
    op: SetOp,
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
}

/// Reads numkeys (Redis's errors): `None` after writing one.
fn combine_numkeys(out: &mut Reply, args: Args, at: usize, name: &str) -> Option<usize> {
    let Some(n) = parse_i64(args.get(at)) else {
        out.err(errors::NOT_INTEGER);
        return None;
    };
    if n < 1 {
        out.err(&format!(
            "at least 1 input key is needed for '{name}' command"
        ));
        return None;
    }
    if n as usize > args.len() - at - 1 {
        out.err(errors::SYNTAX);
        return None;
    }
    Some(n as usize)
}

/// The options after the keys (WEIGHTS, AGGREGATE, WITHSCORES unless storing).
fn combine_options(
    out: &mut Reply,
    args: Args,
    op: SetOp,
    at: usize,
    n: usize,
    store: bool,
) -> Option<Combine> {
    let mut c = Combine {
        op,
        weights: vec![1.0; n],
        aggregate: Aggregate::Sum,
        withscores: false,
    };
    let mut j = at + 1 + n;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = args.get(j);
        if op != SetOp::Diff && remaining > n && is(a, "weights") {
            for i in 0..n {
                match parse_double(args.get(j + 1 + i)) {
                    Some(w) => c.weights[i] = w,
                    None => {
                        out.err("weight value is not a float");
                        return None;
                    }
                }
            }
            j += 1 + n;
        } else if op != SetOp::Diff && remaining >= 2 && is(a, "aggregate") {
            let g = args.get(j + 1);
            c.aggregate = if is(g, "sum") {
                Aggregate::Sum
            } else if is(g, "min") {
                Aggregate::Min
            } else if is(g, "max") {
                Aggregate::Max
            } else {
                out.err(errors::SYNTAX);
                return None;
            };
            j += 2;
        } else if !store && is(a, "withscores") {
            c.withscores = true;
            j += 1;
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
    }
    Some(c)
}

fn aggregate(a: Aggregate, acc: &mut f64, v: f64) {
    match a {
        Aggregate::Sum => {
            *acc += v;
            // inf + -inf: Redis keeps 0.
            if acc.is_nan() {
                *acc = 0.0;
            }
        }
        Aggregate::Min => *acc = acc.min(v),
        Aggregate::Max => *acc = acc.max(v),
    }
}

/// Combines the sources as Redis does; the result in (score, member) order.
fn combine(c: &Combine, sources: &[Source]) -> Vec<(f64, Vec<u8>)> {
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut out: Vec<(f64, Vec<u8>)> = Vec::new();
    match c.op {
        SetOp::Union => {
            let mut acc: ahash::HashMap<&[u8], f64> = ahash::HashMap::default();
            let mut order: Vec<&[u8]> = Vec::new();
            for (i, src) in sources.iter().enumerate() {
                for (s, m) in src.iter().flatten() {
                    let v = weighted(*s, c.weights[i]);
                    match acc.get_mut(&m[..]) {
                        Some(a) => aggregate(c.aggregate, a, v),
                        None => {
                            acc.insert(m, v);
                            order.push(m);
                        }
                    }
                }
            }
            out = order.into_iter().map(|m| (acc[m], m.to_vec())).collect();
        }
        SetOp::Inter => {
            if sources.iter().any(Option::is_none) {
                return out;
            }
            let mut idx: Vec<usize> = (0..sources.len()).collect();
            idx.sort_by_key(|&i| sources[i].as_ref().map_or(0, Vec::len));
            let maps: Vec<ahash::HashMap<&[u8], f64>> = sources
                .iter()
                .map(|s| s.iter().flatten().map(|(sc, m)| (&m[..], *sc)).collect())
                .collect();
            let first = idx[0];
            for (s, m) in sources[first].iter().flatten() {
                let mut score = weighted(*s, c.weights[first]);
                let mut all = true;
                for &i in &idx[1..] {
                    match maps[i].get(&m[..]) {
                        Some(&o) => aggregate(c.aggregate, &mut score, weighted(o, c.weights[i])),
                        None => {
                            all = false;
                            break;
                        }
                    }
                }
                if all {
                    out.push((score, m.clone()));
                }
            }
        }
        SetOp::Diff => {
            let Some(Some(first)) = sources.first() else {
                return out;
            };
            let others: Vec<ahash::HashSet<&[u8]>> = sources[1..]
                .iter()
                .map(|s| s.iter().flatten().map(|(_, m)| &m[..]).collect())
                .collect();
            for (s, m) in first {
                if !others.iter().any(|o| o.contains(&m[..])) {
                    out.push((*s, m.clone()));
                }
            }
        }
    }
    out.sort_by(|a, b| order((a.0, &a.1), (b.0, &b.1)));
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// A source on this shard: WRONGTYPE (written) for a key that is neither a set nor a
/// sorted set.
fn local_source(ctx: &mut Ctx, key: &[u8], write: bool) -> Result<Source, ()> {
    let found = if write {
        ctx.store.find(key, ctx.now)
    } else {
        ctx.store.find_read(key, ctx.now)
    };
    let Some(idx) = found else {
        return Ok(None);
    };
    if let Some(z) = ctx.store.zset(idx) {
        return Ok(Some(
            View::of(z)
                .iter_from(0, false)
                .map(|(s, m)| (s, m.to_vec()))
                .collect(),
        ));
    }
    match ctx.store.entry(idx).value() {
        Value::Coll(c) if c.is_set() => {
            let mut v = Vec::new();
            if let Some(cr) = ctx.store.coll(idx) {
                super::coll::for_each(cr, |m, _| v.push((1.0, m.to_vec())));
            }
            Ok(Some(v))
        }
        _ => {
            ctx.out.error(errors::WRONGTYPE);
            Err(())
        }
    }
}

/// Replaces `dst` with the sorted set `pairs` (deletes it when empty), raising `event`
/// (or `del` for an emptied key that existed). Returns the cardinality.
fn store_result(ctx: &mut Ctx, dst: &[u8], pairs: &[(f64, Vec<u8>)], event: &'static str) -> usize {
    let existed = ctx
        .store
        .find(dst, ctx.now)
        .map(|idx| ctx.store.remove_at(idx))
        .is_some();
    if pairs.is_empty() {
        if existed {
            ctx.store.notify(GENERIC, "del", dst);
        }
        return 0;
    }
    write(ctx, dst, None, |z| {
        for (s, m) in pairs {
            z.insert(m, *s);
        }
        ((), Some(event))
    });
    pairs.len()
}

fn combine_here(ctx: &mut Ctx, args: Args, op: SetOp, store: bool) {
    let at = if store { 2 } else { 1 };
    let Some(n) = combine_numkeys(&mut ctx.out, args, at, ctx.name) else {
        return;
    };
    let mut sources = Vec::with_capacity(n);
    for i in 0..n {
        match local_source(ctx, args.get(at + 1 + i), store) {
            Ok(s) => sources.push(s),
            Err(()) => return,
        }
    }
    let Some(c) = combine_options(&mut ctx.out, args, op, at, n, store) else {
        return;
    };
    let result = combine(&c, &sources);
    if store {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        let n = store_result(ctx, args.get(1), &result, event);
        ctx.out.int(n as i64);
    } else {
        let refs: Vec<(f64, &[u8])> = result.iter().map(|(s, m)| (*s, &m[..])).collect();
        reply_members(&mut ctx.out, &refs, c.withscores);
    }
}

/// ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] \[WITHSCORES\]
pub fn zunion(ctx: &mut Ctx, args: Args) {
    combine_here(ctx, args, SetOp::Union, false);
}

/// ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] \[WITHSCORES\]
pub fn zinter(ctx: &mut Ctx, args: Args) {
    combine_here(ctx, args, SetOp::Inter, false);
}

/// ZDIFF numkeys key [key ...] \[WITHSCORES\]
pub fn zdiff(ctx: &mut Ctx, args: Args) {
    combine_here(ctx, args, SetOp::Diff, false);
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE ...]
pub fn zunionstore(ctx: &mut Ctx, args: Args) {
    combine_here(ctx, args, SetOp::Union, true);
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE ...]
pub fn zinterstore(ctx: &mut Ctx, args: Args) {
    combine_here(ctx, args, SetOp::Inter, true);
}

/// ZDIFFSTORE destination numkeys key [key ...]
pub fn zdiffstore(ctx: &mut Ctx, args: Args) {
    combine_here(ctx, args, SetOp::Diff, true);
}

/// ZINTERCARD's LIMIT (0: none), after its `n` keys. `None` after writing the error.
fn intercard_limit(out: &mut Reply, args: Args, n: usize) -> Option<usize> {
    let mut limit = 0usize;
    let mut j = 2 + n;
    while j < args.len() {
        if is(args.get(j), "limit") && j + 1 < args.len() {
            match parse_i64(args.get(j + 1)) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => {
                    out.err("LIMIT can't be negative");
                    return None;
                }
            }
            j += 2;
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
    }
    Some(limit)
}

fn intercard_count(sources: &[Source], limit: usize) -> usize {
    let c = Combine {
        op: SetOp::Inter,
        weights: vec![1.0; sources.len()],
        aggregate: Aggregate::Sum,
        withscores: false,
    };
    let n = combine(&c, sources).len();
    if limit > 0 {
        n.min(limit)
    } else {
        n
    }
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx, args: Args) {
    let Some(n) = combine_numkeys(&mut ctx.out, args, 1, "zintercard") else {
        return;
    };
    let mut sources = Vec::with_capacity(n);
    for i in 0..n {
        match local_source(ctx, args.get(2 + i), false) {
            Ok(s) => sources.push(s),
            Err(()) => return,
        }
    }
    let Some(limit) = intercard_limit(&mut ctx.out, args, n) else {
        return;
    };
    ctx.out.int(intercard_count(&sources, limit) as i64);
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] \[REV\] [LIMIT offset count]: the range
/// ZRANGE would reply, stored at `dst`.
pub fn zrangestore(ctx: &mut Ctx, args: Args) {
    let mut pairs: Option<Vec<(f64, Vec<u8>)>> = None;
    let form = Form {
        by: None,
        rev: None,
    };
    zrange_run(
        ctx,
        args.slice(1, args.len() - 1),
        form,
        true,
        |_, items, _| {
            pairs = Some(items.iter().map(|(s, m)| (*s, m.to_vec())).collect());
        },
    );
    let Some(pairs) = pairs else {
        return;
    };
    let n = store_result(ctx, args.get(1), &pairs, "zrangestore");
    ctx.out.int(n as i64);
}

// ---- combining across shards ------------------------------------------------------

/// The sources read from their owners (`[DUMP, key]` replies), in key order; `Err` with
/// WRONGTYPE written for a key of another type.
fn gathered_sources(frames: &[Frame], out: &mut Reply) -> Result<Vec<Source>, ()> {
    use crate::store::collection::{intset_iter, listpack_iter, SET, TABLE, TYPE_MASK, ZSET};
    let mut sources = Vec::with_capacity(frames.len());
    for f in frames {
        let Frame::Array(items) = f else {
            sources.push(None);
            continue;
        };
        let ty = items.first().and_then(Frame::as_bytes).unwrap_or_default();
        if ty != b"zset" && ty != b"set" {
            out.error(errors::WRONGTYPE);
            return Err(());
        }
        let payload = items.get(2).and_then(Frame::as_bytes).unwrap_or_default();
        let Some((&kind, content)) = payload.split_first() else {
            sources.push(None);
            continue;
        };
        match (ty, kind & TYPE_MASK) {
            (b"zset", ZSET) => sources.push(Some(
                compact_iter(content)
                    .map(|(s, m)| (s, m.to_vec()))
                    .collect(),
            )),
            (b"set", SET) if kind & TABLE != 0 => sources.push(Some(
                listpack_iter(content)
                    .map(|(m, _)| (1.0, m.to_vec()))
                    .collect(),
            )),
            (b"set", SET) => sources.push(Some(
                intset_iter(content)
                    .map(|v| (1.0, itoa::Buffer::new().format(v).as_bytes().to_vec()))
                    .collect(),
            )),
            _ => {
                out.error(errors::WRONGTYPE);
                return Err(());
            }
        }
    }
    Ok(sources)
}

/// ZADD arguments storing `pairs` at `dst` (scores printed to round-trip exactly).
fn zadd_of(dst: &[u8], pairs: &[(f64, Vec<u8>)]) -> OwnedArgs {
    let mut a = OwnedArgs::new();
    a.push(b"ZADD");
    a.push(dst);
    let mut text = Vec::new();
    for (s, m) in pairs {
        text.clear();
        format_double(*s, &mut text);
        a.push(&text);
        a.push(m);
    }
    a
}

/// A STORE form's writes: the destination emptied, then the result added.
fn store_writes(dst: &[u8], pairs: &[(f64, Vec<u8>)]) -> Writes {
    let mut w = vec![(1, OwnedArgs::from_slices(&[&b"DEL"[..], dst]))];
    if !pairs.is_empty() {
        w.push((1, zadd_of(dst, pairs)));
    }
    w
}

fn combine_reads(args: Args, pos: usize, store: bool) -> Vec<OwnedArgs> {
    if store && pos == 1 {
        return Vec::new();
    }
    vec![OwnedArgs::from_slices(&[crate::coord::DUMP, args.get(pos)])]
}

fn combine_compute(
    args: Args,
    frames: &[Frame],
    out: &mut Reply,
    op: SetOp,
    store: bool,
) -> Writes {
    let at = if store { 2 } else { 1 };
    let mut scratch = Vec::new();
    let name = match (op, store) {
        (SetOp::Union, false) => "zunion",
        (SetOp::Inter, false) => "zinter",
        (SetOp::Diff, false) => "zdiff",
        (SetOp::Union, true) => "zunionstore",
        (SetOp::Inter, true) => "zinterstore",
        (SetOp::Diff, true) => "zdiffstore",
    };
    let Some(n) = combine_numkeys(&mut Reply::new(&mut scratch, Proto::Resp2), args, at, name)
    else {
        return Vec::new();
    };
    let Ok(sources) = gathered_sources(&frames[..n.min(frames.len())], out) else {
        return Vec::new();
    };
    let Some(c) = combine_options(out, args, op, at, n, store) else {
        return Vec::new();
    };
    let result = combine(&c, &sources);
    if store {
        out.int(result.len() as i64);
        store_writes(args.get(1), &result)
    } else {
        let refs: Vec<(f64, &[u8])> = result.iter().map(|(s, m)| (*s, &m[..])).collect();
        reply_members(out, &refs, c.withscores);
        Vec::new()
    }
}

fn combine_check(out: &mut Reply, name: &'static str, args: Args, store: bool) -> Option<bool> {
    combine_numkeys(out, args, if store { 2 } else { 1 }, name).map(|_| false)
}

macro_rules! combined {
    ($name:ident, $label:literal, $op:expr, $store:expr) => {
        const $name: Coordinated = Coordinated {
            kind: Coord::Gather(&Gather {
                lookups: None,
                name: $label,
                reads: |a, p| combine_reads(a, p, $store),
                compute: |a, f, o| combine_compute(a, f, o, $op, $store),
            }),
            check: |o, n, a| combine_check(o, n, a, $store),
            blocking: None,
        };
    };
}

combined!(ZUNION, "zunion", SetOp::Union, false);
combined!(ZINTER, "zinter", SetOp::Inter, false);
combined!(ZDIFF, "zdiff", SetOp::Diff, false);
combined!(ZUNIONSTORE, "zunionstore", SetOp::Union, true);
combined!(ZINTERSTORE, "zinterstore", SetOp::Inter, true);
combined!(ZDIFFSTORE, "zdiffstore", SetOp::Diff, true);

/// ZINTERCARD across shards.
const ZINTERCARD: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "zintercard",
        reads: |a, p| vec![OwnedArgs::from_slices(&[crate::coord::DUMP, a.get(p)])],
        compute: |a, frames, out| {
            let mut scratch = Vec::new();
            let mut quiet = Reply::new(&mut scratch, Proto::Resp2);
            let Some(n) = combine_numkeys(&mut quiet, a, 1, "zintercard") else {
                return Vec::new();
            };
            let Ok(sources) = gathered_sources(&frames[..n.min(frames.len())], out) else {
                return Vec::new();
            };
            if let Some(limit) = intercard_limit(out, a, n) {
                out.int(intercard_count(&sources, limit) as i64);
            }
            Vec::new()
        },
    }),
    check: |out, _, args| combine_numkeys(out, args, 1, "zintercard").map(|_| false),
    blocking: None,
};

/// ZRANGESTORE across shards: the range read with ZRANGE ... WITHSCORES (RESP2) on the
/// source's owner, then written to the destination's.
const ZRANGESTORE: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "zrangestore",
        reads: |a, p| {
            if p != 2 {
                return Vec::new();
            }
            let mut r = OwnedArgs::new();
            r.push(b"ZRANGE");
            for x in a.iter().skip(2) {
                r.push(x);
            }
            r.push(b"WITHSCORES");
            vec![r]
        },
        compute: |a, frames, out| {
            // Flat pairs in RESP2, nested pairs with doubles in RESP3 (the read runs in
            // the client's protocol).
            let score = |f: &Frame| match f {
                Frame::Double(t) => parse_double_loose(t),
                f => parse_double_loose(f.as_bytes()?),
            };
            let mut pairs: Vec<(f64, Vec<u8>)> = Vec::new();
            if let Some(Frame::Array(items)) = frames.first() {
                let mut flat = Vec::new();
                for it in items {
                    match it {
                        Frame::Array(p) => flat.extend(p.iter()),
                        f => flat.push(f),
                    }
                }
                for p in flat.chunks(2) {
                    if let (Some(m), Some(s)) = (p[0].as_bytes(), p.get(1).and_then(|f| score(f))) {
                        pairs.push((s, m.to_vec()));
                    }
                }
            }
            out.int(pairs.len() as i64);
            store_writes(a.get(1), &pairs)
        },
    }),
    check: |out, _, args| {
        let mut i = 5;
        while i < args.len() {
            if is(args.get(i), "withscores") {
                out.err(errors::SYNTAX);
                return None;
            }
            i += 1;
        }
        Some(false)
    },
    blocking: None,
};
