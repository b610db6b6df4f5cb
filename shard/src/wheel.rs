//! A hierarchical timing wheel: every deadline a shard tracks — key expiry, idle
//! connections — in one structure driven by one timer.
//!
//! Six levels of 64 slots. A level-0 slot spans 1 ms, a level-1 slot 64 ms, a level-*n*
//! slot 64ⁿ ms; the six levels cover 64⁶ ms (about 2.2 years) ahead. A timer sits at the
//! level of the highest 6-bit group in which its deadline differs from the wheel's
//! current time, so near deadlines are precise and far ones are coarse. When time reaches
//! a slot of a higher level, its timers move down (cascade) to finer levels; a timer
//! fires from level 0 at its exact millisecond. Deadlines beyond the top level wrap
//! around it and cascade again a rotation later, so any deadline is accepted.
//!
//! Timers live in a slab, linked into per-slot doubly linked lists by index: insert and
//! cancel are O(1) and allocate nothing once the slab has grown. A 64-bit occupancy mask
//! per level finds the next non-empty slot with one rotate and one trailing-zeros count,
//! which is how the shard knows when to wake next. [`TimingWheel::advance`] hands out at
//! most a budget of due timers per call, so a million keys expiring in the same
//! millisecond are reclaimed over several turns of the event loop instead of stalling it.

use crate::pool::ShrinkGate;

/// Bits of deadline resolved by one level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Levels.
const LEVELS: usize = 6;
/// The span of the whole wheel, in milliseconds.
const SPAN: u64 = 1 << (SLOT_BITS as u64 * LEVELS as u64);
/// End of a list; also "not linked".
const NIL: u32 = u32::MAX;
/// The `level` of a node on the due list.
const DUE: u8 = u8::MAX;
/// The `level` of a free node.
const FREE: u8 = u8::MAX - 1;

/// Identifies a timer for [`TimingWheel::cancel`]. Valid until the timer fires or is
/// cancelled; the generation makes a stale handle harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    idx: u32,
    gen: u32,
}

impl TimerHandle {
    /// A handle that refers to no timer.
    pub const NONE: TimerHandle = TimerHandle { idx: NIL, gen: 0 };

    /// Whether this is [`TimerHandle::NONE`].
    pub fn is_none(&self) -> bool {
        self.idx == NIL
    }

    /// The handle as two integers, for storing it packed (see `store::entry`).
    pub(crate) fn to_parts(self) -> (u32, u32) {
        (self.idx, self.gen)
    }

    /// The handle [`to_parts`](Self::to_parts) gave.
    pub(crate) fn from_parts(idx: u32, gen: u32) -> TimerHandle {
        TimerHandle { idx, gen }
    }
}

impl Default for TimerHandle {
    fn default() -> Self {
        TimerHandle::NONE
    }
}

struct Node<T> {
    deadline: u64,
    prev: u32,
    next: u32,
    gen: u32,
    level: u8,
    slot: u8,
    item: Option<T>,
}

/// The timing wheel. See the module docs.
pub struct TimingWheel<T> {
    nodes: Vec<Node<T>>,
    free: u32,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    /// Timers whose deadline has passed, waiting to be handed out.
    due_head: u32,
    due_tail: u32,
    /// Time up to which every slot has been processed, in ms.
    elapsed: u64,
    len: usize,
    /// Generation given to nodes created from now on: above that of any node dropped by
    /// [`shrink`](TimingWheel::shrink), so no old handle can match a new node.
    fresh_gen: u32,
    /// When [`shrink`](TimingWheel::shrink) acts.
    shrink: ShrinkGate,
}

/// Which level a deadline belongs at, relative to `elapsed`.
#[inline]
fn level_for(elapsed: u64, when: u64) -> usize {
    let significant = ((elapsed ^ when) | (SLOTS as u64 - 1)).min(SPAN - 1);
    let bit = 63 - significant.leading_zeros();
    (bit / SLOT_BITS) as usize
}

