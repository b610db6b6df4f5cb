//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs (local: a
//! connection's subscriptions live on its shard), PUBLISH and SPUBLISH (fan-outs: every
//! shard delivers to its own subscribers and counts them), PUBSUB's introspection
//! (fan-outs whose merges put the shards' subscribers together).
//!
//! A message is written into the subscriber's output in its protocol (an array in RESP2,
//! a push in RESP3) and its connection is woken to write it. A subscriber whose unwritten
//! output passes the `pubsub` class's hard `client-output-buffer-limit` is closed and
//! counted, so a slow subscriber never makes a publisher wait or the shard grow without
//! bound (the soft limit is applied when its output is written).

use corekv_protocol::Reply;

use super::merge::{array_elements, int_of, sum};
use super::{Args, Check, Fanout, Flow, Local, OwnedArgs, Plan, Registrations, Route, Targets};
use crate::assembly::{MergeCtx, MergeData};
use crate::pubsub::Kind;
use crate::state::State;

pub(super) const COMMANDS: Registrations = &[
    (
        "subscribe",
        Route::Local(|l, a| subscribe(l, a, Kind::Channel)),
    ),
    (
        "psubscribe",
        Route::Local(|l, a| subscribe(l, a, Kind::Pattern)),
    ),
    (
        "ssubscribe",
        Route::Local(|l, a| subscribe(l, a, Kind::Shard)),
    ),
    (
        "unsubscribe",
        Route::Local(|l, a| unsubscribe(l, a, Kind::Channel)),
    ),
    (
        "punsubscribe",
        Route::Local(|l, a| unsubscribe(l, a, Kind::Pattern)),
    ),
    (
        "sunsubscribe",
        Route::Local(|l, a| unsubscribe(l, a, Kind::Shard)),
    ),
    ("publish", Route::Fanout(&PUBLISH)),
    ("spublish", Route::Fanout(&SPUBLISH)),
    ("pubsub|channels", Route::Fanout(&CHANNELS)),
    ("pubsub|shardchannels", Route::Fanout(&SHARDCHANNELS)),
    ("pubsub|numsub", Route::Fanout(&NUMSUB)),
    ("pubsub|shardnumsub", Route::Fanout(&SHARDNUMSUB)),
    ("pubsub|numpat", Route::Fanout(&NUMPAT)),
    ("pubsub|help", Route::Local(help)),
];

/// The commands a RESP2 client may send while it subscribes to anything.
pub const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "ping",
    "subscribe",
    "ssubscribe",
    "psubscribe",
    "unsubscribe",
    "sunsubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

