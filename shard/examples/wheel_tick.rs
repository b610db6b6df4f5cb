//! What one timer tick costs a shard that tracks 100,000 idle connections, measured on the
//! wheel the shard uses (a benchmark, not a test).
//!
//! `cargo run --release -p corekv-shard --example wheel_tick [connections]`
//!
//! Prints the mean cost of a tick when no timer is due (the common case: the wheel looks
//! at its occupancy masks, nothing else), and the cost per connection when every
//! connection's idle timer fires in the same tick and is re-armed from its last activity
//! (the worst case: all were active since they were armed).

use std::hint::black_box;
use std::time::Instant;

use corekv_shard::timer::{Timer, Timers};

fn main() {
    let conns: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let timeout_ms = 300_000u64;
    let start = 1_700_000_000_000u64;
    let mut timers = Timers::new(start);
    // Connections arrive over the first second, each armed at connect + timeout.
    for c in 0..conns {
        let connected = start + u64::from(c) * 1000 / u64::from(conns);
        timers.insert(connected + timeout_ms + 1, Timer::Conn(c, 1));
    }
    let mut fired = Vec::new();

    // Idle ticks: one per millisecond for 100 seconds, none due.
    let ticks = 100_000u64;
    let t = Instant::now();
    for i in 1..=ticks {
        black_box(timers.advance(start + i, 1000, &mut fired));
    }
    let idle_ns = t.elapsed().as_nanos() as f64 / ticks as f64;
    assert!(fired.is_empty());

    // Every timer fires (in budgeted batches, as the shard runs them) and is re-armed.
    let now = start + 1000 + timeout_ms + 1;
    let t = Instant::now();
    let mut rearmed = 0u32;
    loop {
        fired.clear();
        let more = timers.advance(now, 1000, &mut fired);
        for &t in &fired {
            timers.insert(now + timeout_ms + 1, t);
            rearmed += 1;
        }
        if !more {
            break;
        }
    }
    let fire_ns = t.elapsed().as_nanos() as f64 / f64::from(rearmed);
    assert_eq!(rearmed, conns);

    println!("connections tracked: {conns}");
    println!("tick with nothing due: {idle_ns:.0} ns");
    println!("tick where every idle timer fires and re-arms: {fire_ns:.0} ns per connection");
}
