//! Pub/sub over the wire: sequences on two connections against redis-server (byte for
//! byte), publish order and exact receiver counts with subscribers on every shard, the
//! `redis` crate's pub/sub API, slow subscribers closed by the pubsub output limit
//! without slowing the publisher, and 100,000 channels on one connection.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Server, SHARD_COUNTS};
use corekv_protocol::frame::{self, Frame};

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n")
}

/// Arrays whose order Redis does not define (PUBSUB CHANNELS) are compared sorted.
fn normalize(line: &str, reply: Vec<u8>) -> Vec<u8> {
    if !line.to_ascii_uppercase().contains("CHANNELS") {
        return reply;
    }
    match frame::parse(&reply) {
        Ok(Some((Frame::Array(mut items), _))) => {
            items.sort_by(|a, b| a.as_bytes().cmp(&b.as_bytes()));
            let mut out = Vec::new();
            Frame::Array(items).encode(&mut out);
            out
        }
        _ => reply,
    }
}

/// A step: connection 0 or 1 sends a command and reads one reply (`HELLO` replies are
/// read but not compared: they carry the connection id), or reads `READ n` more frames.
#[test]
fn pubsub_sequences_match_redis() {
    let cases: Vec<Vec<(usize, &str)>> = vec![
        vec![
            (0, "SUBSCRIBE a b"),
            (0, "READ 1"),
            (0, "PSUBSCRIBE a*"),
            (1, "PUBLISH a x"),
            (0, "READ 2"),
            (1, "PUBLISH b y"),
            (0, "READ 1"),
            (1, "PUBLISH nobody z"),
            (1, "PUBSUB NUMSUB a b c"),
            (1, "PUBSUB NUMPAT"),
            (1, "PUBSUB CHANNELS"),
            (1, "PUBSUB CHANNELS a*"),
            (1, "PUBSUB CHANNELS a* b"),
            (0, "GET x"),
            (0, "PING"),
            (0, "PING hello"),
            (0, "UNSUBSCRIBE a"),
            (0, "PUNSUBSCRIBE"),
            (1, "PUBLISH a z"),
            (1, "PUBLISH b w"),
            (0, "READ 1"),
            (0, "UNSUBSCRIBE"),
            (0, "PING"),
            (0, "UNSUBSCRIBE"),
            (0, "SUBSCRIBE"),
        ],
        vec![
            (0, "HELLO 3"),
            (0, "SUBSCRIBE c"),
            (0, "GET k"),
            (1, "PUBLISH c m1"),
            (0, "READ 1"),
            (0, "SET k v"),
            (0, "PUBLISH c self"),
            (0, "READ 1"),
            (0, "UNSUBSCRIBE nope"),
            (0, "RESET"),
            (1, "PUBLISH c gone"),
            (1, "PUBSUB NUMSUB c"),
        ],
        vec![
            (0, "SSUBSCRIBE s1 s2"),
            (0, "READ 1"),
            (1, "SPUBLISH s1 m"),
            (0, "READ 1"),
            (1, "PUBLISH s1 not-for-shard-subscribers"),
            (1, "PUBSUB SHARDCHANNELS"),
            (1, "PUBSUB SHARDNUMSUB s1 s3"),
            (1, "PUBSUB CHANNELS"),
            (0, "SUNSUBSCRIBE s1"),
            (0, "SUBSCRIBE ch"),
            (0, "SUNSUBSCRIBE"),
            (0, "GET x"),
            (0, "UNSUBSCRIBE"),
            (0, "GET x"),
        ],
        vec![
            (0, "SUBSCRIBE t"),
            (1, "MULTI"),
            (1, "PUBLISH t in-exec"),
            (1, "SET k v"),
            (1, "EXEC"),
            (0, "READ 1"),
            (0, "MULTI"),
            (0, "QUIT"),
        ],
    ];
    let redis = Server::redis();
    for shards in SHARD_COUNTS {
        let corekv = Server::corekv(shards, &[]);
        for (i, case) in cases.iter().enumerate() {
            let mut r = [redis.client(), redis.client()];
            let mut k = [corekv.client(), corekv.client()];
            r[1].call(&["FLUSHALL"]);
            k[1].call(&["FLUSHALL"]);
            for (c, line) in case {
                let label = format!("pubsub case {i} ({shards} shards), connection {c}: {line}");
                if let Some(n) = line.strip_prefix("READ ") {
                    for _ in 0..n.parse::<usize>().unwrap() {
                        let (want, got) = (r[*c].read_reply(), k[*c].read_reply());
                        assert_eq!(show(&got), show(&want), "{label}");
                    }
                    continue;
                }
                let args: Vec<&str> = line.split(' ').collect();
                let want = normalize(line, r[*c].call(&args));
                let got = normalize(line, k[*c].call(&args));
                if args[0] == "HELLO" {
                    assert_eq!(got.first(), want.first(), "{label}");
                } else {
                    assert_eq!(show(&got), show(&want), "{label}");
                }
            }
        }
    }
}

