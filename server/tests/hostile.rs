//! Hostile and broken clients: garbage, truncated frames, thousands of connections, a
//! slowloris, a pipeline of a million requests that is never read, half-closed sockets,
//! clients that leave mid-reply, too many clients. In each, a well-behaved client keeps
//! getting correct answers and the server's memory stays bounded. (Huge declared lengths
//! and the query buffer limit are in `wire.rs`.)

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::{eventually, Client, Server};
use corekv_protocol::request::encode_request;

/// Writes `n` keys and checks them: the data other clients rely on.
fn seed(srv: &Server, n: usize) {
    let mut c = srv.client();
    for i in 0..n {
        assert_eq!(
            c.call(&["SET", &format!("good:{i}"), &format!("v{i}")]),
            b"+OK\r\n"
        );
    }
}

fn check(srv: &Server, n: usize) {
    let mut c = srv.client();
    for i in 0..n {
        let want = format!("${}\r\nv{i}\r\n", format!("v{i}").len());
        assert_eq!(
            c.call(&["GET", &format!("good:{i}")]),
            want.as_bytes(),
            "key good:{i}"
        );
    }
}

#[test]
fn random_garbage_and_truncated_frames_leave_data_and_others_intact() {
    let srv = Server::corekv(4, &[]);
    seed(&srv, 200);
    let mut rng = fastrand::Rng::with_seed(7);
    // Random bytes, some shaped like RESP so they get past the first byte.
    for round in 0..200 {
        let mut bytes: Vec<u8> = (0..rng.usize(1..2000)).map(|_| rng.u8(..)).collect();
        if round % 2 == 0 {
            bytes.splice(0..0, b"*3\r\n$3\r\nSET\r\n".iter().copied());
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", srv.port)) {
            let _ = s.write_all(&bytes);
        }
    }
    // Every prefix of a valid pipeline, then an abrupt close.
    let mut valid = Vec::new();
    encode_request(&mut valid, &["SET", "good:0", "overwritten?"]);
    encode_request(&mut valid, &["INCR", "counter"]);
    valid.truncate(valid.len() - 1);
    let cuts: Vec<TcpStream> = (0..valid.len())
        .map(|cut| {
            let mut s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
            s.write_all(&valid[..cut]).unwrap();
            s
        })
        .collect();
    // The abrupt close, then wait until the server has closed each one: by then it has
    // run whatever part of the pipeline was whole.
    for mut s in cuts {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        // A reset counts as closed too.
        let _ = s.read_to_end(&mut rest);
    }
    // A SET cut anywhere before its last byte never runs, so good:0 is unchanged.
    let mut c = srv.client();
    let first_set_len = {
        let mut one = Vec::new();
        encode_request(&mut one, &["SET", "good:0", "overwritten?"]);
        one.len()
    };
    if valid.len() > first_set_len {
        // Cuts after the whole SET did run it: put the seed value back.
        c.call(&["SET", "good:0", "v0"]);
    }
    c.call(&["DEL", "counter"]);
    check(&srv, 200);
    assert_eq!(c.call(&["DBSIZE"]), b":200\r\n", "garbage wrote nothing");
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn five_thousand_connections_are_served_and_released() {
    let srv = Server::corekv(4, &[]);
    seed(&srv, 50);
    let base_rss = srv.rss_kb();
    let mut conns: Vec<TcpStream> = (0..5000)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        })
        .collect();
    // Every one of them is served.
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(format!("GET good:{}\r\n", i % 50).as_bytes())
            .unwrap();
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let want = format!("${}\r\nv{}\r\n", format!("v{}", i % 50).len(), i % 50);
        let mut got = vec![0u8; want.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, want.as_bytes());
    }
    let mut c = srv.client();
    let info = c.call_str(&["INFO", "clients"]);
    assert!(info.contains("connected_clients:5001\r\n"), "{info}");
    let rss = srv.rss_kb();
    assert!(
        rss < base_rss + 200 * 1024,
        "5,000 idle connections cost {} KiB",
        rss - base_rss
    );
    drop(conns);
    c.wait_for_clients(1);
    check(&srv, 50);
    // Their buffers went back to the shards' pools, which are bounded (2 x 256 x 16 KiB
    // per shard) and give back what stays unused.
    let pooled = |c: &mut Client| c.info_u64("memory", "mem_clients_normal");
    assert!(pooled(&mut c) <= 4 * 2 * 256 * 16 * 1024 + 64 * 1024);
    eventually(Duration::from_secs(15), || match pooled(&mut c) {
        kept if kept <= 2 * 1024 * 1024 => Ok(()),
        kept => Err(format!("pools kept {kept} bytes")),
    });
}

