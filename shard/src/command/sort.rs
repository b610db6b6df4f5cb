//! SORT and SORT_RO, as Redis 7.0's `sort.c` behaves: the elements of a list, set or
//! sorted set, ordered numerically or (ALPHA) bytewise, by themselves or by the values of
//! other keys (`BY weight_*`, `BY h_*->field`), cut by LIMIT, mapped through GET patterns
//! (`#` is the element), replied or (SORT's STORE) stored as a list.
//!
//! BY and GET patterns name keys through the elements, so they can be on any shard. A
//! request with such patterns on more than one shard runs as a [`Gather`] with every
//! shard paused: the source is read on its owner, the keys its patterns name on theirs
//! ([`Lookups`]), and the sort runs on the client's shard. Either way the sort itself is
//! `sort`, over the source's elements and a function that reads a pattern's key.
//!
//! Alphabetic order is bytewise, as Redis's is under the C locale (Redis uses `strcoll`
//! when it replies and the locale is another; corekv does not follow the locale). Where
//! Redis's order is unspecified, corekv's may differ: a set sorted `BY nosort` (without
//! STORE) comes in the set's own order, and elements whose ALPHA BY values are equal.

use ahash::AHashMap;
use corekv_protocol::frame::Frame;
use corekv_protocol::number::parse_i64;
use corekv_protocol::Reply;

use super::{errors, Args, Coordinated, Ctx, OwnedArgs, Registrations, Route};
use crate::coord::{Coord, Gather, Lookup, Lookups, Writes};
use crate::float::parse_sort_score;
use crate::notify::{GENERIC, LIST as LIST_EVENTS};
use crate::store::collection::{intset_iter, listpack_iter, SET, TABLE, TYPE_MASK, ZSET};
use crate::store::{Keyspace, List, Value};

/// The sort family.
pub(super) const COMMANDS: Registrations = &[
    ("sort", Route::coordinated(sort_cmd, &SORT)),
    ("sort_ro", Route::coordinated(sort_ro, &SORT_RO)),
];

/// The options of one request.
#[derive(Debug, Default, PartialEq)]
struct Opts<'a> {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    /// The STORE destination's argument position (the last STORE given).
    store: Option<usize>,
    /// The BY pattern, when it has a `*` (one without sorts nothing: `dontsort`).
    by: Option<&'a [u8]>,
    dontsort: bool,
    gets: Vec<&'a [u8]>,
}