#[test]
fn every_subscriber_on_every_shard_gets_every_message_in_order() {
    const MESSAGES: usize = 5000;
    const SUBSCRIBERS: usize = 8;
    let srv = Server::corekv(4, &[]);
    let mut subs: Vec<Client> = (0..SUBSCRIBERS)
        .map(|i| {
            let mut c = srv.client();
            if i % 2 == 0 {
                c.call(&["SUBSCRIBE", "feed"]);
            } else {
                c.call(&["PSUBSCRIBE", "fe*"]);
            }
            c
        })
        .collect();
    let mut publisher = srv.client();
    let mut wire = Vec::new();
    for i in 0..MESSAGES {
        corekv_protocol::request::encode_request(
            &mut wire,
            &["PUBLISH".to_string(), "feed".into(), i.to_string()],
        );
    }
    publisher.send_raw(&wire);
    for _ in 0..MESSAGES {
        assert_eq!(
            publisher.read_reply(),
            format!(":{SUBSCRIBERS}\r\n").as_bytes()
        );
    }
    for (n, s) in subs.iter_mut().enumerate() {
        for i in 0..MESSAGES {
            let items = match s.read_frame() {
                Frame::Array(items) => items,
                other => panic!("subscriber {n}: {other:?}"),
            };
            let last = items.last().and_then(Frame::as_bytes).unwrap_or_default();
            assert_eq!(
                last,
                i.to_string().as_bytes(),
                "subscriber {n}, message {i}"
            );
        }
    }
}

#[test]
fn the_redis_crates_pubsub_api_works() {
    let srv = Server::corekv(4, &[]);
    let mut sub_con = srv.redis_conn();
    let mut pub_con = srv.redis_conn();
    let mut ps = sub_con.as_pubsub();
    ps.subscribe("orders").unwrap();
    ps.psubscribe("order*").unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("42")
        .query(&mut pub_con)
        .unwrap();
    assert_eq!(n, 2);
    ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got: Vec<(String, String)> = Vec::new();
    for _ in 0..2 {
        let m = ps.get_message().unwrap();
        got.push((m.get_channel_name().to_string(), m.get_payload().unwrap()));
    }
    assert_eq!(got, vec![("orders".into(), "42".into()); 2]);
    ps.unsubscribe("orders").unwrap();
    ps.punsubscribe("order*").unwrap();
}

#[test]
fn a_slow_subscriber_is_closed_and_never_slows_the_publisher() {
    let srv = Server::corekv(2, &[]);
    let mut admin = srv.client();
    assert_eq!(
        admin.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 256kb 128kb 60"
        ]),
        b"+OK\r\n"
    );
    // Never reads.
    let mut slow = srv.client();
    slow.call(&["SUBSCRIBE", "firehose"]);
    let mut fast = srv.client();
    fast.call(&["SUBSCRIBE", "firehose"]);
    let mut publisher = srv.client();
    let payload = "p".repeat(4096);
    let mut worst = Duration::ZERO;
    let mut closed_at = None;
    for i in 0..3000 {
        let t = Instant::now();
        let reply = publisher.call(&["PUBLISH", "firehose", &payload]);
        worst = worst.max(t.elapsed());
        assert!(reply == b":2\r\n" || reply == b":1\r\n", "{}", show(&reply));
        if reply == b":1\r\n" && closed_at.is_none() {
            closed_at = Some(i);
        }
        // The reading subscriber keeps up.
        let items = match fast.read_frame() {
            Frame::Array(items) => items,
            other => panic!("{other:?}"),
        };
        assert_eq!(items.len(), 3);
    }
    // 3000 x 4 KiB is 12 MiB; the socket buffers take some, the limit the rest.
    assert!(closed_at.is_some(), "the slow subscriber was never closed");
    assert!(
        worst < Duration::from_secs(1),
        "a PUBLISH waited {worst:?} for a slow subscriber"
    );
    assert!(admin.info_u64("stats", "client_output_buffer_limit_disconnections") >= 1);
    // Its socket is closed: reading drains what was sent, then ends.
    slow.stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.read_to_close();
}

