//! Starting the shards: one glommio executor per shard (pinned unless `--no-pin`), the
//! channel mesh between them, and in each shard its listener(s), mesh tasks and connections.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::{Duration, Instant};

use corekv_ring_flags::RingCounts;
use corekv_shard::command::Commands;
use corekv_shard::message::Msg;
use corekv_shard::{Config, Shard};
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::net::TcpListener;
use glommio::timer::Timer;
use glommio::{
    executor, spawn_local, spawn_local_into, CpuSet, Latency, LocalExecutorPoolBuilder,
    PoolPlacement, PoolThreadHandles, Shares,
};
use socket2::{Domain, Protocol, Socket, Type};

use crate::lifecycle::{Event, Lifecycle};
use crate::topology::Placement;
use crate::{connection, echo, metrics, persist, transport};
use corekv_shard::ticks::unix_ms as now_ms;

/// Memory each executor registers with io_uring for file I/O. corekv does no file I/O
/// yet and sockets do not use it; small keeps many shards within a modest `ulimit -l`.
const IO_MEMORY: usize = 128 * 1024;

/// Locked memory io_uring needs for one executor's rings: below this per process,
/// glommio cannot start at all.
pub const RINGS_LOCKED: usize = 512 * 1024;

/// Locked memory one shard may need (its rings and registered buffers), for the startup
/// warning about `ulimit -l` (scripts/lib/machine.py's MEMLOCK_PER_SHARD_KIB says the same).
pub const LOCKED_PER_SHARD: usize = RINGS_LOCKED + IO_MEMORY;

/// Listen backlog of each shard's listener.
const BACKLOG: i32 = 1024;

/// Longest each shard's executor sleeps, even with no timer due: the heartbeat the
/// lifecycle watchdog listens for (see [`crate::lifecycle`]), and the most a wakeup
/// glommio might lose can cost (see the backstop in [`drive_timers`]). It was 10 ms while
/// lost wakeups were common (a Latency::Matters(1ms) queue, see [`PREEMPT`]); with them
/// gone, a 1 s tick left cross-shard GETs at 2,000/s with the same latency (max 16-23 ms
/// against 4-13 ms, p99.9 7-11 ms against 1-8 ms on a shared CPU: no stall near the tick)
/// and idle CPU falls tenfold (1.3% of a core per shard at 10 ms).
pub const LIVENESS_TICK: Duration = Duration::from_millis(100);

/// glommio's preemption timer. glommio 0.9 arms it (on its latency ring) before every
/// run of its task queues, and if it has already fired when the scheduler first checks
/// it, the executor runs nothing and parks, leaving every task that was just woken
/// (a timer's, a socket's) queued until something else wakes the thread. With a 1 ms
/// timer (a `Latency::Matters(1ms)` queue) a thread descheduled for a millisecond at the
/// wrong moment, common on a loaded machine, stalled its shard for good: shutdowns hung,
/// requests timed out. Preemption buys corekv nothing (its tasks yield on their own: a
/// round per connection, a batch per message, a budget per timer run), so it is set far
/// beyond any descheduling, and no task queue asks for a latency bound.
pub const PREEMPT: Duration = Duration::from_secs(3600);

/// Most timers (expiring keys, idle connections) handled before other tasks run again.
const TIMER_BUDGET: usize = 1000;

