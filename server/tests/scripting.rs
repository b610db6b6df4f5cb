//! Scripts on the real binary beyond the byte-for-byte cases in `differential.rs`: the
//! `redis` crate's `Script` (EVALSHA, falling back to SCRIPT LOAD), the script cache
//! seen from every shard, and where a script may run when keys live on several shards.

mod common;

use common::{Server, SHARD_COUNTS};

/// redis-py's Lock release script, through the `redis` crate's `Script`.
const RELEASE: &str = "local token = redis.call('get', KEYS[1]) \
    if not token or token ~= ARGV[1] then return 0 end \
    redis.call('del', KEYS[1]) return 1";

#[test]
fn the_redis_crates_script_runs_a_lock_on_every_shard() {
    for shards in SHARD_COUNTS {
        let server = Server::corekv(shards, &[]);
        let mut con = server.redis_conn();
        let release = redis::Script::new(RELEASE);
        for i in 0..50 {
            let key = format!("lock:{i}");
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg("me")
                .arg("NX")
                .arg("PX")
                .arg(10_000)
                .query(&mut con)
                .unwrap();
            assert_eq!(set.as_deref(), Some("OK"));
            let wrong: i64 = release.key(&key).arg("other").invoke(&mut con).unwrap();
            assert_eq!(wrong, 0, "{shards} shards");
            let right: i64 = release.key(&key).arg("me").invoke(&mut con).unwrap();
            assert_eq!(right, 1, "{shards} shards");
            let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut con).unwrap();
            assert_eq!(exists, 0);
        }
    }
}

