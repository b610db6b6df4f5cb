//! [`Shard`]: one core's [`State`] and the router of its requests.
//!
//! A request from one of this shard's connections goes where its command's [`Route`]
//! says, and each hop to another shard is visible here as a `links.enqueue` call:
//!
//! ```text
//!   dispatch(conn, args)
//!     ├─ Keyed, keys owned here ────────► execute now, reply appended to the connection
//!     ├─ Keyed, keys owned by shard s ──► enqueue to s, the reply is a hole
//!     ├─ Keyed, keys on several shards
//!     │    ├─ Split ────────────────────► a part per owner, gathered, the family's merge
//!     │    └─ Coord ────────────────────► Outcome::Coordinate (paused, stepwise)
//!     ├─ Local ─────────────────────────► the family's function, with the client
//!     └─ Fanout ────────────────────────► check here; a part per target shard, gathered
//! ```
//!
//! The owner of a forwarded request runs a whole batch at once in
//! [`on_message`](Shard::on_message) and queues the replies, which come back the same way
//! into the connections' holes. Every keyed command, local or forwarded, split or a
//! coordinator's step, runs through [`execute`]. Nothing here awaits, and nothing that
//! runs requests ever waits for a channel: the server's tasks call in and get told when
//! to wait. This module names no command. Work that arrives from other shards (batches,
//! replies, a coordinator's pause and steps) is in `peers.rs`.

mod blocking;
mod events;
mod peers;
mod transaction;

pub use transaction::ExecPlan;

use std::task::Waker;

use corekv_protocol::{Proto, Reply};

use crate::args::{Args, OwnedArgs};
use crate::assembly::{GatherBuilder, MergeCtx, MergeData};
use crate::command::{
    self, arity_error, is, run_keyed, Check, Commands, Coordinated, Env, Fanout, Flow, KeyFn,
    Local, LocalFn, Lookup, Multi, Route, Spec, Split, Targets,
};
use crate::config::Config;
use crate::conn::ConnId;
use crate::coord::CoordPlan;
use crate::links::Links;
use crate::message::{Control, ControlMsg, Op, RequestBatch, StepOp, Ticket, Token};
use crate::pause::Pause;
use crate::slot::SlotMap;
use crate::state::{State, OOM};
use crate::store::Keyspace;

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
    /// EXEC of a transaction over several shards: wait for this connection's holes,
    /// then drive it.
    Exec(Box<ExecPlan>),
    /// A blocking command went out: its reply may take until it is served or times
    /// out, and no later request of the connection runs before it (Redis's blocked
    /// client). See [`crate::blocking`].
    Block,
    /// QUIT: write what was produced, then close.
    Quit,
    /// Close at once without a reply (Redis's answer to HTTP requests).
    Close,
}

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

/// How a keyed command's run through [`execute`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executed {
    /// Refused before it ran (over `maxmemory`); Redis's OOM error was written.
    Refused,
    /// It ran; `error` when its reply is an error.
    Ran {
        /// The reply is an error.
        error: bool,
    },
    /// A blocking command found nothing and wrote no reply: the caller makes it wait
    /// (see [`crate::blocking`]).
    Blocked(command::Block),
}