/// Parses the options after the key as Redis does (later ones override earlier ones;
/// STORE only for SORT), writing Redis's error when they do not parse.
fn options<'a>(out: &mut Reply, args: Args<'a>, readonly: bool) -> Option<Opts<'a>> {
    let mut o = Opts::default();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = args.get(j);
        if a.eq_ignore_ascii_case(b"asc") {
            o.desc = false;
        } else if a.eq_ignore_ascii_case(b"desc") {
            o.desc = true;
        } else if a.eq_ignore_ascii_case(b"alpha") {
            o.alpha = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            let (Some(start), Some(count)) =
                (parse_i64(args.get(j + 1)), parse_i64(args.get(j + 2)))
            else {
                out.err(errors::NOT_INTEGER);
                return None;
            };
            o.limit = Some((start, count));
            j += 2;
        } else if !readonly && a.eq_ignore_ascii_case(b"store") && left >= 1 {
            o.store = Some(j + 1);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"by") && left >= 1 {
            let p = args.get(j + 1);
            // A pattern without `*` sorts nothing, and that sticks, as in Redis.
            if p.contains(&b'*') {
                o.by = Some(p);
            } else {
                o.by = None;
                o.dontsort = true;
            }
            j += 1;
        } else if a.eq_ignore_ascii_case(b"get") && left >= 1 {
            o.gets.push(args.get(j + 1));
            j += 1;
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// Where a pattern leads for one element.
#[derive(Debug, PartialEq)]
enum Deref {
    /// `#`: the element itself.
    Elem,
    /// No `*`: nothing.
    Nothing,
    /// A key's string value, or with a field, a hash field's value.
    Key(Vec<u8>, Option<Vec<u8>>),
}

/// Substitutes `elem` for the pattern's first `*`; a `->` after it (with a field name
/// after that) names a hash field, as Redis's `lookupKeyByPattern`.
fn deref(pattern: &[u8], elem: &[u8]) -> Deref {
    if pattern == b"#" {
        return Deref::Elem;
    }
    let Some(star) = pattern.iter().position(|&b| b == b'*') else {
        return Deref::Nothing;
    };
    let rest = &pattern[star + 1..];
    let arrow = rest
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&f| f + 2 < rest.len());
    let (suffix, field) = match arrow {
        Some(f) => (&rest[..f], Some(rest[f + 2..].to_vec())),
        None => (rest, None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + suffix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(suffix);
    Deref::Key(key, field)
}

/// Reads what a pattern names on this shard: a string key's value, or a hash's field;
/// `None` for a missing key or field or another type.
pub fn pattern_value(
    store: &mut Keyspace,
    key: &[u8],
    field: Option<&[u8]>,
    now: u64,
) -> Option<Vec<u8>> {
    let idx = store.find_read(key, now)?;
    match (store.entry(idx).value(), field) {
        (Value::Str(s), None) => Some(s.with_bytes(<[u8]>::to_vec)),
        (Value::Coll(c), Some(f)) if c.is_hash() => {
            super::hash::get(store.coll(idx)?, f).map(<[u8]>::to_vec)
        }
        _ => None,
    }
}

/// The kinds of value SORT takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The elements of a value moved as `Store::dump_value` encodes it, in its own order (a
/// sorted set's by score); `None` for a type SORT does not take.
fn elements(ty: &[u8], payload: &[u8]) -> Option<(Kind, Vec<Vec<u8>>)> {
    let (&kind, content) = payload.split_first()?;
    let owned = |it: &mut dyn Iterator<Item = &[u8]>| it.map(<[u8]>::to_vec).collect();
    match ty {
        b"list" => Some((
            Kind::List,
            owned(&mut listpack_iter(content).map(|(e, _)| e)),
        )),
        b"set" if kind & TYPE_MASK == SET && kind & TABLE != 0 => Some((
            Kind::Set,
            owned(&mut listpack_iter(content).map(|(e, _)| e)),
        )),
        b"set" if kind & TYPE_MASK == SET => Some((
            Kind::Set,
            intset_iter(content)
                .map(|v| itoa::Buffer::new().format(v).as_bytes().to_vec())
                .collect(),
        )),
        b"zset" if kind & TYPE_MASK == ZSET => Some((
            Kind::ZSet,
            crate::store::zset::compact_iter(content)
                .map(|(_, m)| m.to_vec())
                .collect(),
        )),
        _ => None,
    }
}

/// Reads the key a pattern names (and the hash field, if it names one).
type ReadFn<'r> = dyn FnMut(&[u8], Option<&[u8]>) -> Option<Vec<u8>> + 'r;

/// What a sort produced.
enum Sorted {
    /// The output, one item per element and GET pattern (`None`: nothing there).
    Items(Vec<Option<Vec<u8>>>),
    /// A value to sort by did not parse as a number.
    NotNumbers,
}

/// The sort: `elems` of a `kind` value ordered as `o` asks, cut and mapped through the
/// GET patterns; `read` reads a key a pattern names (see [`pattern_value`]).
fn sort(o: &Opts, kind: Kind, mut elems: Vec<Vec<u8>>, read: &mut ReadFn) -> Sorted {
    let (mut dontsort, mut alpha, mut by) = (o.dontsort, o.alpha, o.by);
    // A set's own order is not one: stored, it is sorted as ALPHA.
    if dontsort && kind == Kind::Set && o.store.is_some() {
        (dontsort, alpha, by) = (false, true, None);
    }
    let n = elems.len() as i64;
    let (limit_start, limit_count) = o.limit.unwrap_or((0, -1));
    let mut start = limit_start.clamp(0, n);
    let count = limit_count.clamp(-1, n);
    let mut end = if count < 0 { n - 1 } else { start + count - 1 };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    if end >= n {
        end = n - 1;
    }
    let mut lookup = |pattern: &[u8], elem: &[u8]| match deref(pattern, elem) {
        Deref::Elem => Some(elem.to_vec()),
        Deref::Nothing => None,
        Deref::Key(key, field) => read(&key, field.as_deref()),
    };
    if dontsort {
        if o.desc && kind != Kind::Set {
            elems.reverse();
        }
    } else {
        enum Key {
            Score(f64),
            Bytes(Option<Vec<u8>>),
        }
        let mut not_numbers = false;
        let mut keyed: Vec<(Key, Vec<u8>)> = elems
            .into_iter()
            .map(|e| {
                let by_value = match by {
                    Some(p) => lookup(p, &e),
                    None => None,
                };
                let key = if alpha {
                    Key::Bytes(by_value)
                } else {
                    let v = match (by, &by_value) {
                        (Some(_), None) => Some(0.0),
                        (Some(_), Some(v)) => parse_sort_score(v),
                        (None, _) => parse_sort_score(&e),
                    };
                    not_numbers |= v.is_none();
                    Key::Score(v.unwrap_or(0.0))
                };
                (key, e)
            })
            .collect();
        if not_numbers {
            return Sorted::NotNumbers;
        }
        let by_pattern = by.is_some();
        keyed.sort_by(|(ka, ea), (kb, eb)| {
            let cmp = match (ka, kb) {
                (Key::Score(a), Key::Score(b)) => a
                    .partial_cmp(b)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| ea.cmp(eb)),
                (Key::Bytes(a), Key::Bytes(b)) if by_pattern => a.cmp(b),
                _ => ea.cmp(eb),
            };
            if o.desc {
                cmp.reverse()
            } else {
                cmp
            }
        });
        elems = keyed.into_iter().map(|(_, e)| e).collect();
    }
    let range = if end >= start {
        &elems[start as usize..=end as usize]
    } else {
        &elems[..0]
    };
    let mut items = Vec::with_capacity(range.len() * o.gets.len().max(1));
    for e in range {
        if o.gets.is_empty() {
            items.push(Some(e.clone()));
        }
        for g in &o.gets {
            items.push(lookup(g, e));
        }
    }
    Sorted::Items(items)
}

/// SORT here, its source and destination (and every key its patterns name) on this
/// shard.
fn sort_here(ctx: &mut Ctx, args: Args, readonly: bool) {
    let Some(o) = options(&mut ctx.out, args, readonly) else {
        return;
    };
    let (kind, elems) = match ctx.store.find_read(args.get(1), ctx.now) {
        None => (Kind::List, Vec::new()),
        Some(idx) => {
            let mut payload = Vec::new();
            ctx.store.dump_value(idx, &mut payload);
            match elements(ctx.store.dump_type(idx), &payload) {
                Some(found) => found,
                None => {
                    ctx.out.error(errors::WRONGTYPE);
                    return;
                }
            }
        }
    };
    let now = ctx.now;
    let store = &mut ctx.store;
    let sorted = sort(&o, kind, elems, &mut |key, field| {
        pattern_value(store, key, field, now)
    });
    let items = match sorted {
        Sorted::NotNumbers => {
            ctx.out.err(NOT_NUMBERS);
            return;
        }
        Sorted::Items(items) => items,
    };
    let Some(dst) = o.store.map(|p| args.get(p)) else {
        ctx.out.array(items.len());
        for item in &items {
            match item {
                Some(v) => ctx.out.bulk(v),
                None => ctx.out.null(),
            }
        }
        return;
    };
    let existed = ctx.store.remove(dst, ctx.now).is_some();
    if items.is_empty() {
        if existed {
            ctx.store.notify(GENERIC, "del", dst);
        }
    } else {
        let fill = ctx.coll.list_fill;
        let mut list = List::new();
        for item in &items {
            list.push_back(item.as_deref().unwrap_or_default(), fill);
        }
        // Redis overwrites an existing destination: no "new" event then.
        let flags = ctx.store.store().events.flags;
        if existed {
            ctx.store.store().events.flags &= !crate::notify::NEW;
        }
        ctx.store.insert_list(dst, list, 0);
        ctx.store.store().events.flags = flags;
        ctx.store.notify(LIST_EVENTS, "sortstore", dst);
        ctx.store.signal_ready(dst);
    }
    ctx.out.int(items.len() as i64);
}

const NOT_NUMBERS: &str = "One or more scores can't be converted into double";

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] \[ALPHA\]
/// [STORE destination]
pub fn sort_cmd(ctx: &mut Ctx, args: Args) {
    sort_here(ctx, args, false);
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] \[ALPHA\]
pub fn sort_ro(ctx: &mut Ctx, args: Args) {
    sort_here(ctx, args, true);
}

