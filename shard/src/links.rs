//! [`Links`]: this shard's side of the mesh, the messages on their way to each other shard.
//!
//! Per destination: the request batch being filled, full batches waiting for room in the
//! window, replies and control messages, and how many request batches are in flight (at
//! most [`MAX_INFLIGHT`]). The server's flusher task for a destination is the only code
//! that sends: it takes what is ready with [`Links::take_outgoing`] and is woken when
//! there is more. Batches travel back and forth for reuse: a reply batch hands the
//! request batch home, the next request batch hands reply batches back, so in steady
//! state no buffer is allocated on one core and freed on another.

use std::collections::VecDeque;
use std::task::Waker;

use corekv_protocol::Proto;

use crate::message::{Msg, Op, ReplyBatch, RequestBatch, Ticket};

/// Most request batches in flight from one shard to another. Each one is answered by one
/// reply batch, so reply channels sized at least this never fill.
pub const MAX_INFLIGHT: u32 = 64;

/// Most requests in one batch; a full batch waits while the next one fills. With
/// [`MAX_INFLIGHT`], at most 65,536 requests are in flight to one destination.
pub const MAX_BATCH: usize = 1024;

/// Most reply batches kept to hand back to one peer; beyond this they are dropped.
const MAX_RETURNS: usize = 16;

/// One destination's outgoing state.
#[derive(Default)]
struct Link {
    /// Requests waiting for the flusher: full batches, then the one filling.
    full: VecDeque<RequestBatch>,
    /// The batch being filled.
    outbox: RequestBatch,
    /// Replies and control messages waiting for the flusher.
    outgoing: VecDeque<Msg>,
    /// The destination's flusher, when it waits for work.
    waker: Option<Waker>,
    /// Batches sent and not yet answered.
    inflight: u32,
    /// Emptied request batches, for reuse.
    spare: Vec<RequestBatch>,
    /// The destination's reply batches, to hand back with the next request batch.
    returns: Vec<ReplyBatch>,
}

impl Link {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// See the module docs.
pub struct Links {
    /// This shard's index (the `from` of every batch).
    id: usize,
    dests: Vec<Link>,
    /// Emptied reply batches, for the replies this shard sends.
    spare_replies: Vec<ReplyBatch>,
}

impl Links {
    /// Links from shard `id` to each of `shards` shards.
    pub fn new(id: usize, shards: usize) -> Self {
        Links {
            id,
            dests: (0..shards).map(|_| Link::default()).collect(),
            spare_replies: Vec::new(),
        }
    }

    /// Puts a request in `dest`'s outbox and wakes its flusher if it waits. Every
    /// cross-shard hop goes through here.
    pub fn enqueue<'a>(
        &mut self,
        dest: usize,
        ticket: Ticket,
        proto: Proto,
        op: Op,
        args: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let link = &mut self.dests[dest];
        if link.outbox.len() >= MAX_BATCH {
            let spare = link.spare.pop().unwrap_or_default();
            let filled = std::mem::replace(&mut link.outbox, spare);
            link.full.push_back(filled);
        }
        link.outbox.push(ticket, proto, op, args);
        link.wake();
    }

    /// Queues a reply or control message for `dest` and wakes its flusher.
    pub fn send(&mut self, dest: usize, msg: Msg) {
        let link = &mut self.dests[dest];
        link.outgoing.push_back(msg);
        link.wake();
    }

    /// Everything ready to send to `dest`, appended to `out`: queued replies and control
    /// messages, then request batches while fewer than [`MAX_INFLIGHT`] are in flight.
    /// When there is nothing, `waker` is woken once there is. Returns the request batches
    /// taken.
    pub fn take_outgoing(&mut self, dest: usize, waker: &Waker, out: &mut Vec<Msg>) -> u64 {
        let id = self.id;
        let link = &mut self.dests[dest];
        let before = out.len();
        out.extend(link.outgoing.drain(..));
        let mut batches = 0;
        while link.inflight < MAX_INFLIGHT {
            let mut batch = match link.full.pop_front() {
                Some(batch) => batch,
                None if !link.outbox.is_empty() => {
                    let spare = link.spare.pop().unwrap_or_default();
                    std::mem::replace(&mut link.outbox, spare)
                }
                None => break,
            };
            batch.from = id;
            batch.returned = std::mem::take(&mut link.returns);
            link.inflight += 1;
            batches += 1;
            out.push(Msg::Requests(batch));
        }
        if out.len() == before {
            link.waker = Some(waker.clone());
        }
        batches
    }

    /// An empty reply batch from this shard.
    pub fn reply_batch(&mut self) -> ReplyBatch {
        let mut r = self.spare_replies.pop().unwrap_or_default();
        r.clear();
        r.from = self.id;
        r
    }

    /// A reply batch holding one reply.
    pub fn single_reply(&mut self, ticket: Ticket, bytes: &[u8]) -> ReplyBatch {
        let mut r = self.reply_batch();
        r.buf.extend_from_slice(bytes);
        r.replies.push((ticket, 0, bytes.len()));
        r
    }

    /// Keeps the reply batches a request batch handed back, for this shard's replies.
    pub fn take_returned(&mut self, batch: &mut RequestBatch) {
        for mut r in batch.returned.drain(..) {
            r.clear();
            self.spare_replies.push(r);
        }
    }

    /// A reply batch from `batch.from` has been delivered: its request batch (if any)
    /// leaves the window and is kept for reuse, and the reply batch is kept to hand back.
    pub fn delivered(&mut self, mut batch: ReplyBatch) {
        let link = &mut self.dests[batch.from];
        if let Some(mut req) = batch.request.take() {
            link.inflight -= 1;
            req.clear();
            link.spare.push(req);
            if !link.outbox.is_empty() || !link.full.is_empty() {
                link.wake();
            }
        }
        batch.clear();
        if link.returns.len() < MAX_RETURNS {
            link.returns.push(batch);
        }
    }
}
