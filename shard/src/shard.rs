//! [`Shard`]: everything one core owns, and how a request is dispatched from it.
//!
//! A request from one of this shard's connections goes one of four ways, and each hop to
//! another shard is visible here as an `enqueue` call:
//!
//! ```text
//!   dispatch(conn, args)
//!     ├─ keys owned here ──────────────► run now, reply appended to the connection
//!     ├─ keys owned by shard s ────────► enqueue to s's outbox, reply is a hole
//!     ├─ keys on several shards
//!     │    ├─ MGET/MSET/DEL/… ─────────► split by owner, parts gathered
//!     │    └─ MSETNX/RENAME/COPY ──────► Outcome::Coordinate (paused, stepwise)
//!     └─ every shard (KEYS, INFO, …) ──► a part per shard, gathered
//! ```
//!
//! Each destination has an outbox of requests and a queue of other outgoing messages
//! (replies, control). The server runs one flusher task per destination, the only code that
//! sends: it drains [`take_outgoing`](Shard::take_outgoing), at most [`MAX_INFLIGHT`]
//! request batches in flight per destination. The owner runs a whole batch at once in
//! [`on_message`](Shard::on_message) and queues the replies, which come back the same way
//! into the connections' holes. Nothing here awaits, and nothing that runs requests ever
//! waits for a channel: the server's tasks call in and get told when to wait.

use std::collections::VecDeque;
use std::task::Waker;

use corekv_protocol::{Proto, Reply};

use crate::command::keyspace::{self, ScanRequest};
use crate::command::{
    self, arity_error, connection, errors, is, run_keyed, server, All, Args, Commands, Conn, Coord,
    Env, KeyFn, Lookup, Multi, OwnedArgs, Route, Spec, Split,
};
use crate::config::Config;
use crate::conn::{ConnId, ConnTable, GatherKind, NewClient};
use crate::coord::CoordPlan;
use crate::message::{
    Control, ControlMsg, Msg, Op, ReplyBatch, RequestBatch, StepOp, Ticket, Token,
};
use crate::slot::SlotMap;
use crate::slowlog::SlowLog;
use crate::stats::CommandStats;
use crate::stats::Stats;
use crate::store::Store;

/// Most request batches in flight from one shard to another. Each one is answered by one
/// reply batch, so reply channels sized at least this never fill.
pub const MAX_INFLIGHT: u32 = 64;

/// Most requests in one batch; a full batch waits while the next one fills. With
/// [`MAX_INFLIGHT`], at most 65,536 requests are in flight to one destination.
pub const MAX_BATCH: usize = 1024;

/// What the connection must do after [`Shard::dispatch`].
pub enum Outcome {
    /// The request was handled (its reply written or awaited in a hole).
    Done,
    /// The shard is paused by a coordinated command: wait for
    /// [`Shard::on_unpause`] and dispatch the same request again.
    Blocked,
    /// A command that must be atomic across shards: wait for this connection's holes,
    /// then drive the plan.
    Coordinate(Box<CoordPlan>),
    /// QUIT: write what was produced, then close.
    Quit,
    /// Close at once without a reply (Redis's answer to HTTP requests).
    Close,
}

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

/// Most reply batches kept to hand back to one peer; beyond this they are dropped.
const MAX_RETURNS: usize = 16;

enum PauseWaiter {
    Local(Token, Waker),
    Remote(Token, usize, Ticket, Proto),
}

#[derive(Default)]
struct Pause {
    owner: Option<Token>,
    queue: VecDeque<PauseWaiter>,
    blocked: Vec<Waker>,
}

/// Everything one core owns. See the module docs.
pub struct Shard {
    /// This shard's index (its mesh peer id).
    pub id: usize,
    /// Slot → shard ownership.
    pub map: SlotMap,
    /// Settings.
    pub config: Config,
    /// The command table.
    pub commands: &'static Commands,
    /// This shard's part of the keyspace.
    pub store: Store,
    /// Counters.
    pub stats: Stats,
    /// Connections accepted here.
    pub conns: ConnTable,
    links: Vec<Link>,
    pause: Pause,
    rng: fastrand::Rng,
    now: u64,
    next_token: u64,
    next_client: u64,
    spare_replies: Vec<ReplyBatch>,
    /// Request batches received while paused, run in arrival order on resume.
    deferred: VecDeque<RequestBatch>,
    scratch: Vec<u8>,
    /// The CPU this shard is pinned to, if any.
    pub cpu: Option<usize>,
    /// Per-command and per-error counters.
    pub cmdstats: CommandStats,
    /// This shard's slow log.
    pub slowlog: SlowLog,
    /// Connection read buffers, for reuse.
    pub read_pool: crate::pool::BufPool,
    /// Connection reply buffers, for reuse.
    pub reply_pool: crate::pool::BufPool,
    /// This shard's part of a shutdown (SHUTDOWN run here, the drain).
    pub shutdown: crate::shutdown::Shutdown,
    /// Where the request being dispatched ran.
    ran: Ran,
    /// The clock commands are timed with.
    pub clock: crate::ticks::Clock,
    /// When the last timed step ended (a [`crate::ticks`] stamp): the next command's
    /// start.
    stamp: u64,
    /// `slowlog-log-slower-than` in clock ticks (`u64::MAX` when off), so the per-command
    /// check is one comparison.
    slow_ticks: u64,
    /// The last wall-clock reading: Unix ms and the stamp it was taken at.
    anchor: (u64, u64),
    /// [`REANCHOR_MS`] in stamp units.
    reanchor_ticks: u64,
}

/// Longest [`Shard::refresh_now`] counts on from one wall-clock reading.
pub const REANCHOR_MS: u64 = 5;

/// Where the request being dispatched ran, for its statistics.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ran {
    /// On this shard (or split or coordinated from it).
    Here,
    /// On its owner (see [`Shard::forward`]), which times it and logs it if slow.
    Forwarded,
    /// Nowhere: refused before it ran (out of memory), a rejected call as in Redis.
    Rejected,
}

impl Shard {
    /// Shard `id` of `config.shards`.
    pub fn new(id: usize, config: Config, commands: &'static Commands) -> Self {
        let n = config.shards;
        let clock = crate::ticks::Clock::calibrate();
        let mut store = Store::with_clock(config.started_ms);
        store.eviction = config.maxmemory_policy.eviction;
        Shard {
            id,
            map: SlotMap::new(n),
            commands,
            store,
            stats: Stats::default(),
            conns: ConnTable::default(),
            links: (0..n).map(|_| Link::default()).collect(),
            pause: Pause::default(),
            rng: fastrand::Rng::with_seed(config.started_ms ^ ((id as u64) << 32) ^ 0x9e37_79b9),
            now: 0,
            next_token: 0,
            next_client: 0,
            spare_replies: Vec::new(),
            deferred: VecDeque::new(),
            scratch: Vec::new(),
            cpu: None,
            cmdstats: CommandStats::with_commands(commands.stat_names().len()),
            slowlog: SlowLog::default(),
            read_pool: crate::pool::BufPool::new(BUFFER_SIZE, true, POOLED_BUFFERS),
            reply_pool: crate::pool::BufPool::new(BUFFER_SIZE, false, POOLED_BUFFERS),
            shutdown: Default::default(),
            ran: Ran::Here,
            stamp: 0,
            slow_ticks: slow_ticks(&clock, config.slowlog_slower_than),
            anchor: (0, 0),
            reanchor_ticks: clock.from_ns(REANCHOR_MS * 1_000_000),
            clock,
            config,
        }
    }

