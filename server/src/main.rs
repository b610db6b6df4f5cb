//! `corekv`: the server binary. Parses flags, checks the machine can run it, picks the
//! CPUs, starts one shard per CPU and waits for a signal.
//!
//! The modules, from the outside in: [`cli`] (flags), [`config_file`] (`--config`),
//! [`topology`] (which CPUs),
//! [`runtime`] (executors, listeners), [`connection`] (a client's read–dispatch–write
//! loop), [`transport`] (messages between shards), [`echo`] (the raw echo listener),
//! [`metrics`] (the Prometheus endpoint), [`lifecycle`] (shutdown, between the shard
//! threads and this one).
//! Everything a shard owns and every command live in the `corekv-shard` crate; the wire
//! format in `corekv-protocol`.

mod aof;
mod cli;
mod config_file;
mod connection;
mod echo;
mod lifecycle;
mod metrics;
mod persist;
mod runtime;
mod topology;
mod transport;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use corekv_protocol::Limits;
use corekv_shard::Config;
use lifecycle::{Event, Lifecycle, Phase};
use signal_hook::consts::{SIGINT, SIGTERM};
use socket2::{Domain, Protocol, Socket, Type};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `name`, a file or directory name inside `--dir` (setting `setting`), or Redis's
/// error for a path.
fn plain_name(name: &str, setting: &str, kind: &str) -> Result<String, String> {
    if name.contains('/') || name.is_empty() {
        return Err(format!("{setting} can't be a path, just a {kind}"));
    }
    Ok(name.to_string())
}

