//! Lists as stored: a deque of nodes, each a run of elements packed into one buffer, as
//! Redis 7.0 keeps a list in a quicklist of listpacks.
//!
//! An element in a node is `length, bytes, length reversed` (LEB128 varints; the
//! reversed copy lets a node be walked from its end, as a listpack's backlen does): two
//! bytes of overhead for elements under 128 bytes. A node's elements live in
//! `buf[head..]`: popping from the front moves `head` instead of the bytes, and pushing to
//! the front writes into the gap before it, so both ends are amortized O(1).
//!
//! A node holds at most `list-max-listpack-size` worth (`fill`): a positive fill is a
//! count of elements (and 8 KiB at most, Redis's safety limit), a negative one a size,
//! -1 to -5 being 4 to 64 KiB. An element larger than that gets a node of its own.
//! Reaching element *i* walks the node counts from the nearer end, then the node's
//! elements from its nearer end: O(nodes + node size), never O(i).

use std::collections::VecDeque;

use super::block::{get_varint, put_varint, varint_len};

/// `list-max-listpack-size`'s default: 8 KiB per node.
pub const DEFAULT_FILL: i64 = -2;

/// Redis's `SIZE_SAFETY_LIMIT`: the most bytes a node counted by elements holds.
const SAFETY_LIMIT: usize = 8192;

/// Bytes an element of `len` bytes takes in a node.
#[inline]
fn encoded_len(len: usize) -> usize {
    len + 2 * varint_len(len)
}

/// Writes element `e` into `dst` (exactly [`encoded_len`] bytes).
fn encode(dst: &mut [u8], e: &[u8]) {
    let k = put_varint(dst, e.len());
    dst[k..k + e.len()].copy_from_slice(e);
    let mut tmp = [0u8; 10];
    let n = put_varint(&mut tmp, e.len());
    for (i, b) in tmp[..n].iter().rev().enumerate() {
        dst[k + e.len() + i] = *b;
    }
}

/// Reads the reversed length that ends at `end`: the element's length and the bytes of
/// the varint.
#[inline]
fn back_len(buf: &[u8], end: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut p = end;
    loop {
        p -= 1;
        let b = buf[p];
        n |= ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return (n, end - p);
        }
    }
}

/// Most data bytes a node may hold under `fill`, and most elements.
#[inline]
fn limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (SAFETY_LIMIT, fill.max(1) as usize)
    } else {
        let shift = (-fill).clamp(1, 5) - 1;
        (4096 << shift, usize::MAX)
    }
}

/// A run of elements in one buffer (see the module docs).
#[derive(Clone, Debug, Default)]
struct Node {
    buf: Vec<u8>,
    head: usize,
    count: u32,
}

