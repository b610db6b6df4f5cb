//! List commands, as Redis 7.0's `t_list.c` behaves: pushes and pops at both ends (with
//! counts), LLEN, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH and
//! LMPOP, and the blocking forms (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP; see
//! [`crate::blocking`]).
//!
//! A list is always a [`List`] in the store's slab (Redis 7.0 reports every list as a
//! `quicklist`). A command that empties a list deletes its key, as Redis does.
//!
//! LMOVE, RPOPLPUSH and LMPOP with keys on several shards run as a [`Gather`] with the
//! owners paused: the source's type and the element(s) are read on their owner, then
//! the pop and the push run as writes on theirs.

use corekv_protocol::frame::Frame;
use corekv_protocol::number::parse_i64;
use corekv_protocol::Reply;

use super::{errors, is, Args, Block, Coordinated, Ctx, OwnedArgs, Registrations, Route};
use crate::coord::{Coord, Gather, Writes};
use crate::float::timeout_ms;
use crate::notify::{GENERIC, LIST as LIST_EVENTS};
use crate::store::List;

/// The list family.
pub(super) const COMMANDS: Registrations = &[
    ("lpush", Route::keyed(lpush)),
    ("rpush", Route::keyed(rpush)),
    ("lpushx", Route::keyed(lpushx)),
    ("rpushx", Route::keyed(rpushx)),
    ("linsert", Route::keyed(linsert)),
    ("lpop", Route::keyed(lpop)),
    ("rpop", Route::keyed(rpop)),
    ("llen", Route::keyed(llen)),
    ("lrange", Route::keyed(lrange)),
    ("lindex", Route::keyed(lindex)),
    ("lset", Route::keyed(lset)),
    ("lrem", Route::keyed(lrem)),
    ("ltrim", Route::keyed(ltrim)),
    ("lpos", Route::keyed(lpos)),
    ("lmove", Route::coordinated(lmove, &LMOVE)),
    ("rpoplpush", Route::coordinated(rpoplpush, &RPOPLPUSH)),
    ("lmpop", Route::coordinated(lmpop, &LMPOP)),
    ("blpop", Route::coordinated(blpop, &BLPOP)),
    ("brpop", Route::coordinated(brpop, &BRPOP)),
    ("blmove", Route::coordinated(blmove, &BLMOVE)),
    ("brpoplpush", Route::coordinated(brpoplpush, &BRPOPLPUSH)),
    ("blmpop", Route::coordinated(blmpop, &BLMPOP)),
];

/// An end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (LEFT).
    Left,
    /// The tail (RIGHT).
    Right,
}

impl End {
    /// LEFT or RIGHT, any case.
    pub fn parse(arg: &[u8]) -> Option<End> {
        if is(arg, "left") {
            Some(End::Left)
        } else if is(arg, "right") {
            Some(End::Right)
        } else {
            None
        }
    }

    fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }

    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }
}

/// Looks `key` up for a list command. `Ok(None)`: missing. `Err(())`: the key holds
/// another type and the WRONGTYPE error has been written.
pub(crate) fn lookup(ctx: &mut Ctx, key: &[u8], read: bool) -> Result<Option<u32>, ()> {
    super::coll::lookup_as(ctx, key, read, |c| c.is_list())
}

/// The list at `idx` (which [`lookup`] checked is one).
fn list_at<'c>(ctx: &'c Ctx, idx: u32) -> &'c List {
    ctx.store.list(idx).expect("lookup checked the type")
}

/// Edits the list at `idx` with `f`; an emptied list's key is deleted (after the
/// command's own event, `event`, is raised when `f` says it changed something).
fn edit<R>(
    ctx: &mut Ctx,
    idx: u32,
    key: &[u8],
    event: &'static str,
    f: impl FnOnce(&mut List) -> (R, bool),
) -> R {
    let (r, changed) = ctx.store.with_list(idx, f);
    if changed {
        ctx.store.notify(LIST_EVENTS, event, key);
    }
    if ctx.store.list(idx).is_some_and(List::is_empty) {
        ctx.store.remove_at(idx);
        ctx.store.notify(GENERIC, "del", key);
    }
    r
}