#[test]
fn a_script_evaluated_on_one_shard_is_found_by_evalsha_on_every_shard() {
    let server = Server::corekv(4, &[]);
    let mut a = server.client();
    let body = "return redis.call('incr', KEYS[1])";
    assert_eq!(a.call(&["EVAL", body, "1", "first"]), b":1\r\n");
    let sha = redis::Script::new(body).get_hash().to_string();
    // A second connection, keys all over the shards: the EVAL's compilation reaches
    // each shard right after it ran (a message of its own, so allow it a moment).
    let mut b = server.client();
    for i in 0..40 {
        let key = format!("key{i}");
        let mut tries = 0;
        let reply = loop {
            let r = b.call(&["EVALSHA", &sha, "1", &key]);
            if !r.starts_with(b"-NOSCRIPT") || tries == 500 {
                break r;
            }
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(reply, b":1\r\n", "{key}");
    }
    assert_eq!(b.call(&["SCRIPT", "EXISTS", &sha]), b"*1\r\n:1\r\n");
    assert_eq!(b.call(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    assert_eq!(b.call(&["SCRIPT", "EXISTS", &sha]), b"*1\r\n:0\r\n");
    assert_eq!(
        b.call(&["EVALSHA", &sha, "1", "key1"]),
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
}

#[test]
fn a_script_over_keys_of_several_shards_runs_atomically() {
    let server = Server::corekv(4, &[]);
    let mut c = server.client();
    // "a", "b" and "c" live on different shards of four.
    c.call(&["MSET", "a", "100", "b", "100"]);
    let body = "redis.call('set', KEYS[3], 'x') redis.call('pexpire', KEYS[3], 100000) \
                return redis.call('mget', KEYS[1], KEYS[2], KEYS[3])";
    assert_eq!(
        c.call(&["EVAL", body, "3", "a", "b", "c"]),
        b"*3\r\n$3\r\n100\r\n$3\r\n100\r\n$1\r\nx\r\n"
    );
    let ttl = String::from_utf8(c.call(&["PTTL", "c"])).unwrap();
    let ttl: i64 = ttl.trim_start_matches(':').trim_end().parse().unwrap();
    assert!((90_000..=100_000).contains(&ttl), "{ttl}");
    // An undeclared key fails inside the script, with its line; what the script wrote
    // before the error stays written, as in Redis.
    let reply = c.call(&[
        "EVAL",
        "redis.call('del', KEYS[1])\nreturn redis.call('get', 'zz')",
        "2",
        "c",
        "a",
    ]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    assert!(
        text.starts_with(
            "-ERR Script attempted to access a non local key in a cluster node script: "
        ) && text.ends_with(", on @user_script:2.\r\n"),
        "{text}"
    );
    assert_eq!(c.call(&["EXISTS", "c"]), b":0\r\n");

    // Transfers between "a" and "b" from four clients while a fifth reads both through
    // a script: the reader never sees a transfer half done.
    let transfer = "local n = tonumber(ARGV[1]) redis.call('decrby', KEYS[1], n) \
                    redis.call('incrby', KEYS[2], n) return 1";
    let sum = "return tonumber(redis.call('get', KEYS[1])) + tonumber(redis.call('get', KEYS[2]))";
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut c = server.client();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let (from, to) = if (i + w) % 2 == 0 {
                        ("a", "b")
                    } else {
                        ("b", "a")
                    };
                    assert_eq!(c.call(&["EVAL", transfer, "2", from, to, "3"]), b":1\r\n");
                }
            })
        })
        .collect();
    let mut reader = server.client();
    for _ in 0..300 {
        assert_eq!(reader.call(&["EVAL", sum, "2", "a", "b"]), b":200\r\n");
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(reader.call(&["EVAL", sum, "2", "a", "b"]), b":200\r\n");
}

#[test]
fn a_script_that_allocates_without_bound_stops_and_the_server_lives() {
    for shards in SHARD_COUNTS {
        let server = Server::corekv(shards, &["--script-heap-limit", "64mb"]);
        let mut c = server.client();
        c.call(&["SET", "kept", "1"]);
        let greedy =
            "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 100) .. i end return #t";
        let reply = String::from_utf8(c.call(&["EVAL", greedy, "1", "kept"])).unwrap();
        assert!(
            reply.starts_with("-ERR Error running script ")
                && reply.ends_with(": not enough memory\r\n"),
            "{reply}"
        );
        // Past the cap inside a library's C code too (cjson building a huge table).
        let decode = "local s = '[' .. string.rep('\"abcdefghij\",', 1500000) .. '1]' \
                      return #cjson.decode(s)";
        let reply = String::from_utf8(c.call(&["EVAL", decode, "1", "kept"])).unwrap();
        assert!(reply.ends_with(": not enough memory\r\n"), "{reply}");
        // The next script has its room back; data and other clients are untouched.
        assert_eq!(
            c.call(&["EVAL", "return redis.call('get', KEYS[1])", "1", "kept"]),
            b"$1\r\n1\r\n"
        );
        assert_eq!(server.client().call(&["GET", "kept"]), b"$1\r\n1\r\n");
    }
}

/// Sends one raw request on a fresh connection; `None` when no reply comes within
/// `wait` (the connection landed on a shard that is busy running a script).
fn try_call(port: u16, req: &[u8], wait: std::time::Duration) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.write_all(req).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn script_kill_stops_a_long_script_and_a_shutdown_stops_any() {
    use std::time::Duration;
    let server = Server::corekv(4, &["--busy-reply-threshold", "100"]);
    let port = server.port;
    // EVAL body 1 w
    let spin = |body: &'static str| {
        std::thread::spawn(move || {
            let req = format!(
                "*4\r\n$4\r\nEVAL\r\n${}\r\n{body}\r\n$1\r\n1\r\n$1\r\nw\r\n",
                body.len()
            );
            try_call(port, req.as_bytes(), Duration::from_secs(30))
        })
    };
    // A connection on the busy shard is not read until the script ends (as a Redis
    // client would wait): a request is sent again on new connections until one lands
    // on another shard, and again until the script is seen busy.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let send = |cmd: &[u8]| loop {
        assert!(std::time::Instant::now() < deadline, "no shard answered");
        if let Some(r) = try_call(port, cmd, Duration::from_millis(300)) {
            break r;
        }
    };
    let busy_reply = |cmd: &[u8]| loop {
        let r = send(cmd);
        if !r.starts_with(b"-NOTBUSY") {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the script never ran busy"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let script_kill = b"*2\r\n$6\r\nSCRIPT\r\n$4\r\nKILL\r\n";
    let function_kill = b"*2\r\n$8\r\nFUNCTION\r\n$4\r\nKILL\r\n";
    assert_eq!(
        send(script_kill),
        b"-NOTBUSY No scripts in execution right now.\r\n"
    );

    let busy = spin("local i = 0 while true do i = i + 1 end");
    assert!(busy_reply(function_kill)
        .starts_with(b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL"));
    assert_eq!(send(script_kill), b"+OK\r\n");
    let reply = String::from_utf8(busy.join().unwrap().expect("a reply")).unwrap();
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{reply}"
    );

    // One that wrote cannot be killed, but a shutdown stops it.
    let writer = spin("redis.call('set', KEYS[1], '1') local i = 0 while true do i = i + 1 end");
    assert!(busy_reply(script_kill)
        .starts_with(b"-UNKILLABLE Sorry the script already executed write commands"));
    let shutdown = b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n";
    // SHUTDOWN replies nothing: sent on connections until the server goes away.
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not shut down"
        );
        let _ = try_call(port, shutdown, Duration::from_millis(300));
    }
    let reply = writer.join().unwrap();
    assert!(
        reply
            .as_deref()
            .is_none_or(|r| r.starts_with(b"-ERR Script killed")),
        "{:?}",
        reply.map(|r| String::from_utf8_lossy(&r).into_owned())
    );
}

