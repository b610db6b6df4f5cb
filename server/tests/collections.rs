//! Hashes and sets over the wire, where a differential test cannot look: scan guarantees
//! while a set changes, large collections deleted without stalling the shard, a huge
//! reply while other clients are served, and the encoding limits as settings.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Client, Server};
use corekv_protocol::frame::Frame;

/// Every SSCAN page until the cursor comes back to 0, calling `between` after each.
fn sscan_all(
    c: &mut Client,
    key: &str,
    count: &str,
    mut between: impl FnMut(),
) -> HashSet<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    for _ in 0..100_000 {
        c.send(&["SSCAN", key, &cursor, "COUNT", count]);
        let Frame::Array(parts) = c.read_frame() else {
            panic!("SSCAN replies with an array")
        };
        cursor = String::from_utf8(parts[0].as_bytes().unwrap().to_vec()).unwrap();
        let Frame::Array(items) = &parts[1] else {
            panic!("SSCAN's second element is an array")
        };
        seen.extend(items.iter().map(|m| m.as_bytes().unwrap().to_vec()));
        if cursor == "0" {
            return seen;
        }
        between();
    }
    panic!("SSCAN did not finish");
}

#[test]
fn sscan_returns_every_member_present_throughout_while_the_set_grows_and_shrinks() {
    let srv = Server::corekv(1, &[]);
    let mut c = srv.client();
    let mut w = srv.client();
    // Members that stay, and members added and removed during the scan.
    for chunk in (0..20_000).collect::<Vec<_>>().chunks(1000) {
        let mut args = vec!["SADD".to_string(), "s".into()];
        args.extend(chunk.iter().map(|i| format!("stay:{i}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.call(&args);
    }
    let mut round: u32 = 0;
    let seen = sscan_all(&mut c, "s", "100", || {
        // Grow by 500, then shrink by more: the table rehashes, reuses holes and
        // compacts (it drops below a quarter of its slab) while the scan is running.
        round += 1;
        let mut add = vec!["SADD".to_string(), "s".into()];
        add.extend((0..500).map(|j| format!("temp:{round}:{j}")));
        let add: Vec<&str> = add.iter().map(String::as_str).collect();
        w.call(&add);
        if round % 3 == 0 {
            for r in round.saturating_sub(3)..=round {
                let mut rem = vec!["SREM".to_string(), "s".into()];
                rem.extend((0..500).map(|j| format!("temp:{r}:{j}")));
                let rem: Vec<&str> = rem.iter().map(String::as_str).collect();
                w.call(&rem);
            }
        }
    });
    let missing: Vec<usize> = (0..20_000)
        .filter(|i| !seen.contains(format!("stay:{i}").as_bytes()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} members present throughout were not returned",
        missing.len()
    );

    // A set that shrinks to a tenth mid-scan (compaction): still every survivor.
    for i in 0..20_000 {
        if i % 1000 == 0 {
            let mut args = vec!["SADD".to_string(), "t".into()];
            args.extend((i..i + 1000).map(|j| format!("m:{j}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            c.call(&args);
        }
    }
    let mut shrunk = false;
    let seen = sscan_all(&mut c, "t", "500", || {
        if !shrunk {
            shrunk = true;
            for i in (0..20_000)
                .filter(|i| i % 10 != 0)
                .collect::<Vec<_>>()
                .chunks(1000)
            {
                let mut rem = vec!["SREM".to_string(), "t".into()];
                rem.extend(i.iter().map(|j| format!("m:{j}")));
                let rem: Vec<&str> = rem.iter().map(String::as_str).collect();
                w.call(&rem);
            }
        }
    });
    assert!(shrunk, "the scan took more than one page");
    for i in (0..20_000).step_by(10) {
        assert!(
            seen.contains(format!("m:{i}").as_bytes()),
            "m:{i} was present throughout"
        );
    }
}

/// The worst round trip of PINGs sent back to back on `c` until `done` says stop.
fn worst_ping(c: &mut Client, mut done: impl FnMut() -> bool) -> (Duration, usize) {
    let mut worst = Duration::ZERO;
    let mut n = 0;
    while !done() {
        let t = Instant::now();
        assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
        worst = worst.max(t.elapsed());
        n += 1;
    }
    (worst, n)
}

#[test]
fn deleting_a_million_member_set_frees_it_in_slices() {
    let srv = Server::corekv(1, &[]);
    let mut c = srv.client();
    let batch = 10_000;
    for i in (0..1_000_000).step_by(batch) {
        let mut args = vec!["SADD".to_string(), "big".into()];
        args.extend((i..i + batch).map(|j| format!("member:{j}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.call(&args);
    }
    assert_eq!(c.call(&["SCARD", "big"]), b":1000000\r\n");
    let t = Instant::now();
    assert_eq!(c.call(&["DEL", "big"]), b":1\r\n");
    let del = t.elapsed();
    // The key is gone at once; its members are freed from the timer task in slices.
    assert_eq!(c.call(&["EXISTS", "big"]), b":0\r\n");
    let mut p = srv.client();
    let (worst, pings) = worst_ping(&mut p, || {
        c.info_u64("memory", "lazyfree_pending_objects") == 0
    });
    assert_eq!(c.info_u64("memory", "lazyfreed_objects"), 1);
    eprintln!("DEL of 1,000,000 members: {del:?}; {pings} PINGs while freeing, worst {worst:?}");
    assert!(del < Duration::from_millis(50), "DEL took {del:?}");
}

#[test]
fn a_million_field_hgetall_leaves_other_clients_served() {
    let srv = Server::corekv(1, &[]);
    let mut c = srv.client();
    let batch = 10_000;
    for i in (0..1_000_000).step_by(batch) {
        let mut args = vec!["HSET".to_string(), "big".into()];
        for j in i..i + batch {
            args.push(format!("field:{j}"));
            args.push("v".repeat(16));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.call(&args);
    }
    // The big reply is read slowly, after the others have been measured.
    c.send(&["HGETALL", "big"]);
    let mut other = srv.client();
    let start = Instant::now();
    let (worst, pings) = worst_ping(&mut other, || start.elapsed() > Duration::from_millis(500));
    let Frame::Array(items) = c.read_frame() else {
        panic!("HGETALL replies with an array")
    };
    assert_eq!(items.len(), 2_000_000);
    eprintln!("{pings} PINGs during a 1,000,000-field HGETALL, worst {worst:?}");
    assert_eq!(other.call(&["HLEN", "big"]), b":1000000\r\n");
}

#[test]
fn encoding_limits_are_settings_and_flags() {
    let srv = Server::corekv(
        2,
        &[
            "--hash-max-listpack-entries",
            "4",
            "--set-max-intset-entries",
            "3",
        ],
    );
    let mut c = srv.client();
    assert_eq!(
        c.call_str(&["CONFIG", "GET", "hash-max-listpack-entries"]),
        "*2\r\n$25\r\nhash-max-listpack-entries\r\n$1\r\n4\r\n"
    );
    assert_eq!(
        c.call_str(&["CONFIG", "GET", "hash-max-ziplist-entries"]),
        "*2\r\n$24\r\nhash-max-ziplist-entries\r\n$1\r\n4\r\n"
    );
    c.call(&["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"]);
    assert_eq!(
        c.call_str(&["OBJECT", "ENCODING", "h"]),
        "$8\r\nlistpack\r\n"
    );
    c.call(&["HSET", "h", "e", "5"]);
    assert_eq!(
        c.call_str(&["OBJECT", "ENCODING", "h"]),
        "$9\r\nhashtable\r\n"
    );
    c.call(&["SADD", "s", "1", "2", "3"]);
    assert_eq!(c.call_str(&["OBJECT", "ENCODING", "s"]), "$6\r\nintset\r\n");
    c.call(&["SADD", "s", "4"]);
    assert_eq!(
        c.call_str(&["OBJECT", "ENCODING", "s"]),
        "$9\r\nhashtable\r\n"
    );
    // CONFIG SET reaches every shard.
    assert_eq!(
        c.call(&["CONFIG", "SET", "hash-max-listpack-value", "3"]),
        b"+OK\r\n"
    );
    for k in ["a", "b", "c", "d", "e", "f"] {
        c.call(&["HSET", k, "f", "abcd"]);
        assert_eq!(
            c.call_str(&["OBJECT", "ENCODING", k]),
            "$9\r\nhashtable\r\n",
            "{k}"
        );
    }
    assert_eq!(
        c.call_str(&["CONFIG", "SET", "set-max-intset-entries", "x"]),
        "-ERR CONFIG SET failed (possibly related to argument 'set-max-intset-entries') - argument couldn't be parsed into an integer\r\n"
    );
}

#[test]
fn a_huge_negative_sample_count_is_refused_and_the_server_lives() {
    // redis-server 7.0 runs out of memory on these; corekv refuses them.
    let srv = Server::corekv(2, &[]);
    let mut c = srv.client();
    c.call(&["SADD", "s", "a", "b"]);
    c.call(&["HSET", "h", "f", "v"]);
    let err = "-ERR count too large: the reply would exceed proto-max-bulk-len\r\n";
    assert_eq!(c.call_str(&["SRANDMEMBER", "s", "-1099511627776"]), err);
    assert_eq!(
        c.call_str(&["HRANDFIELD", "h", "-1099511627776", "WITHVALUES"]),
        err
    );
    // Large but within the limit: served.
    c.send(&["SRANDMEMBER", "s", "-100000"]);
    let Frame::Array(items) = c.read_frame() else {
        panic!("an array")
    };
    assert_eq!(items.len(), 100_000);
    assert_eq!(
        c.call(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]),
        b"+OK\r\n"
    );
    assert_eq!(c.call_str(&["SRANDMEMBER", "s", "-100000"]), err);
    assert_eq!(c.call(&["SCARD", "s"]), b":2\r\n");
}