/// Pushes `elems` at `end` of the list at `key` (`idx`, or a new one); returns the
/// new length. Raises the push event; wakes clients blocked on the key.
pub fn push(ctx: &mut Ctx, key: &[u8], idx: Option<u32>, end: End, elems: &[&[u8]]) -> usize {
    let fill = ctx.coll.list_fill;
    let add = |l: &mut List| {
        for e in elems {
            match end {
                End::Left => l.push_front(e, fill),
                End::Right => l.push_back(e, fill),
            }
        }
        l.len()
    };
    let len = match idx {
        Some(idx) => ctx.store.with_list(idx, add),
        None => {
            let mut l = List::new();
            let len = add(&mut l);
            ctx.store.insert_list(key, l, 0);
            len
        }
    };
    ctx.store.notify(LIST_EVENTS, end.push_event(), key);
    ctx.store.signal_ready(key);
    len
}

fn push_generic(ctx: &mut Ctx, args: Args, end: End, only_existing: bool) {
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    if only_existing && found.is_none() {
        ctx.out.int(0);
        return;
    }
    let elems: Vec<&[u8]> = args.iter().skip(2).collect();
    let len = push(ctx, key, found, end, &elems);
    ctx.out.int(len as i64);
}

/// LPUSH key element [element ...]
pub fn lpush(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Left, false);
}

/// RPUSH key element [element ...]
pub fn rpush(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Right, false);
}

/// LPUSHX key element [element ...]
pub fn lpushx(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Left, true);
}

/// RPUSHX key element [element ...]
pub fn rpushx(ctx: &mut Ctx, args: Args) {
    push_generic(ctx, args, End::Right, true);
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(ctx: &mut Ctx, args: Args) {
    let after = if is(args.get(2), "after") {
        true
    } else if is(args.get(2), "before") {
        false
    } else {
        return ctx.out.err(errors::SYNTAX);
    };
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.int(0);
    };
    let (pivot, elem) = (args.get(3), args.get(4));
    let Some(at) = list_at(ctx, idx).iter().position(|e| e == pivot) else {
        return ctx.out.int(-1);
    };
    let fill = ctx.coll.list_fill;
    let len = edit(ctx, idx, key, "linsert", |l| {
        l.insert(at + usize::from(after), elem, fill);
        (l.len(), true)
    });
    ctx.store.signal_ready(key);
    ctx.out.int(len as i64);
}

/// Pops up to `count` elements from `end` of the list at `idx` (which has some), in pop
/// order; raises the pop event and deletes an emptied key.
pub fn pop(ctx: &mut Ctx, idx: u32, key: &[u8], end: End, count: usize) -> Vec<Vec<u8>> {
    edit(ctx, idx, key, end.pop_event(), |l| {
        let n = count.min(l.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let e = match end {
                End::Left => l.pop_front_with(<[u8]>::to_vec),
                End::Right => l.pop_back_with(<[u8]>::to_vec),
            };
            out.extend(e);
        }
        (out, n > 0)
    })
}

/// `getPositiveLongFromObjectOrReply`: a count of at least 0.
pub fn positive_arg(out: &mut Reply, arg: &[u8]) -> Option<usize> {
    match parse_i64(arg) {
        None => {
            out.err(errors::NOT_INTEGER);
            None
        }
        Some(v) if v < 0 => {
            out.err("value is out of range, must be positive");
            None
        }
        Some(v) => Some(v as usize),
    }
}