    /// Sets the clock (Unix ms) commands see, and starts timing a batch of commands.
    /// [`refresh_now`](Self::refresh_now) then counts on from here.
    #[inline]
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
        self.stamp = self.clock.now();
        self.anchor = (now, self.stamp);
    }

    /// Brings the clock commands see up to date, and starts timing a batch of commands:
    /// the server calls this before each batch it hands the shard without yielding.
    /// The wall clock is read at most every [`REANCHOR_MS`]; in between, Unix ms are
    /// counted on from the last reading with the stamp clock, which costs a fraction of
    /// a `clock_gettime` (three of which per request were 3% of a shard's time at
    /// pipeline depth 1).
    #[inline]
    pub fn refresh_now(&mut self) {
        let stamp = self.clock.now();
        let (ms, at) = self.anchor;
        let elapsed = stamp.wrapping_sub(at);
        if elapsed >= self.reanchor_ticks {
            self.set_now(crate::ticks::unix_ms());
        } else {
            self.now = ms + self.clock.to_ns(elapsed) / 1_000_000;
            self.stamp = stamp;
        }
    }

    /// The clock commands see (Unix ms).
    #[inline]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Registers a new connection; returns its id in the table.
    pub fn connect(&mut self, addr: String, laddr: String, fd: i32) -> ConnId {
        self.stats.connections_received += 1;
        let authenticated = self.config.requirepass.is_empty();
        self.register(addr, laddr, fd, authenticated, false)
    }

    /// Registers the server's own connection (for the metrics endpoint): authenticated,
    /// not a client (not counted, listed, killed or timed out).
    pub fn connect_internal(&mut self) -> ConnId {
        self.register("internal".into(), String::new(), -1, true, true)
    }

    fn register(
        &mut self,
        addr: String,
        laddr: String,
        fd: i32,
        authenticated: bool,
        internal: bool,
    ) -> ConnId {
        let id = self.next_client * self.map.shards() as u64 + self.id as u64 + 1;
        self.next_client += 1;
        let conn = self.conns.insert(NewClient {
            id,
            addr,
            laddr,
            fd,
            now: self.now,
            authenticated,
            internal,
        });
        self.arm_idle_timer(conn);
        conn
    }

    /// Forgets a connection; replies still travelling to it are dropped on arrival.
    pub fn disconnect(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            let t = std::mem::take(&mut c.timer);
            if !t.is_none() {
                self.store.timers.cancel(t);
            }
        }
        self.conns.remove(conn);
        self.shutdown.connection_closed();
    }

    /// Records input or output on a connection (what the idle timeout measures). Costs
    /// one store: the timer is not moved until it fires.
    #[inline]
    pub fn touch(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.last_ms = self.now;
        }
    }

    /// Puts a connection's idle timer in the wheel, at the moment it would have been
    /// idle for longer than `timeout` (none when `timeout` is 0).
    fn arm_idle_timer(&mut self, conn: ConnId) {
        let timeout_ms = self.config.timeout.saturating_mul(1000);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let old = std::mem::take(&mut c.timer);
        if !old.is_none() {
            self.store.timers.cancel(old);
        }
        if timeout_ms > 0 && !c.internal {
            let at = c.last_ms.saturating_add(timeout_ms).saturating_add(1);
            c.timer = self
                .store
                .timers
                .insert(at, crate::store::Timer::Conn(conn.slot, conn.gen));
        }
    }

    /// An idle timer fired: close the connection if it has been idle longer than
    /// `timeout`, else re-arm from its last activity.
    fn idle_timer_fired(&mut self, conn: ConnId) {
        let timeout_ms = self.config.timeout.saturating_mul(1000);
        let now = self.now;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.timer = crate::wheel::TimerHandle::NONE;
        if timeout_ms == 0 {
            return;
        }
        if now.saturating_sub(c.last_ms) > timeout_ms {
            self.kill(conn);
        } else {
            self.arm_idle_timer(conn);
        }
    }

    /// Closes a connection: its task stops waiting for input, or stops after writing the
    /// round it is in (CLIENT KILL, idle timeout, shutdown).
    pub fn kill(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.killed = true;
            if let Some(w) = c.kill_waker.take() {
                w.wake();
            }
        }
    }

    /// Bytes of replies the connection's current round has produced here, or `None` when
    /// it was killed (or is gone) and must stop after writing them.
    #[inline]
    pub fn round_output(&self, conn: ConnId) -> Option<usize> {
        match self.conns.get(conn) {
            Some(c) if !c.killed => Some(c.replies.local.len()),
            _ => None,
        }
    }

    /// Whether the connection was killed (or is gone).
    pub fn is_killed(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_none_or(|c| c.killed)
    }

    /// Starts this shard's part of a shutdown: every connection closes once the round it
    /// is in has been written. The server stops accepting.
    pub fn begin_shutdown(&mut self) {
        self.shutdown.begin();
        for conn in self.conns.ids() {
            self.kill(conn);
        }
    }

    /// While draining: what the connections still open wait for, in words (empty when
    /// none is left), for the shutdown report.
    pub fn drain_status(&self) -> String {
        let (mut replies, mut writing) = (0, 0);
        for c in self.conns.iter() {
            if !c.replies.ready() {
                replies += 1;
            } else if c.omem > 0 {
                writing += 1;
            }
        }
        let open = self.conns.len();
        if open == 0 {
            return String::new();
        }
        format!(
            "{open} connection(s) still open: {replies} waiting for replies from other \
             shards, {writing} writing replies the client has not read, {} finishing a round",
            open - replies - writing
        )
    }

    /// Whether the shard closed this connection; if not, `waker` is woken when it does.
    pub fn poll_killed(&mut self, conn: ConnId, waker: &Waker) -> bool {
        match self.conns.get_mut(conn) {
            None => true,
            Some(c) if c.killed => true,
            Some(c) => {
                match &c.kill_waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => c.kill_waker = Some(waker.clone()),
                }
                false
            }
        }
    }

    /// Runs what the wheel has due at the current clock: expires keys, closes idle
    /// connections. At most `budget` timers; returns whether more are due.
    pub fn run_timers(&mut self, budget: usize) -> bool {
        let mut conns = Vec::new();
        let more = self.store.expire_due(self.now, budget, &mut conns);
        for (slot, gen) in conns {
            self.idle_timer_fired(ConnId { slot, gen });
        }
        more
    }

    /// Periodic upkeep that must not run per request or per expiry batch: gives back the
    /// memory of a keyspace that has mostly emptied.
    pub fn housekeeping(&mut self) {
        self.store.shrink();
        self.read_pool.housekeeping();
        self.reply_pool.housekeeping();
    }

    /// When the wheel next has work (Unix ms), if it has any.
    pub fn next_timer(&self) -> Option<u64> {
        self.store.timers.next_deadline()
    }

    /// Applies CONFIG SET values on this shard.
    fn apply_settings(&mut self, args: Args) {
        let mut timeout_changed = false;
        for i in (0..args.len()).step_by(2) {
            if let Ok(s) = crate::config::parse_setting(args.get(i), args.get(i + 1)) {
                timeout_changed |= matches!(s, crate::config::Setting::Timeout(_));
                self.config.apply(s);
            }
        }
        self.slowlog.trim(self.config.slowlog_max_len);
        self.store.eviction = self.config.maxmemory_policy.eviction;
        self.slow_ticks = slow_ticks(&self.clock, self.config.slowlog_slower_than);
        if timeout_changed {
            for conn in self.conns.ids() {
                self.arm_idle_timer(conn);
            }
        }
    }

    // ---- dispatch -------------------------------------------------------------------

    /// Runs or routes one request of a local connection. See [`Outcome`].
    pub fn dispatch(&mut self, conn: ConnId, args: Args) -> Outcome {
        let Some(client) = self.conns.get_mut(conn) else {
            return Outcome::Close;
        };
        let proto = client.proto;
        let name = args.get(0);
        if is(name, "host:") || is(name, "post") {
            return Outcome::Close;
        }
        let commands = self.commands;
        let spec = match commands.lookup(args) {
            Lookup::Found(spec) => spec,
            Lookup::Unknown => {
                let text = unknown_command(args);
                self.reply_error(conn, &text);
                return Outcome::Done;
            }
            Lookup::UnknownSubcommand(container) => {
                let mut text = b"ERR unknown subcommand '".to_vec();
                text.extend_from_slice(truncate(command::cstr(args.get(1)), 128));
                text.extend_from_slice(b"'. Try ");
                text.extend_from_slice(container.name.to_ascii_uppercase().as_bytes());
                text.extend_from_slice(b" HELP.");
                self.reply_error(conn, &text);
                return Outcome::Done;
            }
        };
        if !spec.arity_ok(args.len()) {
            self.cmdstats.get(spec.stat).rejected += 1;
            let text = format!("ERR wrong number of arguments for '{}' command", spec.name);
            self.reply_error(conn, text.as_bytes());
            return Outcome::Done;
        }
        let Some(c) = self.conns.get_mut(conn) else {
            return Outcome::Close;
        };
        if !c.authenticated
            && !self.config.requirepass.is_empty()
            && !matches!(
                spec.route,
                Route::Conn(Conn::Auth | Conn::Hello | Conn::Quit)
            )
        {
            self.cmdstats.get(spec.stat).rejected += 1;
            self.reply_error(conn, b"NOAUTH Authentication required.");
            return Outcome::Done;
        }
        c.last_cmd = spec.name;
        c.last_ms = self.now;
        let start_len = c.replies.local.len();
        let errors_before = self.stats.error_replies;
        self.ran = Ran::Here;
        let outcome = match spec.route {
            Route::Key(f, multi) => self.dispatch_keyed(conn, spec, f, multi, args, proto),
            Route::Conn(which) => self.run_conn(conn, which, args),
            Route::All(which) => self.dispatch_all(conn, which, args, proto),
            Route::Scan => self.dispatch_scan(conn, args, proto),
            Route::Container => {
                // Arity -2 makes a lone container fail its arity check above; should a
                // table ever say otherwise, answer as Redis would rather than fail.
                let text = format!("ERR wrong number of arguments for '{}' command", spec.name);
                self.reply_error(conn, text.as_bytes());
                Outcome::Done
            }
        };
        if !matches!(outcome, Outcome::Blocked) {
            // Commands are timed end to end in a chain: this one started where the last
            // one (or the batch) ended, which costs one clock read per command.
            let end = self.clock.now();
            let ticks = end.saturating_sub(self.stamp);
            self.stamp = end;
            if self.ran == Ran::Rejected {
                self.cmdstats.get(spec.stat).rejected += 1;
            } else {
                self.stats.commands += 1;
                let failed = self.stats.error_replies != errors_before;
                self.record(conn, spec, args, ticks, failed.then_some(start_len));
            }
        }
        outcome
    }

    /// Counts a command this shard's client ran: its call, its time here, its error (the
    /// reply written from `error_at` of the local output, when it failed), and the slow
    /// log. The common case (no error, not slow) touches no connection.
    #[inline]
    fn record(
        &mut self,
        conn: ConnId,
        spec: &Spec,
        args: Args,
        ticks: u64,
        error_at: Option<usize>,
    ) {
        let stat = self.cmdstats.get(spec.stat);
        stat.calls += 1;
        stat.ticks += ticks;
        if self.ran == Ran::Forwarded {
            // Its run is timed by the owner; this was only the routing.
            return;
        }
        stat.hist.get_or_insert_with(Default::default).record(ticks);
        if let Some(at) = error_at {
            stat.failed += 1;
            if let Some(c) = self.conns.get(conn) {
                if c.replies.local.get(at) == Some(&b'-') {
                    self.cmdstats.error(&c.replies.local[at..]);
                }
            }
        }
        if ticks >= self.slow_ticks {
            self.log_slow(conn, spec, args, ticks);
        }
    }

    /// Adds a command of this shard's client to the slow log, passwords redacted.
    #[cold]
    fn log_slow(&mut self, conn: ConnId, spec: &Spec, args: Args, ticks: u64) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let (addr, name) = (c.addr.clone(), c.name.clone().unwrap_or_default());
        self.push_slow(spec, args, ticks, &addr, &name);
    }

    /// Adds an entry to the slow log, passwords redacted.
    fn push_slow(&mut self, spec: &Spec, args: Args, ticks: u64, addr: &str, name: &[u8]) {
        self.slowlog.push(
            self.config.slowlog_max_len,
            self.id,
            self.map.shards(),
            self.now * 1000,
            self.clock.to_ns(ticks) / 1000,
            args.iter().enumerate().map(|(i, a)| {
                if command::is_secret(spec, args, i) {
                    &b"(redacted)"[..]
                } else {
                    a
                }
            }),
            addr,
            name,
        );
    }

    /// Counts a keyed command run here for another shard's client: its time and error
    /// (the call itself was counted where the client is), and the slow log.
    fn record_remote(&mut self, spec: &Spec, args: Args, ticks: u64, reply: &[u8]) {
        let stat = self.cmdstats.get(spec.stat);
        stat.ticks += ticks;
        stat.hist.get_or_insert_with(Default::default).record(ticks);
        if reply.first() == Some(&b'-') {
            stat.failed += 1;
            self.cmdstats.error(reply);
        }
        if ticks >= self.slow_ticks {
            self.push_slow(spec, args, ticks, "", b"");
        }
    }

    /// Writes an error (`text` starts with its code) to the connection's output.
    fn reply_error(&mut self, conn: ConnId, text: &[u8]) {
        if let Some(c) = self.conns.get_mut(conn) {
            Reply::new(&mut c.replies.local, c.proto).error(text);
            self.stats.error_replies += 1;
            self.cmdstats.error(text);
        }
    }

    fn dispatch_keyed(
        &mut self,
        conn: ConnId,
        spec: &'static Spec,
        f: KeyFn,
        multi: Option<Multi>,
        args: Args,
        proto: Proto,
    ) -> Outcome {
        let mut positions = spec.key_positions(args.len());
        let owner = positions
            .next()
            .map_or(self.id, |p| self.map.shard_of(args.get(p)));
        let single = positions.all(|p| self.map.shard_of(args.get(p)) == owner);
        if single {
            if owner == self.id {
                if self.is_paused() {
                    return Outcome::Blocked;
                }
                self.run_local(conn, spec, f, args, proto);
            } else {
                self.forward(conn, owner, Op::Key, args, proto);
            }
            return Outcome::Done;
        }
        match multi {
            Some(Multi::Split(how)) => self.split(conn, spec, how, args, proto),
            Some(Multi::Coord(how)) => self.coordinate(conn, spec, how, args, proto),
            // Commands that cannot span shards have one key (or keys that always match).
            None => {
                self.run_local(conn, spec, f, args, proto);
                Outcome::Done
            }
        }
    }

    /// What keyed commands see of this shard besides its store.
    #[inline]
    fn env(&self) -> Env {
        Env {
            now: self.now,
            max_bulk_len: self.config.limits.max_bulk_len,
        }
    }

    /// Before a command that may grow memory: while the keyspace is over this shard's
    /// share of `maxmemory`, evicts by the policy. False when it stays over (noeviction,
    /// or nothing the policy may evict): the command must be refused.
    fn admit(&mut self) -> bool {
        let limit = self.config.shard_maxmemory();
        if limit == 0 {
            return true;
        }
        let policy = self.config.maxmemory_policy;
        while self.store.used_memory() as u64 > limit {
            if self
                .store
                .evict_one(policy.eviction, policy.volatile_only, &mut self.rng)
                .is_none()
            {
                return false;
            }
        }
        true
    }

    /// Runs a keyed command here, its reply appended to the connection's output.
    fn run_local(&mut self, conn: ConnId, spec: &Spec, f: KeyFn, args: Args, proto: Proto) {
        if spec.denyoom && !self.admit() {
            // Refused before it runs, as Redis does: a rejected call, not a failed one.
            self.ran = Ran::Rejected;
            self.reply_error(conn, OOM);
            return;
        }
        let env = self.env();
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let out = &mut c.replies.local;
        if run_keyed(f, spec.name, args, &mut self.store, env, out, proto) {
            self.stats.error_replies += 1;
        }
    }

    /// Sends a whole request to its owner; its reply becomes a hole.
    fn forward(&mut self, conn: ConnId, dest: usize, op: Op, args: Args, proto: Proto) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        self.ran = Ran::Forwarded;
        let hole = c.replies.push_hole();
        let ticket = Ticket {
            conn: conn.slot,
            gen: conn.gen,
            hole,
        };
        self.enqueue(dest, ticket, proto, op, args.iter());
    }

    /// Puts a request in `dest`'s outbox and wakes the flusher if it was empty. Every
    /// cross-shard hop goes through here.
    fn enqueue<'a>(
        &mut self,
        dest: usize,
        ticket: Ticket,
        proto: Proto,
        op: Op,
        args: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let link = &mut self.links[dest];
        if link.outbox.len() >= MAX_BATCH {
            let spare = link.spare.pop().unwrap_or_default();
            let filled = std::mem::replace(&mut link.outbox, spare);
            link.full.push_back(filled);
        }
        link.outbox.push(ticket, proto, op, args);
        self.stats.hops_out += 1;
        if let Some(w) = link.waker.take() {
            w.wake();
        }
    }

    /// Queues a reply or control message for `dest` and wakes its flusher.
    fn send(&mut self, dest: usize, msg: Msg) {
        let link = &mut self.links[dest];
        link.outgoing.push_back(msg);
        if let Some(w) = link.waker.take() {
            w.wake();
        }
    }

    /// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH over keys of several shards: one part per
    /// owner, each a command of the same name over that owner's keys, gathered in order.
    fn split(
        &mut self,
        conn: ConnId,
        spec: &'static Spec,
        how: Split,
        args: Args,
        proto: Proto,
    ) -> Outcome {
        if how == Split::Mset && args.len() % 2 == 0 {
            let c = self
                .conns
                .get_mut(conn)
                .expect("dispatching for a live connection");
            arity_error(&mut Reply::new(&mut c.replies.local, proto), spec.name);
            self.stats.error_replies += 1;
            return Outcome::Done;
        }
        let step = if how == Split::Mset { 2 } else { 1 };
        let positions: Vec<usize> = spec.key_positions(args.len()).collect();
        let owners: Vec<usize> = positions
            .iter()
            .map(|&p| self.map.shard_of(args.get(p)))
            .collect();
        if owners.contains(&self.id) && self.is_paused() {
            return Outcome::Blocked;
        }
        let mut shards = owners.clone();
        shards.sort_unstable();
        shards.dedup();
        let kind = match how {
            Split::Mget => {
                // For each key: (part, index within the part), counting per part.
                let mut counts = vec![0u32; shards.len()];
                let order = owners
                    .iter()
                    .map(|o| {
                        let part = shards.binary_search(o).unwrap_or_default();
                        let idx = counts[part];
                        counts[part] += 1;
                        (part as u16, idx)
                    })
                    .collect();
                GatherKind::Mget(order)
            }
            Split::Mset => GatherKind::Ok,
            Split::Count => GatherKind::Sum,
        };
        let Some(c) = self.conns.get_mut(conn) else {
            return Outcome::Done;
        };
        let mut g = c.replies.begin_gather(kind, proto);
        let name_span = [args.get(0)];
        for &s in &shards {
            let mine = positions
                .iter()
                .zip(&owners)
                .filter(|(_, &o)| o == s)
                .flat_map(|(&p, _)| (p..p + step).map(move |i| args.get(i)));
            if s == self.id {
                let part = OwnedArgs::from_slices(
                    &name_span.iter().copied().chain(mine).collect::<Vec<_>>(),
                );
                let admitted = !spec.denyoom || self.admit();
                let env = self.env();
                let c = self.conns.get_mut(conn).expect("live connection");
                let buf = c.replies.parts_buf();
                let start = buf.len();
                if !admitted {
                    Reply::new(buf, proto).error(OOM);
                } else if let Route::Key(f, _) = spec.route {
                    run_keyed(f, spec.name, part.args(), &mut self.store, env, buf, proto);
                }
                c.replies.gather_local(&mut g, start);
            } else {
                let c = self.conns.get_mut(conn).expect("live connection");
                let hole = c.replies.gather_remote(&mut g);
                let ticket = Ticket {
                    conn: conn.slot,
                    gen: conn.gen,
                    hole,
                };
                let part: Vec<&[u8]> = name_span.iter().copied().chain(mine).collect();
                self.enqueue(s, ticket, proto, Op::Key, part);
            }
        }
        let c = self.conns.get_mut(conn).expect("live connection");
        c.replies.push_gather(g);
        Outcome::Done
    }

    /// MSETNX, RENAME, RENAMENX, COPY over keys of several shards: checks what can be
    /// checked here, then hands the connection a plan to drive.
    fn coordinate(
        &mut self,
        conn: ConnId,
        spec: &'static Spec,
        how: Coord,
        args: Args,
        proto: Proto,
    ) -> Outcome {
        let c = self
            .conns
            .get_mut(conn)
            .expect("dispatching for a live connection");
        let mut out = Reply::new(&mut c.replies.local, proto);
        let mut replace = false;
        match how {
            Coord::Msetnx if args.len() % 2 == 0 => {
                arity_error(&mut out, spec.name);
                self.stats.error_replies += 1;
                return Outcome::Done;
            }
            Coord::Copy => match keyspace::copy_options(&mut out, args) {
                Some(opts) => replace = opts.replace,
                None => {
                    self.stats.error_replies += 1;
                    return Outcome::Done;
                }
            },
            _ => {}
        }
        let owners = spec
            .key_positions(args.len())
            .map(|p| (p, self.map.shard_of(args.get(p))))
            .collect();
        let owned = OwnedArgs::from_slices(&args.iter().collect::<Vec<_>>());
        Outcome::Coordinate(Box::new(CoordPlan::new(how, owned, owners, proto, replace)))
    }

    /// A command that covers every shard: validates, then one part per shard, gathered.
    fn dispatch_all(&mut self, conn: ConnId, which: All, args: Args, proto: Proto) -> Outcome {
        let me = self.conns.get(conn).map_or(0, |c| c.id);
        let (op, kind, part_args): (Op, GatherKind, Vec<Vec<u8>>) = {
            let c = self
                .conns
                .get_mut(conn)
                .expect("dispatching for a live connection");
            let mut out = Reply::new(&mut c.replies.local, proto);
            match which {
                All::Keys => (Op::Keys, GatherKind::Concat, vec![args.get(1).to_vec()]),
                All::Dbsize => (Op::Dbsize, GatherKind::Sum, vec![]),
                All::Flush => {
                    if !keyspace::flush_options_ok(&mut out, args) {
                        self.stats.error_replies += 1;
                        return Outcome::Done;
                    }
                    (Op::Flush, GatherKind::Ok, vec![])
                }
                All::RandomKey => (Op::RandomKey, GatherKind::RandomKey, vec![]),
                All::Info => (
                    Op::Info,
                    GatherKind::Info(server::info_sections(args)),
                    vec![],
                ),
                All::ConfigSet => match server::config_set_check(args) {
                    // Checked: every shard applies the same name/value pairs.
                    Ok(()) => (
                        Op::ConfigSet,
                        GatherKind::Ok,
                        args.iter().skip(2).map(<[u8]>::to_vec).collect(),
                    ),
                    Err(text) => {
                        out.err(&text);
                        self.stats.error_replies += 1;
                        return Outcome::Done;
                    }
                },
                All::ConfigResetStat => (Op::ResetStat, GatherKind::Ok, vec![]),
                All::LatencyHistogram => {
                    let names = args
                        .iter()
                        .skip(2)
                        .map(|a| command::cstr(a).to_ascii_lowercase())
                        .collect();
                    (Op::LatencyHist, GatherKind::LatencyHist(names), vec![])
                }
                All::SlowlogLen => (Op::SlowlogLen, GatherKind::Sum, vec![]),
                All::SlowlogReset => (Op::SlowlogReset, GatherKind::Ok, vec![]),
                All::SlowlogGet => match server::slowlog_count(&mut out, args) {
                    Some(count) => {
                        let max = self.config.slowlog_max_len as usize;
                        let count = count.map_or(max, |c| c.min(max));
                        (Op::SlowlogGet, GatherKind::Slowlog(count), vec![])
                    }
                    None => {
                        self.stats.error_replies += 1;
                        return Outcome::Done;
                    }
                },
                All::ClientKill => match connection::client_kill_filter(&mut out, args, me) {
                    Some((filter, old_style)) => {
                        let kind = if old_style {
                            GatherKind::KillAddr
                        } else {
                            GatherKind::Sum
                        };
                        (Op::ClientKill, kind, filter)
                    }
                    None => {
                        self.stats.error_replies += 1;
                        return Outcome::Done;
                    }
                },
                All::ClientList => match connection::client_list_filter(&mut out, args) {
                    Some(filter) => {
                        let order = (filter[0] == b"id").then(|| {
                            filter[1..]
                                .iter()
                                .filter_map(|id| std::str::from_utf8(id).ok()?.parse().ok())
                                .collect()
                        });
                        (Op::ClientList, GatherKind::ClientList(order), filter)
                    }
                    None => {
                        self.stats.error_replies += 1;
                        return Outcome::Done;
                    }
                },
            }
        };
        if self.is_paused() {
            return Outcome::Blocked;
        }
        let c = self.conns.get_mut(conn).expect("live connection");
        let mut g = c.replies.begin_gather(kind, proto);
        for s in 0..self.map.shards() {
            let part_view = OwnedArgs::from_slices(&part_args);
            if s == self.id {
                let mut tmp = std::mem::take(&mut self.scratch);
                tmp.clear();
                self.run_part(op, part_view.args(), &mut Reply::new(&mut tmp, proto));
                let c = self.conns.get_mut(conn).expect("live connection");
                let start = c.replies.parts_buf().len();
                c.replies.parts_buf().extend_from_slice(&tmp);
                c.replies.gather_local(&mut g, start);
                crate::message::recycle(&mut tmp, crate::message::KEEP_BYTES);
                self.scratch = tmp;
            } else {
                let c = self.conns.get_mut(conn).expect("live connection");
                let hole = c.replies.gather_remote(&mut g);
                let ticket = Ticket {
                    conn: conn.slot,
                    gen: conn.gen,
                    hole,
                };
                self.enqueue(s, ticket, proto, op, part_view.args().iter());
            }
        }
        let c = self.conns.get_mut(conn).expect("live connection");
        c.replies.push_gather(g);
        Outcome::Done
    }

    /// SCAN: the cursor says which shard and where in it (`position * shards + shard`).
    fn dispatch_scan(&mut self, conn: ConnId, args: Args, proto: Proto) -> Outcome {
        let c = self
            .conns
            .get_mut(conn)
            .expect("dispatching for a live connection");
        let mut out = Reply::new(&mut c.replies.local, proto);
        let Some(cursor) = keyspace::parse_cursor(args.get(1)) else {
            out.err("invalid cursor");
            self.stats.error_replies += 1;
            return Outcome::Done;
        };
        let Some(mut req) = keyspace::parse_scan_options(&mut out, args) else {
            self.stats.error_replies += 1;
            return Outcome::Done;
        };
        let n = self.map.shards() as u64;
        let shard = (cursor % n) as usize;
        req.pos = usize::try_from(cursor / n).unwrap_or(usize::MAX);
        if shard == self.id && self.is_paused() {
            return Outcome::Blocked;
        }
        let kind = GatherKind::Scan {
            shard: shard as u32,
            shards: n as u32,
        };
        let part = encode_scan(&req);
        let c = self.conns.get_mut(conn).expect("live connection");
        let mut g = c.replies.begin_gather(kind, proto);
        if shard == self.id {
            let buf = c.replies.parts_buf();
            let start = buf.len();
            keyspace::scan_part(&mut self.store, &req, self.now, &mut Reply::new(buf, proto));
            c.replies.gather_local(&mut g, start);
        } else {
            let hole = c.replies.gather_remote(&mut g);
            let ticket = Ticket {
                conn: conn.slot,
                gen: conn.gen,
                hole,
            };
            self.enqueue(shard, ticket, proto, Op::Scan, part.args().iter());
        }
        let c = self.conns.get_mut(conn).expect("live connection");
        c.replies.push_gather(g);
        Outcome::Done
    }

    fn run_conn(&mut self, conn: ConnId, which: Conn, args: Args) -> Outcome {
        match which {
            Conn::Quit => {
                if let Some(c) = self.conns.get_mut(conn) {
                    Reply::new(&mut c.replies.local, c.proto).ok();
                }
                Outcome::Quit
            }
            Conn::Ping
            | Conn::Echo
            | Conn::Select
            | Conn::Hello
            | Conn::Reset
            | Conn::ClientId
            | Conn::ClientSetName
            | Conn::ClientGetName
            | Conn::ClientSetInfo
            | Conn::ClientInfo
            | Conn::ClientNoEvict
            | Conn::Auth
            | Conn::ClientHelp => {
                connection::run(self, conn, which, args);
                Outcome::Done
            }
            Conn::Shutdown => server::shutdown(self, conn, args),
            _ => {
                server::run(self, conn, which, args);
                Outcome::Done
            }
        }
    }

    // ---- work for other shards ------------------------------------------------------

    /// Runs a keyed command sent by another shard (or by a coordinator), reply in `out`.
    fn run_key(&mut self, args: Args, out: &mut Reply) {
        let commands = self.commands;
        match commands.lookup(args) {
            Lookup::Found(spec) => match spec.route {
                Route::Key(_, _) if spec.denyoom && !self.admit() => {
                    // Refused before it runs: counted here as a rejected call (the shard
                    // that forwarded it counted the call).
                    out.error(OOM);
                    self.cmdstats.error(OOM);
                    self.cmdstats.get(spec.stat).rejected += 1;
                }
                Route::Key(f, _) => {
                    let (env, proto) = (self.env(), out.proto());
                    let start = out.buffer().len();
                    run_keyed(
                        f,
                        spec.name,
                        args,
                        &mut self.store,
                        env,
                        out.buffer(),
                        proto,
                    );
                    let end = self.clock.now();
                    let ticks = end.saturating_sub(self.stamp);
                    self.stamp = end;
                    self.record_remote(spec, args, ticks, &out.buffer()[start..]);
                }
                _ => out.err("internal error: forwarded a command without keys"),
            },
            _ => out.err("internal error: forwarded an unknown command"),
        }
    }

    /// Runs this shard's part of a command that covers every shard.
    fn run_part(&mut self, op: Op, args: Args, out: &mut Reply) {
        match op {
            Op::Key => self.run_key(args, out),
            Op::Keys => keyspace::keys_part(&self.store, args.get(0), self.now, out),
            Op::Dbsize => out.int(self.store.len() as i64),
            Op::Flush => {
                self.store.clear();
                out.ok();
            }
            Op::RandomKey => {
                out.array(2);
                out.int(self.store.len() as i64);
                match self.store.random(&mut self.rng, self.now) {
                    Some(idx) => out.bulk(self.store.entry(idx).key()),
                    None => out.null(),
                }
            }
            Op::Scan => {
                let req = decode_scan(args);
                keyspace::scan_part(&mut self.store, &req, self.now, out);
            }
            Op::Info => server::info_part(self, out),
            Op::ConfigSet => {
                self.apply_settings(args);
                out.ok();
            }
            Op::ClientList => connection::client_list_part(self, args, out),
            Op::ClientKill => connection::client_kill_part(self, args, out),
            Op::ResetStat => {
                self.stats = Default::default();
                self.store.stats = Default::default();
                self.cmdstats.reset();
                out.ok();
            }
            Op::SlowlogLen => out.int(self.slowlog.len() as i64),
            Op::LatencyHist => server::latency_part(self, out),
            Op::SlowlogReset => {
                self.slowlog.reset();
                out.ok();
            }
            Op::SlowlogGet => {
                out.array(self.slowlog.len());
                for e in self.slowlog.iter() {
                    out.array(2);
                    out.int(e.time_us as i64);
                    e.encode(out);
                }
            }
        }
    }

    /// Handles a message from another shard: runs requests (or holds them while paused),
    /// delivers replies, serves control messages. Never waits; anything to send goes to
    /// the flushers.
    pub fn on_message(&mut self, msg: Msg) {
        match msg {
            Msg::Requests(batch) => {
                if self.is_paused() || !self.deferred.is_empty() {
                    self.deferred.push_back(batch);
                } else {
                    let from = batch.from;
                    let reply = self.execute_batch(batch);
                    self.send(from, Msg::Replies(reply));
                }
            }
            Msg::Replies(batch) => self.deliver(batch),
            Msg::Control(c) => self.on_control(c),
        }
    }

    /// Runs a batch of requests from another shard, all at once without yielding, and
    /// returns the replies (with the emptied batch, for its sender to reuse).
    fn execute_batch(&mut self, mut batch: RequestBatch) -> ReplyBatch {
        let mut reply = self.spare_replies.pop().unwrap_or_default();
        reply.from = self.id;
        for mut r in batch.returned.drain(..) {
            r.clear();
            self.spare_replies.push(r);
        }
        let reqs = std::mem::take(&mut batch.reqs);
        for req in &reqs {
            let args = batch.args(req);
            let start = reply.buf.len();
            self.run_part(req.op, args, &mut Reply::new(&mut reply.buf, req.proto));
            if req.op != Op::Key {
                // Keyed requests chain their timing; this one must not count in the next.
                self.stamp = self.clock.now();
            }
            reply.replies.push((req.ticket, start, reply.buf.len()));
        }
        self.stats.hops_in += reqs.len() as u64;
        self.stats.batches_in += 1;
        batch.reqs = reqs;
        batch.clear();
        reply.request = Some(batch);
        reply
    }

    /// Runs the request batches held while paused, unless paused again.
    fn run_deferred(&mut self) {
        while !self.is_paused() {
            let Some(batch) = self.deferred.pop_front() else {
                break;
            };
            let from = batch.from;
            let reply = self.execute_batch(batch);
            self.send(from, Msg::Replies(reply));
        }
    }

    /// Takes replies from another shard into the connections waiting for them.
    fn deliver(&mut self, mut batch: ReplyBatch) {
        for &(t, s, e) in &batch.replies {
            let id = ConnId {
                slot: t.conn,
                gen: t.gen,
            };
            if let Some(c) = self.conns.get_mut(id) {
                c.replies.fill(t.hole, &batch.buf[s..e]);
            }
        }
        let from = batch.from;
        let link = &mut self.links[from];
        if let Some(mut req) = batch.request.take() {
            link.inflight -= 1;
            req.clear();
            link.spare.push(req);
            if !link.outbox.is_empty() || !link.full.is_empty() {
                if let Some(w) = link.waker.take() {
                    w.wake();
                }
            }
        }
        batch.clear();
        if link.returns.len() < MAX_RETURNS {
            link.returns.push(batch);
        }
    }

    /// Everything ready to send to `dest`: queued replies and control messages, then
    /// request batches while fewer than [`MAX_INFLIGHT`] are in flight. When
    /// there is nothing, `waker` is woken once there is.
    pub fn take_outgoing(&mut self, dest: usize, waker: &Waker, out: &mut Vec<Msg>) {
        let id = self.id;
        let link = &mut self.links[dest];
        out.extend(link.outgoing.drain(..));
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
            self.stats.batches_out += 1;
            out.push(Msg::Requests(batch));
        }
        if out.is_empty() {
            link.waker = Some(waker.clone());
        }
    }

    // ---- pausing for coordinated commands ------------------------------------------

    /// Whether a coordinated command holds this shard.
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.pause.owner.is_some()
    }

    /// Registers a task to wake when the pause ends.
    pub fn on_unpause(&mut self, waker: &Waker) {
        self.pause.blocked.push(waker.clone());
    }

    /// A token for a new coordinated command started here.
    pub fn new_token(&mut self) -> Token {
        self.next_token += 1;
        ((self.id as u64) << 48) | self.next_token
    }

    /// Pauses this shard for `token` if it is free, or queues the request; true once
    /// `token` holds the pause. Call again when woken.
    pub fn pause_local(&mut self, token: Token, waker: &Waker) -> bool {
        match self.pause.owner {
            Some(owner) if owner == token => true,
            None if self.pause.queue.is_empty() => {
                self.pause.owner = Some(token);
                true
            }
            _ => {
                let queued = self.pause.queue.iter_mut().find_map(|w| match w {
                    PauseWaiter::Local(t, w) if *t == token => Some(w),
                    _ => None,
                });
                match queued {
                    Some(w) => *w = waker.clone(),
                    None => self
                        .pause
                        .queue
                        .push_back(PauseWaiter::Local(token, waker.clone())),
                }
                false
            }
        }
    }

    /// Ends `token`'s pause, hands it to the next in line, and runs the requests held
    /// meanwhile if the shard is free.
    pub fn resume(&mut self, token: Token) {
        if self.pause.owner != Some(token) {
            return;
        }
        self.pause.owner = None;
        if let Some(next) = self.pause.queue.pop_front() {
            match next {
                PauseWaiter::Local(t, w) => {
                    self.pause.owner = Some(t);
                    w.wake();
                }
                PauseWaiter::Remote(t, from, ticket, proto) => {
                    self.pause.owner = Some(t);
                    let ack = self.single_reply(ticket, proto, b"+OK\r\n");
                    self.send(from, Msg::Replies(ack));
                }
            }
        }
        for w in self.pause.blocked.drain(..) {
            w.wake();
        }
        self.run_deferred();
    }

    fn single_reply(&mut self, ticket: Ticket, _proto: Proto, bytes: &[u8]) -> ReplyBatch {
        let mut r = self.spare_replies.pop().unwrap_or_default();
        r.clear();
        r.from = self.id;
        r.buf.extend_from_slice(bytes);
        r.replies.push((ticket, 0, bytes.len()));
        r
    }

    /// Serves a control message from another shard's coordinator.
    fn on_control(&mut self, msg: ControlMsg) {
        match msg.kind {
            Control::Pause(token) => {
                if self.pause.owner.is_none() && self.pause.queue.is_empty() {
                    self.pause.owner = Some(token);
                    let ack = self.single_reply(msg.ticket, msg.proto, b"+OK\r\n");
                    self.send(msg.from, Msg::Replies(ack));
                } else {
                    self.pause
                        .queue
                        .push_back(PauseWaiter::Remote(token, msg.from, msg.ticket, msg.proto));
                }
            }
            Control::Resume(token) => self.resume(token),
            Control::Step(token, op) => {
                debug_assert_eq!(self.pause.owner, Some(token), "step without the pause");
                let mut out = std::mem::take(&mut self.scratch);
                out.clear();
                self.run_step(&op, msg.proto, &mut out);
                let r = self.single_reply(msg.ticket, msg.proto, &out);
                crate::message::recycle(&mut out, crate::message::KEEP_BYTES);
                self.scratch = out;
                self.send(msg.from, Msg::Replies(r));
            }
        }
    }

    /// Sends a coordinator's control message to `dest` on behalf of `conn`. Returns the
    /// private hole its reply will fill (none for `Resume`, which is not answered).
    pub fn send_control(&mut self, conn: ConnId, dest: usize, kind: Control) -> Option<u32> {
        let c = self.conns.get_mut(conn)?;
        let proto = c.proto;
        let hole = match kind {
            Control::Resume(_) => None,
            _ => Some(c.replies.private_hole()),
        };
        let ticket = Ticket {
            conn: conn.slot,
            gen: conn.gen,
            hole: hole.unwrap_or(u32::MAX),
        };
        self.send(
            dest,
            Msg::Control(ControlMsg {
                from: self.id,
                ticket,
                proto,
                kind,
            }),
        );
        hole
    }

    /// The reply a private hole received, or `None` (and `waker` registered) if it has
    /// not arrived yet.
    pub fn take_private(&mut self, conn: ConnId, hole: u32, waker: &Waker) -> Option<Vec<u8>> {
        let c = self.conns.get_mut(conn)?;
        let got = c.replies.take_private(hole);
        if got.is_none() {
            c.replies.set_waker(waker);
        }
        got
    }

    /// Runs one step of a coordinated command on this shard.
    pub fn run_step(&mut self, op: &StepOp, proto: Proto, out: &mut Vec<u8>) {
        let mut reply = Reply::new(out, proto);
        match op {
            StepOp::Run(args) => self.run_key(args.args(), &mut reply),
            StepOp::Dump(key) => keyspace::dump_entry(&mut self.store, key, self.now, &mut reply),
            StepOp::Restore {
                key,
                replace,
                expire_at,
                payload,
            } => keyspace::restore_entry(
                &mut self.store,
                key,
                *replace,
                *expire_at,
                payload,
                self.now,
                &mut reply,
            ),
        }
    }

    // ---- output ---------------------------------------------------------------------

    /// Puts together a connection's output for the batch (every hole must be filled) into
    /// `out`, which must be empty.
    pub fn take_output(&mut self, conn: ConnId, out: &mut Vec<u8>) {
        let Shard {
            conns, rng, config, ..
        } = self;
        let Some(c) = conns.get_mut(conn) else {
            return;
        };
        let mut format_info = |sections: &[u8], parts: &[&[u8]], r: &mut Reply| {
            server::format_info(config, sections, parts, r)
        };
        c.replies.finish(out, rng, &mut format_info);
    }

    /// Appends an already encoded reply (a coordinated command's) to a connection's output.
    pub fn push_reply(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(conn) {
            if bytes.first() == Some(&b'-') {
                self.stats.error_replies += 1;
            }
            c.replies.local.extend_from_slice(bytes);
        }
    }

    /// Appends a protocol error reply to a connection's output.
    pub fn push_protocol_error(&mut self, conn: ConnId, reply: &[u8]) {
        self.stats.error_replies += 1;
        if let Some(c) = self.conns.get_mut(conn) {
            c.replies.local.extend_from_slice(reply);
        }
    }

    /// Whether every reply of the connection's batch has arrived; if not, `waker` is
    /// woken when they have.
    pub fn output_ready(&mut self, conn: ConnId, waker: &Waker) -> bool {
        match self.conns.get_mut(conn) {
            Some(c) if !c.replies.ready() => {
                c.replies.set_waker(waker);
                false
            }
            _ => true,
        }
    }
}