/// Whether a request's patterns name keys (a BY or GET pattern with a `*`, other than
/// GET `#`).
fn names_keys(args: Args, readonly: bool) -> bool {
    let mut quiet = Vec::new();
    options(
        &mut Reply::new(&mut quiet, corekv_protocol::Proto::Resp2),
        args,
        readonly,
    )
    .is_some_and(|o| {
        o.by.is_some()
            || o.gets
                .iter()
                .any(|g| matches!(deref(g, b""), Deref::Key(..)))
    })
}

/// The keys the patterns name for the source `frames[0]` read (see [`Lookups`]).
fn lookups(args: Args, frames: &[Frame], readonly: bool) -> Vec<Lookup> {
    let mut quiet = Vec::new();
    let Some(o) = options(
        &mut Reply::new(&mut quiet, corekv_protocol::Proto::Resp2),
        args,
        readonly,
    ) else {
        return Vec::new();
    };
    let Some(Ok((_, elems))) = frames.first().map(dumped) else {
        return Vec::new();
    };
    let mut seen = ahash::AHashSet::new();
    let mut out = Vec::new();
    let patterns =
        o.by.filter(|_| !o.dontsort)
            .into_iter()
            .chain(o.gets.iter().copied());
    let patterns: Vec<&[u8]> = patterns.collect();
    for e in &elems {
        for p in &patterns {
            if let Deref::Key(k, f) = deref(p, e) {
                if seen.insert((k.clone(), f.clone())) {
                    out.push((k, f));
                }
            }
        }
    }
    out
}

