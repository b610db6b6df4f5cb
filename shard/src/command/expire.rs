//! Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT, LT), TTL,
//! PTTL, EXPIRETIME, PEXPIRETIME and PERSIST, as Redis 7's `expire.c` behaves.
//!
//! Deadlines are Unix milliseconds. Reads treat a key as gone once `now > deadline`;
//! setting a deadline that is not in the future (`deadline <= now`) deletes the key at
//! once, as Redis's `checkAlreadyExpired` does.

use crate::notify::GENERIC;
use corekv_protocol::number::parse_i64;

use super::{cstr, errors, is, Args, Ctx, Registrations, Route};

/// The expiry family.
pub(super) const COMMANDS: Registrations = &[
    ("expire", Route::keyed(expire)),
    ("pexpire", Route::keyed(pexpire)),
    ("expireat", Route::keyed(expireat)),
    ("pexpireat", Route::keyed(pexpireat)),
    ("ttl", Route::keyed(ttl)),
    ("pttl", Route::keyed(pttl)),
    ("expiretime", Route::keyed(expiretime)),
    ("pexpiretime", Route::keyed(pexpiretime)),
    ("persist", Route::keyed(persist)),
];

/// Whether a deadline is relative to now or absolute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Now,
    Epoch,
}

fn expire_generic(ctx: &mut Ctx, args: Args, base: Base, seconds: bool) {
    // Options first, as Redis parses them before the number.
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in args.iter().skip(3) {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            let mut msg = b"ERR Unsupported option ".to_vec();
            msg.extend_from_slice(cstr(opt));
            ctx.out.error(&msg);
            return;
        }
    }
    if nx && (xx || gt || lt) {
        ctx.out
            .err("NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if gt && lt {
        ctx.out
            .err("GT and LT options at the same time are not compatible");
        return;
    }
    let Some(mut when) = parse_i64(args.get(2)) else {
        ctx.out.err(errors::NOT_INTEGER);
        return;
    };
    let invalid = |ctx: &mut Ctx| {
        ctx.out
            .err(&format!("invalid expire time in '{}' command", ctx.name));
    };
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            invalid(ctx);
            return;
        }
        when *= 1000;
    }
    let basetime = match base {
        Base::Now => ctx.now as i64,
        Base::Epoch => 0,
    };
    if when > i64::MAX - basetime {
        invalid(ctx);
        return;
    }
    when += basetime;
    let key = args.get(1);
    let Some(idx) = ctx.store.find(key, ctx.now) else {
        ctx.out.int(0);
        return;
    };
    let current = ctx.store.entry(idx).expire_at().map(|d| d as i64);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return;
    }
    if when <= ctx.now as i64 {
        ctx.store.remove_at(idx);
        ctx.store.notify(GENERIC, "del", key);
    } else {
        ctx.store.set_expire(idx, when as u64);
        ctx.store.notify(GENERIC, "expire", key);
    }
    ctx.out.int(1);
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub fn expire(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, Base::Now, true);
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub fn pexpire(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, Base::Now, false);
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub fn expireat(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, Base::Epoch, true);
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub fn pexpireat(ctx: &mut Ctx, args: Args) {
    expire_generic(ctx, args, Base::Epoch, false);
}

/// `ttlGenericCommand`: -2 for a missing key, -1 for no deadline, else the time left (or
/// the deadline itself with `absolute`), in ms or rounded seconds.
fn ttl_generic(ctx: &mut Ctx, args: Args, ms: bool, absolute: bool) {
    let Some(idx) = ctx.store.find_read(args.get(1), ctx.now) else {
        ctx.out.int(-2);
        return;
    };
    let Some(deadline) = ctx.store.entry(idx).expire_at() else {
        ctx.out.int(-1);
        return;
    };
    let deadline = deadline as i64;
    let ttl = if absolute {
        deadline
    } else {
        deadline - ctx.now as i64
    }
    .max(0);
    ctx.out.int(if ms { ttl } else { (ttl + 500) / 1000 });
}

/// TTL key
pub fn ttl(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, false, false);
}

/// PTTL key
pub fn pttl(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, true, false);
}

/// EXPIRETIME key
pub fn expiretime(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, false, true);
}

/// PEXPIRETIME key
pub fn pexpiretime(ctx: &mut Ctx, args: Args) {
    ttl_generic(ctx, args, true, true);
}

