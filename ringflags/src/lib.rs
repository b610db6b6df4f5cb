//! Carries `IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG` into the io_uring rings
//! glommio creates, without a copy of glommio.
//!
//! glommio 0.9 sets up its rings with no flags and has no option for them; without
//! `COOP_TASKRUN` the kernel interrupts a ring's thread with an inter-processor interrupt
//! for every completion that arrives from another CPU: one per request at pipeline depth
//! 1 (see `docs/benchmarks.md`). Flags cannot change after `io_uring_setup`. glommio's
//! bundled liburing calls libc's `syscall()` for it, so a binary linked with
//! `-Wl,--wrap=syscall` sends those calls through this crate's wrapper
//! (`src/wrap_syscall.c`), which adds the two flags to every ring that asks for no
//! polling or task-run mode of its own and forwards everything else unchanged. On a
//! kernel without them (before 5.19) it sets the ring up as asked.
//!
//! A binary opts in from its build script:
//!
//! ```text
//! println!("cargo:rustc-link-arg-bins=-Wl,--wrap=syscall");
//! ```
//!
//! and checks, on each thread that made rings, that they got the flags with
//! [`this_thread`] and [`RingCounts::verdict`]: should a future glommio stop calling
//! `syscall()`, the counts stay at zero and the binary can say so.
#![warn(missing_docs)]

/// The io_uring rings the calling thread set up through the wrapper.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounts {
    /// Rings set up.
    pub seen: u32,
    /// Rings that got `COOP_TASKRUN | TASKRUN_FLAG`.
    pub changed: u32,
    /// Rings the kernel would not give the flags (Linux before 5.19).
    pub refused: u32,
}

/// Whether a thread's rings carry the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// At least one ring got them, and the kernel refused none.
    InForce,
    /// No ring went through the wrapper: the binary was linked without
    /// `--wrap=syscall`, or the runtime no longer sets rings up through `syscall()`.
    NotWrapped,
    /// The kernel does not know the flags (before Linux 5.19): rings work as before.
    KernelTooOld,
    /// Rings were seen, but every one asked for a mode of its own (polling).
    NotApplicable,
}

impl RingCounts {
    /// What the counts say.
    pub fn verdict(&self) -> Verdict {
        if self.seen == 0 {
            Verdict::NotWrapped
        } else if self.refused > 0 {
            Verdict::KernelTooOld
        } else if self.changed > 0 {
            Verdict::InForce
        } else {
            Verdict::NotApplicable
        }
    }
}

extern "C" {
    fn corekv_ring_counts(out: *mut RingCounts);
}

/// The rings the calling thread has set up so far.
pub fn this_thread() -> RingCounts {
    let mut counts = RingCounts::default();
    // SAFETY: the C function writes one `RingCounts` (same layout, `repr(C)`) into the
    // struct we own.
    unsafe { corekv_ring_counts(&mut counts) };
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let c = |seen, changed, refused| RingCounts {
            seen,
            changed,
            refused,
        };
        assert_eq!(c(0, 0, 0).verdict(), Verdict::NotWrapped);
        assert_eq!(c(3, 2, 0).verdict(), Verdict::InForce);
        assert_eq!(c(3, 0, 2).verdict(), Verdict::KernelTooOld);
        assert_eq!(c(1, 0, 0).verdict(), Verdict::NotApplicable);
    }

    #[test]
    fn a_thread_without_rings_counts_none() {
        // Unit tests are not linked with the wrap: nothing is counted.
        assert_eq!(this_thread(), RingCounts::default());
    }
}
