//! `corekv`: the server binary. Parses flags, checks the machine can run it, picks the
//! CPUs, starts one shard per CPU and waits for a signal.
//!
//! The modules, from the outside in: [`cli`] (flags), [`topology`] (which CPUs),
//! [`runtime`] (executors, listeners), [`connection`] (a client's read–dispatch–write
//! loop), [`transport`] (messages between shards), [`echo`] (the raw echo listener).
//! Everything a shard owns and every command live in the `corekv-shard` crate; the wire
//! format in `corekv-protocol`.

mod cli;
mod clock;
mod connection;
mod echo;
mod runtime;
mod topology;
mod transport;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use corekv_protocol::Limits;
use corekv_shard::Config;
use signal_hook::consts::{SIGINT, SIGTERM};
use socket2::{Domain, Protocol, Socket, Type};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    init_logging();
    // A shard that panics leaves its keys unreachable and its peers waiting: stop the
    // whole process rather than limp on.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("corekv: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn run(args: cli::Args) -> Result<(), String> {
    preflight()?;
    let allowed = topology::allowed_cpus();
    let machine = topology::Machine::this();
    let placement = topology::plan(&args, &allowed, &machine)?;
    let listening = listening_shards(&args, placement.shards)?;
    if let Some(node) = placement.numa_node {
        // Before the shard threads start: they inherit the policy.
        topology::bind_memory(node)?;
    }
    let (resp_addr, _resp_reservation) = reserve(&args.bind, args.port)?;
    let (echo_addr, _echo_reservation) = match args.echo_port {
        Some(port) => {
            let (addr, reservation) = reserve(&args.bind, port)?;
            (Some(addr), reservation)
        }
        None => (None, None),
    };
    let config = Config {
        bind: args.bind.clone(),
        port: resp_addr.port(),
        echo_port: echo_addr.map(|a| a.port()),
        shards: placement.shards,
        cpus: placement
            .cpus
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.place()).collect()),
        placement: if placement.cpus.is_some() {
            placement.kind.name()
        } else {
            "unpinned"
        },
        numa_node: placement.numa_node,
        listening: listening.clone(),
        limits: Limits {
            max_bulk_len: args.proto_max_bulk_len,
            max_multibulk_len: args.max_multibulk_len,
            max_inline_len: args.max_inline_len as usize,
        },
        query_buffer_limit: args.client_query_buffer_limit,
        maxclients: args.maxclients,
        timeout: args.timeout,
        executable: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        started_ms: clock::now_ms(),
        run_id: run_id(),
        os: os_name(),
    };
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    let (started_tx, started_rx) = mpsc::channel();
    let endpoints = runtime::Endpoints {
        resp: resp_addr,
        echo: echo_addr,
        listening,
    };
    let _pool = runtime::start(config, &placement, endpoints, started_tx)?;
    for _ in 0..placement.shards {
        let started = started_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the shards did not start within 60 s".to_string())?;
        started.result?;
        if let Some(planned) = &placement.cpus {
            if started.cpu != Some(planned[started.shard].id) {
                return Err(format!(
                    "shard {} runs on {:?}, not on CPU {} as planned",
                    started.shard, started.cpu, planned[started.shard].id
                ));
            }
        }
    }
    tracing::info!(
        shards = placement.shards,
        placement = if placement.cpus.is_some() {
            placement.kind.name()
        } else {
            "unpinned"
        },
        numa_node = placement.numa_node,
        "shard map: {placement}"
    );
    match echo_addr {
        Some(echo) => tracing::info!("ready to accept connections on {resp_addr} (echo on {echo})"),
        None => tracing::info!("ready to accept connections on {resp_addr}"),
    }

    if let Some(sig) = signals.forever().next() {
        let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
        tracing::info!("received {name}, exiting");
    }
    // Nothing is buffered, and exit handlers (allocator, runtime statics) must not run
    // while shards are still serving: leave at once.
    // SAFETY: _exit has no preconditions; it ends the process.
    unsafe { libc::_exit(0) }
}

/// Which shards run listeners (`--listen-shards`), in shard order.
fn listening_shards(args: &cli::Args, shards: usize) -> Result<Vec<bool>, String> {
    let Some(list) = &args.listen_shards else {
        return Ok(vec![true; shards]);
    };
    let mut on = vec![false; shards];
    for &s in &list.0 {
        if s >= shards {
            return Err(format!(
                "--listen-shards names shard {s}, but there are only {shards} (0-{})",
                shards - 1
            ));
        }
        on[s] = true;
    }
    Ok(on)
}

/// Checks what glommio needs before it would panic without explaining why.
fn preflight() -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY
        && lim.rlim_cur < 512 * 1024
    {
        return Err(format!(
            "the locked-memory limit (ulimit -l) is {} KiB; io_uring needs at least 512 KiB. \
             Raise it with `ulimit -l 8192` (or LimitMEMLOCK= under systemd)",
            lim.rlim_cur / 1024
        ));
    }
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        match v.trim() {
            "2" => {
                return Err("io_uring is disabled on this machine (sysctl \
                            kernel.io_uring_disabled=2); corekv needs it: \
                            sysctl -w kernel.io_uring_disabled=0"
                    .into())
            }
            // SAFETY: geteuid has no preconditions.
            "1" if unsafe { libc::geteuid() } != 0 => tracing::warn!(
                "kernel.io_uring_disabled=1: only root or members of \
                 kernel.io_uring_group may use io_uring; startup may fail"
            ),
            _ => {}
        }
    }
    Ok(())
}

/// Resolves `bind:port`. For port 0, binds a socket (SO_REUSEPORT, not listening) to
/// get a free port and keeps it, so every shard can then bind that same port.
fn reserve(bind: &str, port: u16) -> Result<(SocketAddr, Option<Socket>), String> {
    let addr = (bind, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve --bind {bind}: {e}"))?
        .next()
        .ok_or_else(|| format!("--bind {bind} resolves to no address"))?;
    if port != 0 {
        return Ok((addr, None));
    }
    let sk = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .and_then(|sk| {
            sk.set_reuse_address(true)?;
            sk.set_reuse_port(true)?;
            sk.bind(&addr.into())?;
            Ok(sk)
        })
        .map_err(|e| format!("cannot pick a free port on {bind}: {e}"))?;
    let local = sk
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or("cannot read the port picked")?;
    Ok((local, Some(sk)))
}

/// `sysname release machine`, as Redis's INFO `os` line.
fn os_name() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated strings.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return std::env::consts::OS.to_string();
        }
        let field = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        )
    }
}

/// 40 hex characters, different for every run (INFO `run_id`).
fn run_id() -> String {
    let mut x = clock::now_ms() ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    (0..40)
        .map(|_| {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 60) as u32;
            char::from_digit(v, 16).unwrap_or('0')
        })
        .collect()
}