fn pop_generic(ctx: &mut Ctx, args: Args, end: End) {
    if args.len() > 3 {
        return super::arity_error(&mut ctx.out, ctx.name);
    }
    let count = if args.len() == 3 {
        let Some(n) = positive_arg(&mut ctx.out, args.get(2)) else {
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
    let Some(idx) = found else {
        return match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        };
    };
    match count {
        Some(0) => ctx.out.array(0),
        Some(n) => {
            let elems = pop(ctx, idx, key, end, n);
            ctx.out.array(elems.len());
            for e in &elems {
                ctx.out.bulk(e);
            }
        }
        None => {
            let e = pop(ctx, idx, key, end, 1);
            ctx.out.bulk(&e[0]);
        }
    }
}

/// LPOP key \[count\]
pub fn lpop(ctx: &mut Ctx, args: Args) {
    pop_generic(ctx, args, End::Left);
}

/// RPOP key \[count\]
pub fn rpop(ctx: &mut Ctx, args: Args) {
    pop_generic(ctx, args, End::Right);
}

/// LLEN key
pub fn llen(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let n = found.map_or(0, |idx| list_at(ctx, idx).len());
    ctx.out.int(n as i64);
}

/// A `long` argument (`getLongFromObjectOrReply`).
fn long_arg(out: &mut Reply, arg: &[u8]) -> Option<i64> {
    let v = parse_i64(arg);
    if v.is_none() {
        out.err(errors::NOT_INTEGER);
    }
    v
}

/// Redis's range arithmetic: `start..=stop` within a list of `len`, or `None` when
/// empty.
fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut stop = if stop < 0 { stop + len } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

/// LRANGE key start stop
pub fn lrange(ctx: &mut Ctx, args: Args) {
    let Some(start) = long_arg(&mut ctx.out, args.get(2)) else {
        return;
    };
    let Some(stop) = long_arg(&mut ctx.out, args.get(3)) else {
        return;
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.array(0);
    };
    let l = ctx.store.list(idx).expect("lookup checked the type");
    match range(start, stop, l.len()) {
        None => ctx.out.array(0),
        Some((a, b)) => {
            ctx.out.array(b + 1 - a);
            for e in l.iter_from(a).take(b + 1 - a) {
                ctx.out.bulk(e);
            }
        }
    }
}

/// An index into a list of `len` (negative from the end), if within it.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// LINDEX key index
pub fn lindex(ctx: &mut Ctx, args: Args) {
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.null();
    };
    let Some(i) = long_arg(&mut ctx.out, args.get(2)) else {
        return;
    };
    let l = ctx.store.list(idx).expect("lookup checked the type");
    match index(i, l.len()).and_then(|i| l.get(i)) {
        Some(e) => ctx.out.bulk(e),
        None => ctx.out.null(),
    }
}

/// LSET key index element
pub fn lset(ctx: &mut Ctx, args: Args) {
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.err(errors::NO_SUCH_KEY);
    };
    let Some(i) = long_arg(&mut ctx.out, args.get(2)) else {
        return;
    };
    let Some(i) = index(i, list_at(ctx, idx).len()) else {
        return ctx.out.err("index out of range");
    };
    let fill = ctx.coll.list_fill;
    edit(ctx, idx, key, "lset", |l| {
        l.set(i, args.get(3), fill);
        ((), true)
    });
    ctx.out.ok();
}

