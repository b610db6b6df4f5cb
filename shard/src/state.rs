//! [`State`]: everything one shard owns except the routing of requests (which is
//! [`crate::shard::Shard`]'s): its keyspace, connections, settings, counters, slow log,
//! buffer pools, clocks and shutdown state.
//!
//! Commands that run on every shard see this through their `part` function (see
//! [`crate::command::Fanout`]), and the router hands narrower views to keyed and local
//! commands. Nothing here knows a command, a message or another shard.

use std::task::Waker;

use corekv_protocol::Reply;

use crate::config::{Config, Setting};
use crate::conn::{ConnId, ConnTable, NewClient};
use crate::pool::BufPool;
use crate::shutdown::Shutdown;
use crate::slowlog::SlowLog;
use crate::stats::{CommandStats, Stats};
use crate::store::{Keyspace, Store};
use crate::ticks::Clock;
use crate::timer::{Timer, Timers};
use crate::wheel::TimerHandle;

/// Standard size of a connection's read and reply buffers.
pub const BUFFER_SIZE: usize = 16 * 1024;

/// Most buffers of each kind a shard keeps for reuse (4 MiB each at most).
const POOLED_BUFFERS: usize = 256;

/// Elements of deleted large collections freed per timer round (about a third of a
/// millisecond of `free` calls), so deleting a big hash or set never stalls the shard.
const LAZYFREE_BUDGET: usize = 16 * 1024;

/// Longest [`State::refresh_now`] counts on from one wall-clock reading.
pub const REANCHOR_MS: u64 = 5;

/// Redis's reply to a write refused under `maxmemory` (after `-`).
pub const OOM: &[u8] = b"OOM command not allowed when used memory > 'maxmemory'.";

/// What one shard owns. See the module docs.
pub struct State {
    /// This shard's index.
    pub(crate) id: usize,
    /// How many shards there are.
    pub(crate) shards: usize,
    /// Settings (CONFIG SET changes every shard's copy).
    pub(crate) config: Config,
    /// The Lua engine and script cache.
    pub(crate) scripts: crate::script::Scripts,
    /// Scripts EVAL compiled here that the other shards must learn (bodies).
    pub(crate) scripts_out: Vec<Vec<u8>>,
    /// Snapshots: changes since the last, when it was, the saver's job.
    pub persist: crate::persist::Persist,
    /// This shard's part of the keyspace.
    pub(crate) store: Store,
    /// This shard's timing wheel: key deadlines, idle connections.
    pub(crate) timers: Timers,
    /// Counters.
    pub(crate) stats: Stats,
    /// Connections accepted here.
    pub(crate) conns: ConnTable,
    /// Who of them subscribes to what.
    pub(crate) pubsub: crate::pubsub::PubSub,
    /// Per-command and per-error counters, by [`crate::command::Spec::stat`].
    pub(crate) cmdstats: CommandStats,
    /// Full command names by statistics slot.
    pub(crate) stat_names: &'static [&'static str],
    /// This shard's slow log.
    pub(crate) slowlog: SlowLog,
    /// Connection read buffers, for reuse.
    pub(crate) read_pool: BufPool,
    /// Connection reply buffers, for reuse.
    pub(crate) reply_pool: BufPool,
    /// This shard's part of a shutdown.
    pub(crate) shutdown: Shutdown,
    /// The CPU this shard is pinned to, if any.
    pub(crate) cpu: Option<usize>,
    /// This shard's random numbers (RANDOMKEY, eviction).
    pub(crate) rng: fastrand::Rng,
    /// The clock commands are timed with.
    pub(crate) clock: Clock,
    /// The clock commands see (Unix ms), fixed for a batch.
    now: u64,
    /// When the last timed step ended (a [`crate::ticks`] stamp): the next command's start.
    pub(crate) stamp: u64,
    /// The last wall-clock reading: Unix ms and the stamp it was taken at.
    anchor: (u64, u64),
    /// [`REANCHOR_MS`] in stamp units.
    reanchor_ticks: u64,
    /// `slowlog-log-slower-than` in stamp units (`u64::MAX` when off), so the check per
    /// command is one comparison.
    pub(crate) slow_ticks: u64,
    /// Client ids handed out here so far.
    next_client: u64,
    /// Clients blocked on this shard's keys.
    pub(crate) blocked: crate::blocking::Blocked,
    /// Replies and unblock requests for other shards, sent by the shard.
    pub(crate) block_out: Vec<crate::blocking::BlockMsg>,
    /// While blocked clients are being served (serving runs commands, which must not
    /// serve again).
    pub(crate) serving: bool,
}