/// The source as a gather read it (`[type, deadline, payload]` or null): its kind and
/// elements (a missing key is an empty list); `Err` for a type SORT does not take.
fn dumped(f: &Frame) -> Result<(Kind, Vec<Vec<u8>>), ()> {
    let Frame::Array(items) = f else {
        return Ok((Kind::List, Vec::new()));
    };
    let ty = items.first().and_then(Frame::as_bytes).unwrap_or_default();
    let payload = items.get(2).and_then(Frame::as_bytes).unwrap_or_default();
    elements(ty, payload).ok_or(())
}

/// SORT across shards: the source, then the keys its patterns name, were read with
/// every shard involved paused.
fn compute(args: Args, frames: &[Frame], out: &mut Reply, readonly: bool) -> Writes {
    let Some(o) = options(out, args, readonly) else {
        return Vec::new();
    };
    let (kind, elems) = match frames.first().map(dumped) {
        Some(Ok(found)) => found,
        Some(Err(())) => {
            out.error(errors::WRONGTYPE);
            return Vec::new();
        }
        None => (Kind::List, Vec::new()),
    };
    let mut values: AHashMap<Lookup, Option<Vec<u8>>> = AHashMap::new();
    if let Some(Frame::Array(got)) = frames.get(1) {
        let asked = lookups(args, &frames[..1], readonly);
        for (key, v) in asked.into_iter().zip(got) {
            values.insert(key, v.as_bytes().map(<[u8]>::to_vec));
        }
    }
    let sorted = sort(&o, kind, elems, &mut |key, field| {
        values
            .get(&(key.to_vec(), field.map(<[u8]>::to_vec)))
            .cloned()
            .flatten()
    });
    let items = match sorted {
        Sorted::NotNumbers => {
            out.err(NOT_NUMBERS);
            return Vec::new();
        }
        Sorted::Items(items) => items,
    };
    let Some(dst_pos) = o.store else {
        out.array(items.len());
        for item in &items {
            match item {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
        return Vec::new();
    };
    let dst = args.get(dst_pos);
    out.int(items.len() as i64);
    let mut writes = vec![(dst_pos, OwnedArgs::from_slices(&[&b"DEL"[..], dst]))];
    if !items.is_empty() {
        let mut push = OwnedArgs::new();
        push.push(b"RPUSH");
        push.push(dst);
        for item in &items {
            push.push(item.as_deref().unwrap_or_default());
        }
        writes.push((dst_pos, push));
    }
    writes
}

/// The source is read whole, whatever its type; the destination only written.
fn reads(args: Args, pos: usize) -> Vec<OwnedArgs> {
    if pos == 1 {
        vec![OwnedArgs::from_slices(&[crate::coord::DUMP, args.get(1)])]
    } else {
        Vec::new()
    }
}

fn check(out: &mut Reply, _name: &'static str, args: Args, readonly: bool) -> Option<bool> {
    options(out, args, readonly).map(|_| false)
}

const SORT: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        name: "sort",
        reads,
        compute: |a, f, o| compute(a, f, o, false),
        lookups: Some(&Lookups {
            needed: |a| names_keys(a, false),
            keys: |a, f| lookups(a, f, false),
        }),
    }),
    check: |o, n, a| check(o, n, a, false),
    blocking: None,
};

