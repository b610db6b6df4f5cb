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