impl State {
    /// Shard `id` of `config.shards`, counting statistics for `stat_names`.
    pub fn new(id: usize, config: Config, stat_names: &'static [&'static str]) -> Self {
        let clock = Clock::calibrate();
        let mut store = Store::new();
        store.eviction = config.maxmemory_policy.eviction;
        store.events.flags = config.notify_keyspace_events;
        State {
            id,
            shards: config.shards,
            scripts: Default::default(),
            scripts_out: Vec::new(),
            persist: Default::default(),
            store,
            timers: Timers::new(config.started_ms),
            stats: Stats::default(),
            conns: ConnTable::default(),
            pubsub: Default::default(),
            cmdstats: CommandStats::with_commands(stat_names.len()),
            stat_names,
            slowlog: SlowLog::default(),
            read_pool: BufPool::new(BUFFER_SIZE, true, POOLED_BUFFERS),
            reply_pool: BufPool::new(BUFFER_SIZE, false, POOLED_BUFFERS),
            shutdown: Shutdown::default(),
            cpu: None,
            rng: fastrand::Rng::with_seed(config.started_ms ^ ((id as u64) << 32) ^ 0x9e37_79b9),
            now: 0,
            stamp: 0,
            anchor: (0, 0),
            reanchor_ticks: clock.from_ns(REANCHOR_MS * 1_000_000),
            slow_ticks: slow_ticks(&clock, config.slowlog_slower_than),
            next_client: 0,
            blocked: Default::default(),
            block_out: Vec::new(),
            serving: false,
            clock,
            config,
        }
    }

    /// This shard's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The keyspace.
    pub fn store(&self) -> &crate::store::Store {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This shard's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// This shard's counters, for the server's own (refused connections, watchdog).
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Records the CPU this shard is pinned to.
    pub fn set_cpu(&mut self, cpu: Option<usize>) {
        self.cpu = cpu;
    }

    /// This shard's part of a shutdown.
    pub fn shutdown(&mut self) -> &mut Shutdown {
        &mut self.shutdown
    }

    /// The keyspace with the wheel its deadlines are in.
    pub(crate) fn keyspace(&mut self) -> crate::store::Keyspace<'_> {
        crate::store::Keyspace::new(&mut self.store, &mut self.timers)
    }

    /// Open client connections here.
    pub fn client_count(&self) -> usize {
        self.conns.len()
    }

    // ---- clocks ----------------------------------------------------------------------

    /// Sets the clock (Unix ms) commands see, and starts timing a batch of commands.
    /// [`refresh_now`](Self::refresh_now) then counts on from here.
    #[inline]
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
        self.stamp = self.clock.now();
        self.anchor = (now, self.stamp);
    }

    /// Brings the clock commands see up to date, and starts timing a batch of commands:
    /// called before each batch the shard runs without yielding. The wall clock is read
    /// at most every [`REANCHOR_MS`]; in between, Unix ms are counted on from the last
    /// reading with the stamp clock, which costs a fraction of a `clock_gettime` (three
    /// of which per request were 3% of a shard's time at pipeline depth 1).
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

    /// The append-only log's records and durability (see [`crate::aof`]).
    pub fn log(&self) -> &crate::aof::Log {
        &self.store.log
    }

    /// [`State::log`], to change.
    pub fn log_mut(&mut self) -> &mut crate::aof::Log {
        &mut self.store.log
    }

    /// The clock commands see (Unix ms).
    #[inline]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Ends a timed step: the stamp clock's ticks since the last one.
    #[inline]
    pub(crate) fn lap(&mut self) -> u64 {
        let end = self.clock.now();
        let ticks = end.saturating_sub(self.stamp);
        self.stamp = end;
        ticks
    }

    // ---- connections -----------------------------------------------------------------

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
        let id = self.next_client * self.shards as u64 + self.id as u64 + 1;
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
                self.timers.cancel(t);
            }
            if let Some(mut subs) = c.subs.take() {
                self.pubsub.forget(&mut subs, conn);
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
            self.timers.cancel(old);
        }
        if timeout_ms > 0 && !c.internal {
            let at = c.last_ms.saturating_add(timeout_ms).saturating_add(1);
            c.timer = self.timers.insert(at, Timer::Conn(conn.slot, conn.gen));
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
        c.timer = TimerHandle::NONE;
        if timeout_ms == 0 {
            return;
        }
        // A blocked client is not idle (Redis exempts it from `timeout`).
        if now.saturating_sub(c.last_ms) > timeout_ms && c.blocked.is_none() {
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

    /// Whether the connection was killed (or is gone).
    pub fn is_killed(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_none_or(|c| c.killed)
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

    // ---- timers and upkeep -----------------------------------------------------------

    /// Runs what the wheel has due at the current clock: expires keys, closes idle
    /// connections. At most `budget` timers; returns whether more are due.
    pub fn run_timers(&mut self, budget: usize) -> bool {
        let mut fired = Vec::new();
        let more = self.timers.advance(self.now, budget, &mut fired);
        for t in fired {
            match t {
                Timer::Key(idx) => self.store.expire(idx, self.now, &mut self.timers),
                Timer::Conn(slot, gen) => self.idle_timer_fired(ConnId { slot, gen }),
                Timer::Blocked(lo, hi) => {
                    let id = u64::from(lo) | u64::from(hi) << 32;
                    if let Some(w) = self.blocked.get_mut(id) {
                        w.timer = TimerHandle::NONE;
                    }
                    self.end_waiter(id, crate::blocking::Unblock::Timeout);
                }
            }
        }
        let freeing = self.store.free_some(LAZYFREE_BUDGET);
        more || freeing
    }

    /// Whether deleted large collections are still being freed: the timer task then
    /// comes back at once instead of sleeping until the next deadline.
    pub fn has_background_work(&self) -> bool {
        self.store.is_freeing()
    }

    /// Periodic upkeep that must not run per request or per expiry batch: gives back the
    /// memory of a keyspace that has mostly emptied, and of idle buffer pools.
    pub fn housekeeping(&mut self) {
        self.store.shrink();
        self.timers.shrink();
        self.read_pool.housekeeping();
        self.reply_pool.housekeeping();
    }

    /// When the wheel next has work (Unix ms), if it has any.
    pub fn next_timer(&self) -> Option<u64> {
        self.timers.next_deadline()
    }

    // ---- settings and counters -------------------------------------------------------

    /// Applies checked CONFIG SET values (`name value` pairs) on this shard.
    pub(crate) fn apply_settings(&mut self, args: crate::args::Args) {
        let mut timeout_changed = false;
        for i in (0..args.len()).step_by(2) {
            if let Ok(s) = crate::config::parse_setting(args.get(i), args.get(i + 1)) {
                timeout_changed |= matches!(s, Setting::Timeout(_));
                self.config.apply(s);
            }
        }
        self.slowlog.trim(self.config.slowlog_max_len);
        self.store.eviction = self.config.maxmemory_policy.eviction;
        self.store.events.flags = self.config.notify_keyspace_events;
        self.slow_ticks = slow_ticks(&self.clock, self.config.slowlog_slower_than);
        if timeout_changed {
            for conn in self.conns.ids() {
                self.arm_idle_timer(conn);
            }
        }
    }

    /// CONFIG RESETSTAT on this shard.
    pub(crate) fn reset_stats(&mut self) {
        self.stats = Default::default();
        self.store.stats = Default::default();
        self.cmdstats.reset();
    }

    /// The cap on this shard's Lua heap (`--script-heap-limit`): a script that allocates
    /// without bound stops with an error, and the server lives.
    pub(crate) fn script_memory_limit(&self) -> usize {
        self.config.script_heap_limit as usize
    }

    /// Before a command that may grow memory: while the keyspace is over this shard's
    /// share of `maxmemory`, evicts by the policy. False when it stays over (noeviction,
    /// or nothing the policy may evict): the command must be refused.
    pub(crate) fn admit(&mut self) -> bool {
        let limit = self.config.shard_maxmemory();
        let policy = self.config.maxmemory_policy;
        Keyspace::new(&mut self.store, &mut self.timers).admit(limit, policy, &mut self.rng)
    }

    /// Writes an error (`text` starts with its code) to the connection's output, and
    /// counts it.
    pub(crate) fn reply_error(&mut self, conn: ConnId, text: &[u8]) {
        if let Some(c) = self.conns.get_mut(conn) {
            Reply::new(&mut c.replies.local, c.proto).error(text);
            self.stats.error_replies += 1;
            self.cmdstats.error(text);
        }
    }
}

/// `slowlog-log-slower-than` (µs; negative: off) as a stamp threshold.
fn slow_ticks(clock: &Clock, us: i64) -> u64 {
    if us < 0 {
        u64::MAX
    } else {
        clock.from_ns((us as u64).saturating_mul(1000))
    }
}
