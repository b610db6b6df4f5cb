//! Test harness: starts the real `corekv` binary (and `redis-server` for differential
//! tests) on ephemeral ports, and talks to them over TCP with raw RESP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use corekv_protocol::frame::{self, Frame};
use corekv_protocol::request::encode_request;

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    /// Port of the RESP listener.
    pub port: u16,
    /// Port of the echo listener, if started with one.
    pub echo_port: Option<u16>,
    /// Port of the metrics endpoint, if started with one.
    pub metrics_port: Option<u16>,
    /// Every line corekv has logged so far (empty for redis-server).
    pub log: Arc<Mutex<Vec<String>>>,
    /// The thread copying corekv's stderr into `log`; joined once the process exits so
    /// that `log` then holds every line, the last ones included.
    log_reader: Option<std::thread::JoinHandle<()>>,
    /// A snapshot directory made for this server (when the test gave none), removed
    /// with it.
    own_dir: Option<std::path::PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.own_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh empty directory for one test's files, under the system's temp directory.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "corekv-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

impl Server {
    /// Starts corekv with `shards` unpinned shards (so any number fits any machine) and
    /// extra flags, and waits until it accepts connections.
    pub fn corekv(shards: usize, extra: &[&str]) -> Server {
        let mut args: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--shards".into(),
            shards.to_string(),
            "--no-pin".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::corekv_with(&args)
    }

