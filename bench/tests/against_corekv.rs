//! corekv-bench against a real corekv: short runs whose JSON must add up, with every reply
//! verified; open-loop pacing; the echo protocol; and clear failures (no hang) when the
//! server is down, speaks another protocol, or dies mid-run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The corekv binary of this workspace, built first if this test runs alone
/// (`cargo test -p corekv-bench`).
fn corekv_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_corekv-bench"));
    let path = bench.with_file_name(format!("corekv{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "corekv", "--bin", "corekv"]);
        if bench
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "release")
        {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cannot build corekv for the bench tests");
    }
    path
}

/// A corekv process, killed on drop.
struct Corekv {
    child: Child,
    port: u16,
    echo_port: u16,
}

impl Drop for Corekv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Corekv {
    fn start() -> Corekv {
        let mut child = Command::new(corekv_binary())
            .args([
                "--port",
                "0",
                "--echo-port",
                "0",
                "--shards",
                "2",
                "--no-pin",
                "--save",
                "",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start corekv");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("ready to accept connections on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.to_string());
                    }
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("corekv did not report ready");
        let ports: Vec<u16> = ready
            .split(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
            .filter_map(|s| s.rsplit(':').next()?.parse().ok())
            .filter(|&p| p > 0)
            .collect();
        assert_eq!(ports.len(), 2, "cannot read the ports from {ready:?}");
        Corekv {
            child,
            port: ports[0],
            echo_port: ports[1],
        }
    }
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corekv-bench"))
        .args(args)
        .output()
        .expect("run corekv-bench")
}

/// Runs corekv-bench with `--json` and returns the document.
fn bench_json(port: u16, args: &[&str]) -> Value {
    let dir = std::env::temp_dir().join(format!("corekv-bench-test-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join(format!("{}.json", args.join("_").replace([':', '/'], "-")));
    let hist = json.with_extension("hist");
    let port = port.to_string();
    let mut all = vec!["--port", &port, "--quiet", "--json", json.to_str().unwrap()];
    all.extend(["--hist", hist.to_str().unwrap()]);
    all.extend(args);
    let out = bench(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "corekv-bench {all:?} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("errors      none"), "{stdout}");
    let hist_text = std::fs::read_to_string(&hist).unwrap();
    assert!(hist_text.contains("Percentile"), "{hist_text}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    doc
}

fn n(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// The checks every clean run must pass: the counts add up and every reply was verified.
fn check_counts(doc: &Value) {
    let r = &doc["results"];
    let requests = n(r, "requests");
    assert!(requests > 0.0, "{r}");
    assert_eq!(
        requests,
        n(r, "sets") + n(r, "gets") + n(r, "pings") + n(r, "echoes"),
        "requests are the sum of their kinds: {r}"
    );
    assert_eq!(n(r, "gets"), n(r, "hits") + n(r, "misses"), "{r}");
    assert_eq!(n(r, "verified"), requests, "every reply verified: {r}");
    assert_eq!(n(r, "latency_us.samples"), requests, "{r}");
    assert_eq!(n(r, "errors.total"), 0.0, "{r}");
    assert_eq!(r["clean"], Value::Bool(true));
    let rate = requests / n(r, "window_s");
    assert!((n(r, "throughput_rps") - rate).abs() < 1e-6 * rate, "{r}");
    let l = &r["latency_us"];
    let order =
        ["min", "p50", "p90", "p99", "p99.9", "p99.99", "max"].map(|k| l[k].as_f64().unwrap());
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "percentiles ascend: {l}"
    );
}

#[test]
fn two_second_run_adds_up_and_verifies_every_reply() {
    let srv = Corekv::start();
    let doc = bench_json(
        srv.port,
        &[
            "--duration",
            "2s",
            "--warmup",
            "200ms",
            "--threads",
            "2",
            "--connections",
            "8",
            "--pipeline",
            "4",
            "--ratio",
            "1:4",
            "--keys",
            "5000",
            "--prefill",
            "--value-size",
            "1-300",
        ],
    );
    check_counts(&doc);
    let r = &doc["results"];
    // Prefilled: every GET hits, and its value is checked byte for byte.
    assert_eq!(n(r, "misses"), 0.0, "{r}");
    assert!(n(r, "hits") > 0.0);
    assert_eq!(n(r, "prefill.keys"), 5000.0, "{r}");
    // Timed runs measure what they were asked to.
    let window = n(r, "window_s");
    assert!((2.0..2.5).contains(&window), "window {window}");
    // The full configuration is in the document.
    let c = &doc["config"];
    assert_eq!(c["connections"], 8);
    assert_eq!(c["ratio"], serde_json::json!([1, 4]));
    assert_eq!(c["value_size"], "1-300");
    assert_eq!(c["mode"]["loop"], "closed");
}

#[test]
fn request_count_runs_send_exactly_that_many() {
    let srv = Corekv::start();
    let doc = bench_json(
        srv.port,
        &[
            "--requests",
            "12345",
            "--warmup",
            "0",
            "--connections",
            "7",
            "--key-dist",
            "zipf:0.99",
        ],
    );
    check_counts(&doc);
    assert_eq!(n(&doc["results"], "requests"), 12345.0);
}

#[test]
fn open_loop_offers_the_requested_rate() {
    let srv = Corekv::start();
    let doc = bench_json(
        srv.port,
        &[
            "--rate",
            "3000",
            "--duration",
            "2s",
            "--warmup",
            "200ms",
            "--connections",
            "10",
        ],
    );
    check_counts(&doc);
    let r = &doc["results"];
    // 3000/s for 2 s: the schedule fixes the count, whatever the server does (the next
    // test stalls the server to check that).
    let requests = n(r, "requests");
    assert!((5900.0..=6000.0).contains(&requests), "{requests} requests");
    assert_eq!(doc["config"]["mode"]["rate"], 3000.0);
}

#[test]
fn open_loop_sends_what_was_due_during_a_stall_at_the_end() {
    let srv = Corekv::start();
    let pid = srv.child.id() as i32;
    // Stop the server from about 0.6 s after the run starts until well past its end: the
    // requests due in that time must still go out and carry the stall in their latency,
    // not vanish because the clock ran out while they waited.
    let staller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        // SAFETY: kill sends signals to the child process this test started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(900));
        unsafe { libc::kill(pid, libc::SIGCONT) };
    });
    let doc = bench_json(
        srv.port,
        &[
            "--rate",
            "2000",
            "--duration",
            "1s",
            "--warmup",
            "0",
            "--connections",
            "4",
            "--timeout",
            "10s",
        ],
    );
    staller.join().unwrap();
    check_counts(&doc);
    let r = &doc["results"];
    let requests = n(r, "requests");
    assert!((1990.0..=2000.0).contains(&requests), "{requests} requests");
    assert!(n(r, "latency_us.max") >= 300_000.0, "{r}");
}

#[test]
fn echo_and_ping() {
    let srv = Corekv::start();
    let doc = bench_json(
        srv.echo_port,
        &[
            "--protocol",
            "echo",
            "--value-size",
            "1-4000",
            "--duration",
            "1s",
            "--warmup",
            "0",
        ],
    );
    check_counts(&doc);
    assert!(n(&doc["results"], "echoes") > 0.0);
    let doc = bench_json(
        srv.port,
        &[
            "--ping",
            "--pipeline",
            "16",
            "--duration",
            "1s",
            "--warmup",
            "0",
        ],
    );
    check_counts(&doc);
    assert!(n(&doc["results"], "pings") > 0.0);
}

#[test]
fn a_server_that_is_down_or_wrong_gets_a_clear_error() {
    let srv = Corekv::start();
    let port = srv.port;
    let echo = srv.echo_port;
    drop(srv);
    // io_uring tears a killed process's rings down asynchronously, so its listeners can
    // accept for a moment after the process is gone: wait until the port refuses.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "port {port} still accepts after corekv exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = bench(&["--port", &port.to_string(), "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect") && err.contains("is the server running"),
        "{err}"
    );

    let srv = Corekv::start();
    let out = bench(&["--port", &srv.echo_port.to_string(), "--duration", "1s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("use --protocol echo"), "{err}");
    let out = bench(&[
        "--port",
        &srv.port.to_string(),
        "--protocol",
        "echo",
        "--duration",
        "1s",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use --protocol resp"), "{err}");
    let _ = echo;

    let out = bench(&["--connections", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--connections must be at least 1"));
}

#[test]
fn a_server_dying_mid_run_ends_the_run_loudly_not_in_a_hang() {
    let mut srv = Corekv::start();
    let port = srv.port.to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_corekv-bench"))
        .args([
            "--port",
            &port,
            "--requests",
            "100000000",
            "--warmup",
            "0",
            "--timeout",
            "1s",
            "--connections",
            "4",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let _ = srv.child.kill();
    let _ = srv.child.wait();
    let killed = Instant::now();
    let out = child.wait_with_output().unwrap();
    // Each connection gives up after three failed reconnects, 100 ms apart or a 1 s
    // connect timeout each.
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "took {:?}",
        killed.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("THE RUN HAD ERRORS"), "{stderr}");
    assert!(
        stderr.contains("connections dropped by the server"),
        "{stderr}"
    );
    assert!(stderr.contains("gave up"), "{stderr}");
    assert!(stdout.contains("ERRORS"), "{stdout}");
}
