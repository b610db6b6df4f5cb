//! Operating corekv: AUTH and protected mode against redis-server, the config file,
//! graceful shutdown (SHUTDOWN, SIGTERM), CLIENT KILL, the slow log, INFO's statistics
//! sections and the Prometheus endpoint. Real binaries over TCP.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use common::{eventually, Client, Server};
use corekv_protocol::frame::{self, Frame};

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n")
}

/// Runs each session (a list of commands on one fresh connection) against both servers
/// and compares every reply byte for byte; a successful HELLO only by type (it carries the
/// connection id). A session ending in a closed connection compares what was read.
fn same_replies(redis: &Server, corekv: &Server, sessions: &[&[&str]]) {
    for (i, session) in sessions.iter().enumerate() {
        let mut r = redis.client();
        let mut k = corekv.client();
        for line in session.iter() {
            let args: Vec<&str> = line.split(' ').collect();
            let want = r.call(&args);
            let got = k.call(&args);
            if args[0].eq_ignore_ascii_case("hello") && matches!(want.first(), Some(b'%' | b'*')) {
                assert_eq!(got.first(), want.first(), "session {i}: {line}");
                continue;
            }
            assert_eq!(show(&got), show(&want), "session {i}: {line}");
        }
    }
}

#[test]
fn auth_and_noauth_match_redis() {
    let redis = Server::redis_with(&["--requirepass", "sekret"]);
    for shards in common::SHARD_COUNTS {
        let corekv = Server::corekv(shards, &["--requirepass", "sekret"]);
        same_replies(
            &redis,
            &corekv,
            &[
                &[
                    "GET a",
                    "NOSUCH x",
                    "GET",
                    "SET a b",
                    "AUTH wrong",
                    "AUTH a b c",
                    "AUTH default wrong",
                    "AUTH bob sekret",
                    "HELLO 3",
                    "HELLO 3 AUTH default bad",
                    "HELLO 3 SETNAME x",
                    "HELLO",
                    "PING",
                    "CLIENT ID",
                    "INFO",
                    "CONFIG GET requirepass",
                    // RESET carries Redis's no_auth flag: it runs before AUTH.
                    "RESET",
                    "PING",
                ],
                &[
                    "AUTH sekret",
                    "SET a b",
                    "GET a",
                    "AUTH wrong",
                    "GET a",
                    "RESET",
                    "GET a",
                    "AUTH default sekret",
                    "GET a",
                    "CONFIG GET requirepass",
                    "CONFIG GET protected-mode",
                ],
                &[
                    "HELLO 2 AUTH default sekret SETNAME app",
                    "CLIENT GETNAME",
                    "GET a",
                ],
                &["HELLO 3 AUTH default sekret", "GET a", "QUIT"],
            ],
        );
        // CONFIG SET requirepass reaches every shard: new connections on any shard see it;
        // a connection that authenticated stays authenticated.
        let mut admin = corekv.client();
        assert_eq!(admin.call(&["AUTH", "sekret"]), b"+OK\r\n");
        assert_eq!(
            admin.call(&["CONFIG", "SET", "requirepass", "other"]),
            b"+OK\r\n"
        );
        assert_eq!(admin.call(&["GET", "a"]), b"$1\r\nb\r\n");
        for _ in 0..8 {
            let mut c = corekv.client();
            assert!(c.call(&["GET", "a"]).starts_with(b"-NOAUTH"));
            assert!(c.call(&["AUTH", "sekret"]).starts_with(b"-WRONGPASS"));
            assert_eq!(c.call(&["AUTH", "other"]), b"+OK\r\n");
        }
        assert_eq!(
            admin.call(&["CONFIG", "SET", "requirepass", ""]),
            b"+OK\r\n"
        );
        for _ in 0..8 {
            assert_eq!(corekv.client().call(&["GET", "a"]), b"$1\r\nb\r\n");
        }
    }
}

#[test]
fn auth_without_a_password_matches_redis() {
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    same_replies(
        &redis,
        &corekv,
        &[&[
            "AUTH x",
            "AUTH default x",
            "AUTH bob x",
            "HELLO 3 AUTH bob x",
            "HELLO 3 AUTH default anything",
            "PING",
        ]],
    );
}