/// Standard size of a connection's read and reply buffers.
pub const BUFFER_SIZE: usize = 16 * 1024;

/// Most buffers of each kind a shard keeps for reuse (4 MiB each at most).
const POOLED_BUFFERS: usize = 256;

/// Redis's reply to a write refused under `maxmemory` (after `-`).
const OOM: &[u8] = b"OOM command not allowed when used memory > 'maxmemory'.";

/// `slowlog-log-slower-than` (µs; negative: off) as a tick threshold.
fn slow_ticks(clock: &crate::ticks::Clock, us: i64) -> u64 {
    if us < 0 {
        u64::MAX
    } else {
        clock.from_ns((us as u64).saturating_mul(1000))
    }
}

/// Redis's unknown-command error: the name and up to 128 bytes of quoted arguments, each
/// read as a C string, bytes as sent.
fn unknown_command(args: Args) -> Vec<u8> {
    let mut quoted = Vec::new();
    for a in args.iter().skip(1) {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(truncate(command::cstr(a), room));
        quoted.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(truncate(command::cstr(args.get(0)), 128));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&quoted);
    text
}

fn truncate(s: &[u8], n: usize) -> &[u8] {
    &s[..s.len().min(n)]
}

fn encode_scan(req: &ScanRequest) -> OwnedArgs {
    let mut a = OwnedArgs::new();
    a.push(req.pos.to_string().as_bytes());
    a.push(req.count.to_string().as_bytes());
    a.push(if req.pattern.is_some() { b"1" } else { b"0" });
    a.push(req.pattern.as_deref().unwrap_or_default());
    a.push(if req.type_name.is_some() { b"1" } else { b"0" });
    a.push(req.type_name.as_deref().unwrap_or_default());
    a
}