const SORT_RO: Coordinated = Coordinated {
    kind: Coord::Gather(&Gather {
        name: "sort_ro",
        reads,
        compute: |a, f, o| compute(a, f, o, true),
        lookups: Some(&Lookups {
            needed: |a| names_keys(a, true),
            keys: |a, f| lookups(a, f, true),
        }),
    }),
    check: |o, n, a| check(o, n, a, true),
    blocking: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_substitute_the_first_star_and_name_hash_fields() {
        assert_eq!(deref(b"#", b"x"), Deref::Elem);
        assert_eq!(deref(b"nostar", b"x"), Deref::Nothing);
        assert_eq!(deref(b"w_*", b"x"), Deref::Key(b"w_x".to_vec(), None));
        assert_eq!(deref(b"a*b*c", b"x"), Deref::Key(b"axb*c".to_vec(), None));
        assert_eq!(
            deref(b"h_*->f", b"x"),
            Deref::Key(b"h_x".to_vec(), Some(b"f".to_vec()))
        );
        // An arrow with no field after it is part of the key name.
        assert_eq!(deref(b"h_*->", b"x"), Deref::Key(b"h_x->".to_vec(), None));
        // An arrow before the star is too.
        assert_eq!(deref(b"a->*", b"x"), Deref::Key(b"a->x".to_vec(), None));
    }

    fn opts(
        words: &[&str],
        readonly: bool,
    ) -> Result<(bool, bool, Option<(i64, i64)>, Option<usize>, bool, usize), String> {
        let mut args = vec!["sort", "k"];
        args.extend_from_slice(words);
        let a = OwnedArgs::from_slices(&args);
        let mut out = Vec::new();
        match options(
            &mut Reply::new(&mut out, corekv_protocol::Proto::Resp2),
            a.args(),
            readonly,
        ) {
            Some(o) => Ok((o.desc, o.alpha, o.limit, o.store, o.dontsort, o.gets.len())),
            None => Err(String::from_utf8_lossy(&out).into_owned()),
        }
    }

    #[test]
    fn options_parse_as_redis_does() {
        assert_eq!(
            opts(&["desc", "asc", "alpha"], false),
            Ok((false, true, None, None, false, 0))
        );
        assert_eq!(
            opts(&["limit", "1", "2", "get", "#", "get", "x"], false),
            Ok((false, false, Some((1, 2)), None, false, 2))
        );
        assert_eq!(
            opts(&["store", "a", "store", "b"], false),
            Ok((false, false, None, Some(5), false, 0))
        );
        assert_eq!(
            opts(&["by", "nosort"], false),
            Ok((false, false, None, None, true, 0))
        );
        assert_eq!(
            opts(&["store", "a"], true),
            Err("-ERR syntax error\r\n".into())
        );
        assert_eq!(
            opts(&["limit", "1"], false),
            Err("-ERR syntax error\r\n".into())
        );
        assert_eq!(
            opts(&["limit", "x", "1"], false),
            Err("-ERR value is not an integer or out of range\r\n".into())
        );
    }

    fn run(o: &Opts, kind: Kind, elems: &[&str]) -> Vec<Option<String>> {
        let elems = elems.iter().map(|e| e.as_bytes().to_vec()).collect();
        let mut read = |k: &[u8], _: Option<&[u8]>| -> Option<Vec<u8>> {
            // weight_<e> is the element's length, negated.
            k.strip_prefix(b"weight_")
                .map(|e| format!("-{}", e.len()).into_bytes())
        };
        match sort(o, kind, elems, &mut read) {
            Sorted::Items(items) => items
                .into_iter()
                .map(|i| i.map(|v| String::from_utf8(v).unwrap()))
                .collect(),
            Sorted::NotNumbers => vec![Some("NaN".into())],
        }
    }

    fn s(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|x| Some(x.to_string())).collect()
    }

    #[test]
    fn sorts_numerically_alphabetically_and_by_pattern() {
        let mut o = Opts::default();
        assert_eq!(
            run(&o, Kind::List, &["10", "9", " 2", "1e1"]),
            s(&[" 2", "9", "10", "1e1"])
        );
        assert_eq!(run(&o, Kind::List, &["1", "x"]), vec![Some("NaN".into())]);
        o.alpha = true;
        assert_eq!(
            run(&o, Kind::List, &["b", "a", "10", "9"]),
            s(&["10", "9", "a", "b"])
        );
        o.alpha = false;
        o.by = Some(b"weight_*");
        assert_eq!(
            run(&o, Kind::List, &["a", "ccc", "bb"]),
            s(&["ccc", "bb", "a"])
        );
        o.desc = true;
        o.limit = Some((1, 5));
        assert_eq!(run(&o, Kind::List, &["a", "ccc", "bb"]), s(&["bb", "ccc"]));
        o.gets = vec![b"#", b"weight_*", b"missing"];
        o.limit = Some((0, 1));
        assert_eq!(
            run(&o, Kind::List, &["a", "ccc", "bb"]),
            vec![Some("a".into()), Some("-1".into()), None]
        );
    }

    #[test]
    fn limits_clamp_as_redis_does() {
        let mut o = Opts {
            dontsort: true,
            ..Opts::default()
        };
        let l = ["a", "b", "c"];
        for (limit, want) in [
            ((0, -1), s(&l)),
            ((1, 1), s(&["b"])),
            ((-5, 2), s(&["a", "b"])),
            ((2, 100), s(&["c"])),
            ((3, 1), s(&[])),
            ((1, 0), s(&[])),
        ] {
            o.limit = Some(limit);
            assert_eq!(run(&o, Kind::List, &l), want, "{limit:?}");
        }
        o.desc = true;
        o.limit = Some((0, 2));
        assert_eq!(run(&o, Kind::ZSet, &l), s(&["c", "b"]));
    }
}