/// Reads one bulk reply's payload.
fn bulk(reply: &[u8]) -> Vec<u8> {
    let header = reply.iter().position(|&b| b == b'\n').expect("a header") + 1;
    reply[header..reply.len() - 2].to_vec()
}

#[test]
fn function_dumps_move_between_redis_and_corekv_both_ways() {
    let redis = Server::redis();
    let corekv = Server::corekv(4, &[]);
    let (mut r, mut k) = (redis.client(), corekv.client());
    // Thirty functions: long enough code that Redis LZF-compresses it in its dump.
    let mut big = String::from("#!lua name=big\n");
    for i in 0..30 {
        big.push_str(&format!(
            "redis.register_function('g{i}', function() return {i} end)\n"
        ));
    }
    let small = "#!lua name=small\nredis.register_function('f1', function() return 1 end)";
    for c in [&mut r, &mut k] {
        c.call(&["FUNCTION", "FLUSH"]);
        c.call(&["FUNCTION", "LOAD", &big]);
        c.call(&["FUNCTION", "LOAD", small]);
    }
    let from_redis = bulk(&r.call(&["FUNCTION", "DUMP"]));
    let from_corekv = bulk(&k.call(&["FUNCTION", "DUMP"]));
    for c in [&mut r, &mut k] {
        assert_eq!(c.call(&["FUNCTION", "FLUSH"]), b"+OK\r\n");
    }
    let restore = |c: &mut common::Client, payload: &[u8]| {
        c.send_bytes(&[b"FUNCTION", b"RESTORE", payload]);
        c.read_reply()
    };
    assert_eq!(restore(&mut k, &from_redis), b"+OK\r\n");
    assert_eq!(restore(&mut r, &from_corekv), b"+OK\r\n");
    for c in [&mut r, &mut k] {
        assert_eq!(c.call(&["FCALL", "g29", "0"]), b":29\r\n");
        assert_eq!(c.call(&["FCALL", "f1", "0"]), b":1\r\n");
    }
    // A corrupt payload: Redis's error, nothing loaded.
    let mut bad = from_redis.clone();
    bad[3] ^= 1;
    assert_eq!(
        restore(&mut k, &bad),
        b"-ERR DUMP payload version or checksum are wrong\r\n"
    );
}