fn decode_scan(args: Args) -> ScanRequest {
    let num = |i: usize| {
        std::str::from_utf8(args.get(i))
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or_default()
    };
    ScanRequest {
        pos: num(0),
        count: num(1).max(1),
        pattern: (args.get(2) == b"1").then(|| args.get(3).to_vec()),
        type_name: (args.get(4) == b"1").then(|| args.get(5).to_vec()),
    }
}

/// Error texts used by more than one family.
pub use errors::SYNTAX;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::OwnedArgs;
    use std::task::Waker;

    fn shards(n: usize) -> Vec<Shard> {
        let commands: &'static Commands = Box::leak(Box::new(Commands::new()));
        let config = Config {
            shards: n,
            ..Config::default()
        };
        (0..n)
            .map(|i| Shard::new(i, config.clone(), commands))
            .collect()
    }

    /// A key owned by `shard` of `n`.
    fn key_on(shard: usize, n: usize) -> String {
        let map = SlotMap::new(n);
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| map.shard_of(k.as_bytes()) == shard)
            .unwrap()
    }

    /// Moves every queued message between shards until none is left.
    fn pump(shards: &mut [Shard]) {
        loop {
            let mut moved = false;
            for from in 0..shards.len() {
                for to in 0..shards.len() {
                    if from == to {
                        continue;
                    }
                    let mut out = Vec::new();
                    shards[from].take_outgoing(to, Waker::noop(), &mut out);
                    for msg in out {
                        moved = true;
                        shards[to].on_message(msg);
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn run(sh: &mut Shard, conn: ConnId, args: &[&str]) -> Outcome {
        let owned = OwnedArgs::from_slices(args);
        sh.dispatch(conn, owned.args())
    }

    fn output(sh: &mut Shard, conn: ConnId) -> String {
        assert!(
            sh.output_ready(conn, Waker::noop()),
            "replies still missing"
        );
        let mut out = Vec::new();
        sh.take_output(conn, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn forwarded_requests_come_back_in_order() {
        let mut s = shards(2);
        let conn = s[0].connect("a".into(), "b".into(), 3);
        let (local, remote) = (key_on(0, 2), key_on(1, 2));
        assert!(matches!(
            run(&mut s[0], conn, &["SET", &remote, "r"]),
            Outcome::Done
        ));
        assert!(matches!(
            run(&mut s[0], conn, &["SET", &local, "l"]),
            Outcome::Done
        ));
        assert!(matches!(
            run(&mut s[0], conn, &["MGET", &remote, &local]),
            Outcome::Done
        ));
        assert!(!s[0].output_ready(conn, Waker::noop()));
        pump(&mut s);
        assert_eq!(
            output(&mut s[0], conn),
            "+OK\r\n+OK\r\n*2\r\n$1\r\nr\r\n$1\r\nl\r\n"
        );
        assert_eq!(s[0].stats.hops_out, 2);
        assert_eq!(s[1].stats.hops_in, 2);
    }

    #[test]
    fn batches_are_capped_and_in_flight_is_bounded() {
        let mut s = shards(2);
        let conn = s[0].connect("a".into(), "b".into(), 3);
        let remote = key_on(1, 2);
        for _ in 0..(MAX_BATCH * 2 + 10) {
            run(&mut s[0], conn, &["INCR", &remote]);
        }
        let mut out = Vec::new();
        s[0].take_outgoing(1, Waker::noop(), &mut out);
        let sizes: Vec<usize> = out
            .iter()
            .map(|m| match m {
                Msg::Requests(b) => b.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![MAX_BATCH, MAX_BATCH, 10]);
        for msg in out {
            s[1].on_message(msg);
        }
        pump(&mut s);
        let text = output(&mut s[0], conn);
        assert!(text.ends_with(&format!(":{}\r\n", MAX_BATCH * 2 + 10)));
    }

    #[test]
    fn a_paused_shard_holds_requests_until_resumed() {
        let mut s = shards(2);
        let conn = s[0].connect("a".into(), "b".into(), 3);
        let remote = key_on(1, 2);
        let token = s[1].new_token();
        assert!(s[1].pause_local(token, Waker::noop()));
        run(&mut s[0], conn, &["SET", &remote, "v"]);
        pump(&mut s);
        assert!(!s[0].output_ready(conn, Waker::noop()), "held while paused");
        // Local work on the paused shard waits too.
        let local_conn = s[1].connect("c".into(), "d".into(), 4);
        assert!(matches!(
            run(&mut s[1], local_conn, &["GET", &remote]),
            Outcome::Blocked
        ));
        s[1].resume(token);
        pump(&mut s);
        assert_eq!(output(&mut s[0], conn), "+OK\r\n");
        assert!(matches!(
            run(&mut s[1], local_conn, &["GET", &remote]),
            Outcome::Done
        ));
        assert_eq!(output(&mut s[1], local_conn), "$1\r\nv\r\n");
    }

    #[test]
    fn pauses_queue_in_order() {
        let mut s = shards(1);
        let (a, b) = (s[0].new_token(), s[0].new_token());
        assert!(s[0].pause_local(a, Waker::noop()));
        assert!(!s[0].pause_local(b, Waker::noop()));
        s[0].resume(b); // not the owner: no effect
        assert!(!s[0].pause_local(b, Waker::noop()));
        s[0].resume(a);
        assert!(s[0].pause_local(b, Waker::noop()));
        s[0].resume(b);
        assert!(!s[0].is_paused());
    }
}
