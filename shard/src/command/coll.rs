//! What the hash and set families share: walking a collection whatever its encoding,
//! random sampling (HRANDFIELD, SRANDMEMBER, SPOP) and HSCAN/SSCAN.
//!
//! An element is a pair: a hash's field and value, or a set's member and an empty
//! value. Compact encodings (listpack, intset) hold at most a few hundred elements, so
//! they are walked; a [`Table`] is sampled by slab position, O(1) per pick.

use corekv_protocol::Reply;

use super::{keyspace, Args, Ctx};
use crate::store::collection::{
    intset_at, intset_iter, intset_len, listpack_iter, listpack_len, HASH,
};
use crate::store::{CollRef, Table};

/// Finds the collection of one type under a key: `Ok(None)` when the key is missing,
/// `Err(())` after writing WRONGTYPE; the flag says whether the lookup is a read.
pub type CollLookup = fn(&mut Ctx, &[u8], bool) -> Result<Option<u32>, ()>;

/// How many elements.
pub fn len(c: CollRef) -> usize {
    match c {
        CollRef::Listpack(lp) => listpack_len(lp),
        CollRef::Intset(is) => intset_len(is),
        CollRef::Table(t) => t.len(),
    }
}

/// Calls `f` with every element, in the encoding's order (insertion order for a
/// listpack, ascending for an intset, slab order for a table).
pub fn for_each(c: CollRef, mut f: impl FnMut(&[u8], &[u8])) {
    match c {
        CollRef::Listpack(lp) => listpack_iter(lp).for_each(|(k, v)| f(k, v)),
        CollRef::Intset(is) => {
            for m in intset_iter(is) {
                f(itoa::Buffer::new().format(m).as_bytes(), b"");
            }
        }
        CollRef::Table(t) => t.iter().for_each(|(k, v)| f(k, v)),
    }
}

/// Makes room in `out` for a reply listing every element of `c` (a large table's
/// reply runs to megabytes: growing the buffer by doubling would copy it again and
/// again).
pub fn reserve_reply(out: &mut Reply, c: Option<CollRef>) {
    if let Some(CollRef::Table(t)) = c {
        // Each element's bytes, plus a bulk header and CRLF for the field and the value.
        out.buffer().reserve(t.element_bytes() + 16 * t.len());
    }
}

/// Calls `f` with element `i` of a compact collection (`i < len`).
fn compact_at(c: CollRef, i: usize, pairs: &[(&[u8], &[u8])], f: &mut impl FnMut(&[u8], &[u8])) {
    match c {
        CollRef::Intset(is) => f(itoa::Buffer::new().format(intset_at(is, i)).as_bytes(), b""),
        _ => f(pairs[i].0, pairs[i].1),
    }
}

/// A listpack's pairs, for indexing (empty for other encodings).
fn listpack_pairs(c: CollRef<'_>) -> Vec<(&[u8], &[u8])> {
    match c {
        CollRef::Listpack(lp) => listpack_iter(lp).collect(),
        _ => Vec::new(),
    }
}

/// Calls `f` with one element chosen at random (the collection must not be empty).
pub fn random_one(c: CollRef, rng: &mut fastrand::Rng, mut f: impl FnMut(&[u8], &[u8])) {
    match c {
        CollRef::Table(t) => {
            let (k, v) = t.at(t.random(rng)).expect("random picks a used position");
            f(k, v);
        }
        _ => {
            let pairs = listpack_pairs(c);
            compact_at(c, rng.usize(..len(c)), &pairs, &mut f);
        }
    }
}

/// Whether a sample with a negative `count` (elements may repeat, so any number can be
/// asked of a small collection) would build a reply larger than `max_bytes`
/// (`proto-max-bulk-len`). Redis 7.0 tries and runs out of memory; corekv refuses with
/// [`SAMPLE_TOO_LARGE`] so one request cannot take the process down.
pub fn sample_too_large(c: CollRef, count: i64, max_bytes: u64) -> bool {
    if count >= 0 {
        return false;
    }
    let n = len(c).max(1) as u128;
    let bytes = match c {
        CollRef::Listpack(lp) => lp.len() as u128,
        CollRef::Intset(is) => is.len() as u128 * 3,
        CollRef::Table(t) => t.element_bytes() as u128,
    };
    // Per element: its share of the bytes, and a bulk header and CRLF or two.
    let per = bytes / n + 16;
    u128::from(count.unsigned_abs()) * per > u128::from(max_bytes)
}