/// LREM key count element
pub fn lrem(ctx: &mut Ctx, args: Args) {
    let Some(count) = long_arg(&mut ctx.out, args.get(2)) else {
        return;
    };
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.int(0);
    };
    let elem = args.get(3);
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    let removed = edit(ctx, idx, key, "lrem", |l| {
        let n = l.remove_where(count < 0, limit, |e| e == elem);
        (n, n > 0)
    });
    ctx.out.int(removed as i64);
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx, args: Args) {
    let Some(start) = long_arg(&mut ctx.out, args.get(2)) else {
        return;
    };
    let Some(stop) = long_arg(&mut ctx.out, args.get(3)) else {
        return;
    };
    let key = args.get(1);
    let Ok(found) = lookup(ctx, key, false) else {
        return;
    };
    let Some(idx) = found else {
        return ctx.out.ok();
    };
    let len = list_at(ctx, idx).len();
    edit(ctx, idx, key, "ltrim", |l| {
        match range(start, stop, len) {
            Some((a, b)) => l.trim(a, b),
            None => while l.drain_some(usize::MAX) {},
        }
        ((), true)
    });
    ctx.out.ok();
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx, args: Args) {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        let more = i + 1 < args.len();
        if is(opt, "rank") && more {
            i += 1;
            match parse_i64(args.get(i)) {
                None => return ctx.out.err(errors::NOT_INTEGER),
                Some(0) => {
                    return ctx.out.err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    )
                }
                Some(r) => rank = r,
            }
        } else if is(opt, "count") && more {
            i += 1;
            match parse_i64(args.get(i)) {
                None => return ctx.out.err(errors::NOT_INTEGER),
                Some(c) if c < 0 => return ctx.out.err("COUNT can't be negative"),
                Some(c) => count = Some(c as usize),
            }
        } else if is(opt, "maxlen") && more {
            i += 1;
            match parse_i64(args.get(i)) {
                None => return ctx.out.err(errors::NOT_INTEGER),
                Some(m) if m < 0 => return ctx.out.err("MAXLEN can't be negative"),
                Some(m) => maxlen = m as usize,
            }
        } else {
            return ctx.out.err(errors::SYNTAX);
        }
        i += 1;
    }
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Some(idx) = found else {
        return match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        };
    };
    let l = ctx.store.list(idx).expect("lookup checked the type");
    let elem = args.get(2);
    let len = l.len();
    let limit = if maxlen == 0 { usize::MAX } else { maxlen };
    let want = match count {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 1,
    };
    // Redis negates a negative rank, so i64::MIN stays negative and its first match
    // from the tail counts.
    let mut skip = if rank == i64::MIN {
        0
    } else {
        rank.unsigned_abs() - 1
    };
    let mut found_at = Vec::new();
    let mut scan = |pos: usize, e: &[u8]| {
        if e == elem {
            if skip > 0 {
                skip -= 1;
            } else {
                found_at.push(pos);
            }
        }
        found_at.len() < want
    };
    if rank > 0 {
        for (i, e) in l.iter().enumerate().take(limit) {
            if !scan(i, e) {
                break;
            }
        }
    } else if len > 0 {
        for (i, e) in l.iter_back_from(len - 1).enumerate().take(limit) {
            if !scan(len - 1 - i, e) {
                break;
            }
        }
    }
    match count {
        Some(_) => {
            ctx.out.array(found_at.len());
            for p in found_at {
                ctx.out.int(p as i64);
            }
        }
        None => match found_at.first() {
            Some(&p) => ctx.out.int(p as i64),
            None => ctx.out.null(),
        },
    }
}

