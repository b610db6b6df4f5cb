//! Starting the shards: one glommio executor per shard (pinned unless `--no-pin`), the
//! channel mesh between them, and in each shard its listener(s), mesh tasks and connections.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use corekv_shard::command::Commands;
use corekv_shard::message::Msg;
use corekv_shard::{Config, Shard};
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::net::TcpListener;
use glommio::{
    executor, spawn_local, spawn_local_into, CpuSet, Latency, LocalExecutorPoolBuilder,
    PoolPlacement, PoolThreadHandles, Shares,
};
use socket2::{Domain, Protocol, Socket, Type};

use crate::clock::now_ms;
use crate::topology::Placement;
use crate::{connection, echo, transport};

/// Memory each executor registers with io_uring for file I/O. corekv does no file I/O
/// yet and sockets do not use it; small keeps many shards within a modest `ulimit -l`.
const IO_MEMORY: usize = 128 * 1024;

/// Listen backlog of each shard's listener.
const BACKLOG: i32 = 1024;

/// Longest each shard's executor sleeps, even with no timer due. glommio 0.9 sleeps by
/// linking its io_uring rings, which can miss the eventfd write another shard makes after
/// queueing a message (its maintainers' diagnosis in glommio PR #552, never merged).
/// Without this tick, about one cross-shard MSETNX test run in 25 stalled until unrelated
/// traffic woke the shard; with it, a missed wakeup costs at most one tick. Measured idle
/// cost: 1.3% of a core per shard at 10 ms (8% at 1 ms, 0 without).
const LIVENESS_TICK: Duration = Duration::from_millis(10);

/// Most timers (expiring keys, idle connections) handled before other tasks run again.
const TIMER_BUDGET: usize = 1000;

/// How often a shard does its housekeeping: shrinking a keyspace that has mostly emptied,
/// and asking the allocator to return freed memory to the OS (mimalloc defers that work
/// to allocations on the owning thread, so a shard that freed a large value and then went
/// quiet would keep its pages resident indefinitely).
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Drives the shard's timing wheel: sleeps until its next deadline (at most
/// [`LIVENESS_TICK`]), then expires keys and closes idle connections in batches of
/// [`TIMER_BUDGET`], yielding between batches so a mass expiry does not stall the shard.
async fn drive_timers(shard: Rc<RefCell<Shard>>) {
    let mut last_collect = std::time::Instant::now();
    loop {
        if last_collect.elapsed() >= HOUSEKEEPING {
            shard.borrow_mut().housekeeping();
            // SAFETY: mi_collect has no preconditions; `false` asks for the cheap,
            // non-forced collection.
            unsafe { libmimalloc_sys::mi_collect(false) };
            last_collect = std::time::Instant::now();
        }
        let now = now_ms();
        let wait = match shard.borrow().next_timer() {
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => Duration::from_millis(at - now).min(LIVENESS_TICK),
            None => LIVENESS_TICK,
        };
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
        let more = {
            let mut sh = shard.borrow_mut();
            sh.set_now(now_ms());
            sh.run_timers(TIMER_BUDGET)
        };
        if more {
            futures_lite::future::yield_now().await;
        }
    }
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
}

/// Starts every shard; each reports on `started` when it listens or fails.
pub fn start(
    config: Config,
    placement: &Placement,
    endpoints: Endpoints,
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
        .on_all_shards(move || async move {
            shard_main(config, mesh, endpoints, numbering, started).await;
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
    started: mpsc::Sender<Started>,
) {
    let (tx, mut rx) = match mesh.join().await {
        Ok(pair) => pair,
        Err(_) => {
            let _ = started.send(Started {
                shard: usize::MAX,
                cpu: None,
                result: Err("cannot join the shard mesh".into()),
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
            });
            return;
        }
    };
    let commands: &'static Commands = Box::leak(Box::new(Commands::new()));
    let mut shard = Shard::new(id, config, commands);
    shard.cpu = cpu;
    shard.set_now(now_ms());
    let shard = Rc::new(RefCell::new(shard));

    // Messages between shards run in their own queue, which preempts long stretches of
    // connection work after a millisecond so cross-shard requests are not held up.
    let mesh_queue = executor().create_task_queue(
        Shares::Static(1000),
        Latency::Matters(Duration::from_millis(1)),
        "mesh",
    );
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

    spawn_local_into(drive_timers(shard.clone()), mesh_queue)
        .expect("mesh queue exists")
        .detach();

    // glommio's first timer sleep registers membarriers and can take tens of ms: pay it
    // before traffic arrives.
    glommio::timer::sleep(Duration::from_millis(1)).await;

    let listens = endpoints.listening.get(id).copied().unwrap_or(true);
    let listener = match listens.then(|| listen(endpoints.resp)).transpose() {
        Ok(l) => l,
        Err(e) => {
            let _ = started.send(Started {
                shard: id,
                cpu,
                result: Err(format!("cannot listen on {}: {e}", endpoints.resp)),
            });
            return;
        }
    };
    if let Some(addr) = endpoints.echo.filter(|_| listens) {
        match listen(addr) {
            Ok(echo_listener) => {
                spawn_local(async move {
                    loop {
                        match echo_listener.accept().await {
                            Ok(stream) => {
                                spawn_local(echo::serve(stream)).detach();
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "echo accept failed");
                                glommio::timer::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                })
                .detach();
            }
            Err(e) => {
                let _ = started.send(Started {
                    shard: id,
                    cpu,
                    result: Err(format!("cannot listen on {addr} (echo): {e}")),
                });
                return;
            }
        }
    }
    let _ = started.send(Started {
        shard: id,
        cpu,
        result: Ok(()),
    });
    drop(started);

    // A shard without a listener still owns keys and serves forwarded requests.
    let Some(listener) = listener else {
        // The executor runs as long as this future: keep it alive forever.
        return futures_lite::future::pending().await;
    };
    let listeners = endpoints.listening.iter().filter(|&&l| l).count().max(1) as u64;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let over_limit = {
            let sh = shard.borrow();
            sh.conns.len() as u64 >= sh.config.maxclients.div_ceil(listeners)
        };
        if over_limit {
            shard.borrow_mut().stats.rejected_connections += 1;
            spawn_local(async move {
                use futures_lite::AsyncWriteExt;
                let mut stream = stream;
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
                let _ = stream.close().await;
            })
            .detach();
            continue;
        }
        spawn_local(connection::serve(shard.clone(), stream)).detach();
    }
}