/// HRANDFIELD's and ZRANDMEMBER's count and WITHVALUES/WITHSCORES (`with`), read in
/// Redis 7.0's order: the count (any `long` but `LONG_MIN`), then the syntax, then the
/// count's smaller range when pairs are asked for. `None` after writing the error.
pub fn rand_args(out: &mut Reply, args: Args, with: &str) -> Option<(Option<i64>, bool)> {
    if args.len() < 3 {
        return Some((None, false));
    }
    let n = match corekv_protocol::number::parse_i64(args.get(2)) {
        None => {
            out.err(super::errors::NOT_INTEGER);
            return None;
        }
        Some(i64::MIN) => {
            out.err(
                "value is out of range, value must between -9223372036854775807 and \
                 9223372036854775807",
            );
            return None;
        }
        Some(n) => n,
    };
    if args.len() > 4 || (args.len() == 4 && !super::is(args.get(3), with)) {
        out.err(super::errors::SYNTAX);
        return None;
    }
    let pairs = args.len() == 4;
    if pairs && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        out.err("value is out of range");
        return None;
    }
    Some((Some(n), pairs))
}

/// Looks `key` up for a command of one collection type (`is_type`). `Ok(None)`:
/// missing. `Err(())`: the key holds another type and WRONGTYPE has been written. `read`
/// counts the lookup as a read (keyspace hits and misses).
pub(crate) fn lookup_as(
    ctx: &mut Ctx,
    key: &[u8],
    read: bool,
    is_type: fn(&crate::store::Coll) -> bool,
) -> Result<Option<u32>, ()> {
    let found = if read {
        ctx.store.find_read(key, ctx.now)
    } else {
        ctx.store.find(key, ctx.now)
    };
    match found {
        Some(idx) => match ctx.store.entry(idx).value() {
            crate::store::Value::Coll(c) if is_type(&c) => Ok(Some(idx)),
            _ => {
                ctx.out.error(super::errors::WRONGTYPE);
                Err(())
            }
        },
        None => Ok(None),
    }
}

/// The error for [`sample_too_large`].
pub const SAMPLE_TOO_LARGE: &str = "count too large: the reply would exceed proto-max-bulk-len";

/// How many elements [`sample`] gives for `count` from `n`.
pub fn sample_len(n: usize, count: i64) -> usize {
    if count < 0 {
        count.unsigned_abs() as usize
    } else {
        (count as usize).min(n)
    }
}

/// HRANDFIELD's and SRANDMEMBER's sampling with a count, as Redis 7.0: a negative
/// count picks `|count|` elements that may repeat; a positive one distinct elements,
/// all of them in the encoding's order when it is at least the size. Calls `f` with
/// each, [`sample_len`] times.
pub fn sample(c: CollRef, count: i64, rng: &mut fastrand::Rng, mut f: impl FnMut(&[u8], &[u8])) {
    let n = len(c);
    if n == 0 || count == 0 {
        return;
    }
    if count > 0 && count as usize >= n {
        for_each(c, f);
        return;
    }
    let k = sample_len(n, count);
    match c {
        CollRef::Table(t) if count < 0 => {
            for _ in 0..k {
                let (a, b) = t.at(t.random(rng)).expect("a used position");
                f(a, b);
            }
        }
        CollRef::Table(t) => distinct_positions(t, k, rng, |pos| {
            let (a, b) = t.at(pos).expect("a used position");
            f(a, b);
        }),
        _ => {
            let pairs = listpack_pairs(c);
            if count < 0 {
                for _ in 0..k {
                    compact_at(c, rng.usize(..n), &pairs, &mut f);
                }
            } else {
                let mut order: Vec<usize> = (0..n).collect();
                for i in 0..k {
                    let j = rng.usize(i..n);
                    order.swap(i, j);
                    compact_at(c, order[i], &pairs, &mut f);
                }
            }
        }
    }
}

/// `k` distinct used positions of `t` (`k` < its length), at random.
pub fn distinct_positions(t: &Table, k: usize, rng: &mut fastrand::Rng, mut f: impl FnMut(usize)) {
    if k * 3 > t.len() {
        // Many of them: a partial shuffle of every used position.
        let mut used: Vec<usize> = (0..t.span()).filter(|&p| t.at(p).is_some()).collect();
        for i in 0..k {
            let j = rng.usize(i..used.len());
            used.swap(i, j);
            f(used[i]);
        }
    } else {
        let mut seen = ahash::HashSet::default();
        while seen.len() < k {
            let pos = t.random(rng);
            if seen.insert(pos) {
                f(pos);
            }
        }
    }
}

