//! The commands over several sets, as Redis 7.0's `t_set.c` behaves: SINTER, SINTERCARD,
//! SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE and SMOVE.
//!
//! Each runs in one of two ways, with the same algorithms:
//!
//! - keys on one shard: there, over the stored sets ([`Route::Keyed`]);
//! - keys on several: a [`Gather`] with every owner paused: each source set is read
//!   on its owner (SMEMBERS), the result computed on the client's shard, and a
//!   destination written on its owner (DEL, then SADD of the result, which gives it the
//!   encoding Redis's `setTypeAdd` would). SMOVE reads the types and the membership,
//!   then SREM and SADD.
//!
//! Replies keep Redis's order where it has one: SINTER walks the smallest set (an
//! intset ascending), a computed set (SUNION, SDIFF) is an intset, ascending, while its
//! members are integers and few enough, else in insertion order.

use ahash::HashSet;
use corekv_protocol::frame::Frame;
use corekv_protocol::number::parse_i64;
use corekv_protocol::Reply;

use super::set::{self, lookup};
use super::{coll, errors, is, Args, Coordinated, Ctx, OwnedArgs, Registrations, Route};
use crate::coord::{Coord, Gather, Writes};
use crate::store::CollRef;

/// The multi-set commands.
pub(super) const COMMANDS: Registrations = &[
    ("sinter", Route::coordinated(sinter, &SINTER)),
    ("sintercard", Route::coordinated(sintercard, &SINTERCARD)),
    ("sinterstore", Route::coordinated(sinterstore, &SINTERSTORE)),
    ("sunion", Route::coordinated(sunion, &SUNION)),
    ("sunionstore", Route::coordinated(sunionstore, &SUNIONSTORE)),
    ("sdiff", Route::coordinated(sdiff, &SDIFF)),
    ("sdiffstore", Route::coordinated(sdiffstore, &SDIFFSTORE)),
    ("smove", Route::coordinated(smove, &SMOVE)),
];

/// Which combination of sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// A set as the algorithms read it: stored here, or gathered from another shard.
trait SetRead {
    fn card(&self) -> usize;
    fn contains(&self, m: &[u8]) -> bool;
    fn each(&self, f: &mut dyn FnMut(&[u8]));
}

impl SetRead for CollRef<'_> {
    fn card(&self) -> usize {
        set::card(*self)
    }
    fn contains(&self, m: &[u8]) -> bool {
        set::contains(*self, m)
    }
    fn each(&self, f: &mut dyn FnMut(&[u8])) {
        coll::for_each(*self, |m, _| f(m));
    }
}

/// A set read from another shard: its members in its order, and an index.
struct Gathered {
    members: Vec<Vec<u8>>,
    index: HashSet<Vec<u8>>,
}

impl Gathered {
    fn new(members: Vec<Vec<u8>>) -> Gathered {
        let index = members.iter().cloned().collect();
        Gathered { members, index }
    }
}

impl SetRead for Gathered {
    fn card(&self) -> usize {
        self.members.len()
    }
    fn contains(&self, m: &[u8]) -> bool {
        self.index.contains(m)
    }
    fn each(&self, f: &mut dyn FnMut(&[u8])) {
        self.members.iter().for_each(|m| f(m));
    }
}

/// The intersection's members, walking the smallest set; at most `limit` (0: all).
/// A missing set makes it empty.
fn inter(sets: &[Option<&dyn SetRead>], limit: usize, mut f: impl FnMut(&[u8])) -> usize {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<_>>>() else {
        return 0;
    };
    sets.sort_by_key(|s| s.card());
    let Some((first, rest)) = sets.split_first() else {
        return 0;
    };
    let mut n = 0;
    first.each(&mut |m| {
        if (limit == 0 || n < limit) && rest.iter().all(|s| s.contains(m)) {
            n += 1;
            f(m);
        }
    });
    n
}

/// The members of a union or difference, in the order Redis's result set would give
/// them: ascending while they could be an intset (`max_intset`), else as added.
fn combine(op: Op, sets: &[Option<&dyn SetRead>], max_intset: u64) -> Vec<Vec<u8>> {
    let mut seen: HashSet<Vec<u8>> = HashSet::default();
    let mut out: Vec<Vec<u8>> = Vec::new();
    match op {
        Op::Union => {
            for s in sets.iter().flatten() {
                s.each(&mut |m| {
                    if seen.insert(m.to_vec()) {
                        out.push(m.to_vec());
                    }
                });
            }
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return out;
            };
            let rest = &sets[1..];
            first.each(&mut |m| {
                if !rest.iter().flatten().any(|s| s.contains(m)) && seen.insert(m.to_vec()) {
                    out.push(m.to_vec());
                }
            });
        }
        Op::Inter => unreachable!("intersections are walked, not combined"),
    }
    let ints: Option<Vec<i64>> = out.iter().map(|m| parse_i64(m)).collect();
    if let Some(mut ints) = ints {
        if ints.len() as u64 <= max_intset {
            ints.sort_unstable();
            return ints
                .into_iter()
                .map(|v| itoa::Buffer::new().format(v).as_bytes().to_vec())
                .collect();
        }
    }
    out
}

