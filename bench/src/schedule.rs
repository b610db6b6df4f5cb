//! Open-loop scheduling: when each request is *meant* to be sent.
//!
//! With `--rate R` and `C` connections, each connection sends on a fixed grid of
//! `R / C` requests per second, staggered so the connections do not fire together. A
//! request's latency is measured from its intended time on that grid, not from when it
//! actually left: if the server stalls, requests queue up behind the stall and their
//! recorded latency includes the wait, so a stall cannot hide by slowing the client down
//! (the "coordinated omission" a closed-loop tool suffers from).

/// Intended send times for one connection, in nanoseconds since the run's epoch.
#[derive(Clone, Debug)]
pub struct Schedule {
    start_ns: f64,
    interval_ns: f64,
    next: u64,
}

impl Schedule {
    /// A grid starting at `start_ns` with `rate` requests per second, shifted by
    /// `phase` (0.0..1.0) of one interval.
    pub fn new(start_ns: u64, rate: f64, phase: f64) -> Self {
        assert!(rate > 0.0, "rate must be positive");
        let interval_ns = 1e9 / rate;
        Schedule {
            start_ns: start_ns as f64 + phase.clamp(0.0, 1.0) * interval_ns,
            interval_ns,
            next: 0,
        }
    }

    /// The intended time of the `k`-th request (computed from the start, so no drift
    /// accumulates).
    #[inline]
    pub fn at(&self, k: u64) -> u64 {
        (self.start_ns + k as f64 * self.interval_ns) as u64
    }

    /// The intended time of the next request not yet taken.
    #[inline]
    pub fn next_time(&self) -> u64 {
        self.at(self.next)
    }

    /// Takes the next request if its time has come at `now_ns`; returns its intended
    /// time.
    #[inline]
    pub fn take_due(&mut self, now_ns: u64) -> Option<u64> {
        let t = self.next_time();
        (t <= now_ns).then(|| {
            self.next += 1;
            t
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evenly_spaced_without_drift() {
        let s = Schedule::new(1_000, 3.0, 0.0);
        assert_eq!(s.at(0), 1_000);
        assert_eq!(s.at(1), 1_000 + 333_333_333);
        assert_eq!(
            s.at(3_000_000),
            1_000 + 1_000_000_000_000_000,
            "no drift after 3M steps"
        );
    }

    #[test]
    fn phases_stagger_connections() {
        let a = Schedule::new(0, 1000.0, 0.0);
        let b = Schedule::new(0, 1000.0, 0.5);
        assert_eq!(a.at(0), 0);
        assert_eq!(b.at(0), 500_000);
    }

    #[test]
    fn a_late_client_catches_up_but_keeps_the_intended_times() {
        let mut s = Schedule::new(0, 1000.0, 0.0);
        // Woken 3.5 ms late: three requests are overdue, each keeps its own time.
        let due: Vec<u64> = std::iter::from_fn(|| s.take_due(3_500_000)).collect();
        assert_eq!(due, vec![0, 1_000_000, 2_000_000, 3_000_000]);
        assert_eq!(s.take_due(3_500_000), None);
        assert_eq!(s.next_time(), 4_000_000);
    }
}