/// Moves an element from `end` of `src` to `to` of `dst`, both on this shard; writes the
/// element (or a null reply when `src` is missing). WRONGTYPE when either is not a
/// list. `Ok(true)` when an element moved.
pub fn move_element(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> bool {
    let Ok(found) = lookup(ctx, src, false) else {
        return false;
    };
    let Some(src_idx) = found else {
        ctx.out.null();
        return false;
    };
    let Ok(dst_idx) = lookup(ctx, dst, false) else {
        return false;
    };
    let fill = ctx.coll.list_fill;
    let elem = if src == dst {
        // A rotation: the list never empties.
        let e = ctx.store.with_list(src_idx, |l| {
            let e = match from {
                End::Left => l.pop_front_with(<[u8]>::to_vec),
                End::Right => l.pop_back_with(<[u8]>::to_vec),
            }
            .expect("a stored list is not empty");
            match to {
                End::Left => l.push_front(&e, fill),
                End::Right => l.push_back(&e, fill),
            }
            e
        });
        ctx.store.notify(LIST_EVENTS, to.push_event(), dst);
        ctx.store.notify(LIST_EVENTS, from.pop_event(), src);
        e
    } else {
        let e = ctx.store.with_list(src_idx, |l| match from {
            End::Left => l.pop_front_with(<[u8]>::to_vec),
            End::Right => l.pop_back_with(<[u8]>::to_vec),
        });
        let e = e.expect("a stored list is not empty");
        push(ctx, dst, dst_idx, to, &[&e]);
        let src_idx = ctx
            .store
            .find(src, ctx.now)
            .expect("the source is still there");
        ctx.store.notify(LIST_EVENTS, from.pop_event(), src);
        if ctx.store.list(src_idx).is_some_and(List::is_empty) {
            ctx.store.remove_at(src_idx);
            ctx.store.notify(GENERIC, "del", src);
        }
        e
    };
    ctx.store.signal_ready(dst);
    ctx.out.bulk(&elem);
    true
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx, args: Args) {
    let (Some(from), Some(to)) = (End::parse(args.get(3)), End::parse(args.get(4))) else {
        return ctx.out.err(errors::SYNTAX);
    };
    move_element(ctx, args.get(1), args.get(2), from, to);
}

/// RPOPLPUSH source destination
pub fn rpoplpush(ctx: &mut Ctx, args: Args) {
    move_element(ctx, args.get(1), args.get(2), End::Right, End::Left);
}

/// LMPOP's and BLMPOP's arguments after `numkeys`' position: the keys, the end and the
/// count. Writes Redis's error and returns `None` when they are wrong.
pub fn mpop_args(out: &mut Reply, args: Args, numkeys_at: usize) -> Option<(usize, End, usize)> {
    mpop_args_with(out, args, numkeys_at, End::parse)
}

/// The arguments of a pop over several keys from `numkeys` at `numkeys_at`: the key
/// count, the side (`side` reads LEFT|RIGHT, or MIN|MAX for ZMPOP), the COUNT. Redis's
/// errors written when wrong.
pub(super) fn mpop_args_with<T>(
    out: &mut Reply,
    args: Args,
    numkeys_at: usize,
    side: impl Fn(&[u8]) -> Option<T>,
) -> Option<(usize, T, usize)> {
    let numkeys = match parse_i64(args.get(numkeys_at)) {
        Some(n) if n > 0 => n as usize,
        _ => {
            out.err("numkeys should be greater than 0");
            return None;
        }
    };
    let end_at = numkeys_at + 1 + numkeys;
    if end_at >= args.len() {
        out.err(errors::SYNTAX);
        return None;
    }
    let Some(end) = side(args.get(end_at)) else {
        out.err(errors::SYNTAX);
        return None;
    };
    let mut count = 1;
    let mut i = end_at + 1;
    let mut seen_count = false;
    while i < args.len() {
        if is(args.get(i), "count") && i + 1 < args.len() && !seen_count {
            match parse_i64(args.get(i + 1)) {
                Some(c) if c > 0 => count = c as usize,
                _ => {
                    out.err("count should be greater than 0");
                    return None;
                }
            }
            seen_count = true;
            i += 2;
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
    }
    Some((numkeys, end, count))
}

/// Writes LMPOP's reply for `elems` popped from `key`.
pub fn mpop_reply(out: &mut Reply, key: &[u8], elems: &[Vec<u8>]) {
    out.array(2);
    out.bulk(key);
    out.array(elems.len());
    for e in elems {
        out.bulk(e);
    }
}

/// Pops from the first non-empty list among `keys` (all on this shard): `Ok(true)` with
/// the reply written, `Ok(false)` when every key is missing (nothing written), `Err`
/// with WRONGTYPE written.
pub(crate) fn mpop_here<'a>(
    ctx: &mut Ctx,
    keys: impl Iterator<Item = &'a [u8]>,
    end: End,
    count: usize,
) -> Result<bool, ()> {
    for key in keys {
        if let Some(idx) = lookup(ctx, key, false)? {
            let elems = pop(ctx, idx, key, end, count);
            mpop_reply(&mut ctx.out, key, &elems);
            return Ok(true);
        }
    }
    Ok(false)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(ctx: &mut Ctx, args: Args) {
    let Some((numkeys, end, count)) = mpop_args(&mut ctx.out, args, 1) else {
        return;
    };
    if let Ok(false) = mpop_here(ctx, args.iter().skip(2).take(numkeys), end, count) {
        ctx.out.null_array();
    }
}

// ---- blocking ---------------------------------------------------------------------------

/// A blocking command found nothing: it blocks on the keys at `keys` until `timeout_ms`
/// from now (0: forever; a timeout replies with a null array, as Redis 7.0 answers
/// every list command's), or, where it may not block (MULTI/EXEC), replies a null
/// array, or a null bulk string for BLMOVE and BRPOPLPUSH (`null_array` false).
pub(super) fn block(ctx: &mut Ctx, timeout_ms: u64, keys: Vec<usize>, null_array: bool) {
    if !ctx.may_block {
        return if null_array {
            ctx.out.null_array()
        } else {
            ctx.out.null()
        };
    }
    let deadline = if timeout_ms == 0 {
        0
    } else {
        ctx.now.saturating_add(timeout_ms)
    };
    ctx.block = Some(Block {
        deadline,
        keys,
        null_array: true,
    });
}

/// The timeout argument at `at`, or Redis's error for it.
pub(super) fn timeout_arg(ctx: &mut Ctx, args: Args, at: usize) -> Option<u64> {
    match timeout_ms(args.get(at)) {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.out.err(e.text());
            None
        }
    }
}

fn bpop(ctx: &mut Ctx, args: Args, end: End) {
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
            let e = pop(ctx, idx, key, end, 1);
            ctx.out.array(2);
            ctx.out.bulk(key);
            ctx.out.bulk(&e[0]);
            return;
        }
    }
    block(ctx, timeout, (1..last).collect(), true);
}