/// How often a shard does its housekeeping: shrinking a keyspace that has mostly emptied,
/// and asking the allocator to return freed memory to the OS (mimalloc defers that work
/// to allocations on the owning thread, so a shard that freed a large value and then went
/// quiet would keep its pages resident indefinitely).
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Drives the shard's timing wheel: sleeps until its next deadline (at most
/// [`LIVENESS_TICK`]), then expires keys and closes idle connections in batches of
/// [`TIMER_BUDGET`], letting other task queues run between batches so a mass expiry does
/// not stall the shard. Each tick is a heartbeat for the lifecycle watchdog.
async fn drive_timers(shard: Rc<RefCell<Shard>>, lifecycle: Arc<Lifecycle>) {
    let mut last_collect = std::time::Instant::now();
    let mut grace = None;
    loop {
        let id = {
            let mut sh = shard.borrow_mut();
            let st = sh.state_mut();
            // CONFIG SET shutdown-timeout reaches the main thread here.
            let timeout = st.config().shutdown_timeout;
            if grace != Some(timeout) {
                grace = Some(timeout);
                lifecycle.set_timeout(timeout);
            }
            st.stats_mut().watchdog_wakes = lifecycle.watchdog_wakes(st.id());
            st.id()
        };
        lifecycle.beat(id);
        if last_collect.elapsed() >= HOUSEKEEPING {
            shard.borrow_mut().state_mut().housekeeping();
            // SAFETY: mi_collect has no preconditions; `false` asks for the cheap,
            // non-forced collection.
            unsafe { libmimalloc_sys::mi_collect(false) };
            last_collect = std::time::Instant::now();
        }
        let now = now_ms();
        let wait = match shard.borrow().state().next_timer() {
            _ if shard.borrow().state().has_background_work() => Duration::ZERO,
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => Duration::from_millis(at - now).min(LIVENESS_TICK),
            None => LIVENESS_TICK,
        };
        if !wait.is_zero() {
            // A second timer one tick later, dropped unfired in the normal case: should
            // glommio park with this task woken but not run (see PREEMPT), the backstop
            // is still armed and wakes the executor, which then runs every queued task.
            // So a lost wakeup, of this task or any other, costs at most a tick.
            let backstop_at = Instant::now() + wait + LIVENESS_TICK;
            let (tick, backstop) = (Timer::new(wait), Timer::new(wait + LIVENESS_TICK));
            futures_lite::future::or(tick, backstop).await;
            if Instant::now() >= backstop_at {
                shard.borrow_mut().state_mut().stats_mut().late_ticks += 1;
            }
        }
        let more = {
            let mut sh = shard.borrow_mut();
            sh.state_mut().set_now(now_ms());
            sh.run_timers(TIMER_BUDGET)
        };
        if more {
            executor().yield_task_queue_now().await;
        }
    }
}

/// How often a draining shard refreshes what it tells the main thread it waits for.
const DRAIN_STATUS_REFRESH: Duration = Duration::from_millis(100);

/// The shard's side of a shutdown (see [`crate::lifecycle`]): passes on a SHUTDOWN run
/// here; once the main thread rings the doorbell, stops accepting and closes each
/// connection after its current round, and reports when none is left. Woken only by
/// those events.
async fn follow_lifecycle(shard: Rc<RefCell<Shard>>, lifecycle: Arc<Lifecycle>) {
    let id = shard.borrow().id();
    std::future::poll_fn(|cx| {
        let mut sh = shard.borrow_mut();
        if sh.state_mut().shutdown().poll_request(cx.waker()) {
            lifecycle.set_final_save(sh.state_mut().shutdown().final_save());
            lifecycle.send(Event::ShutdownCommand(id));
        }
        if lifecycle.watch(id, cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    {
        let mut sh = shard.borrow_mut();
        let st = sh.state_mut();
        tracing::debug!(shard = id, connections = st.client_count(), "draining");
        st.begin_shutdown();
    }
    loop {
        let drained = std::future::poll_fn(|cx| {
            let mut sh = shard.borrow_mut();
            let st = sh.state_mut();
            let status = st.drain_status();
            if status.is_empty() {
                return Poll::Ready(());
            }
            lifecycle.draining(id, status);
            st.shutdown().set_waker(cx.waker());
            Poll::Pending
        });
        // Woken by each connection that closes; the status is also refreshed now and
        // then, so a report at the deadline says what the shard waits for by then.
        let refresh = async {
            glommio::timer::sleep(DRAIN_STATUS_REFRESH).await;
            false
        };
        let done = async {
            drained.await;
            true
        };
        if futures_lite::future::or(done, refresh).await {
            break;
        }
    }
    // What the clients wrote is on disk before the shard reports it has drained.
    crate::aof::flush(&shard, Duration::from_secs(10)).await;
    let sh = shard.borrow();
    let stats = sh.state().stats();
    lifecycle.drained(id, stats.commands, stats.connections_received);
}

/// Resolves when the shard starts draining for a shutdown.
async fn stopped(shard: &Rc<RefCell<Shard>>) {
    std::future::poll_fn(|cx| {
        if shard
            .borrow_mut()
            .state_mut()
            .shutdown()
            .poll_stopping(cx.waker())
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Runs `work` until it finishes (`Some`) or the shard starts draining (`None`): each
/// listener's accept, and the metrics endpoint.
async fn until_stopped<T>(shard: &Rc<RefCell<Shard>>, work: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(work.await) }, async {
        stopped(shard).await;
        None
    })
    .await
}

/// Redis's answer to a client from another host while protected mode is on and no
/// password is set, byte for byte.
const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is \
enabled and no password is set for the default user. In this mode connections are only \
accepted from the loopback interface. If you want to connect from external computers to \
Redis you may adopt one of the following solutions: 1) Just disable protected mode sending \
the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to \
Redis from the same host the server is running, however MAKE SURE Redis is not publicly \
accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. \
2) Alternatively you can just disable the protected mode by editing the Redis configuration \
file, and setting the protected mode option to 'no', and then restarting the server. 3) If \
you started the server manually just for testing, restart it with the '--protected-mode no' \
option. 4) Setup a an authentication password for the default user. NOTE: You only need to \
do one of the above things in order for the server to start accepting connections from the \
outside.\r\n";

