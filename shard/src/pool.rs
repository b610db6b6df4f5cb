//! A shard's pools of connection buffers: read buffers and reply buffers go back to the
//! pool when a connection closes or a burst is over, and new connections take them from
//! it instead of the allocator. Each pool is bounded, only keeps buffers of its standard
//! size (grown ones are freed), and gives back half of what it holds every housekeeping
//! period in which nobody took from it, so a burst of connections does not leave the
//! shard holding memory it no longer needs.
//!
//! `ShrinkGate` is the matching rule for the shard's slabs (keyspace, timing wheel):
//! when one that has mostly emptied should give memory back.

/// Buffers of one kind.
#[derive(Debug)]
pub struct BufPool {
    bufs: Vec<Vec<u8>>,
    /// Standard size: read buffers are this long (zeroed), reply buffers this capacity.
    size: usize,
    /// Whether buffers are handed out full length (read buffers) or empty (replies).
    filled: bool,
    /// Most buffers kept.
    max: usize,
    /// Buffers taken since the last [`BufPool::housekeeping`].
    taken: usize,
}

impl BufPool {
    /// A pool of buffers of `size` bytes (handed out `filled` with zeros, or empty with
    /// that capacity), keeping at most `max`.
    pub fn new(size: usize, filled: bool, max: usize) -> Self {
        BufPool {
            bufs: Vec::new(),
            size,
            filled,
            max,
            taken: 0,
        }
    }

    /// A buffer of the standard size, from the pool if it has one.
    #[inline]
    pub fn take(&mut self) -> Vec<u8> {
        self.taken += 1;
        self.bufs.pop().unwrap_or_else(|| {
            if self.filled {
                vec![0; self.size]
            } else {
                Vec::with_capacity(self.size)
            }
        })
    }

    /// Returns a buffer: kept if it has the standard size and there is room, else freed.
    #[inline]
    pub fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() != self.size || self.bufs.len() >= self.max {
            return;
        }
        if self.filled {
            // Still initialised: only its length may have changed.
            buf.resize(self.size, 0);
        } else {
            buf.clear();
        }
        self.bufs.push(buf);
    }

    /// Bytes the pool holds.
    pub fn bytes(&self) -> usize {
        self.bufs.len() * self.size
    }

    /// Buffers the pool holds.
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Called once a period: an idle pool gives back half of its buffers.
    pub fn housekeeping(&mut self) {
        if self.taken == 0 {
            let keep = self.bufs.len() / 2;
            self.bufs.truncate(keep);
            self.bufs.shrink_to_fit();
        }
        self.taken = 0;
    }
}

/// When a slab that grows at its end and frees into a free list should give memory back:
/// once at most 1/16 of at least 4096 slots are in use (or none). Entries never move, so
/// only trailing free slots can go; a live entry at the end can keep a sparse slab
/// large, so after a shrink the next one waits until half as many remain, or the slab
/// grew: the O(slab) pass does not run on every call.
#[derive(Debug)]
pub(crate) struct ShrinkGate {
    below: usize,
}

impl ShrinkGate {
    /// A gate that opens at the first sparse check.
    pub(crate) fn new() -> Self {
        ShrinkGate { below: usize::MAX }
    }

    /// The slab grew at its end: the next sparse check opens again.
    pub(crate) fn grew(&mut self) {
        self.below = usize::MAX;
    }

    /// Whether a slab of `slots` with `live` entries in use should shrink now; if so,
    /// the next shrink waits until fewer than half of `live` remain (or it grew).
    pub(crate) fn open(&mut self, live: usize, slots: usize) -> bool {
        let sparse = live * 16 < slots && (live == 0 || live < self.below);
        if slots < 4096 || !sparse {
            return false;
        }
        self.below = live / 2;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_standard_buffers_and_frees_the_rest() {
        let mut p = BufPool::new(16, true, 2);
        let a = p.take();
        assert_eq!(a.len(), 16);
        let ptr = a.as_ptr();
        p.give(a);
        let b = p.take();
        assert_eq!(b.as_ptr(), ptr, "the same buffer comes back");
        let mut grown = p.take();
        grown.resize(64, 0);
        p.give(grown);
        assert!(p.is_empty(), "a grown buffer is freed, not kept");
        p.give(b);
        p.give(p_take(16));
        p.give(p_take(16));
        assert_eq!(p.len(), 2, "bounded");
        assert_eq!(p.bytes(), 32);
    }

    fn p_take(n: usize) -> Vec<u8> {
        vec![0; n]
    }

    #[test]
    fn reply_buffers_come_back_empty() {
        let mut p = BufPool::new(32, false, 4);
        let mut a = p.take();
        assert!(a.is_empty() && a.capacity() == 32);
        a.extend_from_slice(b"+OK\r\n");
        p.give(a);
        assert!(p.take().is_empty());
    }

    #[test]
    fn an_idle_pool_shrinks_by_half_each_period() {
        let mut p = BufPool::new(8, true, 100);
        let bufs: Vec<_> = (0..64).map(|_| p.take()).collect();
        bufs.into_iter().for_each(|b| p.give(b));
        p.housekeeping(); // takes happened this period: nothing freed
        assert_eq!(p.len(), 64);
        p.housekeeping();
        assert_eq!(p.len(), 32);
        p.housekeeping();
        assert_eq!(p.len(), 16);
    }

    #[test]
    fn shrink_gate_opens_when_sparse_then_waits_for_half_or_growth() {
        let mut g = ShrinkGate::new();
        assert!(!g.open(0, 4095), "small slabs stay");
        assert!(!g.open(256, 4096), "a sixteenth in use is not sparse");
        assert!(g.open(255, 4096));
        assert!(!g.open(200, 4096), "not again until half as many remain");
        assert!(!g.open(127, 4096) && g.open(126, 4096));
        assert!(g.open(0, 4096), "an empty slab always shrinks");
        g.open(100, 4096);
        g.grew();
        assert!(g.open(100, 4096), "growth opens the gate again");
    }
}