    /// Starts corekv with exactly these flags (which must include `--port 0`), and its
    /// snapshot directory a fresh one unless they name one (`--dir`): no test sees
    /// another's snapshot.
    pub fn corekv_with(args: &[String]) -> Server {
        let mut args = args.to_vec();
        let own_dir = (!args.iter().any(|a| a == "--dir")).then(|| temp_dir("test"));
        if let Some(dir) = &own_dir {
            args.push("--dir".into());
            args.push(dir.display().to_string());
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_corekv"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start corekv");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_writer = log.clone();
        let log_reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log_writer.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("ready to accept connections on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(rest.to_string()));
                    }
                } else if line.contains("ERROR") || line.contains("corekv:") {
                    if let Some(tx) = &tx {
                        let _ = tx.send(Err(line.clone()));
                    }
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("corekv did not report ready within 60 s")
            .unwrap_or_else(|e| panic!("corekv failed to start: {e}"));
        let port_of = |s: &str| -> u16 {
            s.rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches(')').parse().ok())
                .unwrap_or_else(|| panic!("cannot read a port from {s:?}"))
        };
        let (resp, echo) = match ready.split_once(" (echo on ") {
            Some((resp, echo)) => (port_of(resp), Some(port_of(echo))),
            None => (port_of(ready.trim()), None),
        };
        let metrics_port = log
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.split("metrics at http://").nth(1).map(str::to_string))
            .and_then(|rest| {
                rest.split("/metrics")
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            });
        Server {
            child,
            port: resp,
            echo_port: echo,
            metrics_port,
            log,
            log_reader: Some(log_reader),
            own_dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or `None` if it is
    /// still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // The process is gone, so its stderr is closed: the reader ends after
                // storing the last lines.
                if let Some(reader) = self.log_reader.take() {
                    let _ = reader.join();
                }
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether corekv has logged a line containing `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// A copy of every line logged so far (the lock is not held once this returns, so a
    /// failing assertion that prints it does not poison the log).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Starts `redis-server` (found on PATH; CI installs it) with no persistence and one
    /// database, as corekv has.
    pub fn redis() -> Server {
        Self::redis_with(&[])
    }

    /// [`Server::redis`] with extra `redis-server` flags. Retries on a new port if the
    /// one chosen was taken in the meantime (tests start servers in parallel).
    pub fn redis_with(extra: &[&str]) -> Server {
        for _ in 0..5 {
            if let Some(server) = Self::try_redis(extra) {
                return server;
            }
        }
        panic!("redis-server did not start");
    }

    fn try_redis(extra: &[&str]) -> Option<Server> {
        let port = free_port();
        let port_s = port.to_string();
        let mut args = vec![
            "--port",
            &port_s,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--databases",
            "1",
            // The compiled-in encoding limits, which corekv's defaults match, whatever a
            // distribution's build changed.
            "--hash-max-listpack-entries",
            "128",
            "--hash-max-listpack-value",
            "64",
            "--set-max-intset-entries",
            "512",
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH for differential tests (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return None; // could not bind: try another port
            }
            if let Some(pong) = probe(port) {
                if pong == b"+PONG\r\n" || pong.starts_with(b"-NOAUTH") {
                    break;
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Server {
            child,
            port,
            echo_port: None,
            metrics_port: None,
            log: Arc::new(Mutex::new(Vec::new())),
            log_reader: None,
            own_dir: None,
        })
    }

    /// A raw RESP client connected to this server.
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// A `redis` crate connection to this server.
    pub fn redis_conn(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .expect("client")
            .get_connection()
            .expect("connect with the redis crate")
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("server process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS line")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `check` every 20 ms until it returns `Ok`, and returns that value; panics with
/// the last `Err` (which should show the state seen) after `timeout`. For state the
/// server reaches asynchronously (a close seen by every shard, housekeeping), where a
/// fixed sleep would be a race on a loaded machine.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("not reached within {timeout:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A PING on a fresh connection: its reply's first line, or `None` on any error (a
/// server still starting may accept and reset).
fn probe(port: u16) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"*1\r\n$4\r\nPING\r\n").ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// A plain TCP client speaking RESP: sends commands, reads exactly one reply each.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects, with generous timeouts so a hung server fails the test instead of
    /// hanging it.
    pub fn connect(port: u16) -> Client {
        Self::try_connect(port).expect("connect")
    }

    fn try_connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    /// The socket, for tests that half-close or time it.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Connects to `host:port`, for addresses other than loopback.
    pub fn connect_to(host: std::net::IpAddr, port: u16) -> Client {
        let stream = TcpStream::connect((host, port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Field `field` of `INFO section`, if present.
    pub fn info_field(&mut self, section: &str, field: &str) -> Option<String> {
        let text = self.call_str(&["INFO", section]);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_string())
    }

    /// A numeric field of `INFO section`; panics if it is missing.
    pub fn info_u64(&mut self, section: &str, field: &str) -> u64 {
        let v = self
            .info_field(section, field)
            .unwrap_or_else(|| panic!("no {field} in INFO {section}"));
        v.parse()
            .unwrap_or_else(|_| panic!("{field}:{v} is not a number"))
    }

    /// Waits until `INFO clients` reports `n` connected clients (this one included): a
    /// close is seen by each shard on its own schedule.
    pub fn wait_for_clients(&mut self, n: u64) {
        eventually(Duration::from_secs(10), || {
            match self.info_u64("clients", "connected_clients") {
                got if got == n => Ok(()),
                got => Err(format!("connected_clients:{got}, waiting for {n}")),
            }
        });
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one command as a multibulk request.
    pub fn send(&mut self, args: &[&str]) {
        let mut out = Vec::new();
        encode_request(&mut out, args);
        self.send_raw(&out);
    }

    /// Sends one command with binary arguments.
    pub fn send_bytes(&mut self, args: &[&[u8]]) {
        let mut out = Vec::new();
        encode_request(&mut out, args);
        self.send_raw(&out);
    }

    /// Reads the next complete reply, as bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = frame::frame_len(&self.buf).expect("well-formed reply") {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read reply");
            assert!(
                n > 0,
                "server closed the connection; had {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the next reply, decoded.
    pub fn read_frame(&mut self) -> Frame {
        let bytes = self.read_reply();
        frame::parse(&bytes).expect("parse").expect("complete").0
    }

    /// Sends a command and returns its reply's bytes.
    pub fn call(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// Sends a command and returns its reply as a string (lossy), for readable asserts.
    pub fn call_str(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.call(args)).into_owned()
    }

    /// Reads until the server closes the connection; returns everything read.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return all,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("expected the server to close the connection: {e}"),
            }
        }
    }
}

/// Shard counts every behavioural test runs with: one shard, and four (more than this
/// machine's cores, unpinned) so keys live on several shards.
pub const SHARD_COUNTS: [usize; 2] = [1, 4];