impl Node {
    fn data_len(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Whether an element of `add` encoded bytes may join it under `fill`.
    fn fits(&self, add: usize, fill: i64) -> bool {
        if self.count == 0 {
            return true;
        }
        let (bytes, count) = limits(fill);
        (self.count as usize) < count && self.data_len() + add <= bytes
    }

    /// The element starting at `off`: its bytes and where the next one starts.
    #[inline]
    fn at(&self, off: usize) -> (&[u8], usize) {
        let (len, k) = get_varint(&self.buf[off..]);
        let start = off + k;
        (&self.buf[start..start + len], start + len + varint_len(len))
    }

    /// The element ending at `end`: its bytes and where it starts.
    #[inline]
    fn before(&self, end: usize) -> (&[u8], usize) {
        let (len, k) = back_len(&self.buf, end);
        let data = end - k - len;
        (&self.buf[data..data + len], data - varint_len(len))
    }

    /// Where element `i` (< count) starts, walking from the nearer end.
    fn offset_of(&self, i: usize) -> usize {
        let count = self.count as usize;
        if i <= count / 2 {
            let mut off = self.head;
            for _ in 0..i {
                off = self.at(off).1;
            }
            off
        } else {
            let mut off = self.buf.len();
            for _ in i..count {
                off = self.before(off).1;
            }
            off
        }
    }

    fn push_back(&mut self, e: &[u8]) {
        let n = encoded_len(e.len());
        let at = self.buf.len();
        if at + n > self.buf.capacity() {
            // Grow by a quarter (at least 32 bytes), not double: still amortized O(1),
            // and a small list wastes less.
            let more = (at + n - self.buf.len())
                .max(self.buf.capacity() / 4)
                .max(32);
            self.buf.reserve_exact(more);
        }
        self.buf.resize(at + n, 0);
        encode(&mut self.buf[at..], e);
        self.count += 1;
    }

    fn push_front(&mut self, e: &[u8]) {
        let n = encoded_len(e.len());
        if self.head < n {
            // Make a gap as large as the data (up to what a node holds), so a run of
            // front pushes moves the bytes O(log) times.
            let data = self.data_len();
            let gap = n + data.clamp(16, SAFETY_LIMIT);
            let mut buf = Vec::with_capacity(gap + data);
            buf.resize(gap, 0);
            buf.extend_from_slice(&self.buf[self.head..]);
            self.buf = buf;
            self.head = gap;
        }
        self.head -= n;
        let head = self.head;
        encode(&mut self.buf[head..head + n], e);
        self.count += 1;
    }

    /// Inserts `e` before element `i` (`i == count`: at the end).
    fn insert(&mut self, i: usize, e: &[u8]) {
        if i == 0 {
            return self.push_front(e);
        }
        if i == self.count as usize {
            return self.push_back(e);
        }
        let off = self.offset_of(i);
        let mut enc = vec![0u8; encoded_len(e.len())];
        encode(&mut enc, e);
        self.buf.splice(off..off, enc);
        self.count += 1;
    }

    /// Removes element `i`.
    fn remove(&mut self, i: usize) {
        let off = self.offset_of(i);
        let next = self.at(off).1;
        if off == self.head {
            self.head = next;
        } else {
            self.buf.drain(off..next);
        }
        self.count -= 1;
        self.settle();
    }

    /// Replaces element `i` with `e`.
    fn replace(&mut self, i: usize, e: &[u8]) {
        let off = self.offset_of(i);
        let next = self.at(off).1;
        let mut enc = vec![0u8; encoded_len(e.len())];
        encode(&mut enc, e);
        self.buf.splice(off..next, enc);
    }

    /// Gives back the buffer of an emptied node, and the front gap of a node that lost
    /// most of its bytes there.
    fn settle(&mut self) {
        if self.count == 0 {
            self.buf = Vec::new();
            self.head = 0;
        } else if self.head > SAFETY_LIMIT && self.head > 3 * self.data_len() {
            self.buf.drain(..self.head);
            self.head = 0;
            self.buf.shrink_to(self.buf.len() * 2);
        }
    }

    /// The elements, front to back.
    fn elements(&self) -> Vec<&[u8]> {
        let mut v = Vec::with_capacity(self.count as usize);
        let mut off = self.head;
        while off < self.buf.len() {
            let (e, next) = self.at(off);
            v.push(e);
            off = next;
        }
        v
    }

    fn from_elements<'a>(elems: impl Iterator<Item = &'a [u8]>) -> Node {
        let mut n = Node::default();
        for e in elems {
            n.push_back(e);
        }
        n
    }
}