#[test]
fn a_hundred_thousand_channels_on_one_connection() {
    let srv = Server::corekv(4, &[]);
    let mut c = srv.client();
    let names: Vec<String> = (0..100_000).map(|i| format!("ch:{i}")).collect();
    let mut args: Vec<&str> = vec!["SUBSCRIBE"];
    args.extend(names.iter().map(String::as_str));
    c.send(&args);
    for i in 0..names.len() {
        let f = c.read_frame();
        let Frame::Array(items) = f else {
            panic!("{f:?}")
        };
        assert_eq!(items[2], Frame::Integer(i as i64 + 1));
    }
    let mut other = srv.client();
    assert_eq!(
        other.call(&["PUBSUB", "NUMSUB", "ch:99999", "ch:100000"]),
        b"*4\r\n$8\r\nch:99999\r\n:1\r\n$9\r\nch:100000\r\n:0\r\n"
    );
    assert_eq!(other.call(&["PUBLISH", "ch:5", "x"]), b":1\r\n");
    c.read_frame();
    c.send(&["UNSUBSCRIBE"]);
    for _ in 0..names.len() {
        c.read_frame();
    }
    assert_eq!(other.call(&["PUBSUB", "CHANNELS"]), b"*0\r\n");
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn info_counts_each_channel_and_pattern_once_across_shards() {
    let srv = Server::corekv(4, &[]);
    let mut conns: Vec<Client> = (0..6).map(|_| srv.client()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.call(&["SUBSCRIBE", "shared"]);
        c.call(&["SUBSCRIBE", &format!("own:{i}")]);
        c.call(&["PSUBSCRIBE", "p*"]);
        c.call(&["SSUBSCRIBE", "s"]);
    }
    let mut admin = srv.client();
    assert_eq!(admin.info_u64("stats", "pubsub_channels"), 7);
    assert_eq!(admin.info_u64("stats", "pubsub_patterns"), 1);
    assert_eq!(admin.info_u64("stats", "pubsubshard_channels"), 1);
    assert_eq!(admin.call(&["PUBSUB", "NUMPAT"]), b":1\r\n");
    assert_eq!(
        admin.call(&["PUBSUB", "NUMSUB", "shared"]),
        b"*2\r\n$6\r\nshared\r\n:6\r\n"
    );
    drop(conns);
    common::eventually(Duration::from_secs(5), || {
        match admin.info_u64("stats", "pubsub_channels") {
            0 => Ok(()),
            n => Err(format!("{n} channels left after the subscribers closed")),
        }
    });
}

/// The channel's key: `__keyspace@0__:<key>` names it, `__keyevent@0__:<event>` carries
/// it as the message.
fn event_key(items: &[Frame]) -> Vec<u8> {
    let channel = items[2].as_bytes().unwrap_or_default();
    match channel.strip_prefix(b"__keyspace@0__:") {
        Some(key) => key.to_vec(),
        None => items[3].as_bytes().unwrap_or_default().to_vec(),
    }
}

/// Every notification until the marker, grouped by key (order kept within a key: events
/// of different keys may come from different shards).
fn notifications(sub: &mut Client) -> Vec<(Vec<u8>, String)> {
    let mut got: Vec<(Vec<u8>, String)> = Vec::new();
    loop {
        let Frame::Array(items) = sub.read_frame() else {
            panic!("not a message")
        };
        if items[2].as_bytes() == Some(&b"__keyevent@0__:marker"[..]) {
            break;
        }
        let text = items
            .iter()
            .map(|f| String::from_utf8_lossy(f.as_bytes().unwrap_or_default()).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        got.push((event_key(&items), text));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    got
}

#[test]
fn keyspace_notifications_match_redis() {
    let commands: &[&str] = &[
        "SET a 1",
        "SET a 2 EX 100",
        "SET a 3 KEEPTTL",
        "APPEND a x",
        "SETRANGE a 0 z",
        "SETRANGE a 0 ",
        "INCR n",
        "DECRBY n 3",
        "INCRBYFLOAT f 1.5",
        "GETSET a 9",
        "GETEX a EX 50",
        "GETEX a PERSIST",
        "GETEX a PERSIST",
        "GETDEL a",
        "SETNX b v",
        "SETNX b w",
        "SETEX b 100 v",
        "EXPIRE b 200",
        "PERSIST b",
        "PEXPIRE b 0",
        "MSET c 1 d 2",
        "MSETNX c 1 x 2",
        "DEL c d e",
        "HSET h f v g w",
        "HSETNX h f v",
        "HINCRBY h n 1",
        "HINCRBYFLOAT h x 1.5",
        "HDEL h f g n x nope",
        "SADD s 1 2",
        "SADD s 1",
        "SREM s 1 9",
        "SPOP s 0",
        "SPOP s",
        "SADD {s}1 a b",
        "SMOVE {s}1 {s}2 a",
        "SMOVE {s}1 {s}2 nope",
        "SINTERSTORE {s}dst {s}1 {s}2",
        "SUNIONSTORE {s}dst {s}1 {s}2",
        "SDIFFSTORE {s}dst {s}1 {s}1",
        "SADD big 1 2 3 4 5 6 7 8 9 10",
        "SPOP big 10",
        "SET {t}a 1",
        "RENAME {t}a {t}b",
        "COPY {t}b {t}c",
        "SET {t}d 1",
        "RENAME {t}b {t}d",
        "SET v 1 PX 30",
        // Keys on different shards of a 4-shard server (coordinated moves).
        "SET rx 1",
        "RENAME rx ry",
        "COPY ry rz",
        "COPY ry rz REPLACE",
        "RENAMENX ry rz",
    ];
    compare_notifications("KEA", commands, 80);
    // Key creation and read misses, classes outside `A`.
    compare_notifications(
        "KEnm",
        &[
            "GET nope",
            "MGET a nope b",
            "SET a 1",
            "EXISTS a zz",
            "TYPE zz",
            "HSET h f v",
            "HGET nohash f",
            "SADD s 1",
            "SISMEMBER noset 1",
            "SET {t}x 1",
            "RENAME {t}x {t}y",
            "INCR n",
            "SET v 1 PX 30",
        ],
        10,
    );
}

/// Runs `commands` on redis-server and on corekv (1 and 4 shards) with
/// `notify-keyspace-events` set to `classes`, and compares the notifications.
fn compare_notifications(classes: &str, commands: &[&str], at_least: usize) {
    let redis = Server::redis();
    for shards in SHARD_COUNTS {
        let corekv = Server::corekv(shards, &[]);
        let mut seen = Vec::new();
        for srv in [&redis, &corekv] {
            let mut c = srv.client();
            c.call(&["FLUSHALL"]);
            assert_eq!(
                c.call(&["CONFIG", "SET", "notify-keyspace-events", classes]),
                b"+OK\r\n"
            );
            let mut sub = srv.client();
            sub.call(&["PSUBSCRIBE", "__key*__:*"]);
            for line in commands {
                let args: Vec<&str> = line.split(' ').collect();
                c.call(&args);
            }
            // `v` expires on the server's own clock, nobody reading it.
            std::thread::sleep(Duration::from_millis(300));
            c.call(&["PUBLISH", "__keyevent@0__:marker", "end"]);
            seen.push(notifications(&mut sub));
            c.call(&["CONFIG", "SET", "notify-keyspace-events", ""]);
        }
        let (want, got) = (&seen[0], &seen[1]);
        assert!(
            want.len() > at_least,
            "redis sent only {} notifications",
            want.len()
        );
        for (w, g) in want.iter().zip(got) {
            assert_eq!(g.1, w.1, "{classes}, {shards} shards");
        }
        assert_eq!(got.len(), want.len(), "{classes}, {shards} shards: {got:?}");
    }
}

#[test]
fn notify_keyspace_events_setting_reads_and_prints_as_redis() {
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    let mut r = redis.client();
    let mut k = corekv.client();
    for value in [
        "KEA",
        "Ex",
        "Kg$lshzxetd",
        "AKEnm",
        "Kdtm",
        "Q",
        "KEA nm",
        "",
    ] {
        let set = ["CONFIG", "SET", "notify-keyspace-events", value];
        assert_eq!(show(&k.call(&set)), show(&r.call(&set)), "{value}");
        let get = ["CONFIG", "GET", "notify-keyspace-events"];
        assert_eq!(show(&k.call(&get)), show(&r.call(&get)), "{value}");
    }
}