/// The one path every keyed command runs through, on whichever shard it runs (for this
/// shard's client, for another shard's, as a split part or a coordinator's step):
/// admission under `maxmemory`, then the command. This is where an append-only log and
/// replication will see writes: `spec.write` with a non-error reply changed the keys at
/// `spec.key_positions`.
/// `may_block`: a blocking command may block (see [`command::Ctx::may_block`]); after
/// such a command, clients blocked on keys it made ready are served.
pub fn execute(
    state: &mut State,
    spec: &Spec,
    f: KeyFn,
    args: Args,
    out: &mut Vec<u8>,
    proto: Proto,
    may_block: bool,
) -> Executed {
    if spec.denyoom && !state.admit() {
        Reply::new(out, proto).error(OOM);
        return Executed::Refused;
    }
    let env = Env {
        now: state.now(),
        max_bulk_len: state.config.limits.max_bulk_len,
        coll: state.config.coll,
        shared_ints: state.config.shared_ints(),
        may_block,
        write: spec.write,
    };
    let memory_limit = state.script_memory_limit();
    // A script's writes (or a command's and the expiries it met) replay all or none.
    state.store.log.begin();
    let keyspace = Keyspace::new(&mut state.store, &mut state.timers);
    let scripting = Some(crate::command::Scripting {
        scripts: &mut state.scripts,
        shard: state.id,
        map: SlotMap::new(state.shards),
        memory_limit,
        busy_threshold: state.config.busy_reply_threshold,
        maxmemory: state.config.shard_maxmemory(),
        policy: state.config.maxmemory_policy,
        rng: &mut state.rng,
        oom: None,
        loaded: &mut state.scripts_out,
        declared_only: false,
    });
    let (error, block) = run_keyed(f, spec.name, args, keyspace, env, out, proto, scripting);
    state.store.log.end();
    if spec.write && !error {
        state.persist.dirty += 1;
    }
    if may_block && !state.store.ready.is_empty() {
        state.serve_ready();
    }
    match block {
        Some(b) => Executed::Blocked(b),
        None => Executed::Ran { error },
    }
}

/// One core's state and request router. See the module docs.
pub struct Shard {
    /// What this shard owns.
    state: State,
    /// The command table.
    commands: &'static Commands,
    /// Slot → shard ownership.
    map: SlotMap,
    /// Messages on their way to other shards.
    links: Links,
    /// A coordinated command's hold on this shard.
    pause: Pause,
    /// Request batches received while paused, run in arrival order on resume.
    deferred: std::collections::VecDeque<RequestBatch>,
    /// Where the request being dispatched ran.
    ran: Ran,
    /// A buffer for parts run here before they join a connection's output.
    scratch: Vec<u8>,
    /// While an EXEC dispatches its commands: the token of its pauses (see
    /// `transaction.rs`).
    exec: Option<Token>,
    /// PUBLISH's statistics slot, for keyspace notifications sent to other shards.
    publish_stat: u16,
    /// Steps that arrived right behind their coordinator's pause, before it was granted
    /// (an EXEC sends its last shard's pause and steps together).
    early_steps: Vec<ControlMsg>,
    /// While a transaction's commands run here: blocking commands do not block.
    in_exec: bool,
}

impl Shard {
    /// Shard `id` of `config.shards`.
    pub fn new(id: usize, config: Config, commands: &'static Commands) -> Self {
        let n = config.shards;
        Shard {
            state: State::new(id, config, commands.stat_names()),
            commands,
            map: SlotMap::new(n),
            links: Links::new(id, n),
            pause: Pause::default(),
            deferred: Default::default(),
            ran: Ran::Here,
            scratch: Vec::new(),
            exec: None,
            early_steps: Vec::new(),
            in_exec: false,
            publish_stat: match commands.lookup(OwnedArgs::from_slices(&["PUBLISH"]).args()) {
                Lookup::Found(spec) => spec.stat as u16,
                _ => 0,
            },
        }
    }

    /// What this shard owns.
    #[inline]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// What this shard owns, to change.
    #[inline]
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// Whether a blocking command run now may block (not inside a transaction).
    fn may_block(&self) -> bool {
        !self.in_exec
    }

    /// This shard's index.
    pub fn id(&self) -> usize {
        self.state.id
    }

    /// Which shard owns which keys.
    pub fn slot_map(&self) -> SlotMap {
        self.map
    }

    /// Brings the clock commands see up to date (see [`State::refresh_now`]).
    #[inline]
    pub fn refresh_now(&mut self) {
        self.state.refresh_now();
    }

    // ---- dispatch -------------------------------------------------------------------

    /// Runs or routes one request of a local connection. See [`Outcome`].
    pub fn dispatch(&mut self, conn: ConnId, args: Args) -> Outcome {
        let outcome = self.dispatch_request(conn, args);
        self.publish_pending();
        outcome
    }

