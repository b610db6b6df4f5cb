//! Deadlines over the wire: keys nobody reads are reclaimed shortly after they expire,
//! readers never see an expired key, and idle connections close on time while active
//! ones stay.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

#[test]
fn keys_nobody_reads_are_reclaimed_after_their_deadline() {
    let srv = Server::corekv(4, &[]);
    let mut c = srv.client();
    let n = 4000;
    let mut wire = Vec::new();
    for i in 0..n {
        let ttl = 100 + (i % 300);
        corekv_protocol::request::encode_request(
            &mut wire,
            &["SET", &format!("volatile:{i}"), "v", "PX", &ttl.to_string()],
        );
    }
    corekv_protocol::request::encode_request(&mut wire, &["SET", "persistent", "v"]);
    c.send_raw(&wire);
    for _ in 0..=n {
        assert_eq!(c.read_reply(), b"+OK\r\n");
    }
    let loaded = Instant::now();
    // The last deadline is 400 ms after loading; no key is read meanwhile.
    let mut size = i64::MAX;
    while loaded.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        size = String::from_utf8_lossy(&c.call(&["DBSIZE"]))[1..]
            .trim()
            .parse()
            .unwrap();
        if size == 1 {
            break;
        }
    }
    assert_eq!(size, 1, "every volatile key reclaimed without being read");
    assert!(
        loaded.elapsed() < Duration::from_secs(2),
        "reclaimed {:?} after loading (last deadline at 400 ms)",
        loaded.elapsed()
    );
    assert_eq!(
        c.info_field("stats", "expired_keys").as_deref(),
        Some("4000")
    );
    assert_eq!(
        c.info_field("keyspace", "db0").as_deref(),
        Some("keys=1,expires=0,avg_ttl=0")
    );
}

#[test]
fn readers_never_see_an_expired_key() {
    let srv = Server::corekv(2, &[]);
    let mut c = srv.client();
    // Long enough that a loaded machine still runs the first GET in time.
    assert_eq!(c.call(&["SET", "k", "v", "PX", "2000"]), b"+OK\r\n");
    assert_eq!(c.call(&["GET", "k"]), b"$1\r\nv\r\n");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(c.call(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(c.call(&["TTL", "k"]), b":-2\r\n");
    assert_eq!(c.call(&["EXISTS", "k"]), b":0\r\n");
}

/// Whether the server closed `s`: a read returns end-of-file (or a reset) promptly.
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn thousands_of_idle_connections_close_on_time_and_active_ones_stay() {
    let srv = Server::corekv(1, &["--timeout", "1"]);
    let mut idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(("127.0.0.1", srv.port)).unwrap())
        .collect();
    // From when the last idle connection exists: a connect the kernel had to retry (a
    // full accept queue) starts its clock late.
    let started = Instant::now();
    let mut talked_then_idle = srv.client();
    assert_eq!(talked_then_idle.call(&["PING"]), b"+PONG\r\n");
    let mut active = srv.client();
    // Keep one connection busy for 2.2 s, longer than the timeout.
    while started.elapsed() < Duration::from_millis(2200) {
        assert_eq!(active.call(&["PING"]), b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    let still_open = idle.iter_mut().map(closed).filter(|c| !c).count();
    assert_eq!(
        still_open, 0,
        "idle connections left open after twice the timeout"
    );
    assert_eq!(talked_then_idle.read_to_close(), b"");
    assert_eq!(
        active.call(&["PING"]),
        b"+PONG\r\n",
        "the active connection stays"
    );
}

#[test]
fn idle_connections_do_not_close_early() {
    let srv = Server::corekv(1, &["--timeout", "2"]);
    let mut c = srv.client();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n", "open before the timeout");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        c.call(&["PING"]),
        b"+PONG\r\n",
        "activity restarted the clock"
    );
}

#[test]
fn config_set_timeout_reaches_existing_connections_on_every_shard() {
    let srv = Server::corekv(4, &[]);
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", srv.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut admin = srv.client();
    assert_eq!(admin.call(&["CONFIG", "SET", "timeout", "1"]), b"+OK\r\n");
    assert_eq!(
        admin.call(&["CONFIG", "GET", "timeout"]),
        b"*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n"
    );
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(idle.iter_mut().map(closed).filter(|c| !c).count(), 0);
    // The admin connection idled too and is gone; a new one turns timeouts off.
    let mut admin = srv.client();
    assert_eq!(admin.call(&["CONFIG", "SET", "timeout", "0"]), b"+OK\r\n");
    let mut c = srv.client();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
}