/// BLPOP key [key ...] timeout
pub fn blpop(ctx: &mut Ctx, args: Args) {
    bpop(ctx, args, End::Left);
}

/// BRPOP key [key ...] timeout
pub fn brpop(ctx: &mut Ctx, args: Args) {
    bpop(ctx, args, End::Right);
}

fn bmove(ctx: &mut Ctx, args: Args, from: End, to: End, timeout_at: usize) {
    let Some(timeout) = timeout_arg(ctx, args, timeout_at) else {
        return;
    };
    let Ok(found) = lookup(ctx, args.get(1), false) else {
        return;
    };
    if found.is_none() {
        return block(ctx, timeout, vec![1], false);
    }
    move_element(ctx, args.get(1), args.get(2), from, to);
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(ctx: &mut Ctx, args: Args) {
    let (Some(from), Some(to)) = (End::parse(args.get(3)), End::parse(args.get(4))) else {
        return ctx.out.err(errors::SYNTAX);
    };
    bmove(ctx, args, from, to, 5);
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(ctx: &mut Ctx, args: Args) {
    bmove(ctx, args, End::Right, End::Left, 3);
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(ctx: &mut Ctx, args: Args) {
    let Some(timeout) = timeout_arg(ctx, args, 1) else {
        return;
    };
    let Some((numkeys, end, count)) = mpop_args(&mut ctx.out, args, 2) else {
        return;
    };
    // Ok(true): popped; Err: WRONGTYPE written.
    if let Ok(false) = mpop_here(ctx, args.iter().skip(3).take(numkeys), end, count) {
        block(ctx, timeout, (3..3 + numkeys).collect(), true);
    }
}

// ---- across shards ----------------------------------------------------------------------

fn check_move(out: &mut Reply, _: &'static str, args: Args) -> Option<bool> {
    if args.len() == 5 && (End::parse(args.get(3)).is_none() || End::parse(args.get(4)).is_none()) {
        out.err(errors::SYNTAX);
        return None;
    }
    Some(false)
}

/// The reads of a move: the source's type and the element at its `from` end, the
/// destination's type.
fn move_reads(args: Args, pos: usize, from: End) -> Vec<OwnedArgs> {
    let mut reads = vec![OwnedArgs::from_slices(&[&b"TYPE"[..], args.get(pos)])];
    if pos == 1 {
        let at: &[u8] = if from == End::Left { b"0" } else { b"-1" };
        reads.push(OwnedArgs::from_slices(&[&b"LINDEX"[..], args.get(1), at]));
    }
    reads
}

/// A move's computation over its reads: the reply, and the pop and push.
fn move_compute(args: Args, frames: &[Frame], out: &mut Reply, from: End, to: End) -> Writes {
    let type_of = |f: &Frame| f.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
    let (src_type, dst_type) = (type_of(&frames[0]), type_of(&frames[2]));
    if src_type == b"none" {
        out.null();
        return Vec::new();
    }
    if src_type != b"list" || !matches!(&dst_type[..], b"none" | b"list") {
        out.error(errors::WRONGTYPE);
        return Vec::new();
    }
    let Some(elem) = frames[1].as_bytes() else {
        out.null();
        return Vec::new();
    };
    out.bulk(elem);
    let pop: &[u8] = if from == End::Left { b"LPOP" } else { b"RPOP" };
    let push: &[u8] = if to == End::Left { b"LPUSH" } else { b"RPUSH" };
    // Redis raises the destination's push event before the source's pop.
    vec![
        (2, OwnedArgs::from_slices(&[push, args.get(2), elem])),
        (1, OwnedArgs::from_slices(&[pop, args.get(1)])),
    ]
}

fn lmove_ends(args: Args) -> (End, End) {
    (
        End::parse(args.get(3)).unwrap_or(End::Left),
        End::parse(args.get(4)).unwrap_or(End::Left),
    )
}

/// LMOVE across shards.
const LMOVE: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "lmove",
        reads: |a, p| move_reads(a, p, lmove_ends(a).0),
        compute: |a, frames, out| {
            let (from, to) = lmove_ends(a);
            move_compute(a, frames, out, from, to)
        },
    }),
    check: check_move,
    blocking: None,
};

