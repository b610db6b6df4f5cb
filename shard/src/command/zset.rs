//! Sorted-set commands, as Redis 7.0's `t_zset.c` behaves: ZADD (NX XX GT LT CH INCR),
//! ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT, ZRANGE (BYSCORE
//! BYLEX REV LIMIT WITHSCORES) and its legacy forms, ZREMRANGEBYRANK/SCORE/LEX, ZPOPMIN,
//! ZPOPMAX.
//!
//! A sorted set is compact inside its entry (Redis's `listpack`) up to
//! `zset-max-listpack-entries` members of at most `zset-max-listpack-value` bytes, then a
//! [`ZSet`] (Redis's `skiplist`), never back (see [`crate::store::zset`]). Scores are
//! read with C's `strtod` and printed with `%.17g`, as Redis does; RESP3 gets doubles and
//! score pairs as nested arrays where Redis 7.0 sends them.

use corekv_protocol::number::parse_i64;
use corekv_protocol::{Proto, Reply};

use corekv_protocol::frame::Frame;

use super::list::{
    block, check_bpop, check_timeout, pop_first_of, timeout_arg, timeout_at, types_of,
};
use super::{errors, is, Args, Blocking, Coordinated, Ctx, OwnedArgs, Registrations, Route};
use crate::coord::{Coord, Gather, Writes};
use crate::float::{format_double, parse_double, parse_double_loose};
use crate::notify::{GENERIC, ZSET as ZSET_EVENTS};
use crate::store::zset::{compact_build, compact_iter, order};
use crate::store::{Coll, Value, ZRef, ZSet};

/// The sorted-set family.
pub(super) const COMMANDS: Registrations = &[
    ("zadd", Route::keyed(zadd)),
    ("zincrby", Route::keyed(zincrby)),
    ("zrem", Route::keyed(zrem)),
    ("zcard", Route::keyed(zcard)),
    ("zscore", Route::keyed(zscore)),
    ("zmscore", Route::keyed(zmscore)),
    ("zrank", Route::keyed(zrank)),
    ("zrevrank", Route::keyed(zrevrank)),
    ("zcount", Route::keyed(zcount)),
    ("zlexcount", Route::keyed(zlexcount)),
    ("zrange", Route::keyed(zrange)),
    ("zrevrange", Route::keyed(zrevrange)),
    ("zrangebyscore", Route::keyed(zrangebyscore)),
    ("zrevrangebyscore", Route::keyed(zrevrangebyscore)),
    ("zrangebylex", Route::keyed(zrangebylex)),
    ("zrevrangebylex", Route::keyed(zrevrangebylex)),
    ("zremrangebyrank", Route::keyed(zremrangebyrank)),
    ("zremrangebyscore", Route::keyed(zremrangebyscore)),
    ("zremrangebylex", Route::keyed(zremrangebylex)),
    ("zpopmin", Route::keyed(zpopmin)),
    ("zpopmax", Route::keyed(zpopmax)),
    ("zmpop", Route::coordinated(zmpop, &ZMPOP)),
    ("bzpopmin", Route::coordinated(bzpopmin, &BZPOP)),
    ("bzpopmax", Route::coordinated(bzpopmax, &BZPOP)),
    ("bzmpop", Route::coordinated(bzmpop, &BZMPOP)),
    ("zrandmember", Route::keyed(zrandmember)),
    ("zscan", Route::keyed(zscan)),
];

const NOT_A_FLOAT: &str = "value is not a valid float";

/// Looks `key` up for a sorted-set command. `Ok(None)`: missing. `Err(())`: another
/// type, WRONGTYPE written.
fn lookup(ctx: &mut Ctx, key: &[u8], read: bool) -> Result<Option<u32>, ()> {
    super::coll::lookup_as(ctx, key, read, |c| c.is_zset())
}

/// Writes a score as Redis replies one: a bulk string in RESP2, a double in RESP3.
pub fn reply_score(out: &mut Reply, score: f64) {
    let mut text = Vec::with_capacity(24);
    format_double(score, &mut text);
    match out.proto() {
        Proto::Resp2 => out.bulk(&text),
        Proto::Resp3 => {
            out.raw(b",");
            out.raw(&text);
            out.raw(b"\r\n");
        }
    }
}

// ---- reading -----------------------------------------------------------------------

