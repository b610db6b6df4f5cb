//! `corekv-bench`: a thread-per-core load generator for Redis-protocol and echo servers.
//!
//! The main thread checks the arguments and the server, runs the prefill and the measured
//! phase (see [`run`]), and reports (see [`report`]). Exit status: 0 for a clean run, 1
//! when the run had errors or could not start, 2 for bad arguments.

mod client;
mod config;
mod report;
mod run;
mod schedule;
mod stats;
mod workload;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

use crate::config::{Args, Config, Protocol};
use crate::report::{Document, Prefill, Results};

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match Config::from_args(&args).and_then(|c| check_cpus(&c).map(|()| c)) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("corekv-bench: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = preflight(&cfg) {
        eprintln!("corekv-bench: {e}");
        return ExitCode::from(1);
    }
    let progress = !args.quiet;

    let prefill = if cfg.prefill {
        let started = Instant::now();
        match run::run(run::Phase::prefill(&cfg), progress) {
            Ok(out) => Some(Prefill {
                keys: out.stats.sets,
                seconds: started.elapsed().as_secs_f64(),
                errors: out.stats.errors() + (cfg.keys - out.stats.sets.min(cfg.keys)),
            }),
            Err(e) => {
                eprintln!("corekv-bench: prefill failed: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };

    let outcome = match run::run(run::Phase::measured(cfg.clone()), progress) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("corekv-bench: {e}");
            return ExitCode::from(1);
        }
    };
    let results = Results::new(&outcome.stats, outcome.window, prefill);
    print!("{}", report::table(&cfg, &results));
    let _ = std::io::stdout().flush();

    let mut status = ExitCode::SUCCESS;
    if let Some(path) = &args.json {
        let doc = Document {
            tool: "corekv-bench",
            version: env!("CARGO_PKG_VERSION"),
            config: &cfg,
            results: &results,
        };
        let text = serde_json::to_string_pretty(&doc).expect("the report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("corekv-bench: cannot write --json {path}: {e}");
            status = ExitCode::from(1);
        }
    }
    if let Some(path) = &args.hist {
        if let Err(e) = std::fs::write(path, report::percentile_distribution(&outcome.stats)) {
            eprintln!("corekv-bench: cannot write --hist {path}: {e}");
            status = ExitCode::from(1);
        }
    }
    let problems = results.problems();
    if !problems.is_empty() {
        eprintln!("\ncorekv-bench: THE RUN HAD ERRORS; its figures are not a clean measurement:");
        for p in problems {
            eprintln!("  - {p}");
        }
        status = ExitCode::from(1);
    }
    status
}

/// Refuses CPUs this process may not run on (a cgroup cpuset, `taskset`), which glommio
/// would otherwise fail on with a less helpful message.
fn check_cpus(cfg: &Config) -> Result<(), String> {
    let Some(cpus) = &cfg.cpus else {
        return Ok(());
    };
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .ok_or("cannot read this process's CPU affinity")?
        .into_iter()
        .map(|c| c.id)
        .collect();
    match cpus.iter().find(|c| !allowed.contains(c)) {
        Some(c) => Err(format!(
            "--cpus: this process may not run on CPU {c} (allowed: {allowed:?})"
        )),
        None => Ok(()),
    }
}

/// Connects once before the run and checks the server speaks the chosen protocol, so a
/// wrong port or a server that is down gets a clear message rather than a run of errors.
fn preflight(cfg: &Config) -> Result<(), String> {
    let target = format!("{}:{}", cfg.host, cfg.port);
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} resolves to no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, cfg.timeout)
        .map_err(|e| format!("cannot connect to {target}: {e} (is the server running?)"))?;
    s.set_read_timeout(Some(cfg.timeout)).ok();
    let probe: &[u8] = match cfg.protocol {
        Protocol::Resp => b"*1\r\n$4\r\nPING\r\n",
        Protocol::Echo => b"corekv-bench probe\r\n",
    };
    s.write_all(probe)
        .map_err(|e| format!("{target} closed the connection: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let complete = |got: &[u8]| match cfg.protocol {
        Protocol::Resp => got.ends_with(b"\r\n"),
        Protocol::Echo => got.len() >= probe.len() || got.ends_with(b"\r\n"),
    };
    while !complete(&got) {
        match s.read(&mut buf) {
            Ok(0) => {
                return Err(format!(
                    "{target} closed the connection without replying{}",
                    if got.is_empty() { "" } else { " in full" }
                ))
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(format!(
                    "{target} reset the connection before replying (is the server shutting down?)"
                ))
            }
            Err(e) => return Err(format!("no reply from {target} within --timeout: {e}")),
        }
    }
    let shown = String::from_utf8_lossy(&got).trim_end().to_string();
    match cfg.protocol {
        Protocol::Resp if got == b"+PONG\r\n" => Ok(()),
        Protocol::Resp if got.starts_with(probe) || probe.starts_with(&got) => Err(format!(
            "{target} echoed PING back: it looks like an echo server (use --protocol echo)"
        )),
        Protocol::Resp if got.starts_with(b"-") => {
            Err(format!("{target} answered PING with an error: {shown}"))
        }
        Protocol::Resp => Err(format!(
            "{target} answered PING with {shown:?}: not a Redis-protocol server?"
        )),
        Protocol::Echo if got == probe => Ok(()),
        Protocol::Echo => Err(format!(
            "{target} did not echo the probe (it answered {shown:?}); for a Redis-protocol \
             server use --protocol resp"
        )),
    }
}