/// RPOPLPUSH across shards.
const RPOPLPUSH: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "rpoplpush",
        reads: |a, p| move_reads(a, p, End::Right),
        compute: |a, frames, out| move_compute(a, frames, out, End::Right, End::Left),
    }),
    check: check_move,
    blocking: None,
};

fn check_mpop(out: &mut Reply, _: &'static str, args: Args) -> Option<bool> {
    mpop_args(out, args, 1).map(|_| false)
}

/// A multi-pop's computation over the keys' types: WRONGTYPE for a key of another type
/// met before the first list; else the pop, an LMPOP of that one key on its owner,
/// whose reply is the client's. `None`: no key holds a list (nothing written).
pub fn mpop_compute(
    args: Args,
    frames: &[Frame],
    out: &mut Reply,
    numkeys_at: usize,
) -> Option<Writes> {
    let mut scratch = Vec::new();
    let (numkeys, end, count) = mpop_args(
        &mut Reply::new(&mut scratch, corekv_protocol::Proto::Resp2),
        args,
        numkeys_at,
    )?;
    let k = match first_of_type(&frames[..numkeys.min(frames.len())], b"list", out) {
        Ok(Some(k)) => k,
        Ok(None) => return None,
        Err(()) => return Some(Vec::new()),
    };
    let pos = numkeys_at + 1 + k;
    let end: &[u8] = if end == End::Left { b"LEFT" } else { b"RIGHT" };
    let n = count.to_string();
    Some(vec![(
        pos,
        OwnedArgs::from_slices(&[
            &b"LMPOP"[..],
            b"1",
            args.get(pos),
            end,
            b"COUNT",
            n.as_bytes(),
        ]),
    )])
}

/// LMPOP across shards.
const LMPOP: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "lmpop",
        reads: types_of,
        compute: |a, frames, out| {
            mpop_compute(a, frames, out, 1).unwrap_or_else(|| {
                out.null_array();
                Vec::new()
            })
        },
    }),
    check: check_mpop,
    blocking: None,
};

// ---- blocking across shards ------------------------------------------------------------

/// The timeout of a blocking request `check` accepted, at argument `at`.
pub(super) fn timeout_at(args: Args, at: usize) -> u64 {
    timeout_ms(args.get(at)).unwrap_or(0)
}

pub(super) fn check_timeout(out: &mut Reply, args: Args, at: usize) -> Option<bool> {
    match timeout_ms(args.get(at)) {
        Ok(_) => Some(false),
        Err(e) => {
            out.err(e.text());
            None
        }
    }
}

/// The reads of a pop over several keys: each key's type.
pub(super) fn types_of(args: Args, pos: usize) -> Vec<OwnedArgs> {
    vec![OwnedArgs::from_slices(&[&b"TYPE"[..], args.get(pos)])]
}