/// A list (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
    /// Capacity of the nodes' buffers.
    heap: usize,
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many nodes (for the tests and DEBUG-style introspection).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes it uses (for `used_memory`).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<List>()
            + self.heap
            + self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    /// A new node at the front or back; the deque grows by one node at a time while it
    /// is small (most lists are one node).
    fn new_node(&mut self, front: bool) {
        if self.nodes.len() == self.nodes.capacity() && self.nodes.len() < 8 {
            self.nodes.reserve_exact(1);
        }
        if front {
            self.nodes.push_front(Node::default());
        } else {
            self.nodes.push_back(Node::default());
        }
    }

    /// Runs `f` on node `n`, keeping the heap count; drops the node when it empties.
    fn edit<R>(&mut self, n: usize, f: impl FnOnce(&mut Node) -> R) -> R {
        let node = &mut self.nodes[n];
        let before = node.buf.capacity();
        let r = f(node);
        let after = node.buf.capacity();
        self.heap = self.heap - before + after;
        if node.count == 0 {
            self.nodes.remove(n);
        }
        r
    }

    /// Adds `e` at the front.
    pub fn push_front(&mut self, e: &[u8], fill: i64) {
        let n = encoded_len(e.len());
        if !self.nodes.front().is_some_and(|f| f.fits(n, fill)) {
            self.new_node(true);
        }
        self.edit(0, |node| node.push_front(e));
        self.len += 1;
    }

    /// Adds `e` at the back.
    pub fn push_back(&mut self, e: &[u8], fill: i64) {
        let n = encoded_len(e.len());
        if !self.nodes.back().is_some_and(|b| b.fits(n, fill)) {
            self.new_node(false);
        }
        let last = self.nodes.len() - 1;
        self.edit(last, |node| node.push_back(e));
        self.len += 1;
    }

    /// Removes the first element, handing it to `f` first.
    pub fn pop_front_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.edit(0, |node| {
            let (e, next) = node.at(node.head);
            let r = f(e);
            node.head = next;
            node.count -= 1;
            node.settle();
            r
        }))
    }

    /// Removes the last element, handing it to `f` first.
    pub fn pop_back_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let last = self.nodes.len() - 1;
        Some(self.edit(last, |node| {
            let (e, start) = node.before(node.buf.len());
            let r = f(e);
            node.buf.truncate(start);
            node.count -= 1;
            node.settle();
            r
        }))
    }

    /// The node holding element `i` (< len) and the element's index in it.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (n, node) in self.nodes.iter().enumerate() {
                let c = node.count as usize;
                if i < c {
                    return (n, i);
                }
                i -= c;
            }
        } else {
            let mut from_end = self.len - i;
            for (n, node) in self.nodes.iter().enumerate().rev() {
                let c = node.count as usize;
                if from_end <= c {
                    return (n, c - from_end);
                }
                from_end -= c;
            }
        }
        unreachable!("index {i} within a list of {}", self.len)
    }

    /// Element `i` (0-based from the front).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (n, j) = self.locate(i);
        let node = &self.nodes[n];
        Some(node.at(node.offset_of(j)).0)
    }

    /// Replaces element `i` (< len) with `e`.
    pub fn set(&mut self, i: usize, e: &[u8], fill: i64) {
        let (n, j) = self.locate(i);
        self.edit(n, |node| node.replace(j, e));
        self.split_if_over(n, fill);
    }

    /// Inserts `e` so that it becomes element `i` (`i <= len`).
    pub fn insert(&mut self, i: usize, e: &[u8], fill: i64) {
        if i == 0 {
            return self.push_front(e, fill);
        }
        if i == self.len {
            return self.push_back(e, fill);
        }
        let (n, j) = self.locate(i);
        let add = encoded_len(e.len());
        // At a node's start, the previous node may have room for it at its end.
        if j == 0 && n > 0 && self.nodes[n - 1].fits(add, fill) {
            self.edit(n - 1, |node| node.push_back(e));
        } else {
            self.edit(n, |node| node.insert(j, e));
            self.split_if_over(n, fill);
        }
        self.len += 1;
    }

    /// Splits node `n` in two when an edit in the middle took it over `fill`.
    fn split_if_over(&mut self, n: usize, fill: i64) {
        let node = &self.nodes[n];
        let (bytes, count) = limits(fill);
        if node.count < 2 || (node.data_len() <= bytes && (node.count as usize) <= count) {
            return;
        }
        let elems = node.elements();
        let half = elems.len() / 2;
        let a = Node::from_elements(elems[..half].iter().copied());
        let b = Node::from_elements(elems[half..].iter().copied());
        let old = node.buf.capacity();
        self.heap = self.heap - old + a.buf.capacity() + b.buf.capacity();
        self.nodes[n] = a;
        self.nodes.insert(n + 1, b);
    }

    /// Removes element `i` (< len).
    pub fn remove(&mut self, i: usize) {
        let (n, j) = self.locate(i);
        self.edit(n, |node| node.remove(j));
        self.len -= 1;
    }

    /// Elements from index `start` towards the back.
    pub fn iter_from(&self, start: usize) -> Iter<'_> {
        if start >= self.len {
            return Iter {
                list: self,
                node: self.nodes.len(),
                off: 0,
            };
        }
        let (n, j) = self.locate(start);
        Iter {
            list: self,
            node: n,
            off: self.nodes[n].offset_of(j),
        }
    }

    /// Every element, front to back.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// Elements from index `start` towards the front (`start` included).
    pub fn iter_back_from(&self, start: usize) -> RevIter<'_> {
        if self.len == 0 {
            return RevIter {
                list: self,
                node: None,
                end: 0,
            };
        }
        let start = start.min(self.len - 1);
        let (n, j) = self.locate(start);
        let node = &self.nodes[n];
        let end = node.at(node.offset_of(j)).1;
        RevIter {
            list: self,
            node: Some(n),
            end,
        }
    }

    /// Removes elements for which `pred` holds, at most `limit` of them, walking from
    /// the front (or from the back when `from_back`); returns how many went.
    pub fn remove_where(
        &mut self,
        from_back: bool,
        limit: usize,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> usize {
        let mut removed = 0;
        let order: Vec<usize> = if from_back {
            (0..self.nodes.len()).rev().collect()
        } else {
            (0..self.nodes.len()).collect()
        };
        let mut emptied = Vec::new();
        for n in order {
            if removed >= limit {
                break;
            }
            let node = &self.nodes[n];
            let elems = node.elements();
            let mut keep = vec![true; elems.len()];
            let mut hit = false;
            let idxs: Box<dyn Iterator<Item = usize>> = if from_back {
                Box::new((0..elems.len()).rev())
            } else {
                Box::new(0..elems.len())
            };
            for i in idxs {
                if removed >= limit {
                    break;
                }
                if pred(elems[i]) {
                    keep[i] = false;
                    removed += 1;
                    hit = true;
                }
            }
            if !hit {
                continue;
            }
            let rebuilt = Node::from_elements(
                elems
                    .iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(e, _)| *e),
            );
            let old = node.buf.capacity();
            self.heap = self.heap - old + rebuilt.buf.capacity();
            if rebuilt.count == 0 {
                emptied.push(n);
            }
            self.nodes[n] = rebuilt;
        }
        emptied.sort_unstable();
        for n in emptied.into_iter().rev() {
            self.nodes.remove(n);
        }
        self.len -= removed;
        removed
    }

    /// Keeps elements `start..=stop` (within the list, `start <= stop`) and drops the
    /// rest: LTRIM.
    pub fn trim(&mut self, start: usize, stop: usize) {
        let mut front = start;
        while let Some(node) = self.nodes.front() {
            let c = node.count as usize;
            if c > front {
                break;
            }
            front -= c;
            self.len -= c;
            self.heap -= node.buf.capacity();
            self.nodes.pop_front();
        }
        for _ in 0..front {
            self.pop_front_with(|_| ());
        }
        let mut back = self.len - (stop + 1 - start);
        while let Some(node) = self.nodes.back() {
            let c = node.count as usize;
            if c > back {
                break;
            }
            back -= c;
            self.len -= c;
            self.heap -= node.buf.capacity();
            self.nodes.pop_back();
        }
        for _ in 0..back {
            self.pop_back_with(|_| ());
        }
    }

    /// Drops up to `budget` elements' worth of nodes from the back (freeing a large list
    /// in slices); returns whether any are left.
    pub fn drain_some(&mut self, budget: usize) -> bool {
        let mut spent = 0;
        while spent < budget {
            let Some(node) = self.nodes.pop_back() else {
                break;
            };
            spent += node.count as usize + 1;
            self.len -= node.count as usize;
            self.heap -= node.buf.capacity();
        }
        if self.nodes.is_empty() {
            self.nodes = VecDeque::new();
            return false;
        }
        true
    }
}

