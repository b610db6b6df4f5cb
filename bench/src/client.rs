//! One connection's load: build requests, send them (closed or open loop), read and
//! verify every reply, record latencies in its thread's stats.
//!
//! Closed loop: send `pipeline` requests, wait for all their replies, repeat; latency is
//! from the moment the batch was written. Open loop: requests leave on the connection's
//! schedule (at most `pipeline` outstanding); latency is from each request's intended
//! time, so server stalls show up in full (see `schedule`).
//!
//! A connection the server closes, or that gets no reply within `--timeout`, is counted
//! (disconnect, timeout) and opened again; its outstanding requests are not counted as
//! answered. Timeouts are enforced by one watchdog task per thread (see [`watchdog`])
//! rather than a timer per read: arming and cancelling a reactor timer on every wait
//! costs extra io_uring round trips on exactly the path being measured.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use corekv_protocol::frame::frame_len;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::config::{Config, Mode, Protocol, Workload};
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::workload::{self, Generator, Op};

/// What a thread's connections share: the run's settings, clock, and the thread's stats.
pub struct Ctx {
    /// Settings.
    pub cfg: std::sync::Arc<Config>,
    /// Time zero of the run (the same instant in every thread).
    pub epoch: Instant,
    /// Requests intended (open loop) or sent (closed loop) before this many nanoseconds
    /// after the epoch are warmup: answered and checked, not measured.
    pub measure_from: u64,
    /// With `--duration`: no request is sent after this many nanoseconds.
    pub stop_at: Option<u64>,
    /// This thread's measurements.
    pub stats: RefCell<Stats>,
    /// Requests answered so far (warmup included), for the progress line.
    pub answered: Cell<u64>,
    /// Every connection's deadline, checked by the thread's [`watchdog`].
    pub watches: RefCell<Vec<Rc<Watch>>>,
}

/// A connection's deadline: when the reply (or write) it waits for is overdue.
#[derive(Default)]
pub struct Watch {
    /// ns since the epoch; `u64::MAX` when not waiting.
    deadline: Cell<u64>,
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Watch {
    fn arm(&self, deadline: u64) {
        self.deadline.set(deadline);
        self.fired.set(false);
    }

    fn disarm(&self) {
        self.deadline.set(u64::MAX);
    }

    /// Completes when the watchdog finds the deadline passed.
    fn expired(&self) -> Expired<'_> {
        Expired(self)
    }
}

/// Future of [`Watch::expired`].
struct Expired<'a>(&'a Watch);

impl Future for Expired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.get() {
            return Poll::Ready(());
        }
        let mut w = self.0.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Checks every connection of the thread a few times per `--timeout` and wakes those