#[test]
fn slowloris_clients_do_not_hold_up_others() {
    let srv = Server::corekv(2, &[]);
    seed(&srv, 20);
    // Four clients each send a command one byte a second.
    let slow: Vec<_> = (0..4)
        .map(|i| {
            let port = srv.port;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let line = format!("ECHO s{i}\r\n");
                for b in line.as_bytes() {
                    s.write_all(&[*b]).unwrap();
                    std::thread::sleep(Duration::from_secs(1));
                }
                let mut got = [0u8; 8];
                s.read_exact(&mut got).unwrap();
                assert_eq!(&got, format!("$2\r\ns{i}\r\n").as_bytes());
            })
        })
        .collect();
    // Meanwhile a well-behaved client runs thousands of requests.
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(5) {
        check(&srv, 20);
        rounds += 1;
    }
    assert!(rounds > 10, "only {rounds} rounds of 21 requests in 5 s");
    for t in slow {
        t.join().expect("slow client got its reply");
    }
}

#[test]
fn a_million_pipelined_requests_never_read_keep_memory_bounded() {
    let srv = Server::corekv(2, &[]);
    seed(&srv, 20);
    let value = "x".repeat(1000);
    srv.client().call(&["SET", "big", &value]);
    let base_rss = srv.rss_kb();
    // 1,000,000 GETs of a 1 KB value: 1 GB of replies if the server kept them all.
    let hostile = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let writer = {
        let mut w = hostile.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut chunk = Vec::new();
            for _ in 0..10_000 {
                encode_request(&mut chunk, &["GET", "big"]);
            }
            let mut sent = 0;
            for _ in 0..100 {
                if w.write_all(&chunk).is_err() {
                    break;
                }
                sent += 10_000;
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    // The server stopped reading from that client once its replies backed up.
    check(&srv, 20);
    let rss = srv.rss_kb();
    assert!(
        rss < base_rss + 64 * 1024,
        "RSS grew by {} KiB under a client that never reads",
        rss - base_rss
    );
    hostile.shutdown(Shutdown::Both).unwrap();
    let sent = writer.join().unwrap();
    assert!(
        sent < 1_000_000,
        "the server read all {sent} requests without being read"
    );
    check(&srv, 20);
}

#[test]
fn half_closed_sockets_get_their_replies_like_redis() {
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    let mut got = Vec::new();
    for port in [redis.port, corekv.port] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"SET half 1\r\nINCR half\r\nGET half\r\nMGET half a b\r\n")
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        got.push(all);
    }
    assert_eq!(
        String::from_utf8_lossy(&got[1]),
        String::from_utf8_lossy(&got[0])
    );
    assert_eq!(
        got[1],
        b"+OK\r\n:2\r\n$1\r\n2\r\n*3\r\n$1\r\n2\r\n$-1\r\n$-1\r\n"
    );
}

#[test]
fn clients_that_leave_mid_reply_do_not_disturb_others() {
    let srv = Server::corekv(2, &[]);
    seed(&srv, 20);
    let value = "y".repeat(8 * 1024 * 1024);
    srv.client().call(&["SET", "huge", &value]);
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
        s.write_all(b"GET huge\r\nGET huge\r\n").unwrap();
        let mut some = [0u8; 1024];
        s.read_exact(&mut some).unwrap();
        // Gone with megabytes still to send.
    }
    let mut c = srv.client();
    let reply = c.call(&["GET", "huge"]);
    assert_eq!(reply.len(), value.len() + "$8388608\r\n\r\n".len());
    check(&srv, 20);
    c.wait_for_clients(1);
}

