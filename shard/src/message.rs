//! Messages between shards. Plain data, `Send`, no runtime types: the transport in the
//! server moves them over glommio's channel mesh.
//!
//! Requests travel batched: a [`RequestBatch`] carries every request one shard has for
//! another at that moment, arguments copied into one buffer. The owner executes the whole
//! batch without yielding and answers with one [`ReplyBatch`], which also hands the request
//! batch back so the sender reuses its buffers, and the sender hands reply batches back
//! the same way. In steady state no buffer is allocated on one core and freed on another.
//!
//! Coordinated commands (MSETNX, RENAME, COPY across shards) use [`ControlMsg`]s, which a
//! shard serves even while it holds back ordinary requests.
//!
//! All three travel as one [`Msg`] type on one mesh (glommio numbers mesh peers in join
//! order, so one mesh is the only way to be sure every shard agrees who is who).

use corekv_protocol::{Proto, Span};

use crate::args::{Args, OwnedArgs};

/// Buffers larger than this are freed after use instead of kept for reuse, so one large
/// value does not pin its size in memory for the life of the process.
pub const KEEP_BYTES: usize = 64 * 1024;

/// Empties `v` for reuse, freeing it instead when it grew beyond `max` elements.
pub fn recycle<T>(v: &mut Vec<T>, max: usize) {
    if v.capacity() > max {
        *v = Vec::new();
    } else {
        v.clear();
    }
}

/// Where a reply goes on the shard that asked: connection slot and generation, and the
/// hole in that connection's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Connection slot.
    pub conn: u32,
    /// Connection generation.
    pub gen: u32,
    /// Hole in the connection's output.
    pub hole: u32,
}

/// What a forwarded request asks the owner to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Run a keyed command; the arguments start with its name.
    Key,
    /// Run this shard's part of a fan-out command: the command (or subcommand) counted in
    /// this statistics slot (see `command::Commands::by_stat`), with the arguments its
    /// check planned.
    Part(u16),
    /// WATCH: the sending connection watches these keys (the arguments) of this shard.
    Watch,
    /// The sending connection no longer watches these keys (the arguments): UNWATCH,
    /// DISCARD, RESET, a closed connection. Nobody waits for the reply.
    Unwatch,
    /// A transaction whose keys and watched keys are all this shard's: the arguments
    /// are the number of watched keys, the watched keys, then each queued command as its
    /// number of arguments and its arguments. Answered with EXEC's whole reply.
    Exec,
    /// The sending connection's blocked command ends here: the argument says how
    /// (`timeout`, `error`: CLIENT UNBLOCK; `close`: its connection closed).
    Unblock,
    /// The sending connection's blocking command, whose keys span shards, waits on
    /// these keys of this shard: the arguments are its deadline (Unix ms, 0 for none),
    /// `1` or `0` (times out with a null array or a null bulk), then the keys. The
    /// ticket's hole is the command's wake-up signal (`conn::SIGNAL`).
    Await,
}

/// One forwarded request.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// Where the reply goes.
    pub ticket: Ticket,
    /// Protocol to encode the reply in.
    pub proto: Proto,
    /// What to do.
    pub op: Op,
    /// Index of the first argument in the batch's spans.
    pub first: u32,
    /// Number of arguments.
    pub argc: u32,
}

/// Requests from one shard to another. See the module docs.
#[derive(Debug, Default)]
pub struct RequestBatch {
    /// Sending shard.
    pub from: usize,
    /// Argument bytes of every request.
    pub buf: Vec<u8>,
    /// Argument spans into `buf`.
    pub spans: Vec<Span>,
    /// The requests, in the order they must run.
    pub reqs: Vec<Request>,
    /// Reply batches the receiver sent earlier, emptied, going home for reuse.
    pub returned: Vec<ReplyBatch>,
}

impl RequestBatch {
    /// Appends a request.
    pub fn push<'a>(
        &mut self,
        ticket: Ticket,
        proto: Proto,
        op: Op,
        args: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let first = self.spans.len() as u32;
        for a in args {
            let start = self.buf.len();
            self.buf.extend_from_slice(a);
            self.spans.push(Span {
                start,
                end: self.buf.len(),
            });
        }
        self.reqs.push(Request {
            ticket,
            proto,
            op,
            first,
            argc: self.spans.len() as u32 - first,
        });
    }

    /// The arguments of a request of this batch.
    pub fn args(&self, req: &Request) -> Args<'_> {
        let s = req.first as usize;
        Args::new(&self.buf, &self.spans[s..s + req.argc as usize])
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    /// Whether there are no requests.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Empties the batch, keeping its buffers unless they grew large.
    pub fn clear(&mut self) {
        recycle(&mut self.buf, KEEP_BYTES);
        recycle(&mut self.spans, KEEP_BYTES / 16);
        recycle(&mut self.reqs, KEEP_BYTES / 16);
    }
}

/// Replies from the owner of keys to the shard that asked.
#[derive(Debug, Default)]
pub struct ReplyBatch {
    /// Replying shard.
    pub from: usize,
    /// Encoded replies, back to back.
    pub buf: Vec<u8>,
    /// For each reply: its ticket and its byte range in `buf`.
    pub replies: Vec<(Ticket, usize, usize)>,
    /// The request batch answered, emptied, going home for reuse. `None` for replies to
    /// control messages.
    pub request: Option<RequestBatch>,
}