/// A local IPv4 address that is not loopback, for protected-mode tests.
fn non_loopback_ip() -> IpAddr {
    let mut found = None;
    // SAFETY: getifaddrs allocates a list we walk read-only and free with freeifaddrs.
    unsafe {
        let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
        assert_eq!(libc::getifaddrs(&mut ifap), 0, "getifaddrs");
        let mut p = ifap;
        while !p.is_null() {
            let addr = (*p).ifa_addr;
            if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let sin = &*(addr as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && found.is_none() {
                    found = Some(IpAddr::V4(ip));
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    found.expect("this test needs a network interface with a non-loopback IPv4 address")
}

#[test]
fn protected_mode_refuses_other_hosts_like_redis() {
    let ip = non_loopback_ip();
    let redis_port = common::free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "0.0.0.0",
            "--save",
            "",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    let corekv = Server::corekv(2, &["--bind", "0.0.0.0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", redis_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both answer at once, before the client says anything. (Redis then closes with the
    // client's bytes unread, which resets the connection, so it is asked nothing.)
    let denied = |port, ping: bool| {
        let mut c = Client::connect_to(ip, port);
        if ping {
            c.send(&["PING"]);
        }
        c.read_to_close()
    };
    let want = denied(redis_port, false);
    assert!(want.starts_with(b"-DENIED"), "{}", show(&want));
    assert_eq!(show(&denied(corekv.port, false)), show(&want));
    // corekv drains what the client sent before closing, so the reply survives.
    assert_eq!(show(&denied(corekv.port, true)), show(&want));
    // Loopback clients are served; with protected mode off, so are the others.
    let mut local = corekv.client();
    assert_eq!(local.call(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        local.call(&["CONFIG", "SET", "protected-mode", "no"]),
        b"+OK\r\n"
    );
    for _ in 0..4 {
        let mut remote = Client::connect_to(ip, corekv.port);
        assert_eq!(remote.call(&["PING"]), b"+PONG\r\n");
    }
    // A password lifts protected mode too (clients must then authenticate).
    local.call(&["CONFIG", "SET", "protected-mode", "yes"]);
    local.call(&["CONFIG", "SET", "requirepass", "pw"]);
    let mut remote = Client::connect_to(ip, corekv.port);
    assert!(remote.call(&["PING"]).starts_with(b"-NOAUTH"));
    let _ = redis.kill();
    let _ = redis.wait();
}

#[test]
fn config_file_sets_values_and_flags_override_it() {
    let dir = std::env::temp_dir().join(format!("corekv-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corekv.conf");
    std::fs::write(
        &path,
        "# a redis.conf subset\nport 0\ntimeout 7\nrequirepass \"two words\"\n\
         maxclients 123\nslowlog-max-len 5\nsave \"\"\nappendonly no\nshards 2\nno-pin yes\n",
    )
    .unwrap();
    let srv = Server::corekv_with(&[
        "--config".into(),
        path.display().to_string(),
        "--maxclients".into(),
        "456".into(),
    ]);
    let mut c = srv.client();
    assert!(c.call(&["PING"]).starts_with(b"-NOAUTH"));
    assert_eq!(c.call(&["AUTH", "two words"]), b"+OK\r\n");
    let get = |c: &mut Client, name: &str| -> String {
        let reply = c.call(&["CONFIG", "GET", name]);
        match frame::parse(&reply).unwrap().unwrap().0 {
            Frame::Array(items) => String::from_utf8_lossy(items[1].as_bytes().unwrap()).into(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(get(&mut c, "timeout"), "7");
    assert_eq!(
        get(&mut c, "maxclients"),
        "456",
        "the flag wins over the file"
    );
    assert_eq!(get(&mut c, "slowlog-max-len"), "5");
    let info = c.call_str(&["INFO", "server"]);
    let canonical = std::fs::canonicalize(&path).unwrap();
    assert!(
        info.contains(&format!("config_file:{}\r\n", canonical.display())),
        "{info}"
    );
    assert!(info.contains("shards:2\r\n"), "{info}");

    // Unknown directives and values corekv cannot honour stop it at start, named.
    std::fs::write(&path, "port 0\ndaemonize yes\nsave 900\nloglevel notice\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corekv"))
        .args(["--config", &path.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: unknown directive 'daemonize'"),
        "{err}"
    );
    assert!(
        err.contains("line 3: save takes <seconds> <changes> pairs"),
        "{err}"
    );
    assert!(
        err.contains("line 4: unknown directive 'loglevel'"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads everything until the server closes; returns the complete replies and whether
/// bytes of an incomplete one were left over.
fn replies_until_close(stream: &mut TcpStream) -> (Vec<Frame>, usize) {
    let mut all = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
        }
    }
    let mut frames = Vec::new();
    let mut pos = 0;
    while let Ok(Some((f, n))) = frame::parse(&all[pos..]) {
        frames.push(f);
        pos += n;
    }
    (frames, all.len() - pos)
}

/// Sends a large cross-shard pipeline, triggers a shutdown with `stop`, and checks that
/// every reply the client got is whole and right, the process exits 0 and says so, and
/// nothing is accepted after.
fn graceful(stop: impl FnOnce(&Server)) {
    let mut srv = Server::corekv(4, &[]);
    let mut loader = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    loader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut pipeline = Vec::new();
    let n = 50_000;
    for i in 0..n {
        corekv_protocol::request::encode_request(&mut pipeline, &["INCR", &format!("k{}", i % 97)]);
    }
    let writer = {
        let mut w = loader.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&pipeline);
        })
    };
    // Let the pipeline get going, then stop the server in the middle of it.
    std::thread::sleep(Duration::from_millis(30));
    stop(&srv);
    let (frames, partial) = replies_until_close(&mut loader);
    let _ = writer.join();
    assert_eq!(partial, 0, "a reply was cut in half");
    assert!(frames.len() <= n);
    for f in &frames {
        assert!(
            matches!(f, Frame::Integer(v) if *v >= 1),
            "unexpected reply {f:?}"
        );
    }
    let status = srv
        .wait_exit(Duration::from_secs(15))
        .expect("corekv did not exit after the shutdown");
    assert!(status.success(), "exit status {status:?}");
    assert!(srv.logged("shut down cleanly"), "{:?}", srv.log_lines());
    // The process is gone; its io_uring listeners may take a moment longer to go.
    eventually(Duration::from_secs(10), || {
        match TcpStream::connect(("127.0.0.1", srv.port)) {
            Err(_) => Ok(()),
            Ok(_) => Err("a connection was accepted after the exit".into()),
        }
    });
}

#[test]
fn shutdown_command_drains_and_exits_zero() {
    graceful(|srv| {
        let mut c = srv.client();
        c.send(&["SHUTDOWN", "NOW"]);
        // SHUTDOWN replies nothing; the connection closes.
        assert_eq!(c.read_to_close(), b"");
    });
}

#[test]
fn sigterm_drains_and_exits_zero() {
    graceful(|srv| {
        // SAFETY: kill sends a signal to the child process we started.
        assert_eq!(unsafe { libc::kill(srv.pid() as i32, libc::SIGTERM) }, 0);
    });
}

#[test]
fn shutdown_options_match_redis() {
    let redis = Server::redis();
    let corekv = Server::corekv(1, &[]);
    same_replies(
        &redis,
        &corekv,
        &[&[
            "SHUTDOWN ABORT",
            "SHUTDOWN SAVE NOSAVE",
            "SHUTDOWN NOW ABORT",
            "SHUTDOWN FOO",
            "PING",
        ]],
    );
}

#[test]
fn client_kill_closes_clients_on_every_shard() {
    let redis = Server::redis();
    let srv = Server::corekv(4, &[]);
    same_replies(
        &redis,
        &srv,
        &[&[
            "CLIENT KILL 1.2.3.4:5",
            "CLIENT KILL ID 0",
            "CLIENT KILL ID x",
            "CLIENT KILL TYPE x",
            "CLIENT KILL TYPE x y",
            "CLIENT KILL USER bob",
            "CLIENT KILL SKIPME maybe",
            "CLIENT KILL ID 999999",
            "CLIENT KILL TYPE pubsub",
            "CLIENT KILL ADDR 1.2.3.4:5 ID 3",
            "CLIENT NO-EVICT on",
            "CLIENT NO-EVICT x",
        ]],
    );
    let mut admin = srv.client();
    // Victims land on every shard (the kernel spreads connections across listeners).
    let mut victims: Vec<(Client, i64)> = (0..12)
        .map(|_| {
            let mut c = srv.client();
            let reply = c.call(&["CLIENT", "ID"]);
            let id = String::from_utf8_lossy(&reply[1..reply.len() - 2])
                .parse()
                .unwrap();
            (c, id)
        })
        .collect();
    for (c, id) in victims.iter_mut().take(6) {
        assert_eq!(
            admin.call(&["CLIENT", "KILL", "ID", &id.to_string()]),
            b":1\r\n"
        );
        assert_eq!(c.read_to_close(), b"");
    }
    // The old form, by address.
    for (c, _) in victims.iter_mut().skip(6).take(3) {
        let addr = c.stream().local_addr().unwrap().to_string();
        assert_eq!(admin.call(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
        assert_eq!(c.read_to_close(), b"");
    }
    // SKIPME no kills the caller too, after its reply; nothing after it runs.
    let mut last = srv.client();
    last.send_raw(b"CLIENT KILL TYPE normal SKIPME no\r\nPING\r\n");
    let (frames, _) = replies_until_close(last.stream());
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        matches!(frames[0], Frame::Integer(n) if n >= 5),
        "{frames:?}"
    );
    assert_eq!(admin.read_to_close(), b"");
    let mut fresh = srv.client();
    assert_eq!(fresh.call(&["PING"]), b"+PONG\r\n");
}

fn entries(reply: &[u8]) -> Vec<Vec<Frame>> {
    match frame::parse(reply).unwrap().unwrap().0 {
        Frame::Array(items) => items
            .into_iter()
            .map(|e| match e {
                Frame::Array(fields) => fields,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn slowlog_gathers_every_shard_newest_first() {
    let srv = Server::corekv(4, &["--slowlog-log-slower-than", "0"]);
    let mut c = srv.client();
    assert_eq!(c.call(&["SLOWLOG", "RESET"]), b"+OK\r\n");
    for i in 0..40 {
        c.call(&["SET", &format!("key:{i}"), "v"]);
    }
    let len = c.call_str(&["SLOWLOG", "LEN"]);
    let len: i64 = len.trim_start_matches(':').trim().parse().unwrap();
    assert!(len >= 41, "every SET and the RESET are logged: {len}");
    let all = entries(&c.call(&["SLOWLOG", "GET", "-1"]));
    let ids: std::collections::HashSet<i64> = all
        .iter()
        .map(|e| match e[0] {
            Frame::Integer(id) => id,
            _ => panic!(),
        })
        .collect();
    assert_eq!(ids.len(), all.len(), "ids are unique across shards");
    let times: Vec<i64> = all
        .iter()
        .map(|e| match e[1] {
            Frame::Integer(t) => t,
            _ => panic!(),
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let sets: Vec<&Vec<Frame>> = all
        .iter()
        .filter(|e| matches!(&e[3], Frame::Array(a) if a[0].as_bytes() == Some(b"SET")))
        .collect();
    assert_eq!(sets.len(), 40);
    let three = entries(&c.call(&["SLOWLOG", "GET", "3"]));
    assert_eq!(three.len(), 3);
    assert_eq!(three[0].len(), 6);

    // The threshold and the length bound apply at run time.
    assert_eq!(
        c.call(&["CONFIG", "SET", "slowlog-max-len", "2"]),
        b"+OK\r\n"
    );
    for i in 0..10 {
        c.call(&["GET", &format!("key:{i}")]);
    }
    assert!(entries(&c.call(&["SLOWLOG", "GET", "-1"])).len() <= 2);
    c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    c.call(&["SLOWLOG", "RESET"]);
    c.call(&["GET", "x"]);
    assert_eq!(c.call(&["SLOWLOG", "LEN"]), b":0\r\n");
}

#[test]
fn slowlog_entries_match_redis() {
    let redis = Server::redis_with(&["--slowlog-log-slower-than", "0"]);
    let corekv = Server::corekv(1, &["--slowlog-log-slower-than", "0"]);
    let big = "x".repeat(300);
    let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut by_server = Vec::new();
    for srv in [&redis, &corekv] {
        let mut c = srv.client();
        c.call(&["SLOWLOG", "RESET"]);
        c.call(&["SET", "big", &big]);
        let mut del = vec!["DEL"];
        del.extend(many.iter().map(String::as_str));
        c.call(&del);
        c.call(&["AUTH", "x"]);
        let got = entries(&c.call(&["SLOWLOG", "GET", "3"]));
        // Arguments as logged (ids, times, durations and ports differ by nature).
        let args: Vec<Frame> = got.iter().map(|e| e[3].clone()).collect();
        by_server.push((args, c.call(&["SLOWLOG", "LEN"])));
        let help = c.call(&["SLOWLOG", "HELP"]);
        by_server.push((vec![], help));
    }
    assert_eq!(by_server[0], by_server[2]);
    assert_eq!(by_server[1], by_server[3]);
}

fn info_value(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

#[test]
fn rejected_commands_are_not_processed_commands_like_redis() {
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    for srv in [&redis, &corekv] {
        let mut c = srv.client();
        let total = |c: &mut Client| c.info_u64("stats", "total_commands_processed");
        let before = total(&mut c);
        c.call(&["NOSUCH"]);
        c.call(&["GET"]);
        c.call(&["CLIENT", "NOSUCH"]);
        c.call(&["SET", "k", "v"]);
        // The INFO that read `before`, and SET; not the three refused before running.
        assert_eq!(total(&mut c), before + 2);
    }
}

#[test]
fn info_counts_each_command_once_whichever_shard_runs_it() {
    let srv = Server::corekv(4, &[]);
    let mut c = srv.client();
    for i in 0..100 {
        c.call(&["SET", &format!("k{i}"), "v"]);
    }
    for i in 0..50 {
        c.call(&["GET", &format!("k{i}")]);
    }
    c.call(&["MGET", "k1", "k2", "k3", "k4", "k5"]);
    c.call(&["INCR", "k1"]);
    c.call(&["GET"]);
    c.call(&["NOSUCH"]);
    let stats = c.call_str(&["INFO", "commandstats"]);
    let field = |cmd: &str, name: &str| -> i64 {
        let line =
            info_value(&stats, &format!("cmdstat_{cmd}")).unwrap_or_else(|| panic!("{stats}"));
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse::<f64>()
            .unwrap() as i64
    };
    assert_eq!(field("set", "calls"), 100);
    assert_eq!(field("get", "calls"), 50);
    assert_eq!(field("get", "rejected_calls"), 1);
    assert_eq!(field("mget", "calls"), 1);
    assert_eq!(field("incr", "calls"), 1);
    assert_eq!(field("incr", "failed_calls"), 1);
    assert!(field("set", "usec") > 0);
    let default = c.call_str(&["INFO"]);
    assert!(
        !default.contains("# Commandstats"),
        "not in the default sections"
    );
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Stats",
        "# CPU",
        "# Errorstats",
        "# Keyspace",
        "# Shards",
    ] {
        assert!(default.contains(section), "{section} missing from INFO");
    }
    assert_eq!(
        info_value(&default, "errorstat_ERR").as_deref(),
        Some("count=3")
    );
    let latency = c.call_str(&["INFO", "latencystats"]);
    assert!(
        latency.contains("latency_percentiles_usec_set:p50="),
        "{latency}"
    );
    let everything = c.call_str(&["INFO", "everything"]);
    assert!(everything.contains("# Commandstats") && everything.contains("# Latencystats"));
    assert!(
        info_value(&everything, "used_memory_rss")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    assert_eq!(c.call(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    let after = c.call_str(&["INFO", "everything"]);
    assert!(info_value(&after, "cmdstat_set").is_none(), "{after}");
    assert!(info_value(&after, "errorstat_ERR").is_none(), "{after}");
    let total: i64 = info_value(&after, "total_commands_processed")
        .unwrap()
        .parse()
        .unwrap();
    assert!(total <= 1, "{total}");
    assert_eq!(
        info_value(&after, "db0").as_deref(),
        Some("keys=100,expires=0,avg_ttl=0")
    );
}

fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let srv = Server::corekv(2, &["--metrics-port", "0"]);
    let port = srv.metrics_port.expect("metrics port logged");
    let mut c = srv.client();
    for i in 0..30 {
        c.call(&["SET", &format!("m{i}"), "v"]);
    }
    c.call(&["GET", "m1"]);
    let (head, body) = http_get(port, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert_eq!(
        metric(&body, "corekv_command_calls_total{cmd=\"set\"}"),
        30.0
    );
    assert_eq!(metric(&body, "corekv_keyspace_keys{db=\"0\"}"), 30.0);
    assert_eq!(metric(&body, "corekv_connected_clients"), 1.0);
    let shard_keys = metric(&body, "corekv_shard_keys{shard=\"0\"}")
        + metric(&body, "corekv_shard_keys{shard=\"1\"}");
    assert_eq!(shard_keys, 30.0);
    assert!(metric(&body, "corekv_shard_hops_out_total{shard=\"0\"}") >= 0.0);
    // The histogram is cumulative and ends at the count.
    let buckets: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with("corekv_command_duration_seconds_bucket{cmd=\"set\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.len() > 10);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(*buckets.last().unwrap(), 30.0);
    assert_eq!(
        metric(&body, "corekv_command_duration_seconds_count{cmd=\"set\"}"),
        30.0
    );
    // Every sample line is `name{labels} number`, every family declared once.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = line.rsplit_once(' ').unwrap();
        assert!(v == "+Inf" || v.parse::<f64>().is_ok(), "{line}");
    }
    let (head, _) = http_get(port, "/nope");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

/// One command of a LATENCY HISTOGRAM reply: name, calls, `(label µs, cumulative)`.
type Histogram = (Vec<u8>, i64, Vec<(i64, i64)>);

/// A LATENCY HISTOGRAM reply, checked for Redis's field names.
fn latency_histograms(reply: &[u8]) -> Vec<Histogram> {
    let Frame::Array(items) = frame::parse(reply).unwrap().unwrap().0 else {
        panic!("{}", show(reply))
    };
    items
        .chunks(2)
        .map(|kv| {
            let Frame::Array(fields) = &kv[1] else {
                panic!()
            };
            let calls = match fields[1] {
                Frame::Integer(n) => n,
                _ => panic!(),
            };
            let Frame::Array(buckets) = &fields[3] else {
                panic!()
            };
            let steps = buckets
                .chunks(2)
                .map(|lc| match (&lc[0], &lc[1]) {
                    (Frame::Integer(l), Frame::Integer(c)) => (*l, *c),
                    _ => panic!(),
                })
                .collect();
            assert_eq!(fields[0].as_bytes(), Some(&b"calls"[..]));
            assert_eq!(fields[2].as_bytes(), Some(&b"histogram_usec"[..]));
            (kv[0].as_bytes().unwrap().to_vec(), calls, steps)
        })
        .collect()
}

#[test]
fn latency_histogram_has_redis_shape_and_counts_every_run() {
    let redis = Server::redis();
    let corekv = Server::corekv(4, &[]);
    let redis_labels: Vec<i64> = vec![1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113];
    for srv in [&redis, &corekv] {
        let mut c = srv.client();
        for i in 0..300 {
            c.call(&["SET", &format!("h{i}"), "v"]);
        }
        let got = latency_histograms(&c.call(&["LATENCY", "HISTOGRAM", "set", "nosuch", "get"]));
        assert_eq!(got.len(), 1, "only commands that ran");
        let (name, calls, steps) = &got[0];
        assert_eq!(name, b"set");
        assert_eq!(*calls, 300);
        assert_eq!(steps.last().unwrap().1, 300, "cumulative to the total");
        assert!(steps.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        for (label, _) in steps {
            assert!(
                redis_labels.contains(label) || *label > 2113,
                "label {label} not on Redis's scale"
            );
        }
        let all = latency_histograms(&c.call(&["LATENCY", "HISTOGRAM"]));
        assert!(all.iter().any(|(n, _, _)| n == b"set"));
    }
}