/// Writes `reply` to a connection that will not be served, then closes it. The write side
/// is shut first and what the client already sent is read and dropped for a moment, so
/// that closing does not reset the connection (a reset can destroy the reply before the
/// client reads it: clients send their first command without waiting).
fn refuse(stream: glommio::net::TcpStream, reply: &'static [u8]) {
    spawn_local(async move {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        let mut stream = stream;
        if stream.write_all(reply).await.is_ok()
            && stream.shutdown(std::net::Shutdown::Write).await.is_ok()
        {
            let mut sink = [0u8; 4096];
            let drain = async {
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            };
            futures_lite::future::or(drain, glommio::timer::sleep(Duration::from_millis(200)))
                .await;
        }
        let _ = stream.close().await;
    })
    .detach();
}

/// What a shard reports once it is listening, or why it could not start.
#[derive(Debug)]
pub struct Started {
    /// Shard number (its place in the plan when pinned).
    pub shard: usize,
    /// CPU it is pinned to.
    pub cpu: Option<usize>,
    /// `Err` with the reason when the shard could not start.
    pub result: Result<(), String>,
    /// The io_uring rings this shard's executor set up, and whether they got
    /// `IORING_SETUP_COOP_TASKRUN` (see `corekv-ring-flags`).
    pub rings: RingCounts,
}

/// Where the shards listen.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The RESP listener address.
    pub resp: SocketAddr,
    /// The echo listener address, if enabled.
    pub echo: Option<SocketAddr>,
    /// Which shards listen, in shard order (`--listen-shards`).
    pub listening: Vec<bool>,
    /// The Prometheus endpoint, if enabled (served by the first listening shard).
    pub metrics: Option<SocketAddr>,
}

/// Starts every shard; each reports on `started` when it listens or fails.
pub fn start(
    config: Config,
    placement: &Placement,
    endpoints: Endpoints,
    lifecycle: Arc<Lifecycle>,
    started: mpsc::Sender<Started>,
) -> Result<PoolThreadHandles<()>, String> {
    let n = placement.shards;
    let pool_placement = match placement.cpu_ids() {
        Some(cpus) => {
            let online = CpuSet::online().map_err(|e| format!("cannot read CPU topology: {e}"))?;
            PoolPlacement::Custom(
                cpus.iter()
                    .map(|&cpu| online.clone().filter(|l| l.cpu == cpu))
                    .collect(),
            )
        }
        None => PoolPlacement::Unbound(n),
    };
    let mesh: MeshBuilder<Msg, Full> = MeshBuilder::full(n, transport::MESH_CAPACITY);
    let numbering = Arc::new(Numbering::new(n));
    LocalExecutorPoolBuilder::new(pool_placement)
        .name("corekv-shard")
        .io_memory(IO_MEMORY)
        .preempt_timer(PREEMPT)
        .on_all_shards(move || async move {
            shard_main(config, mesh, endpoints, numbering, lifecycle, started).await;
        })
        .map_err(|e| format!("cannot start the shard executors: {e}"))
}

/// Shard numbers follow the placement (shard i on the i-th planned CPU), but glommio
/// numbers mesh peers in the order their executors happened to be created. At startup
/// each shard records which mesh peer it is under its shard number and waits until every
/// shard has; the table is then copied and this is never touched again.
struct Numbering {
    peer_of: Vec<AtomicUsize>,
}