    fn dispatch_request(&mut self, conn: ConnId, args: Args) -> Outcome {
        let Some(client) = self.state.conns.get_mut(conn) else {
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
                self.state.reply_error(conn, &text);
                self.flag_tx(conn);
                return Outcome::Done;
            }
            Lookup::UnknownSubcommand(container) => {
                let mut text = b"ERR unknown subcommand '".to_vec();
                text.extend_from_slice(truncate(command::cstr(args.get(1)), 128));
                text.extend_from_slice(b"'. Try ");
                text.extend_from_slice(container.name.to_ascii_uppercase().as_bytes());
                text.extend_from_slice(b" HELP.");
                self.state.reply_error(conn, &text);
                self.flag_tx(conn);
                return Outcome::Done;
            }
        };
        if !spec.arity_ok(args.len()) {
            self.state.cmdstats.get(spec.stat).rejected += 1;
            let text = format!("ERR wrong number of arguments for '{}' command", spec.name);
            self.state.reply_error(conn, text.as_bytes());
            self.flag_tx(conn);
            return Outcome::Done;
        }
        let now = self.state.now();
        let needs_auth = !self.state.config.requirepass.is_empty() && !spec.no_auth;
        let Some(c) = self.state.conns.get_mut(conn) else {
            return Outcome::Close;
        };
        if needs_auth && !c.authenticated {
            self.state.cmdstats.get(spec.stat).rejected += 1;
            self.state
                .reply_error(conn, b"NOAUTH Authentication required.");
            self.flag_tx(conn);
            return Outcome::Done;
        }
        if c.proto == Proto::Resp2
            && c.is_subscriber()
            && !command::pubsub::ALLOWED_WHILE_SUBSCRIBED.contains(&spec.name)
        {
            self.state.cmdstats.get(spec.stat).rejected += 1;
            let text = format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT \
                 / RESET are allowed in this context",
                spec.name
            );
            self.state.reply_error(conn, text.as_bytes());
            self.flag_tx(conn);
            return Outcome::Done;
        }
        if (spec.write || spec.name == "ping")
            && (self.state.persist.refuses_writes(&self.state.config)
                || self.state.store.log.error.is_some())
        {
            self.state.cmdstats.get(spec.stat).rejected += 1;
            let text = if self.state.persist.refuses_writes(&self.state.config) {
                crate::persist::MISCONF.to_string()
            } else {
                let why = self.state.store.log.error.as_deref().unwrap_or_default();
                format!("MISCONF Errors writing to the AOF file: {why}")
            };
            self.state.reply_error(conn, text.as_bytes());
            self.flag_tx(conn);
            return Outcome::Done;
        }
        let Some(c) = self.state.conns.get_mut(conn) else {
            return Outcome::Close;
        };
        if c.tx.is_some() {
            if let Some(outcome) = self.queue(conn, spec, args) {
                return outcome;
            }
        }
        let Some(c) = self.state.conns.get_mut(conn) else {
            return Outcome::Close;
        };
        c.last_cmd = spec.name;
        c.last_ms = now;
        let start_len = c.replies.local.len();
        let errors_before = self.state.stats.error_replies;
        self.ran = Ran::Here;
        let outcome = match spec.route {
            Route::Keyed(f, multi) => self.dispatch_keyed(conn, spec, f, multi, args, proto),
            Route::Local(f) => {
                if spec.name == "reset" {
                    if let Some(c) = self.state.conns.get_mut(conn) {
                        c.tx = None;
                    }
                    self.unwatch_all(conn);
                }
                self.run_local(conn, f, args)
            }
            Route::Session(cmd) => self.session_command(conn, cmd, args),
            Route::Fanout(fanout) => self.fanout(conn, spec, fanout, args, proto),
            Route::Container => {
                // Arity -2 makes a lone container fail its arity check above; should a
                // table ever say otherwise, answer as Redis would rather than fail.
                let text = format!("ERR wrong number of arguments for '{}' command", spec.name);
                self.state.reply_error(conn, text.as_bytes());
                Outcome::Done
            }
        };
        if !matches!(outcome, Outcome::Blocked) {
            // Commands are timed end to end in a chain: this one started where the last
            // one (or the batch) ended, which costs one clock read per command.
            let ticks = self.state.lap();
            if self.ran == Ran::Rejected {
                self.state.cmdstats.get(spec.stat).rejected += 1;
            } else {
                self.state.stats.commands += 1;
                let mut failed = self.state.stats.error_replies != errors_before;
                if failed && matches!(spec.route, Route::Session(_)) {
                    // EXEC's own reply, not its commands' errors inside it.
                    failed = self
                        .state
                        .conns
                        .get(conn)
                        .is_some_and(|c| c.replies.local.get(start_len) == Some(&b'-'));
                }
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
        let st = &mut self.state;
        let stat = st.cmdstats.get(spec.stat);
        stat.calls += 1;
        stat.ticks += ticks;
        if self.ran == Ran::Forwarded {
            // Its run is timed by the owner; this was only the routing.
            return;
        }
        stat.hist.get_or_insert_with(Default::default).record(ticks);
        if let Some(at) = error_at {
            stat.failed += 1;
            if let Some(c) = st.conns.get(conn) {
                if c.replies.local.get(at) == Some(&b'-') {
                    st.cmdstats.error(&c.replies.local[at..]);
                }
            }
        }
        if ticks >= st.slow_ticks {
            self.log_slow(conn, spec, args, ticks);
        }
    }

    /// Adds a command of this shard's client to the slow log, passwords redacted.
    #[cold]
    fn log_slow(&mut self, conn: ConnId, spec: &Spec, args: Args, ticks: u64) {
        let Some(c) = self.state.conns.get(conn) else {
            return;
        };
        let (addr, name) = (c.addr.clone(), c.name.clone().unwrap_or_default());
        self.push_slow(spec, args, ticks, &addr, &name);
    }

    /// Adds an entry to the slow log, passwords redacted.
    fn push_slow(&mut self, spec: &Spec, args: Args, ticks: u64, addr: &str, name: &[u8]) {
        let st = &mut self.state;
        let now = st.now();
        st.slowlog.push(
            st.config.slowlog_max_len,
            st.id,
            st.shards,
            now * 1000,
            st.clock.to_ns(ticks) / 1000,
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
        let st = &mut self.state;
        let stat = st.cmdstats.get(spec.stat);
        stat.ticks += ticks;
        stat.hist.get_or_insert_with(Default::default).record(ticks);
        if reply.first() == Some(&b'-') {
            stat.failed += 1;
            st.cmdstats.error(reply);
        }
        if ticks >= st.slow_ticks {
            self.push_slow(spec, args, ticks, "", b"");
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
        let mut positions = spec.key_positions(args);
        let owner = positions
            .next()
            .map_or(self.state.id, |p| self.map.shard_of(args.get(p)));
        let mut single = positions.all(|p| self.map.shard_of(args.get(p)) == owner);
        if let Some(Multi::Coord(how)) = multi {
            // Keys named through the request's content (SORT's patterns) can be anywhere.
            single &= self.map.shards() == 1 || !how.kind.looks_up(args);
        }
        if spec.blocking && single && self.may_block() {
            // The client waits for this reply before its next command runs, as in Redis;
            // the owner keeps the request while it blocks.
            if let Some(c) = self.state.conns.get_mut(conn) {
                c.blocked = Some(owner as u16);
            }
            if owner != self.state.id {
                self.forward(conn, owner, Op::Key, args, proto);
                return Outcome::Block;
            }
            if self.held() {
                return Outcome::Blocked;
            }
            self.run_here(conn, spec, f, args, proto);
            return Outcome::Block;
        }
        match multi {
            _ if single && owner != self.state.id => {
                self.forward(conn, owner, Op::Key, args, proto);
                Outcome::Done
            }
            Some(Multi::Split(how)) if !single => self.split(conn, spec, f, how, args, proto),
            Some(Multi::Coord(how)) if !single => self.coordinate(conn, spec, how, args, proto),
            // Keys owned here, or a command whose keys never span shards.
            _ => {
                if self.held() {
                    return Outcome::Blocked;
                }
                self.run_here(conn, spec, f, args, proto);
                Outcome::Done
            }
        }
    }

    /// Runs a keyed command of this shard's client here, its reply appended to the
    /// connection's output.
    fn run_here(&mut self, conn: ConnId, spec: &'static Spec, f: KeyFn, args: Args, proto: Proto) {
        let Some(c) = self.state.conns.get_mut(conn) else {
            return;
        };
        let mut out = std::mem::take(&mut c.replies.local);
        let may_block = self.may_block();
        let done = execute(&mut self.state, spec, f, args, &mut out, proto, may_block);
        if let Some(c) = self.state.conns.get_mut(conn) {
            c.replies.local = out;
        }
        match done {
            Executed::Blocked(block) => {
                let Some(c) = self.state.conns.get_mut(conn) else {
                    return;
                };
                let hole = c.replies.push_hole();
                let reply_to = crate::blocking::ReplyTo::Local(conn, hole);
                self.state.add_waiter(reply_to, proto, spec, f, args, block);
            }
            Executed::Refused => {
                // Refused before it runs, as Redis does: a rejected call, not a failed one.
                self.ran = Ran::Rejected;
                self.state.stats.error_replies += 1;
                self.state.cmdstats.error(OOM);
            }
            Executed::Ran { error: true } => self.state.stats.error_replies += 1,
            Executed::Ran { error: false } => {}
        }
    }

    /// Runs a local command for `conn`.
    fn run_local(&mut self, conn: ConnId, f: LocalFn, args: Args) -> Outcome {
        let now = self.state.now();
        let State {
            conns,
            config,
            shutdown,
            stats,
            pubsub,
            persist,
            ..
        } = &mut self.state;
        let Some(c) = conns.get_mut(conn) else {
            return Outcome::Close;
        };
        let mut out = std::mem::take(&mut c.replies.local);
        let start = out.len();
        let flow = f(
            &mut Local {
                client: c,
                conn,
                pubsub,
                out: &mut out,
                config,
                commands: self.commands,
                shutdown,
                persist: &mut *persist,
                now,
            },
            args,
        );
        if out.get(start) == Some(&b'-') {
            stats.error_replies += 1;
        }
        c.replies.local = out;
        match flow {
            Flow::Continue => Outcome::Done,
            Flow::Quit => Outcome::Quit,
            Flow::Snapshot => {
                let hole = c.replies.push_hole();
                persist.waiters.push((conn, hole));
                persist.request(crate::persist::Job::Foreground);
                Outcome::Done
            }
        }
    }

    /// Sends a whole request to its owner; its reply becomes a hole.
    fn forward(&mut self, conn: ConnId, dest: usize, op: Op, args: Args, proto: Proto) {
        let Some(c) = self.state.conns.get_mut(conn) else {
            return;
        };
        self.ran = Ran::Forwarded;
        let hole = c.replies.push_hole();
        let ticket = Ticket {
            conn: conn.slot,
            gen: conn.gen,
            hole,
        };
        self.send_request(dest, ticket, proto, op, args);
    }

    /// Sends a request to shard `dest`: in its request batch, or, inside an EXEC that
    /// paused `dest`, as a step of the EXEC's token (a paused shard serves only those).
    fn send_request(&mut self, dest: usize, ticket: Ticket, proto: Proto, op: Op, args: Args) {
        self.state.stats.hops_out += 1;
        let Some(token) = self.exec else {
            self.links.enqueue(dest, ticket, proto, op, args.iter());
            return;
        };
        let owned = OwnedArgs::from_args(args);
        let step = match op {
            Op::Part(stat) => StepOp::Part(stat, owned),
            _ => StepOp::Run(owned),
        };
        self.send_control_msg(dest, ticket, proto, Control::Step(token, step));
    }

    /// A multi-key command over keys of several shards: one part per owner, each the
    /// command over that owner's keys, gathered and merged.
    fn split(
        &mut self,
        conn: ConnId,
        spec: &'static Spec,
        f: KeyFn,
        how: &Split,
        args: Args,
        proto: Proto,
    ) -> Outcome {
        let step = how.step.max(1);
        if step > 1 && args.len() % step == 0 {
            let c = self.state.conns.get_mut(conn).expect("live connection");
            arity_error(&mut Reply::new(&mut c.replies.local, proto), spec.name);
            self.state.stats.error_replies += 1;
            return Outcome::Done;
        }
        let positions: Vec<usize> = spec.key_positions(args).collect();
        let owners: Vec<usize> = positions
            .iter()
            .map(|&p| self.map.shard_of(args.get(p)))
            .collect();
        if owners.contains(&self.state.id) && self.held() {
            return Outcome::Blocked;
        }
        let mut shards = owners.clone();
        shards.sort_unstable();
        shards.dedup();
        // For each key: its part, and its index within the part.
        let mut counts = vec![0i64; shards.len()];
        let order = owners
            .iter()
            .map(|o| {
                let part = shards.binary_search(o).unwrap_or_default();
                counts[part] += 1;
                ((part as i64) << 32) | (counts[part] - 1)
            })
            .collect();
        let c = self.state.conns.get_mut(conn).expect("live connection");
        let mut g = c
            .replies
            .begin_gather(how.merge, MergeData::Ints(order), proto);
        for &s in &shards {
            let mut part = OwnedArgs::new();
            part.push(args.get(0));
            for (&p, _) in positions.iter().zip(&owners).filter(|(_, &o)| o == s) {
                for i in p..p + step {
                    part.push(args.get(i));
                }
            }
            if s == self.state.id {
                let mut buf = self.take_scratch();
                let may_block = self.may_block();
                execute(
                    &mut self.state,
                    spec,
                    f,
                    part.args(),
                    &mut buf,
                    proto,
                    may_block,
                );
                self.gather_here(conn, &mut g, buf);
            } else {
                self.gather_from(conn, &mut g, s, Op::Key, part.args(), proto);
            }
        }
        let c = self.state.conns.get_mut(conn).expect("live connection");
        c.replies.push_gather(g);
        Outcome::Done
    }

    /// A multi-key command that must be atomic across shards: checks what can be checked
    /// here, then hands the connection a plan to drive.
    fn coordinate(
        &mut self,
        conn: ConnId,
        spec: &'static Spec,
        how: &Coordinated,
        args: Args,
        proto: Proto,
    ) -> Outcome {
        let c = self
            .state
            .conns
            .get_mut(conn)
            .expect("dispatching for a live connection");
        let Some(replace) = (how.check)(
            &mut Reply::new(&mut c.replies.local, proto),
            spec.name,
            args,
        ) else {
            self.state.stats.error_replies += 1;
            return Outcome::Done;
        };
        let owners: Vec<(usize, usize)> = spec
            .key_positions(args)
            .map(|p| (p, self.map.shard_of(args.get(p))))
            .collect();
        let owned = OwnedArgs::from_args(args);
        if let Some(b) = how.blocking.filter(|_| spec.blocking && self.may_block()) {
            let timeout = (b.timeout)(args);
            let deadline = if timeout == 0 {
                0
            } else {
                self.state.now().saturating_add(timeout)
            };
            let mut waits: Vec<(usize, OwnedArgs)> = Vec::new();
            for p in (b.keys)(args) {
                let owner = self.map.shard_of(args.get(p));
                match waits.iter_mut().find(|(s, _)| *s == owner) {
                    Some((_, keys)) => keys.push(args.get(p)),
                    None => waits.push((owner, OwnedArgs::from_slices(&[args.get(p)]))),
                }
            }
            let mb = crate::session::MultiBlock {
                kind: how.kind,
                args: owned,
                owners,
                proto,
                deadline,
                null_array: b.null_array,
                waits,
            };
            // Counted as blocked once it waits (see `await_keys`).
            let c = self.state.conns.get_mut(conn).expect("a live connection");
            c.multi_block.pending = Some(Box::new(mb));
            return Outcome::Block;
        }
        Outcome::Coordinate(Box::new(CoordPlan::new(
            how.kind,
            owned,
            owners,
            self.map,
            self.state.id,
            proto,
            replace,
        )))
    }

    /// A command on several shards: its check here, a part on each target, gathered and
    /// merged by its family's merge.
    fn fanout(
        &mut self,
        conn: ConnId,
        spec: &'static Spec,
        fanout: &Fanout,
        args: Args,
        proto: Proto,
    ) -> Outcome {
        let shards = self.map.shards();
        let State { conns, config, .. } = &mut self.state;
        let c = conns
            .get_mut(conn)
            .expect("dispatching for a live connection");
        let client_id = c.id;
        let plan = (fanout.check)(
            &mut Check {
                out: Reply::new(&mut c.replies.local, proto),
                config,
                client_id,
                shards,
            },
            args,
        );
        let Some(plan) = plan else {
            self.state.stats.error_replies += 1;
            return Outcome::Done;
        };
        let targets = match plan.targets {
            Targets::All => (0..shards).collect(),
            Targets::One(s) => vec![s],
        };
        if targets.contains(&self.state.id) && self.held() {
            return Outcome::Blocked;
        }
        let c = self.state.conns.get_mut(conn).expect("live connection");
        let mut g = c.replies.begin_gather(fanout.merge, plan.data, proto);
        for s in targets {
            if s == self.state.id {
                let mut buf = self.take_scratch();
                let mut out = Reply::new(&mut buf, proto);
                (fanout.part)(&mut self.state, plan.args.args(), &mut out);
                self.gather_here(conn, &mut g, buf);
            } else {
                let op = Op::Part(spec.stat as u16);
                self.gather_from(conn, &mut g, s, op, plan.args.args(), proto);
            }
        }
        let c = self.state.conns.get_mut(conn).expect("live connection");
        c.replies.push_gather(g);
        Outcome::Done
    }

    /// The scratch buffer, empty, for a part run here.
    fn take_scratch(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf
    }

    /// Adds the part run here (in `buf`, the scratch buffer) to a connection's gather.
    fn gather_here(&mut self, conn: ConnId, g: &mut GatherBuilder, mut buf: Vec<u8>) {
        let c = self.state.conns.get_mut(conn).expect("live connection");
        let start = c.replies.parts_buf().len();
        c.replies.parts_buf().extend_from_slice(&buf);
        c.replies.gather_local(g, start);
        crate::message::recycle(&mut buf, crate::message::KEEP_BYTES);
        self.scratch = buf;
    }

    /// Sends a part to shard `dest`; its reply joins a connection's gather.
    fn gather_from(
        &mut self,
        conn: ConnId,
        g: &mut GatherBuilder,
        dest: usize,
        op: Op,
        args: Args,
        proto: Proto,
    ) {
        let c = self.state.conns.get_mut(conn).expect("live connection");
        let hole = c.replies.gather_remote(g);
        let ticket = Ticket {
            conn: conn.slot,
            gen: conn.gen,
            hole,
        };
        self.send_request(dest, ticket, proto, op, args);
    }

    // ---- output ---------------------------------------------------------------------

    /// Puts together a connection's output for the batch (every hole must be filled) into
    /// `out`, which must be empty.
    pub fn take_output(&mut self, conn: ConnId, out: &mut Vec<u8>) {
        let State {
            conns, rng, config, ..
        } = &mut self.state;
        if let Some(c) = conns.get_mut(conn) {
            c.replies.finish(out, &mut MergeCtx { config, rng });
            c.blocked = None;
        }
    }

    /// Connection `conn` closed: a blocked command of it stops waiting, here or on the
    /// shard it waits on.
    pub fn unblock_closed(&mut self, conn: ConnId) {
        self.state
            .unblock_client(conn, crate::blocking::Unblock::Close);
        self.publish_pending();
    }

    /// Appends an already encoded reply (a coordinated command's) to a connection's output.
    pub fn push_reply(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(c) = self.state.conns.get_mut(conn) {
            if bytes.first() == Some(&b'-') {
                self.state.stats.error_replies += 1;
            }
            c.replies.local.extend_from_slice(bytes);
        }
    }

    /// Appends a protocol error reply to a connection's output.
    pub fn push_protocol_error(&mut self, conn: ConnId, reply: &[u8]) {
        self.state.stats.error_replies += 1;
        if let Some(c) = self.state.conns.get_mut(conn) {
            c.replies.local.extend_from_slice(reply);
        }
    }

    /// Whether every reply of the connection's batch has arrived; if not, `waker` is
    /// woken when they have.
    pub fn output_ready(&mut self, conn: ConnId, waker: &Waker) -> bool {
        match self.state.conns.get_mut(conn) {
            Some(c) if !c.replies.ready() => {
                c.replies.set_waker(waker);
                false
            }
            _ => true,
        }
    }

    /// Bytes of replies the connection's current round has produced here, or `None` when
    /// it was killed (or is gone) and must stop after writing them.
    #[inline]
    pub fn round_output(&self, conn: ConnId) -> Option<usize> {
        match self.state.conns.get(conn) {
            Some(c) if !c.killed => Some(c.replies.local.len()),
            _ => None,
        }
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