/// PERSIST key
pub fn persist(ctx: &mut Ctx, args: Args) {
    match ctx.store.find(args.get(1), ctx.now) {
        Some(idx) if ctx.store.entry(idx).expire_at().is_some() => {
            ctx.store.set_expire(idx, 0);
            ctx.store.notify(GENERIC, "persist", args.get(1));
            ctx.out.int(1);
        }
        _ => ctx.out.int(0),
    }
}

#[cfg(test)]
mod tests {
    use super::super::KeyFn;
    use super::*;
    use crate::store::{Str, Value};
    use crate::testkit::Keys;

    const NOW: u64 = 1_700_000_000_000;

    fn run(st: &mut Keys, f: KeyFn, name: &'static str, args: &[&str]) -> String {
        st.run(f, name, args)
    }

    fn with_key() -> Keys {
        let mut st = Keys::new(NOW);
        st.keyspace().insert(b"k", Value::Str(Str::Int(1)), 0);
        st
    }

    #[test]
    fn ttl_of_missing_persistent_and_volatile_keys() {
        let mut st = with_key();
        assert_eq!(run(&mut st, ttl, "ttl", &["TTL", "nope"]), ":-2\r\n");
        assert_eq!(run(&mut st, ttl, "ttl", &["TTL", "k"]), ":-1\r\n");
        assert_eq!(
            run(&mut st, expire, "expire", &["EXPIRE", "k", "100"]),
            ":1\r\n"
        );
        assert_eq!(run(&mut st, ttl, "ttl", &["TTL", "k"]), ":100\r\n");
        assert_eq!(run(&mut st, pttl, "pttl", &["PTTL", "k"]), ":100000\r\n");
        assert_eq!(
            run(&mut st, pexpiretime, "pexpiretime", &["PEXPIRETIME", "k"]),
            format!(":{}\r\n", NOW + 100_000)
        );
        assert_eq!(
            run(&mut st, persist, "persist", &["PERSIST", "k"]),
            ":1\r\n"
        );
        assert_eq!(
            run(&mut st, persist, "persist", &["PERSIST", "k"]),
            ":0\r\n"
        );
        assert!(st.timers.is_empty());
    }

    #[test]
    fn flags_follow_redis() {
        let mut st = with_key();
        let e = |st: &mut Keys, a: &[&str]| run(st, expire, "expire", a);
        assert_eq!(e(&mut st, &["EXPIRE", "k", "100", "XX"]), ":0\r\n");
        assert_eq!(
            e(&mut st, &["EXPIRE", "k", "100", "GT"]),
            ":0\r\n",
            "no TTL is infinite"
        );
        assert_eq!(e(&mut st, &["EXPIRE", "k", "100", "LT"]), ":1\r\n");
        assert_eq!(e(&mut st, &["EXPIRE", "k", "50", "NX"]), ":0\r\n");
        assert_eq!(e(&mut st, &["EXPIRE", "k", "200", "GT"]), ":1\r\n");
        assert_eq!(e(&mut st, &["EXPIRE", "k", "150", "GT"]), ":0\r\n");
        assert_eq!(
            e(&mut st, &["EXPIRE", "k", "1", "NX", "XX"]),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            e(&mut st, &["EXPIRE", "k", "1", "GT", "LT"]),
            "-ERR GT and LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            e(&mut st, &["EXPIRE", "k", "1", "ZZ"]),
            "-ERR Unsupported option ZZ\r\n"
        );
        assert_eq!(
            e(&mut st, &["EXPIRE", "k", "9223372036854776"]),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(e(&mut st, &["EXPIRE", "nope", "10"]), ":0\r\n");
    }

    #[test]
    fn a_deadline_not_in_the_future_deletes() {
        let mut st = with_key();
        assert_eq!(
            run(&mut st, expire, "expire", &["EXPIRE", "k", "0"]),
            ":1\r\n"
        );
        assert!(st.store.is_empty());
        let mut st = with_key();
        assert_eq!(
            run(
                &mut st,
                pexpireat,
                "pexpireat",
                &["PEXPIREAT", "k", &NOW.to_string()]
            ),
            ":1\r\n"
        );
        assert!(st.store.is_empty(), "deadline == now already deletes");
    }
}
