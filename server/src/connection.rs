//! One client connection, from accept to close: read, parse, dispatch, write.
//!
//! Each read batch is handled in a *round*: every complete request in the read buffer is
//! parsed in place and dispatched to the shard (run here, or forwarded to its owner), up
//! to [`MAX_PER_ROUND`] requests; then the connection waits for replies from other shards,
//! if any, and writes all the round's replies in one `write`. Replies are therefore in
//! request order and a pipeline costs one system call per round, not per request.
//!
//! A request is only ever held back (not yet executed) when the shard is paused by a
//! coordinated command; the connection waits and then dispatches it again.

use std::cell::RefCell;
use std::future::poll_fn;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use corekv_protocol::{ProtocolError, RequestParser};
use corekv_shard::command::Args;
use corekv_shard::conn::ConnId;
use corekv_shard::{Outcome, Shard};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::transport;

/// Most requests executed before their replies are written.
pub const MAX_PER_ROUND: usize = 1024;

/// A round stops dispatching once its replies produced on this shard pass this size, so
/// a pipeline of large replies is written in pieces instead of gathered whole (the
/// connection reads no further requests until they are written).
pub const ROUND_OUTPUT_BYTES: usize = 256 * 1024;

/// Initial read buffer size, and the least free space asked of each read.
const READ_CHUNK: usize = corekv_shard::shard::BUFFER_SIZE;