fn words(kind: Kind) -> (&'static [u8], &'static [u8]) {
    match kind {
        Kind::Channel => (b"subscribe", b"unsubscribe"),
        Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

/// (P|S)SUBSCRIBE name [name ...]: one confirmation per name, with the count after it.
fn subscribe(l: &mut Local, args: Args, kind: Kind) -> Flow {
    let proto = l.client.proto;
    let subs = l.client.subs.get_or_insert_with(Default::default);
    let mut r = Reply::new(&mut *l.out, proto);
    for name in args.iter().skip(1) {
        l.pubsub.subscribe(subs, kind, name, l.conn);
        r.push(3);
        r.bulk(words(kind).0);
        r.bulk(name);
        r.int(subs.reply_count(kind) as i64);
    }
    Flow::Continue
}

/// (P|S)UNSUBSCRIBE [name ...]: the names given, or every one of the kind; one
/// confirmation each (a null name when there was none).
fn unsubscribe(l: &mut Local, args: Args, kind: Kind) -> Flow {
    let proto = l.client.proto;
    let subs = l.client.subs.get_or_insert_with(Default::default);
    let names: Vec<Box<[u8]>> = if args.len() > 1 {
        args.iter().skip(1).map(Into::into).collect()
    } else {
        subs.of(kind).iter().cloned().collect()
    };
    let mut r = Reply::new(&mut *l.out, proto);
    if names.is_empty() {
        r.push(3);
        r.bulk(words(kind).1);
        r.null();
        r.int(subs.reply_count(kind) as i64);
    }
    for name in &names {
        l.pubsub.unsubscribe(subs, kind, name, l.conn);
        r.push(3);
        r.bulk(words(kind).1);
        r.bulk(name);
        r.int(subs.reply_count(kind) as i64);
    }
    if subs.is_empty() {
        l.client.subs = None;
    }
    Flow::Continue
}

/// Leaves every subscription (RESET).
pub fn unsubscribe_all(l: &mut Local) {
    if let Some(mut subs) = l.client.subs.take() {
        l.pubsub.forget(&mut subs, l.conn);
    }
}

/// A part on every shard with the channel and the message.
fn publish_check(_: &mut Check, args: Args) -> Option<Plan> {
    Some(Plan {
        targets: Targets::All,
        args: OwnedArgs::from_slices(&[args.get(1), args.get(2)]),
        data: MergeData::None,
    })
}

/// PUBLISH channel message: the number of subscriptions reached on every shard.
const PUBLISH: Fanout = Fanout {
    check: publish_check,
    part: |st, args, out| out.int(deliver(st, Kind::Channel, args.get(0), args.get(1)) as i64),
    merge: sum,
};

/// SPUBLISH shardchannel message.
const SPUBLISH: Fanout = Fanout {
    check: publish_check,
    part: |st, args, out| out.int(deliver(st, Kind::Shard, args.get(0), args.get(1)) as i64),
    merge: sum,
};

/// Writes `message` on `channel` to this shard's subscribers of the channel (and, for
/// PUBLISH, of the patterns matching it); returns how many subscriptions it reached.
pub fn deliver(st: &mut State, kind: Kind, channel: &[u8], message: &[u8]) -> usize {
    let State {
        pubsub,
        conns,
        config,
        stats,
        ..
    } = st;
    let limit = config.output_limits.pubsub();
    let mut reached = 0;
    let mut send = |conn, parts: &[&[u8]]| {
        reached += 1;
        let Some(c) = conns.get_mut(conn) else {
            return;
        };
        if c.killed {
            return;
        }
        let mut r = Reply::new(&mut c.replies.local, c.proto);
        r.push(parts.len());
        for p in parts {
            r.bulk(p);
        }
        let pending = (c.replies.local.len() + c.omem) as u64;
        if limit.hard > 0 && pending > limit.hard {
            stats.output_limit_disconnections += 1;
            tracing::warn!(
                bytes = pending,
                limit = limit.hard,
                "closing subscriber over the pubsub output buffer hard limit"
            );
            c.killed = true;
            c.overflowed = true;
        }
        if let Some(w) = c.kill_waker.take() {
            w.wake();
        }
    };
    let word: &[u8] = if kind == Kind::Shard {
        b"smessage"
    } else {
        b"message"
    };
    for &conn in pubsub.subscribers(kind, channel) {
        send(conn, &[word, channel, message]);
    }
    if kind == Kind::Channel {
        for (pattern, subscribers) in pubsub.matching(channel) {
            for &conn in subscribers {
                send(conn, &[b"pmessage", pattern, channel, message]);
            }
        }
    }
    reached
}

/// A part on every shard with the optional pattern.
fn channels_check(ck: &mut Check, args: Args) -> Option<Plan> {
    if args.len() > 3 {
        // Redis's text for a PUBSUB subcommand with too many arguments.
        let mut text = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
        text.extend_from_slice(args.get(1));
        text.extend_from_slice(b"'. Try PUBSUB HELP.");
        ck.out.error(&text);
        return None;
    }
    let mut a = OwnedArgs::new();
    if args.len() == 3 {
        a.push(args.get(2));
    }
    Some(Plan {
        targets: Targets::All,
        args: a,
        data: MergeData::None,
    })
}

fn channels_part(st: &mut State, kind: Kind, args: Args, out: &mut Reply) {
    let pattern = (!args.is_empty()).then(|| args.get(0));
    let names = st.pubsub.names(kind, pattern);
    out.array(names.len());
    for n in names {
        out.bulk(n);
    }
}

/// The shards' names, each once.
fn distinct(_: &mut MergeCtx, _: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let names = distinct_names(parts);
    out.array(names.len());
    for n in names {
        out.raw(n);
    }
}

/// The names in the shards' array parts, each once (encoded as they came).
fn distinct_names<'a>(parts: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut names: Vec<&[u8]> = parts
        .iter()
        .flat_map(|p| array_elements(p).unwrap_or_default())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// PUBSUB CHANNELS [pattern]: channels with at least one subscriber.
const CHANNELS: Fanout = Fanout {
    check: channels_check,
    part: |st, args, out| channels_part(st, Kind::Channel, args, out),
    merge: distinct,
};

/// PUBSUB SHARDCHANNELS [pattern].
const SHARDCHANNELS: Fanout = Fanout {
    check: channels_check,
    part: |st, args, out| channels_part(st, Kind::Shard, args, out),
    merge: distinct,
};

/// A part on every shard with the channels asked about.
fn numsub_check(_: &mut Check, args: Args) -> Option<Plan> {
    let names: Vec<&[u8]> = args.iter().skip(2).collect();
    Some(Plan {
        targets: Targets::All,
        args: OwnedArgs::from_slices(&names),
        data: MergeData::None,
    })
}

fn numsub_part(st: &mut State, kind: Kind, args: Args, out: &mut Reply) {
    out.array(args.len() * 2);
    for name in args.iter() {
        out.bulk(name);
        out.int(st.pubsub.subscribers(kind, name).len() as i64);
    }
}

/// Each channel, in the order asked, with the sum of the shards' counts (a flat array,
/// in RESP3 too, as Redis replies).
fn numsub_merge(_: &mut MergeCtx, _: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let parts: Vec<Vec<&[u8]>> = parts
        .iter()
        .map(|p| array_elements(p).unwrap_or_default())
        .collect();
    let Some(first) = parts.first() else {
        out.array(0);
        return;
    };
    out.array(first.len());
    for (i, pair) in first.chunks(2).enumerate() {
        out.raw(pair[0]);
        let total: i64 = parts
            .iter()
            .filter_map(|p| p.get(2 * i + 1).and_then(|e| int_of(e)))
            .sum();
        out.int(total);
    }
}

/// PUBSUB NUMSUB [channel ...].
const NUMSUB: Fanout = Fanout {
    check: numsub_check,
    part: |st, args, out| numsub_part(st, Kind::Channel, args, out),
    merge: numsub_merge,
};

/// PUBSUB SHARDNUMSUB [shardchannel ...].
const SHARDNUMSUB: Fanout = Fanout {
    check: numsub_check,
    part: |st, args, out| numsub_part(st, Kind::Shard, args, out),
    merge: numsub_merge,
};

/// PUBSUB NUMPAT: patterns with a subscriber anywhere, each counted once.
const NUMPAT: Fanout = Fanout {
    check: super::every_shard,
    part: |st, _, out| channels_part(st, Kind::Pattern, OwnedArgs::new().args(), out),
    merge: |_, _, parts, out| out.int(distinct_names(parts).len() as i64),
};

/// PUBSUB HELP.
fn help(l: &mut Local, _: Args) -> Flow {
    const LINES: &[&str] = &[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    let mut r = l.reply();
    r.array(LINES.len());
    for line in LINES {
        r.simple(line.as_bytes());
    }
    Flow::Continue
}