/// Bits of a table scan cursor below its epoch: the slab position.
const POSITION_BITS: u32 = 40;

/// HSCAN and SSCAN: `key cursor [MATCH pattern] [COUNT count]` over the collection
/// `lookup` finds (writing WRONGTYPE itself). A listpack or intset is returned whole with
/// cursor 0, as Redis does. A table is walked from the slab position the cursor names,
/// at most COUNT elements or 10 × COUNT positions per call; positions are stable while
/// the table lives, except when it compacts after shrinking to a quarter, which advances
/// its epoch (kept in the cursor's top bits) and sends older cursors back to the start.
/// So an element present for the whole scan is returned at least once.
pub fn scan(ctx: &mut Ctx, args: Args, lookup: CollLookup) {
    let Some(cursor) = keyspace::parse_cursor(args.get(2)) else {
        ctx.out.err("invalid cursor");
        return;
    };
    let Ok(found) = lookup(ctx, args.get(1), true) else {
        return;
    };
    let Some(idx) = found else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return;
    };
    let Some(req) = keyspace::parse_scan_options_from(&mut ctx.out, args, 3, false) else {
        return;
    };
    let matches = |e: &[u8]| {
        req.pattern
            .as_deref()
            .is_none_or(|p| crate::glob::matches(p, e, false))
    };
    let Ctx { store, out, .. } = ctx;
    let Some(c) = store.coll(idx) else {
        return;
    };
    let hash = match c {
        CollRef::Listpack(_) => true,
        CollRef::Intset(_) => false,
        CollRef::Table(t) => t.ty == HASH,
    };
    let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut next = 0u64;
    match c {
        CollRef::Table(t) => {
            let epoch = u64::from(t.epoch());
            let mut pos = if cursor >> POSITION_BITS == epoch {
                usize::try_from(cursor & ((1 << POSITION_BITS) - 1)).unwrap_or(usize::MAX)
            } else {
                0
            };
            let mut seen = 0;
            let mut budget = req.count.saturating_mul(10).max(1);
            while pos < t.span() && seen < req.count && budget > 0 {
                budget -= 1;
                if let Some((k, v)) = t.at(pos) {
                    seen += 1;
                    if matches(k) {
                        items.push((k.to_vec(), v.to_vec()));
                    }
                }
                pos += 1;
            }
            if pos < t.span() {
                next = epoch << POSITION_BITS | pos as u64;
            }
        }
        _ => for_each(c, |k, v| {
            if matches(k) {
                items.push((k.to_vec(), v.to_vec()));
            }
        }),
    }
    write_scan(out, next, &items, hash);
}

fn write_scan(out: &mut Reply, next: u64, items: &[(Vec<u8>, Vec<u8>)], hash: bool) {
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * if hash { 2 } else { 1 });
    for (k, v) in items {
        out.bulk(k);
        if hash {
            out.bulk(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::collection::{intset_build, SET};

    #[test]
    fn samples_are_distinct_with_a_positive_count_and_all_when_it_exceeds() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut is = Vec::new();
        intset_build(&[1, 2, 3, 4, 5], &mut is);
        let c = CollRef::Intset(&is);
        let mut got = Vec::new();
        sample(c, 3, &mut rng, |k, _| got.push(k.to_vec()));
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 3);
        let mut all = Vec::new();
        sample(c, 9, &mut rng, |k, _| {
            all.push(String::from_utf8(k.to_vec()).unwrap())
        });
        assert_eq!(all, ["1", "2", "3", "4", "5"], "the whole set, in order");
        let mut rep = 0;
        sample(c, -20, &mut rng, |_, _| rep += 1);
        assert_eq!(rep, 20);

        let mut t = Table::new(SET);
        for i in 0..1000 {
            t.insert(format!("m{i}").as_bytes(), b"");
        }
        for k in [1, 10, 400, 999] {
            let mut got = ahash::HashSet::default();
            sample(CollRef::Table(&t), k, &mut rng, |m, _| {
                assert!(got.insert(m.to_vec()), "distinct");
            });
            assert_eq!(got.len(), k as usize);
        }
    }
}