/// Looks up the sets at `keys` (WRONGTYPE for any other type, after looking at all
/// the keys before it, as Redis does). `None` after writing the error.
fn lookup_all(
    ctx: &mut Ctx,
    keys: impl Iterator<Item = usize>,
    args: Args,
    read: bool,
) -> Option<Vec<Option<u32>>> {
    let mut found = Vec::new();
    for p in keys {
        found.push(lookup(ctx, args.get(p), read).ok()?);
    }
    Some(found)
}

/// The stored sets at `found`, as the algorithms read them.
fn views<'a>(ctx: &'a Ctx, found: &[Option<u32>]) -> Vec<Option<CollRef<'a>>> {
    found
        .iter()
        .map(|f| f.and_then(|idx| ctx.store.coll(idx)))
        .collect()
}

fn as_reads<'a>(sets: &'a [Option<CollRef<'a>>]) -> Vec<Option<&'a dyn SetRead>> {
    sets.iter()
        .map(|s| s.as_ref().map(|s| s as &dyn SetRead))
        .collect()
}

/// SINTER, SUNION, SDIFF here: the keys from argument 1.
fn read_op(ctx: &mut Ctx, args: Args, op: Op) {
    let Some(found) = lookup_all(ctx, 1..args.len(), args, true) else {
        return;
    };
    let max_intset = ctx.coll.set_intset;
    let Ctx { store, out, .. } = ctx;
    let sets: Vec<Option<CollRef>> = found
        .iter()
        .map(|f| f.and_then(|idx| store.coll(idx)))
        .collect();
    let reads = as_reads(&sets);
    reply_op(out, op, &reads, max_intset);
}

/// Writes the set `op` makes of `sets`.
fn reply_op(out: &mut Reply, op: Op, sets: &[Option<&dyn SetRead>], max_intset: u64) {
    match op {
        Op::Inter => {
            let mut members = Vec::new();
            inter(sets, 0, |m| members.push(m.to_vec()));
            set::reply_set(out, &members);
        }
        _ => set::reply_set(out, &combine(op, sets, max_intset)),
    }
}

/// The members `op` makes of `sets`.
fn result_of(op: Op, sets: &[Option<&dyn SetRead>], max_intset: u64) -> Vec<Vec<u8>> {
    match op {
        Op::Inter => {
            let mut members = Vec::new();
            inter(sets, 0, |m| members.push(m.to_vec()));
            members
        }
        _ => combine(op, sets, max_intset),
    }
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE here: the destination at 1, the sets after.
fn store_op(ctx: &mut Ctx, args: Args, op: Op) {
    let Some(found) = lookup_all(ctx, 2..args.len(), args, false) else {
        return;
    };
    let members = {
        let sets = views(ctx, &found);
        result_of(op, &as_reads(&sets), ctx.coll.set_intset)
    };
    let dst = args.get(1);
    let existed = ctx.store.remove(dst, ctx.now).is_some();
    if !members.is_empty() {
        let refs: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
        // Redis overwrites an existing destination: no "new" event then.
        let flags = ctx.store.store().events.flags;
        if existed {
            ctx.store.store().events.flags &= !crate::notify::NEW;
        }
        set::add(ctx, dst, None, &refs, 0);
        ctx.store.store().events.flags = flags;
        let event = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        ctx.store.notify(crate::notify::SET, event, dst);
    } else if existed {
        ctx.store.notify(crate::notify::GENERIC, "del", dst);
    }
    ctx.out.int(members.len() as i64);
}

/// SINTER key [key ...]
pub fn sinter(ctx: &mut Ctx, args: Args) {
    read_op(ctx, args, Op::Inter);
}

/// SUNION key [key ...]
pub fn sunion(ctx: &mut Ctx, args: Args) {
    read_op(ctx, args, Op::Union);
}

/// SDIFF key [key ...]
pub fn sdiff(ctx: &mut Ctx, args: Args) {
    read_op(ctx, args, Op::Diff);
}

/// SINTERSTORE destination key [key ...]
pub fn sinterstore(ctx: &mut Ctx, args: Args) {
    store_op(ctx, args, Op::Inter);
}

/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(ctx: &mut Ctx, args: Args) {
    store_op(ctx, args, Op::Union);
}

/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(ctx: &mut Ctx, args: Args) {
    store_op(ctx, args, Op::Diff);
}

/// SINTERCARD's arguments: how many keys, and the limit (0: none). `None` after
/// writing Redis's error.
fn card_args(out: &mut Reply, args: Args) -> Option<(usize, usize)> {
    let numkeys = match parse_i64(args.get(1)) {
        Some(n) if n > 0 => n as usize,
        _ => {
            out.err("numkeys should be greater than 0");
            return None;
        }
    };
    if numkeys > args.len() - 2 {
        out.err("Number of keys can't be greater than number of args");
        return None;
    }
    let mut limit = 0;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if is(args.get(j), "limit") && j + 1 < args.len() {
            j += 1;
            match parse_i64(args.get(j)) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => {
                    out.err("LIMIT can't be negative");
                    return None;
                }
            }
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
        j += 1;
    }
    Some((numkeys, limit))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx, args: Args) {
    let Some((numkeys, limit)) = card_args(&mut ctx.out, args) else {
        return;
    };
    let Some(found) = lookup_all(ctx, 2..2 + numkeys, args, true) else {
        return;
    };
    let Ctx { store, out, .. } = ctx;
    let sets: Vec<Option<CollRef>> = found
        .iter()
        .map(|f| f.and_then(|idx| store.coll(idx)))
        .collect();
    let n = inter(&as_reads(&sets), limit, |_| {});
    out.int(n as i64);
}

/// SMOVE source destination member
pub fn smove(ctx: &mut Ctx, args: Args) {
    let (src, dst, member) = (args.get(1), args.get(2), args.get(3));
    let src_idx = ctx.store.find(src, ctx.now);
    let dst_idx = ctx.store.find(dst, ctx.now);
    let Some(src_idx) = src_idx else {
        ctx.out.int(0);
        return;
    };
    let is_set = |ctx: &Ctx, idx: u32| {
        matches!(ctx.store.coll(idx), Some(CollRef::Intset(_)))
            || matches!(ctx.store.coll(idx), Some(CollRef::Table(t)) if t.ty == crate::store::collection::SET)
    };
    if !is_set(ctx, src_idx) || dst_idx.is_some_and(|d| !is_set(ctx, d)) {
        ctx.out.error(errors::WRONGTYPE);
        return;
    }
    if src == dst {
        let there = ctx
            .store
            .coll(src_idx)
            .is_some_and(|s| set::contains(s, member));
        ctx.out.int(i64::from(there));
        return;
    }
    let had = dst_idx
        .and_then(|d| ctx.store.coll(d))
        .is_some_and(|s| set::contains(s, member));
    if set::remove(ctx, src_idx, &[member]) == 0 {
        ctx.out.int(0);
        return;
    }
    set::add(ctx, dst, dst_idx, &[member], 0);
    if !had {
        ctx.store.notify(crate::notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
}

// ---- across shards ----------------------------------------------------------------------

fn no_check(_: &mut Reply, _: &'static str, _: Args) -> Option<bool> {
    Some(false)
}

fn smembers_of(args: Args, pos: usize) -> Vec<OwnedArgs> {
    vec![OwnedArgs::from_slices(&[&b"SMEMBERS"[..], args.get(pos)])]
}

/// Reads of a STORE form's source sets (the destination, at 1, is only written).
fn store_sources(args: Args, pos: usize) -> Vec<OwnedArgs> {
    if pos >= 2 {
        smembers_of(args, pos)
    } else {
        Vec::new()
    }
}

/// The gathered members of each read set.
fn gathered(frames: &[Frame]) -> Vec<Gathered> {
    frames
        .iter()
        .map(|f| match f {
            Frame::Array(items) | Frame::Set(items) => Gathered::new(
                items
                    .iter()
                    .filter_map(|m| m.as_bytes().map(<[u8]>::to_vec))
                    .collect(),
            ),
            _ => Gathered::new(Vec::new()),
        })
        .collect()
}

/// A set missing on its owner reads as empty; for the algorithms, as missing.
fn as_gathered_reads(sets: &[Gathered]) -> Vec<Option<&dyn SetRead>> {
    sets.iter()
        .map(|s| (s.card() > 0).then_some(s as &dyn SetRead))
        .collect()
}

/// SINTER, SUNION, SDIFF from the gathered sets.
fn read_gathered(op: Op, frames: &[Frame], out: &mut Reply) -> Writes {
    let sets = gathered(frames);
    // Sorted when all are integers: Redis's order for an intset result, and as good as
    // any for a larger one, whose order Redis leaves undefined.
    reply_op(out, op, &as_gathered_reads(&sets), u64::MAX);
    Vec::new()
}

/// The STORE forms from the gathered sets: replace the destination (DEL, then SADD of
/// the members, which picks the encoding on the destination's shard).
fn store_gathered(op: Op, args: Args, frames: &[Frame], out: &mut Reply) -> Writes {
    let sets = gathered(frames);
    let members = result_of(op, &as_gathered_reads(&sets), u64::MAX);
    out.int(members.len() as i64);
    let dst = args.get(1);
    let mut writes = vec![(1, OwnedArgs::from_slices(&[&b"DEL"[..], dst]))];
    if !members.is_empty() {
        let mut sadd = OwnedArgs::new();
        sadd.push(b"SADD");
        sadd.push(dst);
        for m in &members {
            sadd.push(m);
        }
        writes.push((1, sadd));
    }
    writes
}

const fn gathered_by(g: &'static Gather) -> Coordinated {
    Coordinated {
        kind: Coord::Gather(g),
        check: no_check,
        blocking: None,
    }
}

const SINTER: Coordinated = gathered_by(&Gather {
    lookups: None,
    name: "sinter",
    reads: smembers_of,
    compute: |_, f, out| read_gathered(Op::Inter, f, out),
});

const SUNION: Coordinated = gathered_by(&Gather {
    lookups: None,
    name: "sunion",
    reads: smembers_of,
    compute: |_, f, out| read_gathered(Op::Union, f, out),
});

const SDIFF: Coordinated = gathered_by(&Gather {
    lookups: None,
    name: "sdiff",
    reads: smembers_of,
    compute: |_, f, out| read_gathered(Op::Diff, f, out),
});

const SINTERSTORE: Coordinated = gathered_by(&Gather {
    lookups: None,
    name: "sinterstore",
    reads: store_sources,
    compute: |a, f, out| store_gathered(Op::Inter, a, f, out),
});

const SUNIONSTORE: Coordinated = gathered_by(&Gather {
    lookups: None,
    name: "sunionstore",
    reads: store_sources,
    compute: |a, f, out| store_gathered(Op::Union, a, f, out),
});

const SDIFFSTORE: Coordinated = gathered_by(&Gather {
    lookups: None,
    name: "sdiffstore",
    reads: store_sources,
    compute: |a, f, out| store_gathered(Op::Diff, a, f, out),
});

/// SINTERCARD across shards: its arguments are checked before any shard is paused.
const SINTERCARD: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "sintercard",
        reads: smembers_of,
        compute: |a, frames, out| {
            let limit =
                card_args(&mut Reply::new(&mut Vec::new(), out.proto()), a).map_or(0, |(_, l)| l);
            let sets = gathered(frames);
            let n = inter(&as_gathered_reads(&sets), limit, |_| {});
            out.int(n as i64);
            Vec::new()
        },
    }),
    check: |out, _, args| card_args(out, args).map(|_| false),
    blocking: None,
};