/// whose deadline has passed; returns when `finished` is set.
pub async fn watchdog(ctx: Rc<Ctx>, finished: Rc<Cell<bool>>) {
    let period = (ctx.cfg.timeout / 8).clamp(Duration::from_millis(5), Duration::from_millis(250));
    while !finished.get() {
        glommio::timer::sleep(period).await;
        let now = ctx.now();
        for w in ctx.watches.borrow().iter() {
            if now >= w.deadline.get() && !w.fired.get() {
                w.fired.set(true);
                if let Some(waker) = w.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
        }
    }
}

impl Ctx {
    #[inline]
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// A request waiting for its reply.
struct Pending {
    op: Op,
    /// Key index (SET, GET) or payload sequence number (echo).
    key: u64,
    /// Payload length (echo).
    len: usize,
    /// Time latency is measured from, ns since the epoch.
    t0: u64,
    /// When it was written, ns since the epoch (its timeout runs from here).
    sent: u64,
    measured: bool,
}

/// Why a connection stopped.
enum End {
    /// Its share of the run is done.
    Done,
    /// The server closed it or it timed out; open another.
    Broken,
}

/// One connection's state across reconnects.
struct Conn {
    ctx: Rc<Ctx>,
    gen: Generator,
    /// Requests this connection may still send in the measured phase (`--requests`).
    quota: Option<u64>,
    schedule: Option<Schedule>,
    pending: VecDeque<Pending>,
    wbuf: Vec<u8>,
    /// Reply bytes; `rstart..rend` is not yet handled.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    echo_seq: u64,
    key_buf: itoa::Buffer,
    /// Failures since the last reply.
    failures: u32,
    /// This connection's deadline, watched by the thread's watchdog.
    watch: Rc<Watch>,
}

/// After this many failures in a row (connect refused, disconnect, timeout) with no
/// reply in between, a connection gives up: a server that is down ends the run with an
/// error instead of a hang.
const GIVE_UP_AFTER: u32 = 3;

/// How one connection of a run is set up.
pub struct Plan {
    /// Connection index in the run (0-based, across threads).
    pub idx: u64,
    /// Requests it sends in the measured phase (`--requests`, or prefill); `None` when
    /// the run is timed.
    pub quota: Option<u64>,
    /// With sequential keys, the first key (prefill gives each connection its range).
    pub first_key: Option<u64>,
}

/// Opens a connection to the configured server, giving up after `--timeout`.
pub async fn connect(cfg: &Config) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout((cfg.host.as_str(), cfg.port), cfg.timeout)
        .await
        .map_err(std::io::Error::from)?;
    stream.set_nodelay(true).map_err(std::io::Error::from)?;
    Ok(stream)
}

/// Runs one connection until its share of the run is done, starting on `stream`.
pub async fn run(ctx: Rc<Ctx>, plan: Plan, mut stream: Option<TcpStream>) {
    let cfg = ctx.cfg.clone();
    let idx = plan.idx;
    let schedule = match cfg.mode {
        Mode::Open { rate } => {
            let per_conn = rate / cfg.connections as f64;
            let phase = idx as f64 / cfg.connections as f64;
            Some(Schedule::new(0, per_conn, phase))
        }
        Mode::Closed => None,
    };
    let mut gen = Generator::new(
        cfg.seed,
        idx,
        cfg.keys,
        cfg.key_dist,
        cfg.ratio,
        cfg.value_size,
    );
    if let Some(k) = plan.first_key {
        gen.start_at(k);
    }
    let watch = Rc::new(Watch::default());
    watch.disarm();
    ctx.watches.borrow_mut().push(watch.clone());
    let mut c = Conn {
        watch,
        gen,
        ctx,
        quota: plan.quota,
        schedule,
        pending: VecDeque::new(),
        wbuf: Vec::new(),
        rbuf: vec![0; READ_CHUNK],
        rstart: 0,
        rend: 0,
        echo_seq: idx << 40,
        key_buf: itoa::Buffer::new(),
        failures: 0,
    };
    loop {
        if c.finished() {
            return;
        }
        let s = match stream.take() {
            Some(s) => s,
            None => match connect(&cfg).await {
                Ok(s) => s,
                Err(_) => {
                    c.ctx.stats.borrow_mut().connect_failures += 1;
                    if c.failed() {
                        return;
                    }
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        match c.drive(s).await {
            End::Done => return,
            End::Broken => {
                c.pending.clear();
                c.rstart = 0;
                c.rend = 0;
                if c.failed() {
                    return;
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    /// Counts a failure; whether the connection should give up.
    fn failed(&mut self) -> bool {
        self.failures += 1;
        if self.failures >= GIVE_UP_AFTER {
            self.ctx.stats.borrow_mut().abandoned += 1;
            return true;
        }
        false
    }

    /// Whether this connection has nothing more to send.
    fn finished(&self) -> bool {
        if self.quota == Some(0) {
            return true;
        }
        self.ctx.stop_at.is_some_and(|stop| self.ctx.now() >= stop)
    }

    async fn drive(&mut self, mut stream: TcpStream) -> End {
        match self.ctx.cfg.mode {
            Mode::Closed => self.closed_loop(&mut stream).await,
            Mode::Open { .. } => self.open_loop(&mut stream).await,
        }
    }

    async fn closed_loop(&mut self, stream: &mut TcpStream) -> End {
        let depth = self.ctx.cfg.pipeline;
        loop {
            if self.finished() {
                return End::Done;
            }
            let t0 = self.ctx.now();
            self.wbuf.clear();
            for _ in 0..depth {
                if self.quota == Some(0) {
                    break;
                }
                self.push_request(t0);
            }
            if let Err(end) = self.write(stream).await {
                return end;
            }
            while !self.pending.is_empty() {
                if let Err(end) = self.read_replies(stream, None).await {
                    return end;
                }
            }
        }
    }

    async fn open_loop(&mut self, stream: &mut TcpStream) -> End {
        let depth = self.ctx.cfg.pipeline;
        let stop_at = self.ctx.stop_at;
        loop {
            let now = self.ctx.now();
            // Every request scheduled before the end is part of the offered load, even
            // when a stall means it leaves after the end: dropping those would hide a
            // stall at the end of the run. Nothing scheduled at or after the end is sent.
            let horizon = stop_at.map_or(now, |stop| now.min(stop.saturating_sub(1)));
            let stopping = self.quota == Some(0)
                || stop_at.is_some_and(|stop| {
                    self.schedule.as_ref().is_none_or(|s| s.next_time() >= stop)
                });
            if stopping && self.pending.is_empty() {
                return End::Done;
            }
            self.wbuf.clear();
            if !stopping {
                while self.pending.len() < depth && self.quota != Some(0) {
                    let Some(t0) = self.schedule.as_mut().and_then(|s| s.take_due(horizon)) else {
                        break;
                    };
                    self.push_request(t0);
                }
            }
            if !self.wbuf.is_empty() {
                if let Err(end) = self.write(stream).await {
                    return end;
                }
            }
            let next_due = self.schedule.as_ref().map(|s| s.next_time());
            let room = self.pending.len() < depth && !stopping;
            if self.pending.is_empty() {
                // Nothing outstanding: sleep until the next request is due.
                if let Some(due) = next_due {
                    let wait = due.saturating_sub(self.ctx.now());
                    sleep_ns(wait).await;
                }
                continue;
            }
            // Wait for replies, but wake when the next request is due if there is room.
            let wake = if room { next_due } else { None };
            if let Err(end) = self.read_replies(stream, wake).await {
                return end;
            }
        }
    }

    /// Appends the next request to the write buffer and to the pending queue.
    fn push_request(&mut self, t0: u64) {
        let cfg = &self.ctx.cfg;
        let measured = t0 >= self.ctx.measure_from;
        if measured {
            if let Some(q) = self.quota.as_mut() {
                *q -= 1;
            }
        }
        let (op, key, len) = match (cfg.protocol, cfg.ping) {
            (Protocol::Echo, _) => {
                let len = self.gen.size().max(1);
                self.echo_seq += 1;
                workload::push_value(&mut self.wbuf, self.echo_seq, len);
                (Op::Echo, self.echo_seq, len)
            }
            (Protocol::Resp, true) => {
                self.wbuf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
                (Op::Ping, 0, 0)
            }
            (Protocol::Resp, false)
                if matches!(cfg.workload, Workload::Tx | Workload::TxTagged) =>
            {
                let key = self.gen.key();
                let digits = self.key_buf.format(key).as_bytes();
                let prefix = cfg.key_prefix.as_bytes();
                let w = &mut self.wbuf;
                w.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
                for side in [&b"a"[..], b"b"] {
                    let (open, close): (&[u8], &[u8]) = if cfg.workload == Workload::TxTagged {
                        (b"{", b"}")
                    } else {
                        (b"", b":")
                    };
                    w.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$");
                    push_num(
                        w,
                        prefix.len() + open.len() + digits.len() + close.len() + 1,
                    );
                    w.extend_from_slice(b"\r\n");
                    w.extend_from_slice(prefix);
                    w.extend_from_slice(open);
                    w.extend_from_slice(digits);
                    w.extend_from_slice(close);
                    w.extend_from_slice(side);
                    w.extend_from_slice(b"\r\n");
                }
                w.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
                for op in [Op::Multi, Op::Queued, Op::Queued] {
                    self.pending.push_back(Pending {
                        op,
                        key,
                        len: 0,
                        t0,
                        sent: 0,
                        measured: false,
                    });
                }
                (Op::Exec, key, 0)
            }
            (Protocol::Resp, false) if cfg.workload != Workload::String => {
                let write = self.gen.op() == Op::Set;
                let key = self.gen.key();
                let n = self.gen.below(cfg.fields);
                let digits = self.key_buf.format(key).as_bytes();
                let name = (cfg.key_prefix.as_bytes(), digits);
                let mut num = itoa::Buffer::new();
                let n_text = num.format(n).as_bytes();
                let w = &mut self.wbuf;
                match (cfg.workload, write) {
                    (Workload::Hash, true) => {
                        let len = self.gen.size();
                        let seed = workload::field_seed(key, n);
                        w.extend_from_slice(b"*4\r\n$4\r\nHSET\r\n");
                        push_key(w, name);
                        push_field(w, n_text);
                        w.extend_from_slice(b"$");
                        push_num(w, len);
                        w.extend_from_slice(b"\r\n");
                        workload::push_value(w, seed, len);
                        w.extend_from_slice(b"\r\n");
                        (Op::HSet, seed, 0)
                    }
                    (Workload::Hash, false) => {
                        w.extend_from_slice(b"*3\r\n$4\r\nHGET\r\n");
                        push_key(w, name);
                        push_field(w, n_text);
                        (Op::HGet, workload::field_seed(key, n), 0)
                    }
                    (Workload::List, true) => {
                        w.extend_from_slice(b"*3\r\n$5\r\nLPUSH\r\n");
                        push_key(w, name);
                        push_bulk(w, n_text);
                        (Op::LPush, key, 0)
                    }
                    (Workload::List, false) => {
                        w.extend_from_slice(b"*2\r\n$4\r\nRPOP\r\n");
                        push_key(w, name);
                        (Op::RPop, key, 0)
                    }
                    (Workload::Zset, true) => {
                        w.extend_from_slice(b"*4\r\n$4\r\nZADD\r\n");
                        push_key(w, name);
                        push_bulk(w, n_text);
                        push_field(w, n_text);
                        (Op::ZAdd, key, 0)
                    }
                    (Workload::Zset, false) => {
                        let mut hi = itoa::Buffer::new();
                        let hi = hi.format(n + cfg.fields / 10).as_bytes();
                        w.extend_from_slice(b"*7\r\n$13\r\nZRANGEBYSCORE\r\n");
                        push_key(w, name);
                        push_bulk(w, n_text);
                        push_bulk(w, hi);
                        w.extend_from_slice(b"$5\r\nLIMIT\r\n$1\r\n0\r\n$2\r\n10\r\n");
                        (Op::ZRangeByScore, key, 0)
                    }
                    (_, true) => {
                        w.extend_from_slice(b"*3\r\n$4\r\nSADD\r\n");
                        push_key(w, name);
                        push_bulk(w, n_text);
                        (Op::SAdd, key, 0)
                    }
                    (_, false) => {
                        w.extend_from_slice(b"*3\r\n$9\r\nSISMEMBER\r\n");
                        push_key(w, name);
                        push_bulk(w, n_text);
                        (Op::SIsMember, key, 0)
                    }
                }
            }
            (Protocol::Resp, false) => {
                let op = self.gen.op();
                let key = self.gen.key();
                let digits = self.key_buf.format(key).as_bytes();
                let klen = cfg.key_prefix.len() + digits.len();
                match op {
                    Op::Set => {
                        let len = self.gen.size();
                        self.wbuf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$");
                        push_num(&mut self.wbuf, klen);
                        self.wbuf.extend_from_slice(b"\r\n");
                        self.wbuf.extend_from_slice(cfg.key_prefix.as_bytes());
                        self.wbuf.extend_from_slice(digits);
                        self.wbuf.extend_from_slice(b"\r\n$");
                        push_num(&mut self.wbuf, len);
                        self.wbuf.extend_from_slice(b"\r\n");
                        workload::push_value(&mut self.wbuf, key, len);
                        self.wbuf.extend_from_slice(b"\r\n");
                    }
                    _ => {
                        self.wbuf.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$");
                        push_num(&mut self.wbuf, klen);
                        self.wbuf.extend_from_slice(b"\r\n");
                        self.wbuf.extend_from_slice(cfg.key_prefix.as_bytes());
                        self.wbuf.extend_from_slice(digits);
                        self.wbuf.extend_from_slice(b"\r\n");
                    }
                }
                (op, key, 0)
            }
        };
        self.pending.push_back(Pending {
            op,
            key,
            len,
            t0,
            sent: 0,
            measured,
        });
    }

    async fn write(&mut self, stream: &mut TcpStream) -> Result<(), End> {
        let now = self.ctx.now();
        for p in self.pending.iter_mut().rev().take_while(|p| p.sent == 0) {
            p.sent = now;
        }
        self.watch.arm(now + self.ctx.cfg.timeout.as_nanos() as u64);
        let write = async { Some(stream.write_all(&self.wbuf).await) };
        let expired = async {
            self.watch.expired().await;
            None
        };
        let result = future::or(write, expired).await;
        self.watch.disarm();
        match result {
            Some(Ok(())) => {
                self.ctx.stats.borrow_mut().bytes_sent += self.wbuf.len() as u64;
                Ok(())
            }
            Some(Err(_)) => {
                self.ctx.stats.borrow_mut().disconnects += 1;
                Err(End::Broken)
            }
            None => {
                self.ctx.stats.borrow_mut().timeouts += 1;
                Err(End::Broken)
            }
        }
    }

    /// Reads once (waiting at most until `wake`, ns since the epoch, if given) and
    /// handles every complete reply.
    async fn read_replies(&mut self, stream: &mut TcpStream, wake: Option<u64>) -> Result<(), End> {
        // Make room at the end of the buffer: move unhandled bytes to the front, and grow
        // only when a single reply is larger than the buffer.
        if self.rbuf.len() - self.rend < READ_CHUNK / 4 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
            if self.rbuf.len() - self.rend < READ_CHUNK / 4 {
                self.rbuf.resize(self.rbuf.len() * 2, 0);
            }
        }
        let oldest = self.pending.front().map_or(0, |p| p.sent);
        self.watch
            .arm(oldest + self.ctx.cfg.timeout.as_nanos() as u64);
        let wake_in = wake.map(|w| w.saturating_sub(self.ctx.now()));
        let buf = &mut self.rbuf[self.rend..];
        let read = async { Some(stream.read(buf).await) };
        let watch = &self.watch;
        let other = async {
            match wake_in {
                // Open loop: the next request is due before any reply came.
                Some(ns) => {
                    future::or(
                        async {
                            sleep_ns(ns).await;
                            Some(Ok(usize::MAX))
                        },
                        async {
                            watch.expired().await;
                            None
                        },
                    )
                    .await
                }
                None => {
                    watch.expired().await;
                    None
                }
            }
        };
        let result = future::or(read, other).await;
        self.watch.disarm();
        let n = match result {
            Some(Ok(usize::MAX)) => return Ok(()), // time to send more
            Some(Ok(0)) | Some(Err(_)) => {
                self.ctx.stats.borrow_mut().disconnects += 1;
                return Err(End::Broken);
            }
            Some(Ok(n)) => n,
            None => {
                self.ctx.stats.borrow_mut().timeouts += 1;
                return Err(End::Broken);
            }
        };
        self.rend += n;
        self.ctx.stats.borrow_mut().bytes_received += n as u64;
        self.handle_replies()
    }

    /// Verifies and records every complete reply in the read buffer.
    fn handle_replies(&mut self) -> Result<(), End> {
        let now = self.ctx.now();
        let ctx = self.ctx.clone();
        let mut stats = ctx.stats.borrow_mut();
        let mut result = Ok(());
        let mut pos = self.rstart;
        while let Some(p) = self.pending.front() {
            let rest = &self.rbuf[pos..self.rend];
            let len = if p.op == Op::Echo {
                if rest.len() < p.len {
                    break;
                }
                p.len
            } else {
                match frame_len(rest) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(_) => {
                        stats.bad_replies += 1;
                        result = Err(End::Broken);
                        break;
                    }
                }
            };
            let reply = &rest[..len];
            let p = self.pending.pop_front().expect("front exists");
            pos += len;
            ctx.answered.set(ctx.answered.get() + 1);
            let good = check(&p, reply, &mut stats);
            if p.measured {
                match p.op {
                    Op::Set | Op::HSet | Op::SAdd | Op::LPush | Op::ZAdd | Op::Exec => {
                        stats.sets += 1
                    }
                    Op::Multi | Op::Queued => {}
                    Op::Get | Op::HGet | Op::SIsMember | Op::RPop | Op::ZRangeByScore => {
                        stats.gets += 1
                    }
                    Op::Ping => stats.pings += 1,
                    Op::Echo => stats.echoes += 1,
                }
                stats.record(now.saturating_sub(p.t0));
                if good {
                    stats.verified += 1;
                }
            }
        }
        if pos > self.rstart {
            self.failures = 0;
            stats.last_reply_ns = stats.last_reply_ns.max(now);
        }
        self.rstart = pos;
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        result
    }
}

/// Checks one reply against its request; counts what is wrong. Returns whether it is
/// right.
fn check(p: &Pending, reply: &[u8], stats: &mut Stats) -> bool {
    if reply.first() == Some(&b'-') && p.op != Op::Echo {
        stats.error_replies += 1;
        return false;
    }
    let ok = match p.op {
        Op::Set => reply == b"+OK\r\n",
        Op::HSet | Op::SAdd | Op::SIsMember | Op::ZAdd => reply == b":0\r\n" || reply == b":1\r\n",
        Op::LPush => reply.first() == Some(&b':'),
        Op::RPop => reply.first() == Some(&b'$'),
        Op::ZRangeByScore => reply.first() == Some(&b'*'),
        Op::Ping => reply == b"+PONG\r\n",
        Op::Multi => reply == b"+OK\r\n",
        Op::Queued => reply == b"+QUEUED\r\n",
        Op::Exec => reply.starts_with(b"*2\r\n:"),
        Op::Echo => reply.len() == p.len && workload::value_ok(reply, p.key),
        Op::Get | Op::HGet => {
            if reply == b"$-1\r\n" {
                if p.measured {
                    stats.misses += 1;
                }
                true
            } else {
                let body = reply
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|nl| &reply[nl + 1..reply.len() - 2]);
                let ok = reply.first() == Some(&b'$')
                    && body.is_some_and(|v| workload::value_ok(v, p.key));
                if ok && p.measured {
                    stats.hits += 1;
                }
                ok
            }
        }
    };
    if !ok {
        stats.bad_replies += 1;
    }
    ok
}

/// Appends `b` as a bulk string.
fn push_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    push_num(out, b.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// Appends a key (prefix and digits) as a bulk string.
fn push_key(out: &mut Vec<u8>, (prefix, digits): (&[u8], &[u8])) {
    out.push(b'$');
    push_num(out, prefix.len() + digits.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(prefix);
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
}

/// Appends hash field `field:<n>` as a bulk string.
fn push_field(out: &mut Vec<u8>, n: &[u8]) {
    out.push(b'$');
    push_num(out, 6 + n.len());
    out.extend_from_slice(b"\r\nfield:");
    out.extend_from_slice(n);
    out.extend_from_slice(b"\r\n");
}

fn push_num(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Sleeps about `ns` nanoseconds: yields for very short waits (a timer costs more than
/// it saves there), sleeps on a timer otherwise.
async fn sleep_ns(ns: u64) {
    if ns < 50_000 {
        future::yield_now().await;
    } else {
        glommio::timer::sleep(Duration::from_nanos(ns)).await;
    }
}