/// The read buffer: `buf[start..end]` holds bytes received and not yet consumed. The
/// whole `Vec` stays initialised so reads can go straight into it.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// Over `buf`, a zeroed buffer of [`READ_CHUNK`] bytes from the shard's pool.
    fn new(buf: Vec<u8>) -> Self {
        ReadBuf {
            buf,
            start: 0,
            end: 0,
        }
    }

    fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Drops `n` consumed bytes from the front.
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Makes room for a read of at least `want` bytes (at least [`READ_CHUNK`]) and returns
    /// the free space. Moves unconsumed bytes to the front before growing.
    fn space(&mut self, want: usize) -> &mut [u8] {
        let want = want.max(READ_CHUNK);
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                let grow = (self.end + want).max(self.buf.len() * 2);
                self.buf.resize(grow, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Gives memory back after a burst: a large, empty buffer is freed and replaced by a
    /// standard one from `pool`.
    fn trim(&mut self, pool: &mut corekv_shard::pool::BufPool) {
        if self.pending() == 0 && self.buf.len() > 4 * READ_CHUNK {
            self.buf = pool.take();
            self.start = 0;
            self.end = 0;
        }
    }
}

/// How a round ended.
enum RoundEnd {
    /// Every complete request was handled: read more.
    NeedInput,
    /// The round hit its size limit with complete requests left: run another round.
    MoreBuffered,
    /// Write what was produced, then close (QUIT, protocol error).
    CloseAfterWrite,
    /// Close without writing anything more.
    CloseNow,
}

/// Serves one accepted connection until it or the shard closes it.
pub async fn serve(shard: Rc<RefCell<Shard>>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let addr = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let laddr = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let fd = stream.as_raw_fd();
    let (conn, limits, rbuf, out) = {
        let mut sh = shard.borrow_mut();
        sh.refresh_now();
        let conn = sh.connect(addr, laddr, fd);
        let (rbuf, out) = (sh.read_pool.take(), sh.reply_pool.take());
        (conn, sh.config.limits, rbuf, out)
    };
    let mut c = Connection {
        shard: shard.clone(),
        conn,
        rbuf: ReadBuf::new(rbuf),
        parser: RequestParser::new(limits),
        out,
        held: None,
    };
    let result = c.run(&mut stream).await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    let _ = stream.close().await;
    let mut sh = shard.borrow_mut();
    sh.disconnect(conn);
    // The buffers go back to the shard's pool (freed if grown or the pool is full).
    sh.read_pool.give(c.rbuf.buf);
    sh.reply_pool.give(c.out);
}

struct Connection {
    shard: Rc<RefCell<Shard>>,
    conn: ConnId,
    rbuf: ReadBuf,
    parser: RequestParser,
    /// The round's output, reused between rounds.
    out: Vec<u8>,
    /// A parsed request not dispatched yet because the shard was paused.
    held: Option<std::ops::Range<usize>>,
}

impl Connection {
    async fn run(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        let mut buffered = false;
        loop {
            if !buffered {
                // Size the read by what the parser knows is coming, but never beyond twice
                // what is buffered: memory follows bytes received, not lengths declared.
                let want = self
                    .parser
                    .wanted(self.rbuf.pending())
                    .min(self.rbuf.buf.len().max(READ_CHUNK));
                let (shard, conn) = (&self.shard, self.conn);
                let space = self.rbuf.space(want);
                // Wait for input, or for the shard to close the connection (idle timeout).
                let killed = poll_fn(|cx| {
                    if shard.borrow_mut().poll_killed(conn, cx.waker()) {
                        Poll::Ready(None)
                    } else {
                        Poll::Pending
                    }
                });
                let Some(n) = future::or(async { Some(stream.read(space).await) }, killed).await
                else {
                    tracing::debug!("closing idle client");
                    return Ok(());
                };
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                self.rbuf.end += n;
                let qbuf_limit = {
                    let mut sh = self.shard.borrow_mut();
                    sh.refresh_now();
                    sh.touch(self.conn);
                    sh.stats.net_input_bytes += n as u64;
                    sh.stats.reads_processed += 1;
                    if *self.parser.limits() != sh.config.limits {
                        self.parser.set_limits(sh.config.limits);
                    }
                    sh.config.query_buffer_limit
                };
                if self.rbuf.pending() as u64 > qbuf_limit {
                    self.shard.borrow_mut().stats.query_limit_disconnections += 1;
                    tracing::warn!(
                        bytes = self.rbuf.pending(),
                        limit = qbuf_limit,
                        "closing client that reached max query buffer length"
                    );
                    return Ok(());
                }
            }
            let end = self.round().await;
            if matches!(end, RoundEnd::CloseNow) {
                return Ok(());
            }
            transport::wait_ready(&self.shard, self.conn).await;
            let limit = {
                let mut sh = self.shard.borrow_mut();
                sh.take_output(self.conn, &mut self.out);
                if let Some(c) = sh.conns.get_mut(self.conn) {
                    c.qbuf = self.rbuf.pending();
                    c.qbuf_free = self.rbuf.buf.len() - self.rbuf.end;
                    c.omem = self.out.len();
                }
                sh.config.output_limits.normal()
            };
            let pending = self.out.len() as u64;
            if limit.hard > 0 && pending > limit.hard {
                self.shard.borrow_mut().stats.output_limit_disconnections += 1;
                tracing::warn!(
                    bytes = pending,
                    limit = limit.hard,
                    "closing client over the output buffer hard limit"
                );
                return Ok(());
            }
            if !self.out.is_empty() {
                let write = stream.write_all(&self.out);
                let result = if limit.soft > 0 && pending > limit.soft {
                    // Over the soft limit: the client may take soft_secs to read it.
                    let patience = Duration::from_secs(limit.soft_secs);
                    let timed = future::or(async { Some(write.await) }, async {
                        glommio::timer::sleep(patience).await;
                        None
                    });
                    match timed.await {
                        Some(r) => r,
                        None => {
                            self.shard.borrow_mut().stats.output_limit_disconnections += 1;
                            tracing::warn!(
                                bytes = pending,
                                limit = limit.soft,
                                seconds = limit.soft_secs,
                                "closing client over the output buffer soft limit"
                            );
                            return Ok(());
                        }
                    }
                } else {
                    write.await
                };
                let mut sh = self.shard.borrow_mut();
                sh.refresh_now();
                sh.touch(self.conn);
                if let Some(c) = sh.conns.get_mut(self.conn) {
                    c.omem = 0;
                }
                sh.stats.net_output_bytes += self.out.len() as u64;
                sh.stats.writes_processed += 1;
                self.out.clear();
                if self.out.capacity() > 4 * READ_CHUNK {
                    self.out = sh.reply_pool.take();
                }
                drop(sh);
                result?;
            }
            // Killed while this round ran (CLIENT KILL, shutdown): its replies are out.
            if self.shard.borrow().is_killed(self.conn) {
                return Ok(());
            }
            let done = self.parser.discard_consumed();
            self.rbuf.consume(done);
            match end {
                RoundEnd::NeedInput => {
                    buffered = false;
                    self.rbuf.trim(&mut self.shard.borrow_mut().read_pool);
                }
                RoundEnd::MoreBuffered => buffered = true,
                RoundEnd::CloseAfterWrite | RoundEnd::CloseNow => return Ok(()),
            }
        }
    }

    /// Dispatches the complete requests in the buffer (see the module docs).
    async fn round(&mut self) -> RoundEnd {
        let mut processed = 0;
        loop {
            let step = {
                let mut sh = self.shard.borrow_mut();
                sh.refresh_now();
                let buf = &mut self.rbuf.buf[self.rbuf.start..self.rbuf.end];
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
                        Outcome::Quit => break Step::End(RoundEnd::CloseAfterWrite),
                        Outcome::Close => break Step::End(RoundEnd::CloseNow),
                    }
                }
            };
            match step {
                Step::End(end) => return end,
                Step::Blocked => transport::wait_unpaused(&self.shard).await,
                Step::Coordinate(plan) => {
                    // Everything this connection sent before must have run first.
                    transport::wait_ready(&self.shard, self.conn).await;
                    let reply = transport::coordinate(&self.shard, self.conn, *plan).await;
                    self.shard.borrow_mut().push_reply(self.conn, &reply);
                }
            }
        }
    }
}

enum Step {
    End(RoundEnd),
    Blocked,
    Coordinate(Box<corekv_shard::coord::CoordPlan>),
}

fn protocol_error(sh: &mut Shard, conn: ConnId, e: ProtocolError) {
    tracing::debug!(error = %e, "protocol error; closing the connection");
    sh.push_protocol_error(conn, &e.reply());
}