/// BLPOP/BRPOP across shards, without waiting: the first key holding a list is popped
/// by the same command with that key alone on its owner (whose reply is the client's).
fn bpop_compute(args: Args, frames: &[Frame], out: &mut Reply) -> Writes {
    pop_first_of(args, frames, out, b"list")
}

/// Of the keys' types read by a gather (`frames`, in key order), the first that is
/// `want`: `Ok(Some(k))`; `Ok(None)` when every key is missing; `Err` with WRONGTYPE
/// written for a key of another type met first (Redis stops at it).
pub(super) fn first_of_type(
    frames: &[Frame],
    want: &[u8],
    out: &mut Reply,
) -> Result<Option<usize>, ()> {
    for (k, ty) in frames.iter().enumerate() {
        let ty = ty.as_bytes().unwrap_or_default();
        if ty == b"none" {
            continue;
        }
        if ty != want {
            out.error(errors::WRONGTYPE);
            return Err(());
        }
        return Ok(Some(k));
    }
    Ok(None)
}

/// A blocking pop over keys `1..len-1` across shards, without waiting (BLPOP,
/// BZPOPMIN): the first key holding a `ty` is popped by the same command with that key
/// alone on its owner; WRONGTYPE for a key of another type met first; a null array when
/// none holds one.
pub(super) fn pop_first_of(args: Args, frames: &[Frame], out: &mut Reply, want: &[u8]) -> Writes {
    match first_of_type(frames, want, out) {
        Ok(Some(k)) => vec![(
            1 + k,
            OwnedArgs::from_slices(&[args.get(0), args.get(1 + k), b"0"]),
        )],
        Ok(None) => {
            out.null_array();
            Vec::new()
        }
        Err(()) => Vec::new(),
    }
}

pub(super) fn check_bpop(out: &mut Reply, _: &'static str, args: Args) -> Option<bool> {
    check_timeout(out, args, args.len() - 1)
}

/// BLPOP and BRPOP across shards.
const BPOP: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "bpop",
        reads: types_of,
        compute: bpop_compute,
    }),
    check: check_bpop,
    blocking: Some(super::Blocking {
        timeout: |a| timeout_at(a, a.len() - 1),
        keys: |a| (1..a.len() - 1).collect(),
        null_array: true,
    }),
};
const BLPOP: Coordinated = BPOP;
const BRPOP: Coordinated = BPOP;

/// BLMOVE across shards.
const BLMOVE: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "blmove",
        reads: |a, p| move_reads(a, p, lmove_ends(a).0),
        compute: |a, frames, out| {
            let (from, to) = lmove_ends(a);
            move_compute(a, frames, out, from, to)
        },
    }),
    check: |out, name, args| {
        check_move(out, name, args.slice(0, 5))?;
        check_timeout(out, args, 5)
    },
    blocking: Some(super::Blocking {
        timeout: |a| timeout_at(a, 5),
        keys: |_| vec![1],
        null_array: true,
    }),
};

/// BRPOPLPUSH across shards.
const BRPOPLPUSH: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "brpoplpush",
        reads: |a, p| move_reads(a, p, End::Right),
        compute: |a, frames, out| move_compute(a, frames, out, End::Right, End::Left),
    }),
    check: |out, _, args| check_timeout(out, args, 3),
    blocking: Some(super::Blocking {
        timeout: |a| timeout_at(a, 3),
        keys: |_| vec![1],
        null_array: true,
    }),
};

/// BLMPOP across shards.
const BLMPOP: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        lookups: None,
        name: "blmpop",
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
    blocking: Some(super::Blocking {
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
    fn ranges_follow_redis() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-100, 100, 3), Some((0, 2)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(3, 5, 3), None);
        assert_eq!(range(-1, -1, 3), Some((2, 2)));
        assert_eq!(range(0, 0, 0), None);
        assert_eq!(index(-1, 3), Some(2));
        assert_eq!(index(3, 3), None);
        assert_eq!(index(-4, 3), None);
    }
}