/// Elements towards the back (see [`List::iter_from`]).
pub struct Iter<'a> {
    list: &'a List,
    node: usize,
    off: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let node = self.list.nodes.get(self.node)?;
            if self.off < node.buf.len() && node.count > 0 {
                let (e, next) = node.at(self.off);
                self.off = next;
                return Some(e);
            }
            self.node += 1;
            self.off = self.list.nodes.get(self.node).map_or(0, |n| n.head);
        }
    }
}

/// Elements towards the front (see [`List::iter_back_from`]).
pub struct RevIter<'a> {
    list: &'a List,
    node: Option<usize>,
    end: usize,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let n = self.node?;
            let node = &self.list.nodes[n];
            if self.end > node.head {
                let (e, start) = node.before(self.end);
                self.end = start;
                return Some(e);
            }
            if n == 0 {
                self.node = None;
                return None;
            }
            self.node = Some(n - 1);
            self.end = self.list.nodes[n - 1].buf.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        PushFront(Vec<u8>),
        PushBack(Vec<u8>),
        PopFront,
        PopBack,
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        Remove(usize),
        RemoveWhere(bool, usize, u8),
        Trim(usize, usize),
    }

    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => prop::collection::vec(0u8..4, 0..6),
            1 => prop::collection::vec(any::<u8>(), 100..300),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => elem().prop_map(Op::PushFront),
            4 => elem().prop_map(Op::PushBack),
            2 => Just(Op::PopFront),
            2 => Just(Op::PopBack),
            1 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Set(i, e)),
            2 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Insert(i, e)),
            1 => any::<usize>().prop_map(Op::Remove),
            1 => (any::<bool>(), 0usize..5, 0u8..4).prop_map(|(b, l, v)| Op::RemoveWhere(b, l, v)),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Trim(a, b)),
        ]
    }

    fn check(l: &List, model: &VecDeque<Vec<u8>>) -> Result<(), TestCaseError> {
        prop_assert_eq!(l.len(), model.len());
        let fwd: Vec<&[u8]> = l.iter().collect();
        let want: Vec<&[u8]> = model.iter().map(|v| &v[..]).collect();
        prop_assert_eq!(&fwd, &want);
        let back: Vec<&[u8]> = l.iter_back_from(usize::MAX).collect();
        let want_back: Vec<&[u8]> = model.iter().rev().map(|v| &v[..]).collect();
        prop_assert_eq!(back, want_back);
        for (i, v) in model.iter().enumerate() {
            prop_assert_eq!(l.get(i), Some(&v[..]));
        }
        let mut heap = 0;
        for n in &l.nodes {
            prop_assert!(n.count > 0, "no empty nodes");
            prop_assert_eq!(n.elements().len(), n.count as usize);
            heap += n.buf.capacity();
        }
        prop_assert_eq!(heap, l.heap);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn lists_behave_like_a_deque(fill in prop_oneof![Just(-1i64), Just(-2), Just(1), Just(3), Just(8)],
                                     ops in prop::collection::vec(op(), 0..300)) {
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushFront(e) => { l.push_front(&e, fill); m.push_front(e); }
                    Op::PushBack(e) => { l.push_back(&e, fill); m.push_back(e); }
                    Op::PopFront => prop_assert_eq!(l.pop_front_with(<[u8]>::to_vec), m.pop_front()),
                    Op::PopBack => prop_assert_eq!(l.pop_back_with(<[u8]>::to_vec), m.pop_back()),
                    Op::Set(i, e) if !m.is_empty() => {
                        let i = i % m.len();
                        l.set(i, &e, fill);
                        m[i] = e;
                    }
                    Op::Insert(i, e) => {
                        let i = i % (m.len() + 1);
                        l.insert(i, &e, fill);
                        m.insert(i, e);
                    }
                    Op::Remove(i) if !m.is_empty() => {
                        let i = i % m.len();
                        l.remove(i);
                        m.remove(i);
                    }
                    Op::RemoveWhere(from_back, limit, v) => {
                        let is = |e: &[u8]| e.first() == Some(&v);
                        let got = l.remove_where(from_back, limit, is);
                        let mut gone = 0;
                        let mut idx: Vec<usize> = (0..m.len()).collect();
                        if from_back { idx.reverse(); }
                        let mut drop = vec![false; m.len()];
                        for i in idx {
                            if gone < limit && is(&m[i]) { drop[i] = true; gone += 1; }
                        }
                        let mut i = 0;
                        m.retain(|_| { i += 1; !drop[i - 1] });
                        prop_assert_eq!(got, gone);
                    }
                    Op::Trim(a, b) if !m.is_empty() => {
                        let a = a % m.len();
                        let b = a + b % (m.len() - a);
                        l.trim(a, b);
                        let kept: VecDeque<Vec<u8>> = m.iter().skip(a).take(b + 1 - a).cloned().collect();
                        m = kept;
                    }
                    _ => {}
                }
                check(&l, &m)?;
            }
            let start = m.len() / 3;
            let fwd: Vec<&[u8]> = l.iter_from(start).collect();
            let want: Vec<&[u8]> = m.iter().skip(start).map(|v| &v[..]).collect();
            prop_assert_eq!(fwd, want);
            let mut l2 = l.clone();
            while l2.drain_some(3) {}
            prop_assert!(l2.is_empty());
        }
    }

    #[test]
    fn nodes_follow_the_fill() {
        let mut l = List::new();
        for i in 0..1000 {
            l.push_back(format!("{i:08}").as_bytes(), 10);
        }
        assert_eq!(l.node_count(), 100);
        let mut l = List::new();
        for i in 0..10_000 {
            l.push_front(format!("{i:08}").as_bytes(), -1);
        }
        // 10 bytes per element, 4 KiB per node.
        assert!(
            l.node_count() >= 24 && l.node_count() <= 26,
            "{}",
            l.node_count()
        );
        assert_eq!(l.get(0), Some(&b"00009999"[..]));
        assert_eq!(l.get(9999), Some(&b"00000000"[..]));
        let big = vec![7u8; 100_000];
        l.push_back(&big, -1);
        assert_eq!(l.get(10_000), Some(&big[..]));
    }
}
