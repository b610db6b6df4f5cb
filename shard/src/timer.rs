//! The kinds of timer in a shard's timing wheel ([`crate::wheel`]). The shard owns one
//! wheel: key deadlines are one kind among others (idle connections today; blocked
//! clients, log fsyncs and cluster timers as they come).

use crate::wheel::TimingWheel;

/// What a timer in the shard's wheel stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The key at this slab position has expired.
    Key(u32),
    /// This connection (table slot and generation) may have been idle too long.
    Conn(u32, u32),
    /// The blocked client with this id (low, high 32 bits; see [`crate::blocking`])
    /// times out.
    Blocked(u32, u32),
}

/// A shard's timing wheel.
pub type Timers = TimingWheel<Timer>;
