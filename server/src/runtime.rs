//! Starting the shards: one glommio executor per shard (pinned unless `--no-pin`), the
//! channel mesh between them, and in each shard its listener(s), mesh tasks and connections.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

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
    /// Shard index (mesh peer id).
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
}

/// Starts every shard; each reports on `started` when it listens or fails.
pub fn start(
    config: Config,
    placement: &Placement,
    endpoints: Endpoints,
    started: mpsc::Sender<Started>,
) -> Result<PoolThreadHandles<()>, String> {
    let n = placement.shards;
    let pool_placement = match &placement.cpus {
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
    LocalExecutorPoolBuilder::new(pool_placement)
        .name("corekv-shard")
        .io_memory(IO_MEMORY)
        .on_all_shards(move || async move {
            shard_main(config, mesh, endpoints, started).await;
        })
        .map_err(|e| format!("cannot start the shard executors: {e}"))
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
    let id = tx.peer_id();
    let n = config.shards;
    let cpu = config.cpus.as_ref().and_then(|_| pinned_cpu());
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
    for peer in (0..n).filter(|&p| p != id) {
        spawn_local_into(
            transport::flusher(shard.clone(), tx.clone(), peer),
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

    let listener = match listen(endpoints.resp) {
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
    if let Some(addr) = endpoints.echo {
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
            sh.conns.len() as u64 >= sh.config.maxclients.div_ceil(n as u64)
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