impl Numbering {
    fn new(n: usize) -> Self {
        Numbering {
            peer_of: (0..n).map(|_| AtomicUsize::new(usize::MAX)).collect(),
        }
    }

    /// Records that shard `id` is mesh peer `peer`; fails if another shard took `id`.
    fn claim(&self, id: usize, peer: usize) -> Result<(), String> {
        let slot = self
            .peer_of
            .get(id)
            .ok_or_else(|| format!("shard number {id} out of range"))?;
        slot.compare_exchange(usize::MAX, peer, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| format!("two shards claimed shard number {id}"))
    }

    /// The mesh peer of every shard, once all have claimed their number.
    async fn table(&self) -> Result<Vec<usize>, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let table: Vec<usize> = self
                .peer_of
                .iter()
                .map(|p| p.load(Ordering::Acquire))
                .collect();
            if table.iter().all(|&p| p != usize::MAX) {
                return Ok(table);
            }
            if Instant::now() > deadline {
                return Err("the shards did not agree on their numbers within 30 s".into());
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The CPU the calling thread is pinned to, if it is pinned to exactly one.
fn pinned_cpu() -> Option<usize> {
    match core_affinity::get_core_ids()?.as_slice() {
        [one] => Some(one.id),
        _ => None,
    }
}

/// A listening socket with SO_REUSEPORT (every shard binds the same address; the kernel
/// spreads connections) and SO_REUSEADDR (restarts do not wait for TIME_WAIT).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sk = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sk.set_reuse_address(true)?;
    sk.set_reuse_port(true)?;
    sk.bind(&addr.into())?;
    sk.listen(BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket we own and hand over.
    Ok(unsafe { TcpListener::from_raw_fd(sk.into_raw_fd()) })
}

async fn shard_main(
    config: Config,
    mesh: MeshBuilder<Msg, Full>,
    endpoints: Endpoints,
    numbering: Arc<Numbering>,
    lifecycle: Arc<Lifecycle>,
    started: mpsc::Sender<Started>,
) {
    let (tx, mut rx) = match mesh.join().await {
        Ok(pair) => pair,
        Err(_) => {
            let _ = started.send(Started {
                shard: usize::MAX,
                cpu: None,
                result: Err("cannot join the shard mesh".into()),
                rings: RingCounts::default(),
            });
            return;
        }
    };
    let peer = tx.peer_id();
    let n = config.shards;
    let cpu = config.cpus.as_ref().and_then(|_| pinned_cpu());
    // Pinned: the shard number is the position of this CPU in the plan. Unpinned: any
    // order is as good as another, so keep the mesh's.
    let id = match (&config.cpus, cpu) {
        (Some(planned), Some(c)) => planned.iter().position(|p| p.cpu == c),
        (Some(_), None) => None,
        (None, _) => Some(peer),
    };
    let numbered = id
        .ok_or_else(|| format!("shard (mesh peer {peer}) is not pinned to a planned CPU"))
        .and_then(|id| numbering.claim(id, peer).map(|_| id));
    let numbered = match numbered {
        Ok(id) => numbering.table().await.map(|table| (id, table)),
        Err(e) => Err(e),
    };
    let (id, peer_of) = match numbered {
        Ok(pair) => pair,
        Err(e) => {
            let _ = started.send(Started {
                shard: usize::MAX,
                cpu,
                result: Err(e),
                rings: RingCounts::default(),
            });
            return;
        }
    };
    let mut shard = Shard::new(id, config, Commands::global());
    shard.state_mut().set_cpu(cpu);
    shard.state_mut().set_now(now_ms());
    let shard = Rc::new(RefCell::new(shard));

    // Messages between shards and the shard's timers run in their own queue, scheduled
    // fairly against connection work. No latency bound: see PREEMPT.
    let mesh_queue =
        executor().create_task_queue(Shares::Static(1000), Latency::NotImportant, "mesh");
    for (_, stream) in rx.streams() {
        spawn_local_into(transport::receiver(shard.clone(), stream), mesh_queue)
            .expect("mesh queue exists")
            .detach();
    }
    let tx = Rc::new(tx);
    for dest in (0..n).filter(|&d| d != id) {
        spawn_local_into(
            transport::flusher(shard.clone(), tx.clone(), dest, peer_of[dest]),
            mesh_queue,
        )
        .expect("mesh queue exists")
        .detach();
    }

    spawn_local_into(drive_timers(shard.clone(), lifecycle.clone()), mesh_queue)
        .expect("mesh queue exists")
        .detach();
    spawn_local_into(
        follow_lifecycle(shard.clone(), lifecycle.clone()),
        mesh_queue,
    )
    .expect("mesh queue exists")
    .detach();

    // glommio's first timer sleep registers membarriers and can take tens of ms: pay it
    // before traffic arrives.
    glommio::timer::sleep(Duration::from_millis(1)).await;

    // Tells the starting thread how this shard's startup ended, and what its rings got
    // (glommio set them up on this thread before this task ran).
    let rings = corekv_ring_flags::this_thread();
    let report = |result: Result<(), String>| {
        let _ = started.send(Started {
            shard: id,
            cpu,
            result,
            rings,
        });
    };
    let listens = endpoints.listening.get(id).copied().unwrap_or(true);
    let listener = match listens.then(|| listen(endpoints.resp)).transpose() {
        Ok(l) => l,
        Err(e) => {
            report(Err(format!("cannot listen on {}: {e}", endpoints.resp)));
            return;
        }
    };
    if let Some(addr) = endpoints.echo.filter(|_| listens) {
        match listen(addr) {
            Ok(echo_listener) => {
                let shard = shard.clone();
                spawn_local(async move {
                    loop {
                        match until_stopped(&shard, echo_listener.accept()).await {
                            None => return,
                            Some(Ok(stream)) => {
                                spawn_local(echo::serve(stream)).detach();
                            }
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "echo accept failed");
                                glommio::timer::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                })
                .detach();
            }
            Err(e) => {
                report(Err(format!("cannot listen on {addr} (echo): {e}")));
                return;
            }
        }
    }
    let first_listener = endpoints.listening.iter().position(|&l| l).unwrap_or(0);
    if let Some(addr) = endpoints.metrics.filter(|_| id == first_listener) {
        match listen(addr) {
            Ok(l) => {
                let shard = shard.clone();
                spawn_local(async move {
                    until_stopped(&shard, metrics::serve(shard.clone(), l)).await;
                })
                .detach();
            }
            Err(e) => {
                report(Err(format!("cannot listen on {addr} (metrics): {e}")));
                return;
            }
        }
    }
    // The snapshot file, before any client is served; a file that cannot be loaded stops
    // the server rather than let it start empty over it.
    if let Err(e) = crate::aof::load(&shard).await {
        report(Err(e));
        return;
    }
    if shard.borrow().state().config().appendonly {
        spawn_local_into(crate::aof::writer(shard.clone()), mesh_queue)
            .expect("mesh queue exists")
            .detach();
    }
    spawn_local_into(persist::saver(shard.clone(), lifecycle.clone()), mesh_queue)
        .expect("mesh queue exists")
        .detach();
    report(Ok(()));
    drop(started);

    // A shard without a listener still owns keys and serves forwarded requests.
    let Some(listener) = listener else {
        // The executor runs as long as this future: keep it alive forever.
        return futures_lite::future::pending().await;
    };
    let listeners = endpoints.listening.iter().filter(|&&l| l).count().max(1) as u64;
    loop {
        let Some(accepted) = until_stopped(&shard, listener.accept()).await else {
            // Draining: close the listening socket so the kernel sends new connections to
            // no one, and keep the executor serving forwarded requests until exit.
            drop(listener);
            return futures_lite::future::pending().await;
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (over_limit, protected) = {
            let sh = shard.borrow();
            let (st, config) = (sh.state(), sh.state().config());
            let protected = config.protected_mode
                && config.requirepass.is_empty()
                && stream
                    .peer_addr()
                    .map(|a| !a.ip().is_loopback())
                    .unwrap_or(false);
            (
                st.client_count() as u64 >= config.maxclients.div_ceil(listeners),
                protected,
            )
        };
        if protected {
            refuse(stream, DENIED);
            continue;
        }
        if over_limit {
            shard
                .borrow_mut()
                .state_mut()
                .stats_mut()
                .rejected_connections += 1;
            refuse(stream, b"-ERR max number of clients reached\r\n");
            continue;
        }
        spawn_local(connection::serve(shard.clone(), stream)).detach();
    }
}
