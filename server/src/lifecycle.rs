//! The process's lifecycle, shared by the shard threads and the main thread: a shutdown
//! asked for (SHUTDOWN on any shard, or a signal), the drain that follows, and what each
//! shard served, for the summary logged at exit.
//!
//! This is the one piece of state every thread can see, and it lives here in the server,
//! not in the shard crate: the shards' data path never touches it. Each shard's timer
//! task looks at it once per tick (a SHUTDOWN only sets a plain flag on its shard, which
//! the tick passes on), and writes to it when its shard has drained.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Shutdown state. See the module docs.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Someone asked for a shutdown (SHUTDOWN, or the main thread on a signal).
    requested: AtomicBool,
    /// The main thread started the drain: shards stop accepting and close connections
    /// once their in-flight replies are written.
    stopping: AtomicBool,
    /// Shards that have stopped accepting and have no connection left.
    drained: AtomicUsize,
    /// Commands processed, summed over drained shards.
    commands: AtomicU64,
    /// Connections received, summed over drained shards.
    connections: AtomicU64,
    /// `shutdown-timeout` in seconds, kept here so CONFIG SET reaches the main thread.
    timeout_s: AtomicU64,
}

impl Lifecycle {
    /// With the grace period `shutdown-timeout` seconds.
    pub fn new(timeout_s: u64) -> Self {
        Lifecycle {
            timeout_s: AtomicU64::new(timeout_s),
            ..Default::default()
        }
    }

    /// Sets the grace period (CONFIG SET shutdown-timeout).
    pub fn set_timeout(&self, secs: u64) {
        self.timeout_s.store(secs, Ordering::Release);
    }

    /// The grace period, seconds.
    pub fn timeout(&self) -> u64 {
        self.timeout_s.load(Ordering::Acquire)
    }

    /// Asks for a shutdown; the main thread carries it out.
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
    }

    /// Whether a shutdown was asked for.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Starts the drain (main thread).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Whether the drain has started.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// A shard reports it has drained, with what it served.
    pub fn drained(&self, commands: u64, connections: u64) {
        self.commands.fetch_add(commands, Ordering::AcqRel);
        self.connections.fetch_add(connections, Ordering::AcqRel);
        self.drained.fetch_add(1, Ordering::AcqRel);
    }

    /// How many shards have drained.
    pub fn drained_shards(&self) -> usize {
        self.drained.load(Ordering::Acquire)
    }

    /// Commands and connections the drained shards served.
    pub fn served(&self) -> (u64, u64) {
        (
            self.commands.load(Ordering::Acquire),
            self.connections.load(Ordering::Acquire),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_stop_and_drain() {
        let l = Lifecycle::new(10);
        assert_eq!(l.timeout(), 10);
        l.set_timeout(3);
        assert_eq!(l.timeout(), 3);
        assert!(!l.requested() && !l.stopping());
        l.request();
        assert!(l.requested() && !l.stopping());
        l.stop();
        assert!(l.stopping());
        l.drained(10, 2);
        l.drained(5, 1);
        assert_eq!(l.drained_shards(), 2);
        assert_eq!(l.served(), (15, 3));
    }
}