#[test]
fn maxclients_refuses_with_redis_error_and_counts() {
    // Two listening shards, 10 clients: each shard admits 5.
    let srv = Server::corekv(2, &["--maxclients", "10"]);
    let mut admitted = Vec::new();
    let mut refused = 0;
    for _ in 0..30 {
        let mut c = Client::connect(srv.port);
        c.send(&["PING"]);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"\r\n") {
            match c.stream().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        if got == b"+PONG\r\n" {
            admitted.push(c);
        } else {
            assert_eq!(got, b"-ERR max number of clients reached\r\n");
            refused += 1;
        }
    }
    assert!(admitted.len() <= 10, "{} admitted", admitted.len());
    assert!(refused >= 20);
    let info = admitted[0].call_str(&["INFO", "stats"]);
    assert!(
        info.contains(&format!("rejected_connections:{refused}\r\n")),
        "{info}"
    );
    drop(admitted);
    // Once the shards have seen the closes, new clients get in again.
    eventually(Duration::from_secs(10), || {
        let got = srv.client().call(&["PING"]);
        if got == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&got).into_owned())
        }
    });
}

#[test]
fn output_buffer_limits_match_redis_config_and_close_the_client() {
    let redis = Server::redis();
    let srv = Server::corekv(2, &["--client-output-buffer-limit", "normal 1mb 0 0"]);
    // CONFIG GET/SET speak Redis's format and errors.
    let mut r = redis.client();
    r.call(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 1mb 0 0",
    ]);
    let mut c = srv.client();
    for args in [
        &["CONFIG", "GET", "client-output-buffer-limit"][..],
        &["CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"],
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "master 1 2 3",
        ],
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal x 2 3",
        ],
        // Other classes are kept as set, and setting them leaves the normal one alone.
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1 2 3",
        ],
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 4mb 2mb 5",
        ],
        &["CONFIG", "GET", "client-output-buffer-limit"],
    ] {
        assert_eq!(
            String::from_utf8_lossy(&c.call(args)),
            String::from_utf8_lossy(&r.call(args)),
            "{args:?}"
        );
    }
    // A reply over the hard limit closes the client instead of being buffered.
    c.call(&["SET", "big", &"z".repeat(2 * 1024 * 1024)]);
    let mut victim = srv.client();
    victim.send(&["GET", "big"]);
    assert_eq!(victim.read_to_close(), b"");
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        c.info_u64("stats", "client_output_buffer_limit_disconnections"),
        1
    );
    // Under it, all is well; CONFIG SET applies on every shard.
    assert_eq!(
        c.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 0 0"
        ]),
        b"+OK\r\n"
    );
    for _ in 0..4 {
        let reply = srv.client().call(&["GET", "big"]);
        assert_eq!(reply.len(), 2 * 1024 * 1024 + "$2097152\r\n\r\n".len());
    }
}

#[test]
fn soft_limit_closes_a_client_that_never_reads() {
    let srv = Server::corekv(1, &["--client-output-buffer-limit", "normal 0 64kb 1"]);
    let mut c = srv.client();
    c.call(&["SET", "v", &"w".repeat(10_000)]);
    let mut hostile = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let mut pipeline = Vec::new();
    for _ in 0..2_000 {
        encode_request(&mut pipeline, &["GET", "v"]);
    }
    // 20 MB of replies asked for, none read: the server's write blocks above the soft
    // limit, and after a second the client is gone.
    let writer = std::thread::spawn(move || {
        let _ = hostile.write_all(&pipeline);
        hostile
    });
    eventually(Duration::from_secs(15), || {
        match c.info_u64("stats", "client_output_buffer_limit_disconnections") {
            1 => Ok(()),
            n => Err(format!(
                "the non-reading client was not closed ({n} closes)"
            )),
        }
    });
    // The counter goes up as the close starts; the client count follows when it ends.
    c.wait_for_clients(1);
    drop(writer.join());
    assert_eq!(c.call(&["STRLEN", "v"]), b":10000\r\n");
}
