//! Running one phase of load (the prefill, then the measured run): one glommio executor
//! per thread, pinned if asked, each owning its connections and its [`Stats`]. Threads
//! share nothing while the load runs; they meet only at the start (every connection is
//! open before the main thread starts the clock for all) and at the end (their stats are merged).
//! Progress snapshots go to the main thread every 250 ms over a channel, off the request
//! path.

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{spawn_local, LocalExecutorBuilder, Placement};

use crate::client::{self, Ctx, Plan};
use crate::config::Config;
use crate::stats::Stats;

/// Memory each executor registers with io_uring for file I/O: the bench does none, and
/// sockets do not use it, so keep it small under a modest `ulimit -l`.
const IO_MEMORY: usize = 128 * 1024;

/// How often threads report progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A phase of load to run.
pub struct Phase {
    /// Settings of this phase (the prefill runs with its own).
    pub cfg: Arc<Config>,
    /// Name shown on the progress line.
    pub label: &'static str,
    /// One plan per connection, in connection order.
    pub plans: Vec<Plan>,
    /// Load before measuring.
    pub warmup: Duration,
    /// Measured time, if timed (otherwise the plans' quotas end the phase).
    pub duration: Option<Duration>,
}

impl Phase {
    /// The measured run of `cfg`: `--requests` split evenly across connections.
    pub fn measured(cfg: Arc<Config>) -> Phase {
        let n = cfg.connections as u64;
        let plans = (0..n)
            .map(|idx| Plan {
                idx,
                quota: cfg
                    .requests
                    .map(|total| total / n + u64::from(idx < total % n)),
                first_key: None,
            })
            .collect();
        Phase {
            label: "run",
            warmup: cfg.warmup,
            duration: cfg.duration,
            plans,
            cfg,
        }
    }

    /// Loading every key of `cfg`'s key space once: each connection SETs its own
    /// contiguous range of keys, pipelined, with the run's value sizes.
    pub fn prefill(cfg: &Config) -> Phase {
        let mut pre = cfg.clone();
        pre.ratio = (1, 0);
        pre.key_dist = crate::workload::KeyDist::Sequential;
        pre.mode = crate::config::Mode::Closed;
        pre.pipeline = cfg.pipeline.max(32);
        pre.connections = cfg
            .connections
            .min(cfg.keys.max(cfg.threads as u64) as usize);
        let n = pre.connections as u64;
        let plans = (0..n)
            .map(|idx| {
                let lo = cfg.keys * idx / n;
                let hi = cfg.keys * (idx + 1) / n;
                Plan {
                    idx,
                    quota: Some(hi - lo),
                    first_key: Some(lo),
                }
            })
            .collect();
        Phase {
            cfg: Arc::new(pre),
            label: "prefill",
            plans,
            warmup: Duration::ZERO,
            duration: None,
        }
    }
}

/// What a phase measured.
pub struct Outcome {
    /// Every thread's stats, merged.
    pub stats: Stats,
    /// The measured window: from the end of warmup until the last connection finished.
    pub window: Duration,
}

/// A thread's message to the main thread.
enum Report {
    /// Its connections are open (or why they could not be).
    Ready(Result<(), String>),
    /// Replies and errors so far.
    Progress {
        thread: usize,
        answered: u64,
        errors: u64,
    },
    /// Its share is done.
    Done(Box<Stats>),
}