/// A sorted set as read: a compact one's pairs, or the large one.
pub(super) enum View<'a> {
    Small(Vec<(f64, &'a [u8])>),
    Big(&'a ZSet),
}

impl<'a> View<'a> {
    pub(super) fn of(z: ZRef<'a>) -> View<'a> {
        match z {
            ZRef::Compact(b) => View::Small(compact_iter(b).collect()),
            ZRef::Big(z) => View::Big(z),
        }
    }

    fn len(&self) -> usize {
        match self {
            View::Small(v) => v.len(),
            View::Big(z) => z.len(),
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            View::Small(v) => v.iter().find(|(_, x)| *x == m).map(|(s, _)| *s),
            View::Big(z) => z.score(m),
        }
    }

    fn rank(&self, m: &[u8]) -> Option<usize> {
        match self {
            View::Small(v) => v.iter().position(|(_, x)| *x == m),
            View::Big(z) => z.rank(m),
        }
    }

    /// How many members come before the first for which `below` is false.
    fn partition_point(&self, mut below: impl FnMut(f64, &[u8]) -> bool) -> usize {
        match self {
            View::Small(v) => v.partition_point(|&(s, m)| below(s, m)),
            View::Big(z) => z.partition_point(below),
        }
    }

    /// Members from rank `r` up (or, `rev`, down).
    pub(super) fn iter_from(
        &self,
        r: usize,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (f64, &'a [u8])> + '_> {
        match self {
            View::Small(v) if rev => {
                if v.is_empty() {
                    Box::new(std::iter::empty())
                } else {
                    Box::new(v[..=r.min(v.len() - 1)].iter().rev().copied())
                }
            }
            View::Small(v) => Box::new(v.iter().skip(r).copied()),
            View::Big(z) => Box::new(z.iter_from(r, rev)),
        }
    }
}

/// The sorted set at `idx` (which [`lookup`] checked is one).
fn view<'c>(ctx: &'c Ctx, idx: u32) -> View<'c> {
    View::of(ctx.store.zset(idx).expect("lookup checked the type"))
}

// ---- writing -----------------------------------------------------------------------

/// A sorted set being changed: a compact one's pairs (owned), or a large one in place.
pub(super) trait Edit {
    fn len(&self) -> usize;
    fn score(&self, m: &[u8]) -> Option<f64>;
    fn insert(&mut self, m: &[u8], score: f64) -> bool;
    fn remove(&mut self, m: &[u8]) -> Option<f64>;
    /// The members from rank `r` (up, or down with `rev`), at most `n`.
    fn take(&self, r: usize, n: usize, rev: bool) -> Vec<(f64, Vec<u8>)>;
}

#[derive(Default)]
struct Small(Vec<(f64, Vec<u8>)>);

impl Edit for Small {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn score(&self, m: &[u8]) -> Option<f64> {
        self.0.iter().find(|(_, x)| x == m).map(|(s, _)| *s)
    }
    fn insert(&mut self, m: &[u8], score: f64) -> bool {
        let old = self.remove(m);
        let at = self
            .0
            .partition_point(|(s, x)| order((*s, x), (score, m)).is_lt());
        self.0.insert(at, (score, m.to_vec()));
        old.is_none()
    }
    fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let i = self.0.iter().position(|(_, x)| x == m)?;
        Some(self.0.remove(i).0)
    }
    fn take(&self, r: usize, n: usize, rev: bool) -> Vec<(f64, Vec<u8>)> {
        if rev {
            let len = self.0.len();
            if r >= len {
                return Vec::new();
            }
            self.0[..=r].iter().rev().take(n).cloned().collect()
        } else {
            self.0.iter().skip(r).take(n).cloned().collect()
        }
    }
}

impl Edit for ZSet {
    fn len(&self) -> usize {
        ZSet::len(self)
    }
    fn score(&self, m: &[u8]) -> Option<f64> {
        ZSet::score(self, m)
    }
    fn insert(&mut self, m: &[u8], score: f64) -> bool {
        ZSet::insert(self, m, score)
    }
    fn remove(&mut self, m: &[u8]) -> Option<f64> {
        ZSet::remove(self, m)
    }
    fn take(&self, r: usize, n: usize, rev: bool) -> Vec<(f64, Vec<u8>)> {
        self.iter_from(r, rev)
            .take(n)
            .map(|(s, m)| (s, m.to_vec()))
            .collect()
    }
}

/// Changes the sorted set at `key` (`idx`, or a new one) with `f`, which returns its
/// result and the event to raise (if it changed something). A compact set that outgrew
/// `zset-max-listpack-*` becomes a large one; an emptied set's key is deleted (`del`).
pub(super) fn write<R>(
    ctx: &mut Ctx,
    key: &[u8],
    idx: Option<u32>,
    f: impl FnOnce(&mut dyn Edit) -> (R, Option<&'static str>),
) -> R {
    let big = idx.is_some_and(|i| matches!(ctx.store.zset(i), Some(ZRef::Big(_))));
    if let (true, Some(idx)) = (big, idx) {
        let (r, event, empty) = ctx.store.with_zset(idx, |z| {
            let (r, event) = f(z);
            (r, event, z.is_empty())
        });
        if let Some(e) = event {
            ctx.store.notify(ZSET_EVENTS, e, key);
        }
        if empty {
            ctx.store.remove_at(idx);
            ctx.store.notify(GENERIC, "del", key);
        }
        return r;
    }
    let mut small = Small(match idx.and_then(|i| ctx.store.zset(i)) {
        Some(ZRef::Compact(b)) => compact_iter(b).map(|(s, m)| (s, m.to_vec())).collect(),
        _ => Vec::new(),
    });
    let (r, event) = f(&mut small);
    if event.is_none() {
        return r;
    }
    let fits = small.0.len() as u64 <= ctx.coll.zset_entries
        && small
            .0
            .iter()
            .all(|(_, m)| m.len() as u64 <= ctx.coll.zset_value);
    if small.0.is_empty() {
        if let Some(e) = event {
            ctx.store.notify(ZSET_EVENTS, e, key);
        }
        if let Some(idx) = idx {
            ctx.store.remove_at(idx);
            ctx.store.notify(GENERIC, "del", key);
        }
        return r;
    }
    if fits {
        let pairs: Vec<(f64, &[u8])> = small.0.iter().map(|(s, m)| (*s, &m[..])).collect();
        let mut buf = ctx.store.take_scratch();
        compact_build(&mut buf, &pairs);
        let value = Value::Coll(Coll {
            kind: crate::store::collection::ZSET | crate::store::collection::COMPACT,
            bytes: &buf,
        });
        match idx {
            Some(idx) => ctx.store.set_value(idx, value),
            None => {
                ctx.store.insert(key, value, 0);
            }
        }
        ctx.store.put_scratch(buf);
    } else {
        let mut z = ZSet::new();
        for (s, m) in &small.0 {
            z.insert(m, *s);
        }
        ctx.store.put_zset(idx, key, z);
    }
    if let Some(e) = event {
        ctx.store.notify(ZSET_EVENTS, e, key);
    }
    r
}

// ---- ZADD and friends -------------------------------------------------------------

/// ZADD's flags.
#[derive(Clone, Copy, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one member's add did.
enum Added {
    New(f64),
    Updated(f64),
    Same(f64),
    Skipped,
    Nan,
}

fn add_one(z: &mut dyn Edit, f: AddFlags, m: &[u8], score: f64) -> Added {
    match z.score(m) {
        Some(cur) => {
            if f.nx {
                return Added::Skipped;
            }
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return Added::Nan;
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return Added::Skipped;
            }
            if new != cur {
                z.insert(m, new);
                Added::Updated(new)
            } else {
                Added::Same(new)
            }
        }
        None => {
            if f.xx {
                return Added::Skipped;
            }
            if score.is_nan() {
                return Added::Nan;
            }
            z.insert(m, score);
            Added::New(score)
        }
    }
}

fn zadd_generic(ctx: &mut Ctx, args: Args, mut f: AddFlags) {
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i);
        if is(a, "nx") {
            f.nx = true;
        } else if is(a, "xx") {
            f.xx = true;
        } else if is(a, "ch") {
            f.ch = true;
        } else if is(a, "incr") {
            f.incr = true;
        } else if is(a, "gt") {
            f.gt = true;
        } else if is(a, "lt") {
            f.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || elements % 2 != 0 {
        return ctx.out.err(errors::SYNTAX);
    }
    if f.nx && f.xx {
        return ctx
            .out
            .err("XX and NX options at the same time are not compatible");
    }
    if ((f.gt || f.lt) && f.nx) || (f.gt && f.lt) {
        return ctx
            .out
            .err("GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 2 {
        return ctx
            .out
            .err("INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(elements / 2);
    for p in (i..args.len()).step_by(2) {
        let Some(score) = parse_double(args.get(p)) else {
            return ctx.out.err(NOT_A_FLOAT);
        };
        pairs.push((score, args.get(p + 1)));
    }
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    if found.is_none() && f.xx {
        return if f.incr {
            ctx.out.null()
        } else {
            ctx.out.int(0)
        };
    }
    let event = if f.incr { "zincr" } else { "zadd" };
    let (added, updated, last, nan) = write(ctx, key, found, |z| {
        let (mut added, mut updated, mut last, mut nan) = (0, 0, None, false);
        for &(score, m) in &pairs {
            match add_one(z, f, m, score) {
                Added::New(s) => {
                    added += 1;
                    last = Some(s);
                }
                Added::Updated(s) => {
                    updated += 1;
                    last = Some(s);
                }
                Added::Same(s) => last = Some(s),
                Added::Skipped => {}
                Added::Nan => {
                    nan = true;
                    break;
                }
            }
        }
        let changed = added + updated > 0;
        ((added, updated, last, nan), changed.then_some(event))
    });
    if nan {
        return ctx.out.err("resulting score is not a number (NaN)");
    }
    if f.incr {
        match last {
            Some(s) => reply_score(&mut ctx.out, s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out
            .int(if f.ch { added + updated } else { added } as i64);
    }
    if added + updated > 0 {
        ctx.store.signal_ready(key);
    }
}

/// ZADD key [NX|XX] [GT|LT] \[CH\] \[INCR\] score member [score member ...]
pub fn zadd(ctx: &mut Ctx, args: Args) {
    zadd_generic(ctx, args, AddFlags::default());
}

/// ZINCRBY key increment member
pub fn zincrby(ctx: &mut Ctx, args: Args) {
    // As Redis: ZADD key INCR increment member.
    let mut owned = crate::args::OwnedArgs::new();
    owned.push(args.get(0));
    owned.push(args.get(1));
    owned.push(args.get(2));
    owned.push(args.get(3));
    zadd_generic(
        ctx,
        owned.args(),
        AddFlags {
            incr: true,
            ..AddFlags::default()
        },
    );
}

/// ZREM key member [member ...]
pub fn zrem(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.int(0);
    };
    let n = write(ctx, key, Some(idx), |z| {
        let n = args
            .iter()
            .skip(2)
            .filter(|m| z.remove(m).is_some())
            .count();
        (n, (n > 0).then_some("zrem"))
    });
    ctx.out.int(n as i64);
}

/// ZCARD key
pub fn zcard(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let n = found.map_or(0, |idx| view(ctx, idx).len());
    ctx.out.int(n as i64);
}

/// ZSCORE key member
pub fn zscore(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    match found.and_then(|idx| view(ctx, idx).score(args.get(2))) {
        Some(s) => reply_score(&mut ctx.out, s),
        None => ctx.out.null(),
    }
}

/// ZMSCORE key member [member ...]
pub fn zmscore(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let scores: Vec<Option<f64>> = match found {
        Some(idx) => {
            let v = view(ctx, idx);
            args.iter().skip(2).map(|m| v.score(m)).collect()
        }
        None => vec![None; args.len() - 2],
    };
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => reply_score(&mut ctx.out, s),
            None => ctx.out.null(),
        }
    }
}

fn rank_generic(ctx: &mut Ctx, args: Args, rev: bool) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let r = found.and_then(|idx| {
        let v = view(ctx, idx);
        v.rank(args.get(2))
            .map(|r| if rev { v.len() - 1 - r } else { r })
    });
    match r {
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
}

/// ZRANK key member
pub fn zrank(ctx: &mut Ctx, args: Args) {
    rank_generic(ctx, args, false);
}

/// ZREVRANK key member
pub fn zrevrank(ctx: &mut Ctx, args: Args) {
    rank_generic(ctx, args, true);
}

// ---- ranges ------------------------------------------------------------------------

/// A score interval (Redis's `zrangespec`).
#[derive(Clone, Copy, Debug)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

fn parse_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.first() {
        Some(b'(') => parse_double_loose(&arg[1..]).map(|v| (v, true)),
        _ => parse_double_loose(arg).map(|v| (v, false)),
    }
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_bound(min)?;
        let (max, maxex) = parse_bound(max)?;
        Some(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }

    /// The ranks `[lo, hi)` of the members within it.
    fn ranks(&self, v: &View) -> (usize, usize) {
        if self.min > self.max || (self.min == self.max && (self.minex || self.maxex)) {
            return (0, 0);
        }
        let lo = v.partition_point(|s, _| s < self.min || (self.minex && s == self.min));
        let hi = v.partition_point(|s, _| s < self.max || (!self.maxex && s == self.max));
        (lo, hi.max(lo))
    }
}

/// A lexicographic bound: `-`, `+`, `[x` or `(x`.
#[derive(Clone, Copy, Debug)]
enum Lex<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl<'a> Lex<'a> {
    fn parse(arg: &'a [u8]) -> Option<Lex<'a>> {
        match arg.first() {
            Some(b'-') if arg.len() == 1 => Some(Lex::Min),
            Some(b'+') if arg.len() == 1 => Some(Lex::Max),
            Some(b'[') => Some(Lex::Incl(&arg[1..])),
            Some(b'(') => Some(Lex::Excl(&arg[1..])),
            _ => None,
        }
    }

    /// Whether `m` is below this bound taken as a minimum.
    fn below_min(self, m: &[u8]) -> bool {
        match self {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(x) => m < x,
            Lex::Excl(x) => m <= x,
        }
    }

    /// Whether `m` is within this bound taken as a maximum.
    fn within_max(self, m: &[u8]) -> bool {
        match self {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(x) => m <= x,
            Lex::Excl(x) => m < x,
        }
    }
}

/// The ranks `[lo, hi)` of the members within a lexicographic range (members of equal
/// score, as Redis requires).
fn lex_ranks(v: &View, min: Lex, max: Lex) -> (usize, usize) {
    let lo = v.partition_point(|_, m| min.below_min(m));
    let hi = v.partition_point(|_, m| max.within_max(m));
    (lo, hi.max(lo))
}

/// A rank range as Redis computes it: `start..=end` within `len`, or `None`.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// Which kind of range a ZRANGE form selects by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    Rank,
    Score,
    Lex,
}

/// What a ZRANGE form fixes: the kind of range and the direction, when not options.
pub(super) struct Form {
    pub(super) by: Option<By>,
    pub(super) rev: Option<bool>,
}

/// Writes members with their scores: flat pairs in RESP2, nested in RESP3.
pub(super) fn reply_members(out: &mut Reply, items: &[(f64, &[u8])], withscores: bool) {
    let nested = withscores && out.proto() == Proto::Resp3;
    out.array(if withscores && !nested {
        items.len() * 2
    } else {
        items.len()
    });
    for &(s, m) in items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            reply_score(out, s);
        }
    }
}

fn zrange_generic(ctx: &mut Ctx, args: Args, form: Form) {
    zrange_run(ctx, args, form, false, |out, items, withscores| {
        reply_members(out, items, withscores)
    });
}

/// ZRANGE's parsing and selection (`store`: ZRANGESTORE's, where WITHSCORES is a syntax
/// error); `emit` gets the reply and the selected members. Errors are written and
/// `emit` not called.
pub(super) fn zrange_run(
    ctx: &mut Ctx,
    args: Args,
    form: Form,
    store: bool,
    emit: impl FnOnce(&mut Reply, &[(f64, &[u8])], bool),
) {
    let (mut by, mut rev) = (form.by, form.rev);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = 4;
    while j < args.len() {
        let a = args.get(j);
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            let (Some(o), Some(l)) = (parse_i64(args.get(j + 1)), parse_i64(args.get(j + 2)))
            else {
                return ctx.out.err(errors::NOT_INTEGER);
            };
            offset = o;
            limit = l;
            j += 2;
        } else if form.rev.is_none() && rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if form.by.is_none() && by.is_none() && is(a, "bylex") {
            by = Some(By::Lex);
        } else if form.by.is_none() && by.is_none() && is(a, "byscore") {
            by = Some(By::Score);
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
        j += 1;
    }
    let by = by.unwrap_or(By::Rank);
    let rev = rev.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return ctx.out.err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && by == By::Lex {
        return ctx
            .out
            .err("syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let (min_at, max_at) = if rev && by != By::Rank {
        (3, 2)
    } else {
        (2, 3)
    };
    enum Range<'a> {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(Lex<'a>, Lex<'a>),
    }
    let range = match by {
        By::Rank => {
            let (Some(a), Some(b)) = (parse_i64(args.get(min_at)), parse_i64(args.get(max_at)))
            else {
                return ctx.out.err(errors::NOT_INTEGER);
            };
            Range::Rank(a, b)
        }
        By::Score => match ScoreRange::parse(args.get(min_at), args.get(max_at)) {
            Some(r) => Range::Score(r),
            None => return ctx.out.err("min or max is not a float"),
        },
        By::Lex => match (Lex::parse(args.get(min_at)), Lex::parse(args.get(max_at))) {
            (Some(a), Some(b)) => Range::Lex(a, b),
            _ => return ctx.out.err("min or max not valid string range item"),
        },
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Some(idx) = found else {
        return emit(&mut ctx.out, &[], withscores);
    };
    let v = View::of(ctx.store.zset(idx).expect("lookup checked the type"));
    let len = v.len();
    let items: Vec<(f64, &[u8])> = match range {
        Range::Rank(a, b) => match rank_range(a, b, len) {
            None => Vec::new(),
            Some((a, b)) => {
                let n = b + 1 - a;
                if rev {
                    v.iter_from(len - 1 - a, true).take(n).collect()
                } else {
                    v.iter_from(a, false).take(n).collect()
                }
            }
        },
        Range::Score(_) | Range::Lex(..) => {
            let (lo, hi) = match range {
                Range::Score(r) => r.ranks(&v),
                Range::Lex(a, b) => lex_ranks(&v, a, b),
                Range::Rank(..) => unreachable!(),
            };
            let count = hi - lo;
            if offset < 0 || offset as usize >= count {
                Vec::new()
            } else {
                let n = count - offset as usize;
                let n = if limit < 0 { n } else { n.min(limit as usize) };
                if rev {
                    v.iter_from(hi - 1 - offset as usize, true)
                        .take(n)
                        .collect()
                } else {
                    v.iter_from(lo + offset as usize, false).take(n).collect()
                }
            }
        }
    };
    emit(&mut ctx.out, &items, withscores);
}

/// ZRANGE key start stop [BYSCORE|BYLEX] \[REV\] [LIMIT offset count] \[WITHSCORES\]
pub fn zrange(ctx: &mut Ctx, args: Args) {
    zrange_generic(
        ctx,
        args,
        Form {
            by: None,
            rev: None,
        },
    );
}

/// ZREVRANGE key start stop \[WITHSCORES\]
pub fn zrevrange(ctx: &mut Ctx, args: Args) {
    zrange_generic(
        ctx,
        args,
        Form {
            by: Some(By::Rank),
            rev: Some(true),
        },
    );
}

/// ZRANGEBYSCORE key min max \[WITHSCORES\] [LIMIT offset count]
pub fn zrangebyscore(ctx: &mut Ctx, args: Args) {
    zrange_generic(
        ctx,
        args,
        Form {
            by: Some(By::Score),
            rev: Some(false),
        },
    );
}

/// ZREVRANGEBYSCORE key max min \[WITHSCORES\] [LIMIT offset count]
pub fn zrevrangebyscore(ctx: &mut Ctx, args: Args) {
    zrange_generic(
        ctx,
        args,
        Form {
            by: Some(By::Score),
            rev: Some(true),
        },
    );
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(ctx: &mut Ctx, args: Args) {
    zrange_generic(
        ctx,
        args,
        Form {
            by: Some(By::Lex),
            rev: Some(false),
        },
    );
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(ctx: &mut Ctx, args: Args) {
    zrange_generic(
        ctx,
        args,
        Form {
            by: Some(By::Lex),
            rev: Some(true),
        },
    );
}

/// ZCOUNT key min max
pub fn zcount(ctx: &mut Ctx, args: Args) {
    let Some(range) = ScoreRange::parse(args.get(2), args.get(3)) else {
        return ctx.out.err("min or max is not a float");
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let n = found.map_or(0, |idx| {
        let (lo, hi) = range.ranks(&view(ctx, idx));
        hi - lo
    });
    ctx.out.int(n as i64);
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ctx: &mut Ctx, args: Args) {
    let (Some(min), Some(max)) = (Lex::parse(args.get(2)), Lex::parse(args.get(3))) else {
        return ctx.out.err("min or max not valid string range item");
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let n = found.map_or(0, |idx| {
        let (lo, hi) = lex_ranks(&view(ctx, idx), min, max);
        hi - lo
    });
    ctx.out.int(n as i64);
}

/// The ZREMRANGEBY* commands: which members go, as ranks `[lo, hi)`.
fn zremrange(
    ctx: &mut Ctx,
    args: Args,
    event: &'static str,
    ranks: impl FnOnce(&View) -> (usize, usize),
) {
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.int(0);
    };
    let members: Vec<Vec<u8>> = {
        let v = view(ctx, idx);
        let (lo, hi) = ranks(&v);
        v.iter_from(lo, false)
            .take(hi - lo)
            .map(|(_, m)| m.to_vec())
            .collect()
    };
    let n = write(ctx, key, Some(idx), |z| {
        for m in &members {
            z.remove(m);
        }
        (members.len(), (!members.is_empty()).then_some(event))
    });
    ctx.out.int(n as i64);
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(ctx: &mut Ctx, args: Args) {
    let (Some(a), Some(b)) = (parse_i64(args.get(2)), parse_i64(args.get(3))) else {
        return ctx.out.err(errors::NOT_INTEGER);
    };
    zremrange(ctx, args, "zremrangebyrank", |v| {
        rank_range(a, b, v.len()).map_or((0, 0), |(a, b)| (a, b + 1))
    });
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx, args: Args) {
    let Some(range) = ScoreRange::parse(args.get(2), args.get(3)) else {
        return ctx.out.err("min or max is not a float");
    };
    zremrange(ctx, args, "zremrangebyscore", |v| range.ranks(v));
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx, args: Args) {
    let (Some(min), Some(max)) = (Lex::parse(args.get(2)), Lex::parse(args.get(3))) else {
        return ctx.out.err("min or max not valid string range item");
    };
    zremrange(ctx, args, "zremrangebylex", |v| lex_ranks(v, min, max));
}

// ---- pops --------------------------------------------------------------------------

/// Pops up to `count` members from the low end (`max`: the high end) of the sorted set
/// at `idx`, raising `zpopmin`/`zpopmax`.
pub(crate) fn pop(
    ctx: &mut Ctx,
    key: &[u8],
    idx: u32,
    max: bool,
    count: usize,
) -> Vec<(f64, Vec<u8>)> {
    let event = if max { "zpopmax" } else { "zpopmin" };
    write(ctx, key, Some(idx), |z| {
        let len = z.len();
        let items = if max {
            z.take(len.saturating_sub(1), count, true)
        } else {
            z.take(0, count, false)
        };
        for (_, m) in &items {
            z.remove(m);
        }
        let changed = !items.is_empty();
        (items, changed.then_some(event))
    })
}

fn zpop_generic(ctx: &mut Ctx, args: Args, max: bool) {
    if args.len() > 3 {
        return super::arity_error(&mut ctx.out, ctx.name);
    }
    let count = if args.len() == 3 {
        let Some(n) = super::list::positive_arg(&mut ctx.out, args.get(2)) else {
            return;
        };
        Some(n)
    } else {
        None
    };
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let (Some(idx), n) = (found, count.unwrap_or(1)) else {
        return ctx.out.array(0);
    };
    if n == 0 {
        return ctx.out.array(0);
    }
    let items = pop(ctx, key, idx, max, n);
    let refs: Vec<(f64, &[u8])> = items.iter().map(|(s, m)| (*s, &m[..])).collect();
    if count.is_none() {
        // One pair, flat even in RESP3.
        ctx.out.array(2);
        ctx.out.bulk(refs[0].1);
        reply_score(&mut ctx.out, refs[0].0);
    } else {
        reply_members(&mut ctx.out, &refs, true);
    }
}

/// ZPOPMIN key \[count\]
pub fn zpopmin(ctx: &mut Ctx, args: Args) {
    zpop_generic(ctx, args, false);
}

/// ZPOPMAX key \[count\]
pub fn zpopmax(ctx: &mut Ctx, args: Args) {
    zpop_generic(ctx, args, true);
}

// ---- sampling and scanning -----------------------------------------------------------

/// ZRANDMEMBER key [count \[WITHSCORES\]], as Redis 7.0's: without a count one member (or
/// null); a positive count that many distinct members (all of them, in order, when the
/// set is not larger); a negative one that many, possibly repeated.
pub fn zrandmember(ctx: &mut Ctx, args: Args) {
    let Some((count, withscores)) = super::coll::rand_args(&mut ctx.out, args, "withscores") else {
        return;
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let max_bulk_len = ctx.max_bulk_len;
    let Ctx { store, out, .. } = ctx;
    let z = found.and_then(|idx| store.zset(idx));
    let mut rng = fastrand::Rng::new();
    let pick = |z: &ZRef, rng: &mut fastrand::Rng| -> (f64, Vec<u8>) {
        match z {
            ZRef::Compact(b) => {
                let n = crate::store::zset::compact_len(b);
                let i = rng.usize(..n);
                let (s, m) = compact_iter(b).nth(i).expect("within the set");
                (s, m.to_vec())
            }
            ZRef::Big(z) => {
                let (s, m) = z.slot(z.random(rng)).expect("a used position");
                (s, m.to_vec())
            }
        }
    };
    let Some(count) = count else {
        match z {
            Some(z) => out.bulk(&pick(&z, &mut rng).1),
            None => out.null(),
        }
        return;
    };
    let Some(z) = z else {
        return out.array(0);
    };
    let v = View::of(z);
    let n = v.len();
    if count < 0 {
        let bytes_per = match z {
            ZRef::Compact(b) => b.len() / n.max(1),
            ZRef::Big(_) => 32,
        } + 24;
        if u128::from(count.unsigned_abs()) * bytes_per as u128 > u128::from(max_bulk_len) {
            return out.err(super::coll::SAMPLE_TOO_LARGE);
        }
    }
    let items: Vec<(f64, Vec<u8>)> = if count >= 0 && count as usize >= n {
        // The whole set, highest first (Redis replies a reversed rank range).
        v.iter_from(n.saturating_sub(1), true)
            .map(|(s, m)| (s, m.to_vec()))
            .collect()
    } else if count < 0 {
        (0..count.unsigned_abs())
            .map(|_| pick(&z, &mut rng))
            .collect()
    } else {
        let k = count as usize;
        match z {
            ZRef::Big(big) => {
                let mut seen = std::collections::HashSet::with_capacity(k);
                let mut out = Vec::with_capacity(k);
                while out.len() < k {
                    let pos = big.random(&mut rng);
                    if seen.insert(pos) {
                        let (s, m) = big.slot(pos).expect("a used position");
                        out.push((s, m.to_vec()));
                    }
                }
                out
            }
            ZRef::Compact(_) => {
                let mut order: Vec<usize> = (0..n).collect();
                (0..k)
                    .map(|i| {
                        let j = rng.usize(i..n);
                        order.swap(i, j);
                        let (s, m) = v.iter_from(order[i], false).next().expect("within");
                        (s, m.to_vec())
                    })
                    .collect()
            }
        }
    };
    let refs: Vec<(f64, &[u8])> = items.iter().map(|(s, m)| (*s, &m[..])).collect();
    reply_members(out, &refs, withscores);
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: a compact set whole with cursor 0, as
/// Redis; a large one from the slab position the cursor names (positions are stable
/// while the set lives), at most COUNT members or 10 × COUNT positions per call.
pub fn zscan(ctx: &mut Ctx, args: Args) {
    let Some(cursor) = super::keyspace::parse_cursor(args.get(2)) else {
        return ctx.out.err("invalid cursor");
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Some(idx) = found else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        return ctx.out.array(0);
    };
    let Some(req) = super::keyspace::parse_scan_options_from(&mut ctx.out, args, 3, false) else {
        return;
    };
    let matches = |m: &[u8]| {
        req.pattern
            .as_deref()
            .is_none_or(|p| crate::glob::matches(p, m, false))
    };
    let mut items: Vec<(f64, Vec<u8>)> = Vec::new();
    let mut next = 0u64;
    match ctx.store.zset(idx).expect("lookup checked the type") {
        ZRef::Compact(b) => {
            for (s, m) in compact_iter(b) {
                if matches(m) {
                    items.push((s, m.to_vec()));
                }
            }
        }
        ZRef::Big(z) => {
            let mut pos = usize::try_from(cursor).unwrap_or(usize::MAX);
            let (mut seen, mut budget) = (0, req.count.saturating_mul(10).max(1));
            while pos < z.span() && seen < req.count && budget > 0 {
                budget -= 1;
                if let Some((s, m)) = z.slot(pos) {
                    seen += 1;
                    if matches(m) {
                        items.push((s, m.to_vec()));
                    }
                }
                pos += 1;
            }
            if pos < z.span() {
                next = pos as u64;
            }
        }
    }
    let out = &mut ctx.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * 2);
    for (s, m) in &items {
        out.bulk(m);
        let mut text = Vec::new();
        format_double(*s, &mut text);
        out.bulk(&text);
    }
}

// ---- pops over several keys, and blocking pops ---------------------------------------

/// ZMPOP's and BZMPOP's arguments from `numkeys` at `at`: the key count, whether from the
/// top (MAX), the count. Redis's errors written when wrong.
fn mpop_args(out: &mut Reply, args: Args, at: usize) -> Option<(usize, bool, usize)> {
    super::list::mpop_args_with(out, args, at, |a| {
        if is(a, "min") {
            Some(false)
        } else if is(a, "max") {
            Some(true)
        } else {
            None
        }
    })
}

/// Pops from the first non-empty sorted set among `keys`, writing ZMPOP's reply:
/// `Ok(false)` when none holds one (nothing written), `Err` with WRONGTYPE written.
fn mpop_here<'a>(
    ctx: &mut Ctx,
    keys: impl Iterator<Item = &'a [u8]>,
    max: bool,
    count: usize,
) -> Result<bool, ()> {
    for key in keys {
        if let Some(idx) = lookup(ctx, key, false)? {
            let items = pop(ctx, key, idx, max, count);
            ctx.out.array(2);
            ctx.out.bulk(key);
            ctx.out.array(items.len());
            for (s, m) in &items {
                ctx.out.array(2);
                ctx.out.bulk(m);
                reply_score(&mut ctx.out, *s);
            }
            return Ok(true);
        }
    }
    Ok(false)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx, args: Args) {
    let Some((numkeys, max, count)) = mpop_args(&mut ctx.out, args, 1) else {
        return;
    };
    if let Ok(false) = mpop_here(ctx, args.iter().skip(2).take(numkeys), max, count) {
        ctx.out.null_array();
    }
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(ctx: &mut Ctx, args: Args) {
    let Some(timeout) = timeout_arg(ctx, args, 1) else {
        return;
    };
    let Some((numkeys, max, count)) = mpop_args(&mut ctx.out, args, 2) else {
        return;
    };
    if let Ok(false) = mpop_here(ctx, args.iter().skip(3).take(numkeys), max, count) {
        block(ctx, timeout, (3..3 + numkeys).collect(), true);
    }
}

fn bzpop(ctx: &mut Ctx, args: Args, max: bool) {
    let last = args.len() - 1;
    let Some(timeout) = timeout_arg(ctx, args, last) else {
        return;
    };
    for i in 1..last {
        let key = args.get(i);
        let Ok(found) = lookup(ctx, key, false) else {
            return;
        };
        if let Some(idx) = found {
            let items = pop(ctx, key, idx, max, 1);
            ctx.out.array(3);
            ctx.out.bulk(key);
            ctx.out.bulk(&items[0].1);
            reply_score(&mut ctx.out, items[0].0);
            return;
        }
    }
    block(ctx, timeout, (1..last).collect(), true);
}

/// BZPOPMIN key [key ...] timeout
pub fn bzpopmin(ctx: &mut Ctx, args: Args) {
    bzpop(ctx, args, false);
}

/// BZPOPMAX key [key ...] timeout
pub fn bzpopmax(ctx: &mut Ctx, args: Args) {
    bzpop(ctx, args, true);
}

/// A multi-pop over sorted sets across shards: the first key holding one is popped by a
/// one-key ZMPOP on its owner, whose reply is the client's. `None`: no key holds one.
fn mpop_compute(args: Args, frames: &[Frame], out: &mut Reply, at: usize) -> Option<Writes> {
    let mut scratch = Vec::new();
    let (numkeys, max, count) = mpop_args(&mut Reply::new(&mut scratch, Proto::Resp2), args, at)?;
    let k = match super::list::first_of_type(&frames[..numkeys.min(frames.len())], b"zset", out) {
        Ok(Some(k)) => k,
        Ok(None) => return None,
        Err(()) => return Some(Vec::new()),
    };
    let pos = at + 1 + k;
    let end: &[u8] = if max { b"MAX" } else { b"MIN" };
    let n = count.to_string();
    Some(vec![(
        pos,
        OwnedArgs::from_slices(&[
            &b"ZMPOP"[..],
            b"1",
            args.get(pos),
            end,
            b"COUNT",
            n.as_bytes(),
        ]),
    )])
}

/// ZMPOP across shards.
const ZMPOP: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "zmpop",
        reads: types_of,
        compute: |a, frames, out| {
            mpop_compute(a, frames, out, 1).unwrap_or_else(|| {
                out.null_array();
                Vec::new()
            })
        },
    }),
    check: |out, _, args| mpop_args(out, args, 1).map(|_| false),
    blocking: None,
};

/// BZPOPMIN and BZPOPMAX across shards.
const BZPOP: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "bzpop",
        reads: types_of,
        compute: |a, frames, out| pop_first_of(a, frames, out, b"zset"),
    }),
    check: check_bpop,
    blocking: Some(Blocking {
        timeout: |a| timeout_at(a, a.len() - 1),
        keys: |a| (1..a.len() - 1).collect(),
        null_array: true,
    }),
};

/// BZMPOP across shards.
const BZMPOP: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "bzmpop",
        reads: types_of,
        compute: |a, frames, out| {
            mpop_compute(a, frames, out, 2).unwrap_or_else(|| {
                out.null_array();
                Vec::new()
            })
        },
    }),
    check: |out, _, args| {
        check_timeout(out, args, 1)?;
        mpop_args(out, args, 2).map(|_| false)
    },
    blocking: Some(Blocking {
        timeout: |a| timeout_at(a, 1),
        keys: |a| {
            let n = parse_i64(a.get(2)).unwrap_or(0).max(0) as usize;
            (3..(3 + n).min(a.len())).collect()
        },
        null_array: true,
    }),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_redis_reads_them() {
        let r = ScoreRange::parse(b"(1", b"+inf").unwrap();
        assert!(r.minex && !r.maxex && r.max.is_infinite());
        assert!(ScoreRange::parse(b"x", b"1").is_none());
        assert!(ScoreRange::parse(b"(nan", b"1").is_none());
        assert!(matches!(Lex::parse(b"-"), Some(Lex::Min)));
        assert!(matches!(Lex::parse(b"[a"), Some(Lex::Incl(b"a"))));
        assert!(Lex::parse(b"a").is_none());
        assert!(Lex::parse(b"").is_none());
        assert_eq!(rank_range(0, -1, 3), Some((0, 2)));
        assert_eq!(rank_range(5, 9, 3), None);
    }
}
