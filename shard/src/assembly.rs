//! The assembly of one connection's replies, in request order whichever shard produced
//! them.
//!
//! While every request of a read batch runs on this shard, replies are simply appended to
//! one buffer, which is then written as is (the common case costs nothing extra). When a
//! request is forwarded, its reply becomes a *hole*: a numbered place in the output that a
//! reply message from the owning shard fills later. A command that runs on several shards
//! becomes a *gather*: parts from those shards, combined by the merge function the command
//! declared ([`MergeFn`]). The output is put together only when every hole is filled, then
//! written in one go. Nothing here knows a command.

use std::task::Waker;

use corekv_protocol::{Proto, Reply};

use crate::args::OwnedArgs;
use crate::config::Config;
use crate::message::{recycle, KEEP_BYTES};

/// What a merge sees besides the parts: the settings (INFO formats them) and the shard's
/// random numbers (RANDOMKEY picks a shard by weight).
pub struct MergeCtx<'a> {
    /// The connection's shard's settings.
    pub config: &'a Config,
    /// The connection's shard's random numbers.
    pub rng: &'a mut fastrand::Rng,
}

/// What a command leaves its merge, decided on the connection's shard before the parts
/// were sent (say, the order of MGET's keys, or the sections INFO was asked for).
#[derive(Clone, Debug, Default)]
pub enum MergeData {
    /// Nothing.
    #[default]
    None,
    /// Numbers.
    Ints(Vec<i64>),
    /// Arguments.
    Args(OwnedArgs),
}

impl MergeData {
    /// The numbers, empty unless [`MergeData::Ints`].
    pub fn ints(&self) -> &[i64] {
        match self {
            MergeData::Ints(v) => v,
            _ => &[],
        }
    }
}

/// Combines a gather's parts (in shard order, none an error) into the client's reply.
pub type MergeFn = fn(&mut MergeCtx, &MergeData, &[&[u8]], &mut Reply);

/// Where one part of a gather is.
#[derive(Clone, Copy, Debug)]
enum Part {
    /// Bytes in [`Assembly::parts`].
    Local(usize, usize),
    /// A hole to be filled by another shard.
    Hole(u32),
}

struct Gather {
    merge: MergeFn,
    data: MergeData,
    parts: Vec<Part>,
    /// Protocol of the request, which a later HELLO or RESET in the pipeline must not
    /// change.
    proto: Proto,
}

#[derive(Clone, Copy, Debug)]
enum Seg {
    Local(usize, usize),
    Hole(u32),
    Gather(u32),
}

/// A gather under construction (see [`Assembly::begin_gather`]).
pub struct GatherBuilder {
    merge: MergeFn,
    data: MergeData,
    parts: Vec<Part>,
    proto: Proto,
}

impl GatherBuilder {
    /// Number of parts added so far.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether no part was added.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Bit marking a hole whose bytes go to the coordinator, not to the output.
const PRIVATE: u32 = 1 << 31;

/// The replies of one connection's current read batch. See the module docs.
#[derive(Default)]
pub struct Assembly {
    /// Replies produced on this shard, in order. When no hole or gather exists this is
    /// the whole output.
    pub local: Vec<u8>,
    segs: Vec<Seg>,
    /// Start in `local` of the run of local replies not yet closed into a segment.
    run_start: usize,
    /// Parts of gathers produced on this shard.
    parts: Vec<u8>,
    /// Bytes received from other shards.
    remote: Vec<u8>,
    /// Where each filled hole's bytes are in `remote`.
    holes: Vec<Option<(usize, usize)>>,
    gathers: Vec<Gather>,
    /// Results of a coordinator's steps, by private hole.
    private: Vec<Option<Vec<u8>>>,
    /// Private holes not filled yet.
    private_pending: u32,
    outstanding: u32,
    waker: Option<Waker>,
}

impl Assembly {
    /// Whether every hole is filled.
    #[inline]
    pub fn ready(&self) -> bool {
        self.outstanding == 0
    }

    /// Whether the output is exactly `local` (no hole, no gather).
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.segs.is_empty()
    }

