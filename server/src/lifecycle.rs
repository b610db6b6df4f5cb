//! The process's lifecycle, between the shard threads and the main thread: a shutdown
//! asked for (a signal, or SHUTDOWN on any shard), the drain that follows, and what each
//! shard served, for the summary logged at exit.
//!
//! Everything here is an event, never a flag someone polls:
//!
//! ```text
//!  signal thread ──Signal──────────►┐
//!  shard i: SHUTDOWN ─ShutdownCommand►  main thread ── stop(): rings every shard's doorbell
//!  shard i: last connection gone ─Drained►┘                  │
//!                                          shard i's lifecycle task wakes, drains, reports
//! ```
//!
//! The doorbell is the waker of each shard's lifecycle task; waking it from the main
//! thread writes the executor's eventfd, so a shard that has slept for days wakes at once.
//!
//! The main thread also keeps a **watchdog**: each shard's timer task records a heartbeat
//! every tick, and a shard silent for [`SILENCE`] gets its doorbell rung. glommio 0.9 can
//! park an executor while one of its tasks is runnable (see `runtime::PREEMPT`); a ring
//! makes it run its task queues again. The rings are counted and shown per shard in INFO
//! (`watchdog_wakes`), so a stall is visible rather than silent.
//!
//! After the drain, the main thread asks shard 0 for the **final snapshot**
//! ([`Lifecycle::final_save`]): with every connection gone it holds every write a client
//! was answered for. Shard 0's saver answers with [`Event::Saved`].
//!
//! This is the one piece of state every thread can see. It lives here in the server, not
//! in the shard crate: the shards' request path never touches it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use corekv_shard::shutdown::FinalSave;

/// How long a shard's timer task may stay silent before the watchdog rings its doorbell.
/// The task ticks every `runtime::LIVENESS_TICK` (100 ms) at most; this is ten ticks.
pub const SILENCE: Duration = Duration::from_secs(1);

/// What the main thread is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGINT or SIGTERM arrived (its name).
    Signal(&'static str),
    /// A client ran SHUTDOWN on this shard.
    ShutdownCommand(usize),
    /// This shard has stopped accepting and has no connection left.
    Drained(usize),
    /// The final snapshot: taken (true), failed (false).
    Saved(bool),
}

/// Where a shard is in the shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Serving; has not seen the stop yet.
    Serving = 0,
    /// Stopped accepting; waiting for its connections to finish their rounds.
    Draining = 1,
    /// Done.
    Drained = 2,
}

/// One shard's side of the lifecycle.
#[derive(Default)]
struct ShardSlot {
    /// The waker of the shard's lifecycle task.
    doorbell: Mutex<Option<Waker>>,
    /// One plus the milliseconds since [`Lifecycle::epoch`] at the shard's last timer
    /// tick; zero before the first.
    heartbeat_ms: AtomicU64,
    /// A [`Phase`].
    phase: AtomicU8,
    /// While draining: what the shard still waits for, in words.
    waiting_for: Mutex<String>,
    /// Commands processed, once drained.
    commands: AtomicU64,
    /// Connections received, once drained.
    connections: AtomicU64,
    /// Times the watchdog rang the doorbell.
    watchdog_wakes: AtomicU64,
}

/// Shutdown state. See the module docs.
pub struct Lifecycle {
    events: mpsc::Sender<Event>,
    /// The main thread started the drain.
    stopping: AtomicBool,
    /// What the SHUTDOWN that stopped the server asked about a snapshot, and FORCE.
    final_save: Mutex<(FinalSave, bool)>,
    /// The main thread asks shard 0's saver for the final snapshot.
    final_asked: AtomicBool,
    /// Shard 0's saver, woken for it.
    saver: Mutex<Option<Waker>>,
    /// `shutdown-timeout` in seconds, kept here so CONFIG SET reaches the main thread.
    timeout_s: AtomicU64,
    shards: Box<[ShardSlot]>,
    /// Heartbeats count from here.
    epoch: Instant,
}

impl Lifecycle {
    /// For `shards` shards with the grace period `shutdown-timeout` seconds; the receiver
    /// is the main thread's.
    pub fn new(shards: usize, timeout_s: u64) -> (Self, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel();
        let lifecycle = Lifecycle {
            events,
            stopping: AtomicBool::new(false),
            final_save: Mutex::new((FinalSave::Default, false)),
            final_asked: AtomicBool::new(false),
            saver: Mutex::new(None),
            timeout_s: AtomicU64::new(timeout_s),
            shards: (0..shards).map(|_| ShardSlot::default()).collect(),
            epoch: Instant::now(),
        };
        (lifecycle, rx)
    }

    /// Tells the main thread (from any thread).
    pub fn send(&self, event: Event) {
        // The receiver lives until the process exits.
        let _ = self.events.send(event);
    }

    /// A sender for the signal thread.
    pub fn sender(&self) -> mpsc::Sender<Event> {
        self.events.clone()
    }

    /// Sets the grace period (CONFIG SET shutdown-timeout).
    pub fn set_timeout(&self, secs: u64) {
        self.timeout_s.store(secs, Ordering::Release);
    }

    /// The grace period, seconds.
    pub fn timeout(&self) -> u64 {
        self.timeout_s.load(Ordering::Acquire)
    }

    // ---- the shard's side --------------------------------------------------------------