/// SMOVE across shards: the types of both keys and whether the source has the member;
/// then SREM on the source's owner and SADD on the destination's.
const SMOVE: Coordinated = gathered_by(&Gather {
    lookups: None,
    name: "smove",
    reads: |a, p| {
        let mut reads = vec![OwnedArgs::from_slices(&[&b"TYPE"[..], a.get(p)])];
        if p == 1 {
            reads.push(OwnedArgs::from_slices(&[
                &b"SISMEMBER"[..],
                a.get(1),
                a.get(3),
            ]));
        }
        reads
    },
    compute: |a, frames, out| {
        let type_of = |f: &Frame| f.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
        let (src_type, there, dst_type) = (type_of(&frames[0]), &frames[1], type_of(&frames[2]));
        if src_type == b"none" {
            out.int(0);
            return Vec::new();
        }
        if src_type != b"set" || !matches!(&dst_type[..], b"none" | b"set") {
            out.error(errors::WRONGTYPE);
            return Vec::new();
        }
        if *there != Frame::Integer(1) {
            out.int(0);
            return Vec::new();
        }
        out.int(1);
        vec![
            (
                1,
                OwnedArgs::from_slices(&[&b"SREM"[..], a.get(1), a.get(3)]),
            ),
            (
                2,
                OwnedArgs::from_slices(&[&b"SADD"[..], a.get(2), a.get(3)]),
            ),
        ]
    },
});