#[inline]
fn slot_for(level: usize, when: u64) -> usize {
    ((when >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1)
}

/// Milliseconds one slot of `level` spans.
#[inline]
fn slot_range(level: usize) -> u64 {
    1 << (level as u32 * SLOT_BITS)
}

impl<T> TimingWheel<T> {
    /// An empty wheel whose clock starts at `now` (ms).
    pub fn new(now: u64) -> Self {
        TimingWheel {
            nodes: Vec::new(),
            free: NIL,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            due_head: NIL,
            due_tail: NIL,
            elapsed: now,
            len: 0,
            fresh_gen: 0,
            shrink: ShrinkGate::new(),
        }
    }

    /// Gives back the slab memory of free nodes at its end when at most 1/16 of the slab
    /// is in use (or none). O(slab) when it acts; call it from housekeeping.
    pub fn shrink(&mut self) {
        if !self.shrink.open(self.len, self.nodes.len()) {
            return;
        }
        let keep = self
            .nodes
            .iter()
            .rposition(|n| n.level != FREE)
            .map_or(0, |i| i + 1);
        for n in &self.nodes[keep..] {
            self.fresh_gen = self.fresh_gen.max(n.gen.wrapping_add(1));
        }
        self.nodes.truncate(keep);
        self.nodes.shrink_to_fit();
        self.free = NIL;
        for i in (0..self.nodes.len()).rev() {
            if self.nodes[i].level == FREE {
                self.nodes[i].next = self.free;
                self.free = i as u32;
            }
        }
    }

    /// Number of timers (due ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no timers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The time up to which the wheel has been advanced.
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Slab slots allocated, for memory accounting.
    pub fn capacity(&self) -> usize {
        self.nodes.len()
    }

    /// Adds a timer firing at `deadline` (ms); a deadline already passed fires at the next
    /// [`advance`](Self::advance).
    pub fn insert(&mut self, deadline: u64, item: T) -> TimerHandle {
        let idx = self.alloc(deadline, item);
        if deadline <= self.elapsed {
            self.push_due(idx);
        } else {
            self.link(idx);
        }
        self.len += 1;
        TimerHandle {
            idx,
            gen: self.nodes[idx as usize].gen,
        }
    }

    /// Removes a timer before it fires; returns its item, or `None` if the handle is
    /// stale (the timer already fired or was cancelled).
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        let node = self.nodes.get(handle.idx as usize)?;
        if node.gen != handle.gen || node.level == FREE {
            return None;
        }
        self.unlink(handle.idx);
        self.len -= 1;
        Some(self.release(handle.idx))
    }

    /// The deadline of a live timer.
    pub fn deadline(&self, handle: TimerHandle) -> Option<u64> {
        let node = self.nodes.get(handle.idx as usize)?;
        (node.gen == handle.gen && node.level != FREE).then_some(node.deadline)
    }

    /// When the wheel next has work: `elapsed` if timers are due, else the start of the
    /// earliest occupied slot (a lower bound; a coarse slot cascades then and may fire
    /// later). `None` when empty.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.due_head != NIL {
            return Some(self.elapsed);
        }
        self.next_expiration().map(|(_, _, deadline)| deadline)
    }

    /// Moves the clock to `now` and hands out, into `out`, up to `budget` timers whose
    /// deadline is at or before `now`, earliest slots first. Returns whether due timers
    /// are left over for another call.
    pub fn advance(&mut self, now: u64, budget: usize, out: &mut Vec<T>) -> bool {
        let mut handed = 0;
        loop {
            while handed < budget {
                let Some(item) = self.pop_due() else { break };
                out.push(item);
                handed += 1;
            }
            if handed >= budget {
                return self.due_head != NIL || self.next_deadline().is_some_and(|d| d <= now);
            }
            match self.next_expiration() {
                Some((level, slot, deadline)) if deadline <= now => {
                    self.process_slot(level, slot, deadline);
                    self.elapsed = self.elapsed.max(deadline);
                }
                _ => {
                    self.elapsed = self.elapsed.max(now);
                    return false;
                }
            }
        }
    }

    /// The earliest occupied slot: `(level, slot, start)`.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let range = slot_range(level);
            let now_slot = ((self.elapsed / range) as usize) & (SLOTS - 1);
            // The clock's own slot never holds a timer due in this rotation (it would sit
            // at a finer level), so the search starts just after it and that slot, if
            // occupied, comes last.
            let from = (now_slot + 1) % SLOTS;
            let slot =
                (occupied.rotate_right(from as u32).trailing_zeros() as usize + from) % SLOTS;
            let level_range = range * SLOTS as u64;
            let level_start = self.elapsed & !(level_range - 1);
            let mut deadline = level_start + slot as u64 * range;
            if deadline <= self.elapsed {
                // Only the top level wraps: it also holds deadlines beyond the wheel's
                // span, and a slot at or behind the clock there is a rotation ahead.
                deadline += level_range;
            }
            return Some((level, slot, deadline.max(self.elapsed)));
        }
        None
    }

    /// Takes every timer of a slot reached at time `at`: due ones go to the due list,
    /// others cascade to the level their deadline now belongs at.
    fn process_slot(&mut self, level: usize, slot: usize, at: u64) {
        let mut idx = std::mem::replace(&mut self.heads[level][slot], NIL);
        self.occupied[level] &= !(1u64 << slot);
        while idx != NIL {
            let next = self.nodes[idx as usize].next;
            let deadline = self.nodes[idx as usize].deadline;
            if deadline <= at {
                self.push_due(idx);
            } else {
                let level = level_for(at, deadline);
                self.link_at(idx, level, slot_for(level, deadline));
            }
            idx = next;
        }
    }

    fn alloc(&mut self, deadline: u64, item: T) -> u32 {
        if self.free != NIL {
            let idx = self.free;
            let node = &mut self.nodes[idx as usize];
            self.free = node.next;
            node.deadline = deadline;
            node.prev = NIL;
            node.next = NIL;
            node.item = Some(item);
            node.level = DUE;
            idx
        } else {
            let idx = u32::try_from(self.nodes.len()).expect("more than 4 billion timers");
            self.shrink.grew();
            self.nodes.push(Node {
                deadline,
                prev: NIL,
                next: NIL,
                gen: self.fresh_gen,
                level: DUE,
                slot: 0,
                item: Some(item),
            });
            idx
        }
    }

    fn release(&mut self, idx: u32) -> T {
        let free = self.free;
        let node = &mut self.nodes[idx as usize];
        node.gen = node.gen.wrapping_add(1);
        node.level = FREE;
        node.prev = NIL;
        node.next = free;
        self.free = idx;
        node.item.take().expect("a live node has its item")
    }

    fn link(&mut self, idx: u32) {
        let deadline = self.nodes[idx as usize].deadline;
        let level = level_for(self.elapsed, deadline);
        self.link_at(idx, level, slot_for(level, deadline));
    }

    fn link_at(&mut self, idx: u32, level: usize, slot: usize) {
        let head = self.heads[level][slot];
        {
            let node = &mut self.nodes[idx as usize];
            node.level = level as u8;
            node.slot = slot as u8;
            node.prev = NIL;
            node.next = head;
        }
        if head != NIL {
            self.nodes[head as usize].prev = idx;
        }
        self.heads[level][slot] = idx;
        self.occupied[level] |= 1u64 << slot;
    }

    fn push_due(&mut self, idx: u32) {
        {
            let node = &mut self.nodes[idx as usize];
            node.level = DUE;
            node.prev = self.due_tail;
            node.next = NIL;
        }
        if self.due_tail != NIL {
            self.nodes[self.due_tail as usize].next = idx;
        } else {
            self.due_head = idx;
        }
        self.due_tail = idx;
    }

    fn pop_due(&mut self) -> Option<T> {
        if self.due_head == NIL {
            return None;
        }
        let idx = self.due_head;
        self.unlink(idx);
        self.len -= 1;
        Some(self.release(idx))
    }

    /// Removes a node from whatever list holds it.
    fn unlink(&mut self, idx: u32) {
        let (prev, next, level, slot) = {
            let n = &self.nodes[idx as usize];
            (n.prev, n.next, n.level, n.slot as usize)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else if level == DUE {
            self.due_head = next;
        } else {
            self.heads[level as usize][slot] = next;
            if next == NIL {
                self.occupied[level as usize] &= !(1u64 << slot);
            }
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else if level == DUE {
            self.due_tail = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn drain(w: &mut TimingWheel<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        while w.advance(now, usize::MAX, &mut out) {}
        out
    }

    #[test]
    fn fires_at_the_exact_millisecond() {
        let mut w = TimingWheel::new(1000);
        w.insert(1005, 1);
        w.insert(1070, 2);
        w.insert(1000 + 5000, 3);
        assert!(drain(&mut w, 1004).is_empty());
        assert_eq!(drain(&mut w, 1005), vec![1]);
        // A lower bound: the start of the coarse slot holding 1070.
        assert!(w.next_deadline().unwrap() <= 1070);
        assert!(drain(&mut w, 1069).is_empty());
        assert_eq!(drain(&mut w, 1070), vec![2]);
        assert!(drain(&mut w, 5999).is_empty());
        assert_eq!(drain(&mut w, 6000), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadlines_fire_on_the_next_advance() {
        let mut w = TimingWheel::new(500);
        w.insert(10, 7);
        assert_eq!(w.next_deadline(), Some(500));
        assert_eq!(drain(&mut w, 500), vec![7]);
    }

    #[test]
    fn cancel_is_exact_and_stale_handles_are_harmless() {
        let mut w = TimingWheel::new(0);
        let a = w.insert(100, 1);
        let b = w.insert(100, 2);
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None, "already cancelled");
        let c = w.insert(100, 3); // reuses a's node
        assert_eq!(
            w.cancel(a),
            None,
            "stale handle must not cancel the new timer"
        );
        let mut fired = drain(&mut w, 100);
        fired.sort_unstable();
        assert_eq!(fired, vec![2, 3]);
        assert_eq!(w.cancel(b), None, "fired");
        assert_eq!(w.cancel(c), None);
    }

    #[test]
    fn far_deadlines_beyond_the_wheel_still_fire() {
        let mut w = TimingWheel::new(0);
        let far = SPAN * 3 + 12345;
        w.insert(far, 9);
        w.insert(SPAN - 1, 8);
        let mut now = 0;
        let mut fired = Vec::new();
        // Jump in coarse steps, as an idle shard would.
        while fired.len() < 2 {
            now = w.next_deadline().unwrap().max(now + 1);
            assert!(now <= far, "overshot");
            fired.extend(drain(&mut w, now));
        }
        assert_eq!(fired, vec![8, 9]);
        assert_eq!(now, far);
    }

    #[test]
    fn shrinking_keeps_live_timers_and_stale_handles_harmless() {
        let mut w = TimingWheel::new(0);
        let handles: Vec<TimerHandle> = (0..10_000).map(|i| w.insert(100 + i, i as u32)).collect();
        let keep = w.insert(1_000_000, 99_999);
        for h in &handles {
            w.cancel(*h);
        }
        w.shrink();
        assert!(w.capacity() > 10_000, "the live timer sits at the end");
        w.cancel(keep);
        w.shrink();
        assert_eq!(w.capacity(), 0);
        let fresh = w.insert(50, 7);
        assert_eq!(
            w.cancel(handles[0]),
            None,
            "a handle from before the shrink"
        );
        assert_eq!(w.cancel(fresh), Some(7));
    }

    #[test]
    fn budget_carries_the_rest_over() {
        let mut w = TimingWheel::new(0);
        for i in 0..100 {
            w.insert(50, i);
        }
        let mut out = Vec::new();
        assert!(w.advance(60, 30, &mut out));
        assert_eq!(out.len(), 30);
        assert!(w.advance(60, 30, &mut out));
        assert!(w.advance(60, 30, &mut out));
        assert!(!w.advance(60, 30, &mut out));
        assert_eq!(out.len(), 100);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Cancel(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop_oneof![0u64..100, 0u64..5000, 0u64..400_000, 0u64..(SPAN * 2)]
                .prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::Cancel),
            3 => prop_oneof![0u64..10, 0u64..1000, 0u64..300_000].prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// The wheel against a `BTreeMap` model: the same random inserts (deadlines
        /// relative to the clock), cancels and advances; at every step they agree on what
        /// fires, and nothing fires early or late.
        #[test]
        fn agrees_with_a_btreemap(ops in prop::collection::vec(op(), 1..200), budget in 1usize..20) {
            let start = 1_000_000u64;
            let mut w = TimingWheel::new(start);
            let mut model: BTreeMap<(u64, u32), ()> = BTreeMap::new();
            let mut handles: Vec<(TimerHandle, u64, u32)> = Vec::new();
            let mut now = start;
            let mut next_id = 0u32;
            for op in ops {
                match op {
                    Op::Insert(after) => {
                        let deadline = now + after;
                        let h = w.insert(deadline, next_id);
                        model.insert((deadline, next_id), ());
                        handles.push((h, deadline, next_id));
                        next_id += 1;
                    }
                    Op::Cancel(i) if !handles.is_empty() => {
                        let (h, deadline, id) = handles.swap_remove(i % handles.len());
                        let got = w.cancel(h);
                        let want = model.remove(&(deadline, id)).map(|_| id);
                        prop_assert_eq!(got, want);
                    }
                    Op::Cancel(_) => {}
                    Op::Advance(by) => {
                        now += by;
                        let mut fired = Vec::new();
                        while w.advance(now, budget, &mut fired) {}
                        let mut want: Vec<u32> = Vec::new();
                        while let Some((&(deadline, id), _)) = model.iter().next() {
                            if deadline > now { break; }
                            model.remove(&(deadline, id));
                            want.push(id);
                        }
                        fired.sort_unstable();
                        want.sort_unstable();
                        prop_assert_eq!(fired, want);
                        handles.retain(|(_, d, _)| *d > now);
                        if let Some(next) = w.next_deadline() {
                            let earliest = model.keys().next().map(|k| k.0).unwrap();
                            prop_assert!(next <= earliest, "next_deadline {} after earliest {}", next, earliest);
                            prop_assert!(next > now);
                        } else {
                            prop_assert!(model.is_empty());
                        }
                    }
                }
                prop_assert_eq!(w.len(), model.len());
            }
        }
    }
}