    /// Registers shard `id`'s lifecycle task as its doorbell, then says whether the drain
    /// has started. Registering first means a [`stop`](Self::stop) either sees the waker
    /// or happened before this check.
    pub fn watch(&self, id: usize, waker: &Waker) -> bool {
        {
            let mut slot = self.shards[id]
                .doorbell
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        self.stopping.load(Ordering::SeqCst)
    }

    /// Shard `id`'s timer task is alive.
    pub fn beat(&self, id: usize) {
        // Plus one: zero means "not started yet".
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.shards[id].heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// Times the watchdog rang shard `id`'s doorbell.
    pub fn watchdog_wakes(&self, id: usize) -> u64 {
        self.shards[id].watchdog_wakes.load(Ordering::Relaxed)
    }

    /// Shard `id` is draining and still waits for what `waiting_for` says.
    pub fn draining(&self, id: usize, waiting_for: String) {
        let slot = &self.shards[id];
        *slot.waiting_for.lock().unwrap_or_else(|e| e.into_inner()) = waiting_for;
        slot.phase.store(Phase::Draining as u8, Ordering::Release);
    }

    /// Shard `id` has drained, having served `commands` over `connections`.
    pub fn drained(&self, id: usize, commands: u64, connections: u64) {
        let slot = &self.shards[id];
        slot.commands.store(commands, Ordering::Relaxed);
        slot.connections.store(connections, Ordering::Relaxed);
        slot.phase.store(Phase::Drained as u8, Ordering::Release);
        self.send(Event::Drained(id));
    }

    /// A SHUTDOWN asked `save` (and FORCE or not) of the final snapshot.
    pub fn set_final_save(&self, save: (FinalSave, bool)) {
        *self.final_save.lock().unwrap_or_else(|e| e.into_inner()) = save;
    }

    /// Shard 0's saver: whether the final snapshot is asked for (then what SHUTDOWN
    /// said about it); if not, `waker` is woken when it is.
    pub fn poll_final(&self, waker: &Waker) -> Option<(FinalSave, bool)> {
        *self.saver.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
        self.final_asked
            .swap(false, Ordering::AcqRel)
            .then(|| *self.final_save.lock().unwrap_or_else(|e| e.into_inner()))
    }

    // ---- the main thread's side --------------------------------------------------------

    /// Asks shard 0's saver for the final snapshot; it answers [`Event::Saved`].
    pub fn final_save(&self) {
        self.final_asked.store(true, Ordering::SeqCst);
        let waker = self.saver.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether the final snapshot failing should still let the process exit cleanly
    /// (SHUTDOWN FORCE).
    pub fn forced(&self) -> bool {
        self.final_save.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Starts the drain: every shard's lifecycle task is woken.
    pub fn stop(&self) {
        // A shard busy in a script reads nothing until the script ends: stop it.
        corekv_shard::script::control::abort_all(self.shards.len());
        self.stopping.store(true, Ordering::SeqCst);
        for id in 0..self.shards.len() {
            self.ring(id);
        }
    }

    fn ring(&self, id: usize) {
        let waker = self.shards[id]
            .doorbell
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Rings the doorbell of every shard whose timer task has been silent for longer
    /// than `silence`; returns those shards.
    pub fn watchdog(&self, silence: Duration) -> Vec<usize> {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let limit = silence.as_millis() as u64;
        let mut rung = Vec::new();
        for (id, slot) in self.shards.iter().enumerate() {
            let beat = slot.heartbeat_ms.load(Ordering::Relaxed);
            // A shard that has not ticked yet is still starting.
            if beat != 0 && now.saturating_sub(beat) > limit {
                slot.watchdog_wakes.fetch_add(1, Ordering::Relaxed);
                self.ring(id);
                rung.push(id);
            }
        }
        rung
    }

    /// Where shard `id` is.
    pub fn phase(&self, id: usize) -> Phase {
        match self.shards[id].phase.load(Ordering::Acquire) {
            0 => Phase::Serving,
            1 => Phase::Draining,
            _ => Phase::Drained,
        }
    }

    /// What shard `id` last said it waits for while draining.
    pub fn waiting_for(&self, id: usize) -> String {
        self.shards[id]
            .waiting_for
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Commands and connections the drained shards served.
    pub fn served(&self) -> (u64, u64) {
        self.shards
            .iter()
            .filter(|s| s.phase.load(Ordering::Acquire) == Phase::Drained as u8)
            .fold((0, 0), |(c, n), s| {
                (
                    c + s.commands.load(Ordering::Relaxed),
                    n + s.connections.load(Ordering::Relaxed),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn stop_rings_every_watched_shard_once() {
        let (l, _rx) = Lifecycle::new(2, 10);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        assert!(!l.watch(0, &waker));
        assert!(!l.watch(1, &waker));
        l.stop();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        // A shard that registers after the stop sees it.
        assert!(l.watch(0, &waker));
    }

    #[test]
    fn drain_reports_reach_the_main_thread() {
        let (l, rx) = Lifecycle::new(2, 10);
        assert_eq!(l.timeout(), 10);
        l.set_timeout(3);
        assert_eq!(l.timeout(), 3);
        l.send(Event::ShutdownCommand(1));
        assert_eq!(rx.recv().unwrap(), Event::ShutdownCommand(1));
        l.draining(0, "2 connections".into());
        assert_eq!(l.phase(0), Phase::Draining);
        assert_eq!(l.waiting_for(0), "2 connections");
        l.drained(0, 10, 2);
        l.drained(1, 5, 1);
        assert_eq!(rx.recv().unwrap(), Event::Drained(0));
        assert_eq!(rx.recv().unwrap(), Event::Drained(1));
        assert_eq!(l.served(), (15, 3));
    }

    #[test]
    fn watchdog_rings_only_silent_shards() {
        let (l, _rx) = Lifecycle::new(2, 10);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        l.watch(0, &waker);
        l.watch(1, &waker);
        l.beat(0);
        l.beat(1);
        std::thread::sleep(Duration::from_millis(30));
        l.beat(1);
        assert_eq!(l.watchdog(Duration::from_millis(20)), vec![0]);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!((l.watchdog_wakes(0), l.watchdog_wakes(1)), (1, 0));
    }
}
