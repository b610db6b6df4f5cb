//! MULTI/EXEC/WATCH over the wire: atomicity across shards under concurrent readers and
//! writers, the `redis` crate's atomic pipelines and optimistic-locking helper, WATCH
//! invalidated by expiry and eviction, and the limit on a transaction's queue.
//! (Reply-for-reply comparisons with redis-server are in `differential.rs`.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, Server, SHARD_COUNTS};
use corekv_shard::slot::SlotMap;
use redis::Commands;

/// Two keys without hash tags owned by different shards of `shards` (the same one when
/// there is one shard).
fn two_keys(shards: usize) -> (String, String) {
    let map = SlotMap::new(shards);
    let a = "acct:0".to_string();
    let b = (1..)
        .map(|i| format!("acct:{i}"))
        .find(|k| shards == 1 || map.shard_of(k.as_bytes()) != map.shard_of(a.as_bytes()))
        .expect("a key on another shard");
    (a, b)
}

#[test]
fn readers_never_see_half_of_a_cross_shard_exec() {
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let (a, b) = two_keys(shards);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let mut con = srv.redis_conn();
                let (a, b) = (a.clone(), b.clone());
                std::thread::spawn(move || {
                    for _ in 0..300 {
                        let (x, y): (i64, i64) = redis::pipe()
                            .atomic()
                            .incr(&a, 1)
                            .incr(&b, 1)
                            .query(&mut con)
                            .expect("EXEC");
                        assert_eq!(x, y, "inside one EXEC the two counters agree");
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut con = srv.redis_conn();
                let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // MGET inside MULTI/EXEC: a cross-shard MGET on its own is split
                        // by owner and not atomic (see the README).
                        let ((x, y),): ((Option<i64>, Option<i64>),) = redis::pipe()
                            .atomic()
                            .mget(&[&a, &b])
                            .query(&mut con)
                            .expect("MGET");
                        assert_eq!(
                            x, y,
                            "a reader saw one counter of an EXEC without the other"
                        );
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        stop.store(true, Ordering::Relaxed);
        let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
        assert!(reads > 0);
        let mut con = srv.redis_conn();
        let (x, y): (i64, i64) = con.mget(&[&a, &b]).unwrap();
        assert_eq!((x, y), (1200, 1200), "{shards} shards");
    }
}

#[test]
fn optimistic_locking_with_the_redis_crate_counts_every_increment() {
    // redis::transaction is WATCH, GET, MULTI, SET, EXEC, retried while EXEC answers nil:
    // every increment of every thread lands exactly once.
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let (counter, _) = two_keys(shards);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let mut con = srv.redis_conn();
                let key = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let _: () = redis::transaction(&mut con, &[&key], |con, pipe| {
                            let n: Option<i64> = con.get(&key)?;
                            pipe.set(&key, n.unwrap_or(0) + 1).ignore().query(con)
                        })
                        .expect("transaction");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let mut con = srv.redis_conn();
        let n: i64 = con.get(&counter).unwrap();
        assert_eq!(n, 400, "{shards} shards");
    }
}

#[test]
fn watch_sees_a_key_expire_or_be_evicted() {
    let srv = Server::corekv(
        4,
        &["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-random"],
    );
    let mut c = srv.client();
    let mut other = srv.client();

    // Deleted by the wheel (nobody reads it) between WATCH and EXEC.
    c.call(&["SET", "volatile", "1", "PX", "50"]);
    c.call(&["WATCH", "volatile"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(other.call(&["EXISTS", "volatile"]), b":0\r\n");
    c.call(&["MULTI"]);
    c.call(&["PING"]);
    assert_eq!(c.call(&["EXEC"]), b"*-1\r\n", "expiry is a change");

    // Expired at WATCH time already: its deletion is no change (Redis's rule).
    c.call(&["SET", "gone", "1", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    c.call(&["WATCH", "gone"]);
    c.call(&["MULTI"]);
    c.call(&["PING"]);
    assert_eq!(c.call(&["EXEC"]), b"*1\r\n+PONG\r\n");

    // Evicted by other clients' writes.
    c.call(&["SET", "victim", "v"]);
    c.call(&["WATCH", "victim"]);
    let value = "x".repeat(1000);
    let mut i = 0;
    while other.call(&["EXISTS", "victim"]) == b":1\r\n" {
        for _ in 0..100 {
            other.call(&["SET", &format!("filler:{i}"), &value]);
            i += 1;
        }
        assert!(i < 1_000_000, "never evicted");
    }
    c.call(&["MULTI"]);
    c.call(&["PING"]);
    assert_eq!(c.call(&["EXEC"]), b"*-1\r\n", "eviction is a change");
}

#[test]
fn a_transaction_queue_is_bounded_by_the_query_buffer_limit() {
    let srv = Server::corekv(2, &["--client-query-buffer-limit", "1mb"]);
    let mut c = srv.client();
    let mut other = srv.client();
    other.call(&["SET", "kept", "1"]);
    c.call(&["MULTI"]);
    let value = "v".repeat(1000);
    let mut wire = Vec::new();
    for i in 0..2000 {
        corekv_protocol::request::encode_request(
            &mut wire,
            &["SET".to_string(), format!("q:{i}"), value.clone()],
        );
    }
    c.send_raw(&wire);
    let got = c.read_to_close();
    let queued = got.windows(9).filter(|w| w == b"+QUEUED\r\n").count();
    assert!(
        (900..1100).contains(&queued),
        "closed after {queued} queued commands"
    );
    assert_eq!(other.call(&["GET", "kept"]), b"$1\r\n1\r\n");
    assert_eq!(other.call(&["EXISTS", "q:0"]), b":0\r\n", "nothing ran");
    assert!(other.info_u64("stats", "client_query_buffer_limit_disconnections") >= 1);
    eventually(Duration::from_secs(2), || {
        match other.info_u64("clients", "connected_clients") {
            1 => Ok(()),
            n => Err(format!("{n} clients")),
        }
    });
}
