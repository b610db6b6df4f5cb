//! Shutdown after the server has been up a while on a busy machine, and shutdowns that
//! cannot drain.
//!
//! A shard used to notice a stop only on its timer tick, and glommio could park a shard
//! with that tick queued but never run (its preemption timer firing while the thread was
//! descheduled): after a minute of other load on the machine, SIGTERM waited out the
//! whole `shutdown-timeout`. These tests recreate that load for real. They live in their
//! own test binary so the load does not slow other tests.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// Starts `redis-benchmark` clients against `port` for `secs` seconds: loopback network
/// load on every CPU, the kind that descheduled the shards.
fn load_elsewhere(port: u16, secs: u64) -> Vec<Child> {
    ["get", "set"]
        .iter()
        .map(|test| {
            Command::new("timeout")
                .args([
                    &secs.to_string(),
                    "redis-benchmark",
                    "-p",
                    &port.to_string(),
                    "-c",
                    "50",
                    "-n",
                    "1000000000",
                    "-t",
                    test,
                    "-q",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-benchmark must be on PATH (apt-get install redis-tools)")
        })
        .collect()
}

/// A corekv with its default flags (one pinned shard per CPU), as a user runs it.
fn default_corekv() -> Server {
    Server::corekv_with(&["--port".into(), "0".into()])
}

fn signal(srv: &Server, sig: i32) {
    // SAFETY: kill sends a signal to the child process we started.
    assert_eq!(unsafe { libc::kill(srv.pid() as i32, sig) }, 0);
}

/// Asks `srv` to stop with `stop`, then checks it logs the drain and exits 0 within a
/// second.
fn stops_within_a_second(name: &str, srv: &mut Server, stop: impl FnOnce(&Server)) {
    let asked = Instant::now();
    stop(srv);
    let status = srv
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("{name}: corekv did not exit"));
    let took = asked.elapsed();
    assert!(
        status.success(),
        "{name}: exit status {status:?}: {:#?}",
        srv.log_lines()
    );
    assert!(
        srv.logged("shutting down") && srv.logged("shut down cleanly"),
        "{name}: {:#?}",
        srv.log_lines()
    );
    assert!(
        took < Duration::from_secs(1),
        "{name}: took {took:?} to exit: {:#?}",
        srv.log_lines()
    );
}

/// A way to ask a server to stop.
type Stop = Box<dyn FnOnce(&Server)>;

#[test]
fn stops_within_a_second_after_a_minute_of_load_elsewhere() {
    let redis = Server::redis();
    // Four servers: three that served one request, one no client ever touched.
    let mut servers: Vec<Server> = (0..4).map(|_| default_corekv()).collect();
    for srv in &servers[..3] {
        assert_eq!(srv.client().call(&["PING"]), b"+PONG\r\n");
    }
    let load = load_elsewhere(redis.port, 65);
    std::thread::sleep(Duration::from_secs(62));
    let stops: [(&str, Stop); 4] = [
        ("SIGTERM", Box::new(|s| signal(s, libc::SIGTERM))),
        ("SIGINT", Box::new(|s| signal(s, libc::SIGINT))),
        (
            "SHUTDOWN",
            Box::new(|s| {
                let mut c = s.client();
                c.send(&["SHUTDOWN"]);
                assert_eq!(c.read_to_close(), b"");
            }),
        ),
        (
            "SIGTERM, never used",
            Box::new(|s| signal(s, libc::SIGTERM)),
        ),
    ];
    for ((name, stop), srv) in stops.into_iter().zip(servers.iter_mut()) {
        stops_within_a_second(name, srv, stop);
    }
    for mut child in load {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A client that asks for a reply far larger than the socket buffers hold and never
/// reads: its connection's round cannot finish writing, so the drain cannot finish. Its
/// receive buffer is fixed small, so the kernel cannot grow its window and let the reply
/// through (the server's send buffer grows to at most 4 MiB).
fn stuck_reader(srv: &Server) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    assert_eq!(
        srv.client().call(&["SET", "big", &"x".repeat(32 << 20)]),
        b"+OK\r\n"
    );
    let sk = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sk.set_recv_buffer_size(64 * 1024).unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], srv.port).into();
    sk.connect(&addr.into()).unwrap();
    let mut stream: std::net::TcpStream = sk.into();
    let mut requests = Vec::new();
    for _ in 0..4 {
        corekv_protocol::request::encode_request(&mut requests, &["GET", "big"]);
    }
    std::io::Write::write_all(&mut stream, &requests).unwrap();
    // Let the server fill the socket buffers and get stuck writing.
    std::thread::sleep(Duration::from_millis(500));
    stream
}

#[test]
fn a_shard_that_cannot_drain_makes_a_nonzero_exit_that_says_why() {
    let mut srv = Server::corekv(1, &["--shutdown-timeout", "1"]);
    let _client = stuck_reader(&srv);
    let asked = Instant::now();
    signal(&srv, libc::SIGTERM);
    let status = srv
        .wait_exit(Duration::from_secs(15))
        .expect("corekv did not exit");
    assert_eq!(status.code(), Some(1), "{:#?}", srv.log_lines());
    assert!(asked.elapsed() >= Duration::from_secs(1));
    assert!(
        srv.logged("shutdown-timeout (1 s) passed with 1 of 1 shards still draining"),
        "{:#?}",
        srv.log_lines()
    );
    assert!(
        srv.logged("still waits for 1 connection(s) still open: 0 waiting for replies from other shards, 1 writing replies the client has not read"),
        "{:#?}",
        srv.log_lines()
    );
    assert!(!srv.logged("shut down cleanly"));
}

#[test]
fn a_second_signal_during_the_drain_exits_at_once() {
    let mut srv = Server::corekv(1, &["--shutdown-timeout", "30"]);
    let _client = stuck_reader(&srv);
    signal(&srv, libc::SIGTERM);
    common::eventually(Duration::from_secs(10), || {
        if srv.logged("shutting down") {
            Ok(())
        } else {
            Err("no drain yet".into())
        }
    });
    let asked = Instant::now();
    signal(&srv, libc::SIGTERM);
    let status = srv
        .wait_exit(Duration::from_secs(15))
        .expect("corekv did not exit");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:#?}",
        srv.log_lines()
    );
    assert_eq!(status.code(), Some(1), "{:#?}", srv.log_lines());
    assert!(
        srv.logged("SIGTERM received during shutdown: exiting now"),
        "{:#?}",
        srv.log_lines()
    );
}
