//! This shard's part of a shutdown: a SHUTDOWN a client ran here, and the drain.
//!
//! The server's lifecycle task waits on it ([`Shutdown::poll_request`], then the
//! connections draining, see `State::drain_status`) and is woken by the events
//! themselves: SHUTDOWN running here, or a connection closing while the shard drains.
//! Listener tasks wait for the drain to start ([`Shutdown::poll_stopping`]). Nothing here
//! is polled on a timer.

use std::task::Waker;

/// What a shutdown does about a snapshot, once every connection is gone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinalSave {
    /// Take one if `save` has a schedule (SHUTDOWN with no argument, SIGTERM, SIGINT).
    #[default]
    Default,
    /// Take one (SHUTDOWN SAVE).
    Save,
    /// Take none (SHUTDOWN NOSAVE).
    NoSave,
}

/// See the module docs.
#[derive(Default)]
pub struct Shutdown {
    /// What the SHUTDOWN that ran here asked about a snapshot, and whether it said
    /// FORCE.
    final_save: (FinalSave, bool),
    /// A client ran SHUTDOWN here and the server has not been told yet.
    requested: bool,
    /// The drain has started: no new connections, each open one closes after its round.
    stopping: bool,
    /// The server's lifecycle task.
    waker: Option<Waker>,
    /// Listener tasks, woken when the drain starts.
    stop_wakers: Vec<Waker>,
}

impl Shutdown {
    /// SHUTDOWN ran here, saying `save` about the last snapshot (and FORCE or not):
    /// wakes the lifecycle task to pass it on.
    pub fn request_with(&mut self, save: FinalSave, force: bool) {
        self.final_save = (save, force);
        self.request();
    }

    /// What the SHUTDOWN that ran here asked about a snapshot, and whether it said FORCE.
    pub fn final_save(&self) -> (FinalSave, bool) {
        self.final_save
    }

    /// SHUTDOWN ran here: wakes the lifecycle task to pass it on.
    pub fn request(&mut self) {
        self.requested = true;
        self.wake();
    }

    /// Whether SHUTDOWN ran here since the last call (then `true` once); if not, `waker`
    /// is woken when it does.
    pub fn poll_request(&mut self, waker: &Waker) -> bool {
        if std::mem::take(&mut self.requested) {
            return true;
        }
        self.set_waker(waker);
        false
    }

    /// Whether the drain has started.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Whether the drain has started; if not, `waker` (a listener's) is woken when it
    /// does.
    pub fn poll_stopping(&mut self, waker: &Waker) -> bool {
        if self.stopping {
            return true;
        }
        // Listener tasks poll this again after every accept: register each task once.
        if !self.stop_wakers.iter().any(|w| w.will_wake(waker)) {
            self.stop_wakers.push(waker.clone());
        }
        false
    }

    /// Marks the drain as started and wakes the listeners. The caller closes the
    /// connections.
    pub fn begin(&mut self) {
        self.stopping = true;
        for w in self.stop_wakers.drain(..) {
            w.wake();
        }
    }

    /// A connection closed: while draining, the lifecycle task looks at what is left.
    pub fn connection_closed(&mut self) {
        if self.stopping {
            self.wake();
        }
    }

    /// Registers the lifecycle task, to be woken by the next event.
    pub fn set_waker(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_request_wakes_the_lifecycle_task_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut s = Shutdown::default();
        assert!(!s.poll_request(&waker));
        s.request();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(s.poll_request(&waker));
        assert!(!s.poll_request(&waker));
    }

    #[test]
    fn closes_wake_only_while_draining() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut s = Shutdown::default();
        s.set_waker(&waker);
        s.connection_closed();
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        let listener = Arc::new(Count(AtomicUsize::new(0)));
        let lw = Waker::from(listener.clone());
        assert!(!s.poll_stopping(&lw));
        assert!(!s.poll_stopping(&lw));
        s.begin();
        assert_eq!(listener.0.load(Ordering::SeqCst), 1, "each listener once");
        assert!(s.is_stopping() && s.poll_stopping(&lw));
        s.connection_closed();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