impl ReplyBatch {
    /// Empties the batch, keeping its buffers unless they grew large.
    pub fn clear(&mut self) {
        recycle(&mut self.buf, KEEP_BYTES);
        recycle(&mut self.replies, KEEP_BYTES / 16);
        self.request = None;
    }
}

/// A token naming one coordinated operation while it holds shards paused.
pub type Token = u64;

/// A step of a coordinated operation, run by a shard it paused.
#[derive(Clone, Debug)]
pub enum StepOp {
    /// Run a keyed command (`EXISTS`, `MSET`, `DEL`) on this shard.
    Run(OwnedArgs),
    /// Run this shard's part of a fan-out command (see [`Op::Part`]) inside EXEC.
    Part(u16, OwnedArgs),
    /// EXEC's verdict on the sending connection's watched keys (the arguments) of this
    /// shard: `:1` if one changed since WATCH, else `:0`; they are unwatched either way.
    Unwatch(OwnedArgs),
    /// Read an entry for moving or copying: `[type, deadline, payload]` or null.
    Dump(Vec<u8>),
    /// Write an entry read by `Dump`.
    Restore {
        /// Key to write.
        key: Vec<u8>,
        /// Its type, as TYPE names it (`string`, `hash`, `set`).
        ty: Vec<u8>,
        /// Replace a live key (otherwise leave it and reply 0).
        replace: bool,
        /// Deadline, Unix ms, 0 for none.
        expire_at: u64,
        /// The value.
        payload: Vec<u8>,
        /// The keyspace notification of the write (`rename_to`, `copy_to`), if any.
        event: Option<&'static str>,
    },
    /// Delete a key moved away by RENAME across shards (`rename_from`).
    Unlink(Vec<u8>),
    /// Run a script over copies of its keys (`[key, DUMP reply]`) on the client's
    /// shard: `[reply, changed keys...]` (see [`crate::coord::Coord::Script`]).
    Script(OwnedArgs, Vec<(Vec<u8>, Vec<u8>)>),
    /// Delete a key a script deleted (its events were raised where it ran).
    Drop(Vec<u8>),
    /// Read keys a gather does not name (see [`crate::coord::Lookups`]): an array with,
    /// for each, the value or null.
    Lookup(Vec<crate::coord::Lookup>),
    /// Mark the instant of a snapshot: `+OK`, or an error if one is in progress. With
    /// `rotate`, an append-only rewrite's: the log starts that increment generation.
    SnapshotBegin {
        /// The generation the log moves to.
        rotate: Option<u64>,
    },
}

/// What a snapshot's saver asks of a shard (no pause needed: see `crate::persist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapOp {
    /// The next chunk of this shard's keys, then `1` if it was the last or `0`.
    Chunk,
    /// The snapshot ended (`ok`: its file is in place): `+OK`.
    End {
        /// Whether it succeeded.
        ok: bool,
        /// It was a rewrite of the append-only files.
        rewrite: bool,
    },
    /// The increments of this generation are listed in the manifest: the log may
    /// write them (see [`crate::aof::Log::allow`]). `+OK`.
    Allow(u64),
    /// This shard's log: `[generation, bytes of its increments]`.
    LogSize,
    /// This shard's writes since the last snapshot: an integer reply.
    Dirty,
}

/// What a control message asks.
#[derive(Clone, Debug)]
pub enum Control {
    /// Hold back every other request until `Resume`; reply `+OK` once paused (a shard
    /// paused by another token queues this).
    Pause(Token),
    /// End the pause `Pause` began. No reply.
    Resume(Token),
    /// Run a step for the token holding the pause.
    Step(Token, StepOp),
    /// A snapshot's request, served at once.
    Snapshot(SnapOp),
}

/// A message on the control mesh.
#[derive(Clone, Debug)]
pub struct ControlMsg {
    /// Sending shard.
    pub from: usize,
    /// Where the reply goes.
    pub ticket: Ticket,
    /// Protocol to encode the reply in.
    pub proto: Proto,
    /// What to do.
    pub kind: Control,
}

/// Everything one shard sends another.
#[derive(Debug)]
pub enum Msg {
    /// Requests to run.
    Requests(RequestBatch),
    /// Replies to requests or control messages.
    Replies(ReplyBatch),
    /// A step of a coordinated command.
    Control(ControlMsg),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keeps_arguments_per_request() {
        let mut b = RequestBatch::default();
        let t = Ticket {
            conn: 1,
            gen: 1,
            hole: 0,
        };
        b.push(t, Proto::Resp2, Op::Key, [&b"GET"[..], b"a"]);
        b.push(t, Proto::Resp3, Op::Key, [&b"SET"[..], b"b", b"v"]);
        let r1 = b.reqs[1];
        let args: Vec<&[u8]> = b.args(&r1).iter().collect();
        assert_eq!(args, vec![&b"SET"[..], b"b", b"v"]);
        assert_eq!(b.len(), 2);
        b.clear();
        assert!(b.is_empty() && b.buf.is_empty());
    }
}