fn main() -> ExitCode {
    let args = parse_args();
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

/// Flags, with `--config`'s directives first so the command line overrides them.
fn parse_args() -> cli::Args {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args = cli::Args::parse_from(&argv);
    let Some(path) = &args.config else {
        return args;
    };
    let flags = match config_file::load(path) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("corekv: {e}");
            std::process::exit(2);
        }
    };
    let mut all: Vec<std::ffi::OsString> = argv[..1].to_vec();
    all.extend(flags.into_iter().map(Into::into));
    all.extend(argv[1..].iter().cloned());
    cli::Args::try_parse_from(all).unwrap_or_else(|e| {
        eprintln!("corekv: in config file {}:", path.display());
        e.exit()
    })
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
    let optional = |port: Option<u16>| match port {
        Some(port) => reserve(&args.bind, port).map(|(addr, held)| (Some(addr), held)),
        None => Ok((None, None)),
    };
    let (echo_addr, _echo_reservation) = optional(args.echo_port)?;
    let (metrics_addr, _metrics_reservation) = optional(args.metrics_port)?;
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
        output_limits: args.client_output_buffer_limit,
        maxmemory: args.maxmemory,
        script_heap_limit: args.script_heap_limit,
        maxmemory_policy: args.maxmemory_policy,
        maxclients: args.maxclients,
        timeout: args.timeout,
        requirepass: args.requirepass.clone().into_bytes(),
        protected_mode: args.protected_mode,
        slowlog_slower_than: args.slowlog_log_slower_than,
        slowlog_max_len: args.slowlog_max_len,
        busy_reply_threshold: args.busy_reply_threshold,
        shutdown_timeout: args.shutdown_timeout,
        save: args.save.0.clone(),
        dir: std::fs::canonicalize(&args.dir)
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| format!("Can't chdir to '{}': No such directory", args.dir.display()))?
            .to_string_lossy()
            .into_owned(),
        dbfilename: plain_name(&args.dbfilename, "dbfilename", "filename")?,
        rdbcompression: args.rdbcompression,
        rdbchecksum: args.rdbchecksum,
        stop_writes_on_bgsave_error: args.stop_writes_on_bgsave_error,
        appendonly: args.appendonly,
        appendfsync: args.appendfsync,
        appenddirname: plain_name(&args.appenddirname, "appenddirname", "dirname")?,
        appendfilename: plain_name(&args.appendfilename, "appendfilename", "filename")?,
        aof_load_truncated: args.aof_load_truncated,
        auto_aof_rewrite_percentage: args.auto_aof_rewrite_percentage,
        auto_aof_rewrite_min_size: args.auto_aof_rewrite_min_size,
        config_file: args
            .config
            .as_ref()
            .map(|p| {
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .unwrap_or_default(),
        executable: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        started_ms: corekv_shard::ticks::unix_ms(),
        run_id: run_id(),
        coll: corekv_shard::config::CollLimits {
            hash_entries: args.hash_max_listpack_entries,
            hash_value: args.hash_max_listpack_value,
            set_intset: args.set_max_intset_entries,
            list_fill: args.list_max_listpack_size,
            list_compress: args.list_compress_depth,
            zset_entries: args.zset_max_listpack_entries,
            zset_value: args.zset_max_listpack_value,
        },
        notify_keyspace_events: args.notify_keyspace_events,
        os: os_name(),
    };
    warn_about_risks(&config, resp_addr);
    tracing::info!(
        port = config.port,
        bind = %config.bind,
        shards = config.shards,
        maxclients = config.maxclients,
        timeout = config.timeout,
        password = if config.requirepass.is_empty() { "none" } else { "set" },
        protected_mode = config.protected_mode,
        slowlog_log_slower_than = config.slowlog_slower_than,
        shutdown_timeout = config.shutdown_timeout,
        config_file = %config.config_file,
        "configuration"
    );
    aof::prepare(&config)?;
    let (lifecycle, events) = Lifecycle::new(config.shards, config.shutdown_timeout);
    let lifecycle = Arc::new(lifecycle);
    forward_signals(lifecycle.sender())?;
    let (started_tx, started_rx) = mpsc::channel();
    let endpoints = runtime::Endpoints {
        resp: resp_addr,
        echo: echo_addr,
        listening,
        metrics: metrics_addr,
    };
    let _pool = runtime::start(config, &placement, endpoints, lifecycle.clone(), started_tx)?;
    let mut rings = Vec::with_capacity(placement.shards);
    for _ in 0..placement.shards {
        let started = started_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the shards did not start within 60 s".to_string())?;
        started.result?;
        rings.push(started.rings);
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
    report_ring_flags(&rings);
    if let Some(m) = metrics_addr {
        tracing::info!("metrics at http://{m}/metrics");
    }
    match echo_addr {
        Some(echo) => tracing::info!("ready to accept connections on {resp_addr} (echo on {echo})"),
        None => tracing::info!("ready to accept connections on {resp_addr}"),
    }

    let reason = serve_until_stopped(&lifecycle, &events);
    // A second signal means now: no final snapshot then. A drain that timed out still
    // takes it (the data is all in memory), then exits 1.
    let clean = match drain(&lifecycle, &events, reason, placement.shards) {
        Drain::Forced => false,
        Drain::Clean => final_save(&lifecycle, &events),
        Drain::TimedOut => {
            final_save(&lifecycle, &events);
            false
        }
    };
    // Every reply that was going to be written has been; exit handlers (allocator,
    // runtime statics) must not run while executor threads still exist: leave at once.
    // SAFETY: _exit has no preconditions; it ends the process.
    unsafe { libc::_exit(if clean { 0 } else { 1 }) }
}

/// Delivers SIGINT and SIGTERM to the main thread as [`Event::Signal`]s, from a thread
/// of their own.
fn forward_signals(events: std::sync::mpsc::Sender<Event>) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("corekv-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                if events.send(Event::Signal(name)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// Waits for a signal or a SHUTDOWN, keeping the watchdog on the shards meanwhile;
/// returns what asked for the stop.
fn serve_until_stopped(lifecycle: &Lifecycle, events: &Receiver<Event>) -> &'static str {
    loop {
        match events.recv_timeout(lifecycle::SILENCE) {
            Ok(Event::Signal(name)) => return name,
            Ok(Event::ShutdownCommand(_)) => return "SHUTDOWN",
            Ok(Event::Drained(_) | Event::Saved(_)) => {}
            Err(RecvTimeoutError::Timeout) => watchdog(lifecycle),
            // Every sender is gone: nothing can ask for a stop any more.
            Err(RecvTimeoutError::Disconnected) => return "lost its event channel",
        }
    }
}

/// Has shard 0 take the final snapshot (when SHUTDOWN or `save` asks for one) now that
/// no client is left; waits for it, or a second signal. Returns whether the process may
/// exit cleanly.
fn final_save(lifecycle: &Lifecycle, events: &Receiver<Event>) -> bool {
    lifecycle.final_save();
    loop {
        match events.recv_timeout(lifecycle::SILENCE) {
            Ok(Event::Saved(true)) => return true,
            Ok(Event::Saved(false)) => {
                tracing::error!(
                    "the final snapshot failed: data written since the last one is lost"
                );
                return lifecycle.forced();
            }
            Ok(Event::Signal(name)) => {
                tracing::warn!("{name} received during the final snapshot: exiting now");
                return false;
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => watchdog(lifecycle),
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

/// Rings the shards that went silent, and says so.
fn watchdog(lifecycle: &Lifecycle) {
    for shard in lifecycle.watchdog(lifecycle::SILENCE) {
        tracing::debug!(
            shard,
            "watchdog: shard silent for over {:?}; woken",
            lifecycle::SILENCE
        );
    }
}

/// How a drain ended.
enum Drain {
    /// Every shard drained.
    Clean,
    /// `shutdown-timeout` passed first.
    TimedOut,
    /// A second signal arrived first.
    Forced,
}

/// Stops every shard and waits until each has drained, `shutdown-timeout` passes, or a
/// second signal arrives. Logs the outcome and says which it was.
fn drain(lifecycle: &Lifecycle, events: &Receiver<Event>, reason: &str, shards: usize) -> Drain {
    let timeout = Duration::from_secs(lifecycle.timeout());
    tracing::info!(
        "{reason}: shutting down; no new connections, finishing in-flight requests (at most {} s)",
        timeout.as_secs()
    );
    let started = Instant::now();
    let deadline = started + timeout;
    lifecycle.stop();
    let mut drained = vec![false; shards];
    let mut forced = None;
    while drained.iter().any(|d| !d) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match events.recv_timeout(left.min(lifecycle::SILENCE)) {
            Ok(Event::Drained(id)) => drained[id] = true,
            Ok(Event::Signal(name)) => {
                forced = Some(name);
                break;
            }
            Ok(Event::ShutdownCommand(_) | Event::Saved(_)) => {}
            Err(RecvTimeoutError::Timeout) => watchdog(lifecycle),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let ms = started.elapsed().as_millis();
    if drained.iter().all(|&d| d) {
        let (commands, connections) = lifecycle.served();
        tracing::info!(
            "shut down cleanly in {ms} ms: {commands} commands served over {connections} \
             connections; bye"
        );
        return Drain::Clean;
    }
    let left: Vec<usize> = (0..shards).filter(|&i| !drained[i]).collect();
    match forced {
        Some(name) => tracing::warn!("{name} received during shutdown: exiting now"),
        None => tracing::error!(
            "shutdown-timeout ({} s) passed with {} of {shards} shards still draining",
            timeout.as_secs(),
            left.len()
        ),
    }
    for id in left {
        match lifecycle.phase(id) {
            Phase::Serving => tracing::error!(
                "shard {id} never started draining: its executor did not wake for the stop"
            ),
            _ => tracing::error!("shard {id} still waits for {}", lifecycle.waiting_for(id)),
        }
    }
    tracing::warn!("exiting after {ms} ms without a clean drain (exit status 1)");
    if forced.is_some() {
        Drain::Forced
    } else {
        Drain::TimedOut
    }
}

/// Says whether every shard's io_uring rings got `IORING_SETUP_COOP_TASKRUN`, and
/// loudly why not when they did not (see the `corekv-ring-flags` crate).
fn report_ring_flags(shards: &[corekv_ring_flags::RingCounts]) {
    use corekv_ring_flags::Verdict;
    let changed: u32 = shards.iter().map(|c| c.changed).sum();
    let seen: u32 = shards.iter().map(|c| c.seen).sum();
    let verdicts: Vec<Verdict> = shards.iter().map(|c| c.verdict()).collect();
    if verdicts.iter().all(|v| *v == Verdict::InForce) {
        tracing::info!(
            "io_uring: COOP_TASKRUN|TASKRUN_FLAG on {changed} of {seen} rings (the rest \
             poll for file I/O), every shard"
        );
    } else if verdicts.contains(&Verdict::KernelTooOld) {
        tracing::warn!(
            "io_uring: this kernel does not know IORING_SETUP_COOP_TASKRUN (Linux 5.19+); \
             the rings work as before, but each request from a client on another CPU costs \
             an inter-processor interrupt"
        );
    } else {
        tracing::warn!(
            "io_uring: the rings of {} shard(s) did not get IORING_SETUP_COOP_TASKRUN: glommio \
             no longer sets its rings up through libc's syscall(), or the binary was linked \
             without -Wl,--wrap=syscall; each request from a client on another CPU costs an \
             inter-processor interrupt (counts per shard: {shards:?})",
            verdicts.iter().filter(|v| **v != Verdict::InForce).count()
        );
    }
}

/// Logs the settings that put data or the machine at risk.
fn warn_about_risks(config: &Config, addr: SocketAddr) {
    if !addr.ip().is_loopback() && config.requirepass.is_empty() {
        if config.protected_mode {
            tracing::warn!(
                "listening on {addr} with no password: protected mode is on, so clients from \
                 other hosts are refused until requirepass is set (or protected-mode no)"
            );
        } else {
            tracing::warn!(
                "listening on {addr} with no password and protected mode off: anyone who can \
                 reach this port can read, change and delete every key"
            );
        }
    }
    if let Some(limit) = memlock_limit() {
        let need = config.shards as u64 * runtime::LOCKED_PER_SHARD as u64;
        if limit < need {
            tracing::warn!(
                "the locked-memory limit (ulimit -l) is {} KiB and {} shards may need about {} \
                 KiB of it for their io_uring rings; if startup fails, raise it (ulimit -l, \
                 LimitMEMLOCK= under systemd) or use fewer shards",
                limit / 1024,
                config.shards,
                need / 1024
            );
        }
    }
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

/// The locked-memory limit (`ulimit -l`) in bytes, or `None` when unlimited or unknown.
fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0;
    (ok && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// Checks what glommio needs before it would panic without explaining why.
fn preflight() -> Result<(), String> {
    if let Some(limit) = memlock_limit().filter(|&l| l < runtime::RINGS_LOCKED as u64) {
        return Err(format!(
            "the locked-memory limit (ulimit -l) is {} KiB; io_uring needs at least {} KiB. \
             Raise it with `ulimit -l 8192` (or LimitMEMLOCK= under systemd)",
            limit / 1024,
            runtime::RINGS_LOCKED / 1024
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
    probe_io_uring()
}

/// Creates and closes a tiny io_uring, so that a kernel without it or a seccomp profile
/// that forbids it gets a clear message instead of glommio's panic.
fn probe_io_uring() -> Result<(), String> {
    // struct io_uring_params is 120 bytes; zeroed means default flags.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes `params`, 120 bytes as the kernel expects,
    // and returns a descriptor we close at once.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: fd is the descriptor io_uring_setup just returned.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no io_uring (io_uring_setup: ENOSYS); corekv \
                               needs Linux 5.8 or later built with CONFIG_IO_URING"
            .into(),
        Some(libc::EPERM) => "io_uring is not permitted here (io_uring_setup: EPERM): either \
                              sysctl kernel.io_uring_disabled is set for this user, or a \
                              seccomp profile blocks it (Docker's default does: run with a \
                              profile that allows io_uring_setup, io_uring_enter and \
                              io_uring_register)"
            .into(),
        Some(libc::ENOMEM) => "io_uring_setup failed with ENOMEM: the locked-memory limit \
                               (ulimit -l) is too low"
            .into(),
        _ => format!("io_uring_setup failed: {err}"),
    })
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
    let mut x = corekv_shard::ticks::unix_ms()
        ^ (u64::from(std::process::id()) << 32)
        ^ 0x9e37_79b9_7f4a_7c15;
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
