//! Blocking list commands over the wire: the same multi-connection scripts against
//! redis-server and corekv (1 and 4 shards, keys on one shard and across shards),
//! compared byte for byte; many clients blocked across shards with pushes racing from
//! several connections (every element delivered exactly once); closed and unblocked
//! clients.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Client, Server};

/// One step of a script over several connections.
#[derive(Clone, Debug)]
enum Step {
    /// Send a command on connection `.0` and read its reply.
    Call(usize, &'static str),
    /// Send a command on connection `.0` without reading (it blocks).
    Send(usize, &'static str),
    /// Read the pending reply of connection `.0`.
    Read(usize),
    /// Wait until the server counts this many blocked clients.
    Blocked(u64),
    /// CLIENT UNBLOCK connection `.0`'s id, with this reason ("" for none), from
    /// connection `.1`.
    Unblock(usize, usize, &'static str),
}

use Step::*;

fn words(cmd: &str) -> Vec<&str> {
    cmd.split(' ').collect()
}

/// Runs `script` on `server`, returning every reply in order.
fn run(server: &Server, script: &[Step]) -> Vec<String> {
    let mut conns: Vec<Client> = (0..4).map(|_| server.client()).collect();
    let ids: Vec<String> = conns
        .iter_mut()
        .map(|c| {
            String::from_utf8_lossy(&c.call(&["CLIENT", "ID"]))
                .trim_start_matches(':')
                .trim()
                .to_string()
        })
        .collect();
    let mut admin = server.client();
    admin.call(&["FLUSHALL"]);
    let mut replies = Vec::new();
    for step in script {
        match *step {
            Call(c, cmd) => {
                let r = conns[c].call(&words(cmd));
                replies.push(format!("{c} {cmd}: {}", String::from_utf8_lossy(&r)));
            }
            Send(c, cmd) => conns[c].send(&words(cmd)),
            Read(c) => {
                let r = conns[c].read_reply();
                replies.push(format!("{c} read: {}", String::from_utf8_lossy(&r)));
            }
            Blocked(n) => {
                let deadline = Instant::now() + Duration::from_secs(10);
                while admin.info_u64("clients", "blocked_clients") != n {
                    assert!(Instant::now() < deadline, "never {n} blocked clients");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Unblock(target, from, how) => {
                let mut args = vec!["CLIENT", "UNBLOCK", &ids[target]];
                if !how.is_empty() {
                    args.push(how);
                }
                let r = conns[from].call(&args);
                replies.push(format!("{from} unblock: {}", String::from_utf8_lossy(&r)));
            }
        }
    }
    replies
}

fn scripts() -> Vec<Vec<Step>> {
    vec![
        // One waiter, one push.
        vec![
            Send(0, "BLPOP q 0"),
            Blocked(1),
            Call(1, "RPUSH q a b"),
            Read(0),
            Call(1, "LRANGE q 0 -1"),
            Call(1, "EXISTS q"),
        ],
        // First blocked, first served; one push serves one client per element.
        vec![
            Send(0, "BLPOP q 0"),
            Blocked(1),
            Send(1, "BRPOP q 0"),
            Blocked(2),
            Call(2, "RPUSH q x y z"),
            Read(0),
            Read(1),
            Call(2, "LRANGE q 0 -1"),
        ],
        // Several keys: hash-tagged (one shard) and plain (several shards).
        vec![
            Send(0, "BLPOP {t}a {t}b 0"),
            Blocked(1),
            Call(1, "RPUSH {t}b v"),
            Read(0),
            Send(0, "BRPOP a b c d 0"),
            Blocked(1),
            Call(1, "RPUSH c 1 2"),
            Read(0),
            Call(1, "LRANGE c 0 -1"),
            Call(1, "BLPOP x c y 0"),
        ],
        // Timeouts.
        vec![
            Call(0, "BLPOP q 0.05"),
            Call(0, "BRPOP q q2 0.05"),
            Call(0, "BLMPOP 0.05 2 q q2 LEFT"),
            Call(0, "BLMOVE q d LEFT RIGHT 0.05"),
            Call(0, "BRPOPLPUSH q d 0.05"),
            Call(0, "BLPOP a b 0.05"),
            Call(0, "BLMOVE a b LEFT RIGHT 0.05"),
            Call(0, "EXISTS q d a b"),
        ],
        // Errors, checked before anything blocks.
        vec![
            Call(0, "BLPOP q -1"),
            Call(0, "BLPOP q x"),
            Call(0, "BLPOP q inf"),
            Call(0, "BLPOP q 0.5.5"),
            Call(0, "BLMOVE a b UP LEFT 0"),
            Call(0, "BLMOVE a b LEFT RIGHT -1"),
            Call(0, "BRPOPLPUSH a b x"),
            Call(0, "BLMPOP 0 0 q LEFT"),
            Call(0, "BLMPOP x 1 q LEFT"),
            Call(0, "BLMPOP 0 1 q MIDDLE"),
            Call(0, "BLMPOP 0 1 q LEFT COUNT 0"),
            Call(0, "SET s 1"),
            Call(0, "BLPOP s 0"),
            Call(0, "BLPOP q s 0"),
            Call(0, "BLPOP nothere s 0"),
            Call(0, "BLMOVE s q LEFT LEFT 0"),
            Call(0, "RPUSH l 1"),
            Call(0, "BLMOVE l s LEFT LEFT 0"),
            Call(0, "LRANGE l 0 -1"),
        ],
        // Inside MULTI/EXEC a blocking command does not block.
        vec![
            Call(0, "MULTI"),
            Call(0, "BLPOP q 0"),
            Call(0, "BLMOVE q d LEFT LEFT 0"),
            Call(0, "BLMPOP 0 2 q p LEFT"),
            Call(0, "BLPOP a b c 0"),
            Call(0, "RPUSH q 1"),
            Call(0, "BLPOP q 0"),
            Call(0, "EXEC"),
        ],
        // A transaction's pushes serve waiters after EXEC.
        vec![
            Send(0, "BLPOP q 0"),
            Blocked(1),
            Call(1, "MULTI"),
            Call(1, "RPUSH q a"),
            Call(1, "RPUSH q b"),
            Call(1, "LPOP q"),
            Call(1, "EXEC"),
            Read(0),
            Call(1, "LRANGE q 0 -1"),
        ],
        // Served by a push inside a transaction over several shards, and by a
        // cross-shard LMOVE's push.
        vec![
            Send(0, "BLPOP q 0"),
            Blocked(1),
            Call(1, "MULTI"),
            Call(1, "SET a 1"),
            Call(1, "RPUSH q x"),
            Call(1, "SET b 2"),
            Call(1, "EXEC"),
            Read(0),
            Call(1, "RPUSH src2 e"),
            Send(0, "BLPOP q 0"),
            Blocked(1),
            Call(1, "LMOVE src2 q LEFT LEFT"),
            Read(0),
        ],
        // BLMOVE and BLMPOP served, destination on the same or another shard.
        vec![
            Send(0, "BLMOVE {s}src {s}dst RIGHT LEFT 0"),
            Blocked(1),
            Call(1, "RPUSH {s}src 1 2"),
            Read(0),
            Call(1, "LRANGE {s}dst 0 -1"),
            Send(0, "BLMOVE src dst LEFT RIGHT 0"),
            Blocked(1),
            Call(1, "RPUSH src 1 2"),
            Read(0),
            Call(1, "LRANGE dst 0 -1"),
            Call(1, "LRANGE src 0 -1"),
            Send(0, "BLMPOP 0 2 x y RIGHT COUNT 2"),
            Blocked(1),
            Call(1, "RPUSH y 1 2 3"),
            Read(0),
            Send(0, "BLMPOP 0 2 {m}x {m}y LEFT COUNT 5"),
            Blocked(1),
            Call(1, "RPUSH {m}y 1 2 3"),
            Read(0),
            Call(1, "EXISTS y {m}y"),
        ],
        // A blocked client runs nothing else until served; what it sent meanwhile runs
        // after.
        vec![
            Send(0, "BLPOP q 0"),
            Blocked(1),
            Send(0, "RPUSH q mine"),
            Call(1, "LLEN q"),
            Call(1, "RPUSH q theirs"),
            Read(0),
            Read(0),
            Call(1, "LRANGE q 0 -1"),
        ],
        // CLIENT UNBLOCK: TIMEOUT (the default) and ERROR, one shard and several.
        vec![
            Send(0, "BLPOP q 0"),
            Blocked(1),
            Unblock(0, 1, ""),
            Read(0),
            Send(0, "BLMOVE q d LEFT LEFT 0"),
            Blocked(1),
            Unblock(0, 1, "ERROR"),
            Read(0),
            Send(0, "BLPOP a b c 0"),
            Blocked(1),
            Unblock(0, 1, "TIMEOUT"),
            Read(0),
            Unblock(0, 1, ""),
            Call(1, "CLIENT UNBLOCK x"),
            Call(1, "CLIENT UNBLOCK 1 maybe"),
            Call(1, "RPUSH q still"),
            Call(1, "LRANGE q 0 -1"),
        ],
        // Sorted sets: BZPOPMIN/BZPOPMAX/BZMPOP served by ZADD, on one shard and several.
        vec![
            Send(0, "BZPOPMIN z 0"),
            Blocked(1),
            Call(1, "ZADD z 2 b 1 a"),
            Read(0),
            Send(0, "BZPOPMAX za zb zc 0"),
            Blocked(1),
            Call(1, "ZADD zc 1 x 5 y"),
            Read(0),
            Send(0, "BZMPOP 0 2 {z}1 {z}2 MAX COUNT 5"),
            Blocked(1),
            Call(1, "ZADD {z}2 1 p 2 q 3 r"),
            Read(0),
            Send(0, "BZMPOP 0 3 q1 q2 q3 MIN"),
            Blocked(1),
            Call(1, "ZINCRBY q3 4 m"),
            Read(0),
            Call(0, "BZPOPMIN nothing 0.02"),
            Call(0, "BZMPOP 0.02 2 n1 n2 MIN"),
            Call(0, "SET s 1"),
            Call(0, "BZPOPMIN s 0"),
            Call(0, "BZMPOP 0 1 s MIN"),
            Call(0, "BZMPOP 0 0 s MIN"),
            Call(0, "BZPOPMAX s -1"),
            Call(0, "ZMPOP 2 nothing z MIN COUNT 9"),
            Call(0, "ZMPOP 2 nothing zc MAX"),
            Call(0, "MULTI"),
            Call(0, "BZPOPMIN z 0"),
            Call(0, "BZMPOP 0 1 z MIN"),
            Call(0, "EXEC"),
        ],
        // RESP3 nulls.
        vec![
            Call(0, "HELLO 3"),
            Call(0, "BLPOP q 0.01"),
            Call(0, "BLMOVE q d LEFT LEFT 0.01"),
            Send(0, "BLPOP a b 0"),
            Blocked(1),
            Unblock(0, 1, ""),
            Read(0),
        ],
    ]
}

#[test]
fn blocking_scripts_match_redis() {
    let redis = Server::redis();
    let scripts = scripts();
    let want: Vec<Vec<String>> = scripts
        .iter()
        .map(|s| {
            run(&redis, s)
                .into_iter()
                .map(|r| {
                    if r.contains("HELLO") {
                        String::new()
                    } else {
                        r
                    }
                })
                .collect()
        })
        .collect();
    for shards in common::SHARD_COUNTS {
        let corekv = Server::corekv(shards, &[]);
        for (i, script) in scripts.iter().enumerate() {
            let got: Vec<String> = run(&corekv, script)
                .into_iter()
                .map(|r| {
                    if r.contains("HELLO") {
                        String::new()
                    } else {
                        r
                    }
                })
                .collect();
            assert_eq!(got, want[i], "script {i} on {shards} shards: {script:?}");
        }
    }
}

#[test]
fn a_timeout_is_honoured_to_the_wheel_tick() {
    let corekv = Server::corekv(4, &[]);
    let mut c = corekv.client();
    for cmd in [&["BLPOP", "q", "0.2"][..], &["BLPOP", "a", "b", "c", "0.2"]] {
        let start = Instant::now();
        assert_eq!(c.call(cmd), b"*-1\r\n");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(195) && took < Duration::from_millis(1500),
            "{cmd:?} took {took:?}"
        );
    }
}

#[test]
fn a_closed_blocked_client_takes_nothing() {
    for shards in common::SHARD_COUNTS {
        let corekv = Server::corekv(shards, &[]);
        let mut admin = corekv.client();
        for cmd in [
            &["BLPOP", "q", "0"][..],
            &["BLPOP", "a", "b", "c", "q", "0"],
        ] {
            let mut c = corekv.client();
            c.send(cmd);
            common::eventually(Duration::from_secs(10), || {
                match admin.info_u64("clients", "blocked_clients") {
                    1 => Ok(()),
                    n => Err(format!("{n} blocked")),
                }
            });
            drop(c);
            common::eventually(Duration::from_secs(10), || {
                match admin.info_u64("clients", "blocked_clients") {
                    0 => Ok(()),
                    n => Err(format!("{n} blocked")),
                }
            });
            admin.call(&["RPUSH", "q", "kept"]);
            assert_eq!(
                admin.call(&["LRANGE", "q", "0", "-1"]),
                b"*1\r\n$4\r\nkept\r\n",
                "{shards} shards, {cmd:?}"
            );
            admin.call(&["DEL", "q"]);
        }
    }
}

/// Many clients blocked on keys of every shard (some on one key, some on keys of
/// several shards), pushes racing from several connections: each element reaches
/// exactly one client, and none is left or lost.
#[test]
fn racing_pushes_reach_every_blocked_client_exactly_once() {
    const CLIENTS: usize = 1000;
    const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    let corekv = Server::corekv(4, &[]);
    let mut admin = corekv.client();
    let mut waiters: Vec<Client> = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut c = corekv.client();
        if i % 3 == 0 {
            // Waits on two shards' keys; only the first is ever pushed to, so each
            // key gets exactly as many elements as clients wait for it.
            let other = format!("never{}", i % 5);
            c.send(&["BLPOP", &other, KEYS[i % 8], "0"]);
        } else {
            c.send(&["BRPOP", KEYS[i % 8], "0"]);
        }
        waiters.push(c);
    }
    common::eventually(Duration::from_secs(30), || {
        match admin.info_u64("clients", "blocked_clients") as usize {
            CLIENTS => Ok(()),
            n => Err(format!("{n} blocked")),
        }
    });
    let port = corekv.port;
    let pushers: Vec<_> = (0..4)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                for i in (p..CLIENTS).step_by(4) {
                    let e = format!("e{i}");
                    c.call(&["LPUSH", KEYS[i % 8], &e]);
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().expect("pusher");
    }
    let mut got = BTreeSet::new();
    for (i, c) in waiters.iter_mut().enumerate() {
        let r = String::from_utf8_lossy(&c.read_reply()).to_string();
        let elem = r
            .split("\r\n")
            .filter(|s| s.starts_with('e'))
            .last()
            .unwrap_or_else(|| panic!("client {i} got {r:?}"))
            .to_string();
        assert!(got.insert(elem.clone()), "{elem} delivered twice");
    }
    assert_eq!(got.len(), CLIENTS);
    for k in KEYS {
        assert_eq!(admin.call(&["LLEN", k]), b":0\r\n", "{k} has leftovers");
    }
    assert_eq!(admin.info_u64("clients", "blocked_clients"), 0);
}
