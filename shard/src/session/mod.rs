//! One client connection's session, without I/O: the read buffer and the parser, rounds of
//! parse → dispatch → assemble, the query and output buffer limits, and their counters.
//!
//! The server's I/O layer drives it: it reads into [`Session::read_space`], reports the
//! bytes with [`Session::received`], runs a [`Session::round`], writes what
//! [`Session::output`] hands it, and reports the write with [`Session::written`]. The
//! waits inside a round (a coordinated command's pause, replies from other shards, a
//! cross-shard coordination) are plain `std` futures on the shard, so any executor can
//! run them.
//!
//! A round handles every complete request in the read buffer, up to [`MAX_PER_ROUND`]
//! requests or [`ROUND_OUTPUT_BYTES`] of replies: replies then leave in request order and
//! a pipeline costs one write per round, not per request. A request is only ever held
//! back (not yet executed) while the shard is paused by a coordinated command.

mod blocking;
mod coordinate;
mod read_buf;
pub mod snapshot;
mod transaction;

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::Poll;

pub use blocking::MultiBlock;
pub use coordinate::{coordinate, wait_ready, wait_unpaused};

use corekv_protocol::{ProtocolError, RequestParser};
use read_buf::ReadBuf;

use crate::args::Args;
use crate::conn::ConnId;
use crate::coord::CoordPlan;
use crate::shard::{Outcome, Shard};

/// Most requests executed before their replies are written.
pub const MAX_PER_ROUND: usize = 1024;

/// A round stops dispatching once its replies produced on this shard pass this size, so
/// a pipeline of large replies is written in pieces instead of gathered whole (the
/// connection reads no further requests until they are written).
pub const ROUND_OUTPUT_BYTES: usize = 256 * 1024;

/// How a round ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundEnd {
    /// Every complete request was handled: write, then read more.
    NeedInput,
    /// The round hit its size limit with complete requests left: write, then run
    /// another round without reading.
    MoreBuffered,
    /// Write what was produced, then close (QUIT, a protocol error, killed).
    CloseAfterWrite,
    /// Close without writing anything more.
    CloseNow,
    /// A blocking command waits for its reply: wait with
    /// [`Session::blocked_reply`] (watching the socket for a close), then write, then
    /// run another round on what is buffered.
    Blocked,
}

/// What to do with a round's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Nothing to write.
    Nothing,
    /// Write [`Session::out`]; over the soft output limit, the client gets this many
    /// seconds to take it before it is closed.
    Write {
        /// Seconds the write may take (`client-output-buffer-limit` soft seconds), or
        /// `None` for no limit.
        patience: Option<u64>,
    },
    /// Close: the output is over the hard limit.
    Close,
}

/// Why [`Session::attention`] woke the I/O layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attention {
    /// The shard closed the connection.
    Closed,
    /// Messages were written into its output.
    Output,
}

/// What the I/O layer does after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Read, then run a round.
    Read,
    /// Run another round on what is buffered.
    Round,
    /// Close.
    Close,
}

/// One connection's session. See the module docs.
pub struct Session {
    conn: ConnId,
    rbuf: ReadBuf,
    parser: RequestParser,
    /// The round's output, reused between rounds.
    out: Vec<u8>,
    /// A parsed request not dispatched yet because the shard was paused.
    held: Option<std::ops::Range<usize>>,
}

impl Session {
    /// A session for a new connection from `addr` on `laddr` (socket `fd`), registered on
    /// the shard, with buffers from its pools.
    pub fn open(sh: &mut Shard, addr: String, laddr: String, fd: i32) -> Session {
        let st = sh.state_mut();
        st.refresh_now();
        let conn = st.connect(addr, laddr, fd);
        let (rbuf, out) = (st.read_pool.take(), st.reply_pool.take());
        Session {
            conn,
            rbuf: ReadBuf::new(rbuf),
            parser: RequestParser::new(st.config.limits),
            out,
            held: None,
        }
    }

    /// The connection's id on its shard.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Where the next read goes: sized by what the parser knows is coming, but never
    /// beyond twice what is buffered (memory follows bytes received, not lengths declared).
    pub fn read_space(&mut self) -> &mut [u8] {
        let want = self
            .parser
            .wanted(self.rbuf.pending())
            .min(self.rbuf.capacity().max(read_buf::READ_CHUNK));
        self.rbuf.space(want)
    }

