//! A long script as other threads see it, so SCRIPT KILL, FUNCTION KILL and a shutdown
//! can stop it while its shard is busy running it (a shard runs a script to its end and
//! reads nothing else meanwhile, so a request to stop it cannot travel as a message).
//!
//! One cell per shard. The running script's count hook (every 100,000 Lua instructions)
//! marks the cell once the script has run past `busy-reply-threshold`, and from then on
//! looks for a stop request there. A script that ends in time never touches its cell:
//! these atomics are the control path of scripts that run for seconds, never the
//! per-command data path.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use crate::slot::SLOTS;

/// No stop requested.
pub const RUN: u8 = 0;
/// SCRIPT KILL / FUNCTION KILL: stop it if it has not written.
pub const KILL: u8 = 1;
/// A shutdown: stop it whatever it did.
pub const ABORT: u8 = 2;

/// One shard's cell.
pub struct Control {
    /// Unix ms since which a script has run past the threshold; 0: none.
    busy_since: AtomicU64,
    /// That script is a function (FCALL), not an EVAL script.
    function: AtomicBool,
    /// That script has run a write command.
    wrote: AtomicBool,
    /// What was asked of it: [`RUN`], [`KILL`] or [`ABORT`].
    stop: AtomicU8,
}

impl Control {
    const fn new() -> Self {
        Control {
            busy_since: AtomicU64::new(0),
            function: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            stop: AtomicU8::new(RUN),
        }
    }

    /// The running script passed the threshold: say so. A KILL still there was meant
    /// for an earlier script (it raced that script's end), so it is dropped.
    pub fn mark_busy(&self, now_ms: u64, function: bool, wrote: bool) {
        let _ = self
            .stop
            .compare_exchange(KILL, RUN, Ordering::AcqRel, Ordering::Relaxed);
        self.function.store(function, Ordering::Relaxed);
        self.wrote.store(wrote, Ordering::Relaxed);
        self.busy_since.store(now_ms.max(1), Ordering::Release);
    }

    /// The busy script ran a write command: SCRIPT KILL cannot stop it any more.
    pub fn set_wrote(&self) {
        self.wrote.store(true, Ordering::Release);
    }

    /// What has been asked of the running script.
    pub fn stop_request(&self) -> u8 {
        self.stop.load(Ordering::Acquire)
    }

    /// The busy script ended (however).
    pub fn clear(&self) {
        self.busy_since.store(0, Ordering::Release);
        // A shutdown's request stays: the shard is going away.
        let _ = self
            .stop
            .compare_exchange(KILL, RUN, Ordering::AcqRel, Ordering::Relaxed);
    }
}

static CELLS: [Control; SLOTS as usize] = [const { Control::new() }; SLOTS as usize];

/// Shard `shard`'s cell.
pub fn of(shard: usize) -> &'static Control {
    &CELLS[shard]
}

/// What SCRIPT KILL / FUNCTION KILL found.
#[derive(Debug, PartialEq, Eq)]
pub enum Kill {
    /// A script was asked to stop.
    Killed,
    /// None has run past the threshold.
    NotBusy,
    /// The busy one has written: only SHUTDOWN NOSAVE stops it.
    Unkillable,
    /// The busy one is the other kind (a function for SCRIPT KILL, or a script for
    /// FUNCTION KILL).
    OtherKind,
}

/// SCRIPT KILL (`function` false) or FUNCTION KILL over the first `shards` cells.
pub fn kill(shards: usize, function: bool) -> Kill {
    let mut found = Kill::NotBusy;
    for c in &CELLS[..shards.min(CELLS.len())] {
        if c.busy_since.load(Ordering::Acquire) == 0 {
            continue;
        }
        if c.function.load(Ordering::Relaxed) != function {
            found = Kill::OtherKind;
            continue;
        }
        if c.wrote.load(Ordering::Acquire) {
            found = Kill::Unkillable;
            continue;
        }
        let _ = c
            .stop
            .compare_exchange(RUN, KILL, Ordering::AcqRel, Ordering::Relaxed);
        return Kill::Killed;
    }
    found
}

/// A shutdown began: every running script stops at its next check.
pub fn abort_all(shards: usize) {
    for c in &CELLS[..shards.min(CELLS.len())] {
        c.stop.store(ABORT, Ordering::Release);
    }
}