    /// Registers the task to wake when the last hole is filled.
    pub fn set_waker(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    fn close_run(&mut self) {
        if self.local.len() > self.run_start {
            self.segs.push(Seg::Local(self.run_start, self.local.len()));
        }
        self.run_start = self.local.len();
    }

    fn new_hole(&mut self) -> u32 {
        self.outstanding += 1;
        self.holes.push(None);
        (self.holes.len() - 1) as u32
    }

    /// Reserves the place of a forwarded request's reply; returns the hole to put in its
    /// ticket.
    pub fn push_hole(&mut self) -> u32 {
        self.close_run();
        let hole = self.new_hole();
        self.segs.push(Seg::Hole(hole));
        hole
    }

    /// Starts a gather whose parts `merge` will combine (with `data`, which the command
    /// left for it) for a request in `proto`; add parts, then
    /// [`push_gather`](Self::push_gather).
    pub fn begin_gather(&self, merge: MergeFn, data: MergeData, proto: Proto) -> GatherBuilder {
        GatherBuilder {
            merge,
            data,
            parts: Vec::new(),
            proto,
        }
    }

    /// Adds a part that another shard will send; returns its hole.
    pub fn gather_remote(&mut self, g: &mut GatherBuilder) -> u32 {
        let hole = self.new_hole();
        g.parts.push(Part::Hole(hole));
        hole
    }

    /// The buffer local gather parts are written to: note its length, write the part,
    /// then call [`gather_local`](Self::gather_local) with that start.
    pub fn parts_buf(&mut self) -> &mut Vec<u8> {
        &mut self.parts
    }

    /// Adds the part written to [`parts_buf`](Self::parts_buf) since `start`.
    pub fn gather_local(&mut self, g: &mut GatherBuilder, start: usize) {
        g.parts.push(Part::Local(start, self.parts.len()));
    }

    /// Places a finished gather in the output.
    pub fn push_gather(&mut self, g: GatherBuilder) {
        self.close_run();
        self.gathers.push(Gather {
            merge: g.merge,
            data: g.data,
            parts: g.parts,
            proto: g.proto,
        });
        self.segs.push(Seg::Gather((self.gathers.len() - 1) as u32));
    }

    /// Reserves a hole whose bytes the coordinator reads with
    /// [`take_private`](Self::take_private) instead of sending them to the client.
    pub fn private_hole(&mut self) -> u32 {
        self.outstanding += 1;
        self.private_pending += 1;
        self.private.push(None);
        (self.private.len() - 1) as u32 | PRIVATE
    }

    /// The bytes a private hole received, once filled.
    pub fn take_private(&mut self, hole: u32) -> Option<Vec<u8>> {
        self.private
            .get_mut((hole & !PRIVATE) as usize)
            .and_then(Option::take)
    }

    /// Fills a hole with a reply from another shard; wakes the connection when it was the
    /// last one.
    pub fn fill(&mut self, hole: u32, bytes: &[u8]) {
        if hole & PRIVATE != 0 {
            match self.private.get_mut((hole & !PRIVATE) as usize) {
                Some(slot @ None) => *slot = Some(bytes.to_vec()),
                _ => return,
            }
            self.private_pending -= 1;
        } else {
            match self.holes.get_mut(hole as usize) {
                Some(slot @ None) => {
                    let start = self.remote.len();
                    self.remote.extend_from_slice(bytes);
                    *slot = Some((start, self.remote.len()));
                }
                _ => return,
            }
        }
        self.outstanding -= 1;
        if self.outstanding == 0 {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    /// Clears the private holes after a coordination; holes never filled stop counting
    /// as outstanding.
    pub fn clear_private(&mut self) {
        self.outstanding -= self.private_pending;
        self.private_pending = 0;
        self.private.clear();
    }

    fn part_bytes(&self, part: Part) -> &[u8] {
        match part {
            Part::Local(s, e) => &self.parts[s..e],
            Part::Hole(h) => match self.holes[h as usize] {
                Some((s, e)) => &self.remote[s..e],
                None => b"",
            },
        }
    }

    /// Puts the batch's output together in `out` (which must be empty) once
    /// [`ready`](Self::ready), and resets for the next batch. Each gather becomes its
    /// merge's reply, or its first part that is an error.
    pub fn finish(&mut self, out: &mut Vec<u8>, ctx: &mut MergeCtx) {
        debug_assert!(self.ready());
        if self.segs.is_empty() {
            std::mem::swap(out, &mut self.local);
        } else {
            self.close_run();
            for seg in std::mem::take(&mut self.segs) {
                match seg {
                    Seg::Local(s, e) => out.extend_from_slice(&self.local[s..e]),
                    Seg::Hole(h) => out.extend_from_slice(self.part_bytes(Part::Hole(h))),
                    Seg::Gather(g) => {
                        let g = &self.gathers[g as usize];
                        let parts: Vec<&[u8]> =
                            g.parts.iter().map(|&p| self.part_bytes(p)).collect();
                        let mut reply = Reply::new(out, g.proto);
                        match parts.iter().find(|p| p.first() == Some(&b'-')) {
                            Some(err) => reply.raw(err),
                            None => (g.merge)(ctx, &g.data, &parts, &mut reply),
                        }
                    }
                }
            }
        }
        recycle(&mut self.local, KEEP_BYTES);
        self.run_start = 0;
        recycle(&mut self.parts, KEEP_BYTES);
        recycle(&mut self.remote, KEEP_BYTES);
        recycle(&mut self.holes, KEEP_BYTES / 16);
        self.gathers.clear();
        if self.gathers.capacity() > KEEP_BYTES / 64 {
            self.gathers = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A merge that writes how many parts it got and their total length.
    fn count_parts(_: &mut MergeCtx, data: &MergeData, parts: &[&[u8]], out: &mut Reply) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        out.array(3);
        out.int(parts.len() as i64);
        out.int(total as i64);
        out.int(data.ints().iter().sum());
    }

    fn local_part(a: &mut Assembly, g: &mut GatherBuilder, f: impl FnOnce(&mut Reply)) {
        let start = a.parts_buf().len();
        f(&mut Reply::new(a.parts_buf(), Proto::Resp2));
        a.gather_local(g, start);
    }

    fn finish(a: &mut Assembly) -> Vec<u8> {
        let mut out = Vec::new();
        let config = Config::default();
        let mut rng = fastrand::Rng::with_seed(1);
        a.finish(
            &mut out,
            &mut MergeCtx {
                config: &config,
                rng: &mut rng,
            },
        );
        out
    }

    #[test]
    fn plain_batch_is_the_local_buffer() {
        let mut a = Assembly::default();
        a.local.extend_from_slice(b"+OK\r\n:1\r\n");
        assert!(a.is_plain() && a.ready());
        assert_eq!(finish(&mut a), b"+OK\r\n:1\r\n");
        assert!(a.local.is_empty());
    }

    #[test]
    fn holes_keep_request_order_whatever_the_arrival_order() {
        let mut a = Assembly::default();
        a.local.extend_from_slice(b":1\r\n");
        let h1 = a.push_hole();
        a.local.extend_from_slice(b":3\r\n");
        let h2 = a.push_hole();
        a.local.extend_from_slice(b":5\r\n");
        assert!(!a.ready());
        a.fill(h2, b":4\r\n");
        assert!(!a.ready());
        a.fill(h1, b":2\r\n");
        assert!(a.ready());
        assert_eq!(finish(&mut a), b":1\r\n:2\r\n:3\r\n:4\r\n:5\r\n");
        // A late or duplicate fill is ignored.
        a.fill(h1, b":9\r\n");
        assert!(a.ready());
    }

    #[test]
    fn a_gather_is_its_merge_in_place_or_its_first_error() {
        let mut a = Assembly::default();
        a.local.extend_from_slice(b"+before\r\n");
        let mut g = a.begin_gather(count_parts, MergeData::Ints(vec![40, 2]), Proto::Resp2);
        local_part(&mut a, &mut g, |r| r.int(7));
        let h = a.gather_remote(&mut g);
        a.push_gather(g);
        a.local.extend_from_slice(b"+after\r\n");
        let mut g = a.begin_gather(count_parts, MergeData::None, Proto::Resp2);
        let h2 = a.gather_remote(&mut g);
        local_part(&mut a, &mut g, |r| r.int(1));
        a.push_gather(g);
        a.fill(h2, b"-ERR boom\r\n");
        assert!(!a.ready());
        a.fill(h, b":12\r\n");
        assert_eq!(
            finish(&mut a),
            b"+before\r\n*3\r\n:2\r\n:9\r\n:42\r\n+after\r\n-ERR boom\r\n"
        );
    }
}