    /// `n` bytes were read into [`read_space`](Self::read_space). `false`: the client
    /// went over `client-query-buffer-limit` and must be closed.
    pub fn received(&mut self, sh: &mut Shard, n: usize) -> bool {
        self.rbuf.filled(n);
        let st = sh.state_mut();
        st.refresh_now();
        st.touch(self.conn);
        st.stats.net_input_bytes += n as u64;
        st.stats.reads_processed += 1;
        if *self.parser.limits() != st.config.limits {
            self.parser.set_limits(st.config.limits);
        }
        let limit = st.config.query_buffer_limit;
        if self.rbuf.pending() as u64 > limit {
            st.stats.query_limit_disconnections += 1;
            tracing::warn!(
                bytes = self.rbuf.pending(),
                limit,
                "closing client that reached max query buffer length"
            );
            return false;
        }
        true
    }

    /// Dispatches the complete requests in the buffer (see the module docs), waiting when
    /// the shard is paused or a coordinated command runs; then waits for every reply of
    /// the round to arrive.
    pub async fn round(&mut self, shard: &RefCell<Shard>) -> RoundEnd {
        let end = self.dispatch_all(shard).await;
        if end != RoundEnd::CloseNow && end != RoundEnd::Blocked {
            wait_ready(shard, self.conn).await;
        }
        end
    }