/// Runs a phase to completion. `Err` is a message for the user (the server could not be
/// reached, an executor could not start).
pub fn run(phase: Phase, show_progress: bool) -> Result<Outcome, String> {
    let cfg = phase.cfg.clone();
    let threads = cfg.threads;
    let measure_from = phase.warmup.as_nanos() as u64;
    let stop_at = phase.duration.map(|d| measure_from + d.as_nanos() as u64);
    let (tx, rx) = mpsc::channel::<Report>();
    // Each thread waits on its own channel for the start signal: the epoch, or `None`
    // when the run is called off.
    let mut starts: Vec<mpsc::Sender<Option<Instant>>> = Vec::new();

    let mut per_thread: Vec<Vec<Plan>> = (0..threads).map(|_| Vec::new()).collect();
    for plan in phase.plans {
        per_thread[plan.idx as usize % threads].push(plan);
    }
    let mut handles = Vec::new();
    for (t, plans) in per_thread.into_iter().enumerate() {
        let placement = match &cfg.cpus {
            Some(cpus) => Placement::Fixed(cpus[t]),
            None => Placement::Unbound,
        };
        let (cfg, tx) = (cfg.clone(), tx.clone());
        let (start_tx, start_rx) = mpsc::channel();
        let spawned = LocalExecutorBuilder::new(placement)
            .name("corekv-bench")
            .io_memory(IO_MEMORY)
            // As corekv's: a preemption timer that fires while the thread is descheduled
            // can make glommio 0.9 park with tasks queued; these tasks yield on their own.
            .preempt_timer(Duration::from_secs(3600))
            .spawn(move || async move {
                thread_main(t, cfg, plans, measure_from, stop_at, start_rx, tx).await
            });
        match spawned {
            Ok(h) => {
                handles.push(h);
                starts.push(start_tx);
            }
            Err(e) => {
                // Call off the threads already started.
                for s in &starts {
                    let _ = s.send(None);
                }
                for h in handles {
                    let _ = h.join();
                }
                return Err(format!("cannot start load thread {t}: {e}"));
            }
        }
    }
    drop(tx);

    // Every thread opens its connections, then the clock starts for all at once.
    let mut setup_error = None;
    for _ in 0..threads {
        match rx.recv() {
            Ok(Report::Ready(Err(e))) => setup_error = setup_error.or(Some(e)),
            Ok(Report::Ready(Ok(()))) => {}
            _ => setup_error = setup_error.or(Some("a load thread died while connecting".into())),
        }
    }
    let epoch = Instant::now();
    for s in &starts {
        let _ = s.send(setup_error.is_none().then_some(epoch));
    }

    let mut merged = Stats::default();
    let mut progress = Progress::new(
        threads,
        show_progress && setup_error.is_none(),
        phase.label,
        measure_from,
    );
    let mut done = 0;
    while done < threads {
        match rx.recv_timeout(PROGRESS_EVERY) {
            Ok(Report::Progress {
                thread,
                answered,
                errors,
            }) => progress.update(thread, answered, errors),
            Ok(Report::Done(stats)) => {
                merged.merge(&stats);
                done += 1;
            }
            Ok(Report::Ready(_)) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        progress.draw(epoch.elapsed());
    }
    progress.clear();
    for h in handles {
        if h.join().is_err() {
            return Err("a load thread panicked".into());
        }
    }
    if let Some(e) = setup_error {
        return Err(e);
    }
    if done < threads {
        return Err("a load thread ended without reporting".into());
    }
    let end = merged.ended_ns.max(merged.last_reply_ns);
    let window = Duration::from_nanos(end.saturating_sub(measure_from));
    Ok(Outcome {
        stats: merged,
        window,
    })
}

/// Warns when this thread's io_uring rings did not get `IORING_SETUP_COOP_TASKRUN`: the
/// load generator then takes an interrupt per reply and saturates sooner.
fn warn_without_ring_flags() {
    use corekv_ring_flags::Verdict;
    let counts = corekv_ring_flags::this_thread();
    match counts.verdict() {
        Verdict::InForce | Verdict::NotApplicable => {}
        Verdict::KernelTooOld => eprintln!(
            "corekv-bench: this kernel has no IORING_SETUP_COOP_TASKRUN (Linux 5.19+): each \
             reply costs an inter-processor interrupt"
        ),
        Verdict::NotWrapped => eprintln!(
            "corekv-bench: the io_uring rings did not get IORING_SETUP_COOP_TASKRUN (glommio \
             no longer sets them up through syscall()?): each reply costs an \
             inter-processor interrupt"
        ),
    }
}

async fn thread_main(
    thread: usize,
    cfg: Arc<Config>,
    plans: Vec<Plan>,
    measure_from: u64,
    stop_at: Option<u64>,
    start: mpsc::Receiver<Option<Instant>>,
    tx: mpsc::Sender<Report>,
) {
    if thread == 0 {
        warn_without_ring_flags();
    }
    // Open every connection first, concurrently.
    let connecting: Vec<_> = plans
        .iter()
        .map(|_| {
            let cfg = cfg.clone();
            spawn_local(async move { client::connect(&cfg).await })
        })
        .collect();
    let mut streams = Vec::with_capacity(plans.len());
    let mut error = None;
    for task in connecting {
        match task.await {
            Ok(s) => streams.push(s),
            Err(e) => {
                error.get_or_insert_with(|| {
                    format!("cannot connect to {}:{}: {e}", cfg.host, cfg.port)
                });
            }
        }
    }
    let _ = tx.send(Report::Ready(match error {
        Some(e) => Err(e),
        None => Ok(()),
    }));
    // Blocking is fine here: this thread's connections have nothing to do yet.
    let Ok(Some(epoch)) = start.recv() else {
        let _ = tx.send(Report::Done(Box::default()));
        return;
    };

    let ctx = Rc::new(Ctx {
        cfg,
        epoch,
        measure_from,
        stop_at,
        stats: RefCell::new(Stats::default()),
        answered: Cell::new(0),
        watches: RefCell::new(Vec::new()),
    });
    let finished = Rc::new(Cell::new(false));
    let reporter = {
        let (ctx, finished, tx) = (ctx.clone(), finished.clone(), tx.clone());
        spawn_local(async move {
            while !finished.get() {
                glommio::timer::sleep(PROGRESS_EVERY).await;
                let errors = ctx.stats.borrow().errors();
                let _ = tx.send(Report::Progress {
                    thread,
                    answered: ctx.answered.get(),
                    errors,
                });
            }
        })
    };
    let watchdog = spawn_local(client::watchdog(ctx.clone(), finished.clone()));
    let tasks: Vec<_> = plans
        .into_iter()
        .zip(streams)
        .map(|(plan, stream)| spawn_local(client::run(ctx.clone(), plan, Some(stream))))
        .collect();
    for task in tasks {
        task.await;
    }
    finished.set(true);
    drop(reporter); // cancels its sleep
    drop(watchdog);
    let mut stats = ctx.stats.take();
    stats.ended_ns = epoch.elapsed().as_nanos() as u64;
    let _ = tx.send(Report::Done(Box::new(stats)));
}

/// The live progress line (on a terminal only).
struct Progress {
    enabled: bool,
    label: &'static str,
    measure_from: Duration,
    answered: Vec<u64>,
    errors: Vec<u64>,
    last_draw: Option<(Duration, u64)>,
    rate: f64,
}

impl Progress {
    fn new(threads: usize, wanted: bool, label: &'static str, measure_from: u64) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            label,
            measure_from: Duration::from_nanos(measure_from),
            answered: vec![0; threads],
            errors: vec![0; threads],
            last_draw: None,
            rate: 0.0,
        }
    }

    fn update(&mut self, thread: usize, answered: u64, errors: u64) {
        self.answered[thread] = answered;
        self.errors[thread] = errors;
    }

    fn draw(&mut self, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let total: u64 = self.answered.iter().sum();
        let errors: u64 = self.errors.iter().sum();
        match self.last_draw {
            Some((at, _)) if elapsed - at < PROGRESS_EVERY => return,
            Some((at, before)) => {
                self.rate = (total - before) as f64 / (elapsed - at).as_secs_f64();
            }
            None => {}
        }
        self.last_draw = Some((elapsed, total));
        let phase = if elapsed < self.measure_from {
            "warmup"
        } else {
            self.label
        };
        let errs = if errors > 0 {
            format!("  \x1b[1;31m{errors} ERRORS\x1b[0m")
        } else {
            String::new()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{:>6.1}s] {phase:<8} {:>12} req/s  {:>14} replies{errs}",
            elapsed.as_secs_f64(),
            crate::report::thousands(self.rate as u64),
            crate::report::thousands(total),
        );
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.enabled && self.last_draw.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