    /// After a round that ended [`RoundEnd::Blocked`]: waits until every reply of the
    /// round is in (true), or until the shard closes the connection (false: CLIENT
    /// KILL, shutdown). The I/O layer races this with a read, to see the client go.
    pub async fn blocked_reply(shard: &RefCell<Shard>, conn: ConnId) -> bool {
        let multi = shard
            .borrow_mut()
            .state_mut()
            .conns
            .get_mut(conn)
            .and_then(|c| c.multi_block.pending.take());
        if let Some(mb) = multi {
            let reply = blocking::drive(shard, conn, *mb).await;
            if reply.is_empty() {
                return false;
            }
            shard.borrow_mut().push_reply(conn, &reply);
        }
        poll_fn(|cx| {
            let mut sh = shard.borrow_mut();
            if sh.state_mut().poll_killed(conn, cx.waker()) {
                return Poll::Ready(false);
            }
            if sh.output_ready(conn, cx.waker()) {
                Poll::Ready(true)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    async fn dispatch_all(&mut self, shard: &RefCell<Shard>) -> RoundEnd {
        let mut processed = 0;
        loop {
            let step = {
                let mut sh = shard.borrow_mut();
                sh.refresh_now();
                let buf = self.rbuf.unread();
                loop {
                    if processed >= MAX_PER_ROUND {
                        break Step::End(RoundEnd::MoreBuffered);
                    }
                    let range = match self.held.take() {
                        Some(r) => r,
                        None => match self.parser.parse(buf) {
                            Ok(Some(r)) => r,
                            Ok(None) => break Step::End(RoundEnd::NeedInput),
                            Err(e) => {
                                protocol_error(&mut sh, self.conn, e);
                                break Step::End(RoundEnd::CloseAfterWrite);
                            }
                        },
                    };
                    let args = Args::new(&*buf, &self.parser.spans()[range.clone()]);
                    match sh.dispatch(self.conn, args) {
                        Outcome::Done => {
                            processed += 1;
                            match sh.round_output(self.conn) {
                                // Killed (CLIENT KILL of itself, shutdown): no further
                                // command runs (Redis's close-after-reply).
                                None => break Step::End(RoundEnd::CloseAfterWrite),
                                Some(n) if n > ROUND_OUTPUT_BYTES => {
                                    break Step::End(RoundEnd::MoreBuffered)
                                }
                                Some(_) => {}
                            }
                        }
                        Outcome::Blocked => {
                            self.held = Some(range);
                            break Step::Blocked;
                        }
                        Outcome::Coordinate(plan) => {
                            processed += 1;
                            break Step::Coordinate(plan);
                        }
                        Outcome::Exec(tx) => {
                            processed += 1;
                            break Step::Exec(tx);
                        }
                        Outcome::Block => break Step::End(RoundEnd::Blocked),
                        Outcome::Quit => break Step::End(RoundEnd::CloseAfterWrite),
                        Outcome::Close => break Step::End(RoundEnd::CloseNow),
                    }
                }
            };
            match step {
                Step::End(end) => return end,
                Step::Blocked => wait_unpaused(shard).await,
                Step::Coordinate(plan) => {
                    // Everything this connection sent before must have run first.
                    wait_ready(shard, self.conn).await;
                    let reply = coordinate(shard, self.conn, *plan).await;
                    shard.borrow_mut().push_reply(self.conn, &reply);
                }
                Step::Exec(tx) => transaction::exec(shard, self.conn, *tx).await,
            }
        }
    }

    /// Puts the round's output together and applies the output buffer limits.
    pub fn output(&mut self, sh: &mut Shard) -> Output {
        sh.take_output(self.conn, &mut self.out);
        let st = sh.state_mut();
        if let Some(c) = st.conns.get_mut(self.conn) {
            c.qbuf = self.rbuf.pending();
            c.qbuf_free = self.rbuf.free();
            c.omem = self.out.len();
        }
        let subscriber = st.conns.get(self.conn).is_some_and(|c| c.is_subscriber());
        let limit = if subscriber {
            st.config.output_limits.pubsub()
        } else {
            st.config.output_limits.normal()
        };
        let pending = self.out.len() as u64;
        if limit.hard > 0 && pending > limit.hard {
            st.stats.output_limit_disconnections += 1;
            tracing::warn!(
                bytes = pending,
                limit = limit.hard,
                "closing client over the output buffer hard limit"
            );
            return Output::Close;
        }
        if self.out.is_empty() {
            return Output::Nothing;
        }
        let over_soft = limit.soft > 0 && pending > limit.soft;
        Output::Write {
            patience: over_soft.then_some(limit.soft_secs),
        }
    }

    /// The bytes [`output`](Self::output) said to write.
    pub fn out(&self) -> &[u8] {
        &self.out
    }

    /// The write of [`out`](Self::out) ended (written, or failed); `timed_out` when the
    /// client took longer than the soft output limit allows (counted; then close).
    pub fn written(&mut self, sh: &mut Shard, timed_out: bool) {
        let st = sh.state_mut();
        if timed_out {
            st.stats.output_limit_disconnections += 1;
            tracing::warn!(
                bytes = self.out.len(),
                "closing client over the output buffer soft limit"
            );
            return;
        }
        st.refresh_now();
        st.touch(self.conn);
        if let Some(c) = st.conns.get_mut(self.conn) {
            c.omem = 0;
        }
        st.stats.net_output_bytes += self.out.len() as u64;
        st.stats.writes_processed += 1;
        self.out.clear();
        if self.out.capacity() > 4 * read_buf::READ_CHUNK {
            self.out = st.reply_pool.take();
        }
    }

    /// After a round's output is out: whether to read, run another round, or close.
    pub fn next(&mut self, sh: &mut Shard, end: RoundEnd) -> Next {
        // Killed while this round ran (CLIENT KILL, shutdown): its replies are out.
        if sh.state().is_killed(self.conn) {
            return Next::Close;
        }
        let done = self.parser.discard_consumed();
        self.rbuf.consume(done);
        match end {
            RoundEnd::NeedInput => {
                self.rbuf.trim(&mut sh.state_mut().read_pool);
                Next::Read
            }
            RoundEnd::MoreBuffered | RoundEnd::Blocked => Next::Round,
            RoundEnd::CloseAfterWrite | RoundEnd::CloseNow => Next::Close,
        }
    }

    /// Waits until the shard closes subscriber `conn` for passing its output limit while
    /// messages were delivered: for the I/O layer while it writes (a write to a client
    /// that does not read may never end). Other closes wait for the write.
    pub async fn overflowed(shard: &RefCell<Shard>, conn: ConnId) {
        poll_fn(|cx| {
            let mut sh = shard.borrow_mut();
            let st = sh.state_mut();
            match st.conns.get_mut(conn) {
                None => Poll::Ready(()),
                Some(c) if c.overflowed => Poll::Ready(()),
                Some(c) => {
                    c.kill_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Waits until connection `conn` needs its I/O layer while that waits to read: the
    /// shard closed it ([`Attention::Closed`]) or wrote pub/sub messages into its output
    /// ([`Attention::Output`]: write them, via [`Session::output`], without a round).
    pub async fn attention(shard: &RefCell<Shard>, conn: ConnId) -> Attention {
        poll_fn(|cx| {
            let mut sh = shard.borrow_mut();
            let st = sh.state_mut();
            if st.poll_killed(conn, cx.waker()) {
                Poll::Ready(Attention::Closed)
            } else if st
                .conns
                .get(conn)
                .is_some_and(|c| !c.replies.local.is_empty())
            {
                Poll::Ready(Attention::Output)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// The connection is gone: forget it on the shard and give the buffers back to its
    /// pools (freed if grown or the pool is full).
    pub fn close(self, sh: &mut Shard) {
        sh.unwatch_all(self.conn);
        sh.unblock_closed(self.conn);
        let st = sh.state_mut();
        st.disconnect(self.conn);
        st.read_pool.give(self.rbuf.into_buf());
        st.reply_pool.give(self.out);
    }
}

enum Step {
    End(RoundEnd),
    Blocked,
    Coordinate(Box<CoordPlan>),
    Exec(Box<crate::shard::ExecPlan>),
}

fn protocol_error(sh: &mut Shard, conn: ConnId, e: ProtocolError) {
    tracing::debug!(error = %e, "protocol error; closing the connection");
    sh.push_protocol_error(conn, &e.reply());
}
