//! [`Shard`]'s side of transactions: MULTI queues, WATCH registers the keys on their
//! owners, EXEC is planned here and driven by the session (`session/transaction.rs`),
//! whose commands then run through [`Shard::dispatch`] in *exec mode*: requests to the
//! shards the transaction paused travel as steps of its token (which a paused shard
//! serves) instead of in request batches (which it holds back).

use corekv_protocol::{Proto, Reply};

use super::{Outcome, Shard};
use crate::args::{Args, OwnedArgs};
use crate::assembly::MergeData;
use crate::command::{merge, Lookup, Multi, Route, SessionCmd, Spec};
use crate::conn::{ConnId, Tx};
use crate::message::{Op, Ticket, Token};
use crate::store::watch::Watcher;

/// An EXEC for the session to drive (see [`Outcome::Exec`]).
pub struct ExecPlan {
    /// The transaction.
    pub tx: Tx,
    /// The shards to pause, ascending: the owners of the queued commands' keys, every
    /// shard for a fan-out, the owners of the watched keys.
    pub shards: Vec<usize>,
    /// The watched keys, by owner (the connection no longer watches them: EXEC
    /// unwatches).
    pub watched: Vec<(usize, OwnedArgs)>,
}

impl Shard {
    /// How connection `conn` of this shard is known to the owners of the keys it watches.
    pub fn watcher(&self, conn: ConnId) -> Watcher {
        Watcher {
            shard: self.state.id as u16,
            slot: conn.slot,
            gen: conn.gen,
        }
    }

    /// Whether a coordinated command other than the EXEC being run holds this shard.
    #[inline]
    pub(super) fn held(&self) -> bool {
        self.pause.is_paused() && (self.exec.is_none() || self.pause.owner() != self.exec)
    }

    /// `w` watches `key` of this shard. A key already expired is deleted first, so its
    /// expiry does not count as a change (Redis's rule).
    pub(super) fn watch_here(&mut self, w: Watcher, key: &[u8]) {
        let now = self.state.now();
        self.state.keyspace().find(key, now);
        self.state.store.watches.watch(key, w);
    }

    /// `w` stops watching `keys` of this shard; whether one changed since it watched
    /// (a key that expired meanwhile has: it is deleted now).
    pub(super) fn unwatch_here(&mut self, w: Watcher, keys: Args) -> bool {
        let now = self.state.now();
        for key in keys.iter() {
            self.state.keyspace().find(key, now);
        }
        self.state.store.watches.unwatch(w, keys.iter())
    }

    /// While `conn` is in MULTI: queues the request and answers `+QUEUED`, unless it is
    /// one of the commands that act at once. `None`: dispatch it.
    pub(super) fn queue(&mut self, conn: ConnId, spec: &Spec, args: Args) -> Option<Outcome> {
        let c = self.state.conns.get_mut(conn)?;
        let tx = c.tx.as_mut()?;
        if matches!(
            spec.route,
            Route::Session(SessionCmd::Exec | SessionCmd::Discard)
                | Route::Session(SessionCmd::Multi | SessionCmd::Watch)
        ) || spec.name == "quit"
            || spec.name == "reset"
        {
            return None;
        }
        tx.push(args);
        let bytes = tx.bytes() as u64;
        let limit = self.state.config.query_buffer_limit;
        if bytes > limit {
            self.state.stats.query_limit_disconnections += 1;
            tracing::warn!(
                bytes,
                limit,
                "closing client whose MULTI queue reached max query buffer length"
            );
            return Some(Outcome::Close);
        }
        Reply::new(&mut c.replies.local, c.proto).simple(b"QUEUED");
        Some(Outcome::Done)
    }

    /// A command failed before it could be queued (unknown, wrong arity, NOAUTH): the
    /// transaction, if one is open, will answer EXECABORT.
    pub(super) fn flag_tx(&mut self, conn: ConnId) {
        if let Some(tx) = self.state.conns.get_mut(conn).and_then(|c| c.tx.as_mut()) {
            tx.aborted = true;
        }
    }

    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
    pub(super) fn session_command(&mut self, conn: ConnId, cmd: SessionCmd, args: Args) -> Outcome {
        let Some(c) = self.state.conns.get_mut(conn) else {
            return Outcome::Close;
        };
        let in_multi = c.tx.is_some();
        let error = match cmd {
            SessionCmd::Multi if in_multi => "ERR MULTI calls can not be nested",
            SessionCmd::Multi => {
                c.tx = Some(Box::default());
                return self.ok(conn);
            }
            SessionCmd::Exec => match c.tx.take() {
                Some(tx) => return self.exec(conn, tx),
                None => "ERR EXEC without MULTI",
            },
            SessionCmd::Discard => match c.tx.take() {
                Some(_) => {
                    self.unwatch_all(conn);
                    return self.ok(conn);
                }
                None => "ERR DISCARD without MULTI",
            },
            SessionCmd::Watch if in_multi => "ERR WATCH inside MULTI is not allowed",
            SessionCmd::Watch => return self.watch(conn, args),
            SessionCmd::Unwatch => {
                self.unwatch_all(conn);
                return self.ok(conn);
            }
        };
        self.state.reply_error(conn, error.as_bytes());
        Outcome::Done
    }

    fn ok(&mut self, conn: ConnId) -> Outcome {
        if let Some(c) = self.state.conns.get_mut(conn) {
            Reply::new(&mut c.replies.local, c.proto).ok();
        }
        Outcome::Done
    }

    /// WATCH: registers each key on its owner (here at once; elsewhere by a request,
    /// whose `+OK` the reply waits for, so a later EXEC finds it in place).
    fn watch(&mut self, conn: ConnId, args: Args) -> Outcome {
        if self.held() {
            return Outcome::Blocked;
        }
        let me = self.state.id;
        let w = self.watcher(conn);
        let mut remote: Vec<(usize, OwnedArgs)> = Vec::new();
        for key in args.iter().skip(1) {
            let owner = self.map.shard_of(key);
            let Some(c) = self.state.conns.get_mut(conn) else {
                return Outcome::Close;
            };
            if c.watching.iter().any(|(k, _)| &**k == key) {
                continue;
            }
            c.watching.push((key.into(), owner as u16));
            if owner == me {
                self.watch_here(w, key);
            } else {
                match remote.iter_mut().find(|(s, _)| *s == owner) {
                    Some((_, keys)) => keys.push(key),
                    None => remote.push((owner, OwnedArgs::from_slices(&[key]))),
                }
            }
        }
        if remote.is_empty() {
            return self.ok(conn);
        }
        remote.sort_unstable_by_key(|(s, _)| *s);
        let c = self.state.conns.get_mut(conn).expect("live connection");
        let proto = c.proto;
        let mut g = c
            .replies
            .begin_gather(merge::all_ok, MergeData::None, proto);
        for (s, keys) in remote {
            self.gather_from(conn, &mut g, s, Op::Watch, keys.args(), proto);
        }
        let c = self.state.conns.get_mut(conn).expect("live connection");
        c.replies.push_gather(g);
        Outcome::Done
    }

    /// EXEC. A transaction on this shard's keys alone runs now, inside this request; one
    /// on the keys of one other shard alone (and no command that needs the client) goes
    /// there whole, in the request batch, and runs there at once; either way nothing is
    /// paused and the earlier requests of the connection keep their order. Any other is
    /// handed to the session to drive with pauses.
    fn exec(&mut self, conn: ConnId, tx: Box<Tx>) -> Outcome {
        if tx.aborted {
            self.exec_abort(conn);
            return Outcome::Done;
        }
        let me = self.state.id;
        let mut shards: Vec<usize> = Vec::new();
        let (mut fanout, mut needs_client) = (false, false);
        for i in 0..tx.cmds.len() {
            let args = tx.cmd(i);
            let Lookup::Found(spec) = self.commands.lookup(args) else {
                continue;
            };
            match spec.route {
                // SORT's patterns name keys through its source's content: any shard.
                Route::Keyed(_, Some(Multi::Coord(how)))
                    if self.map.shards() > 1 && how.kind.looks_up(args) =>
                {
                    fanout = true;
                    shards.extend(0..self.map.shards());
                }
                Route::Keyed(..) => shards.extend(
                    spec.key_positions(args)
                        .map(|p| self.map.shard_of(args.get(p))),
                ),
                Route::Fanout(_) => {
                    fanout = true;
                    shards.extend(0..self.map.shards());
                }
                Route::Local(_) | Route::Session(_) | Route::Container => needs_client = true,
            }
        }
        let Some(c) = self.state.conns.get(conn) else {
            return Outcome::Close;
        };
        shards.extend(c.watching.iter().map(|(_, s)| *s as usize));
        shards.sort_unstable();
        shards.dedup();
        match shards.as_slice() {
            _ if fanout => self.exec_with_pauses(conn, *tx, shards),
            [] | [_] if shards.iter().all(|&s| s == me) => {
                if self.held() {
                    // Run once the coordinated command holding this shard is done.
                    if let Some(c) = self.state.conns.get_mut(conn) {
                        c.tx = Some(tx);
                    }
                    return Outcome::Blocked;
                }
                let watched = self.take_watching(conn);
                let dirty = watched
                    .iter()
                    .any(|(_, keys)| self.exec_unwatch_here(conn, keys));
                if dirty {
                    self.exec_refused(conn);
                } else {
                    self.exec_begin(conn, None, tx.cmds.len());
                    // Logged all or none.
                    self.state.store.log.begin();
                    for i in 0..tx.cmds.len() {
                        self.dispatch(conn, tx.cmd(i));
                    }
                    self.state.store.log.end();
                    self.exec_end();
                }
                Outcome::Done
            }
            [owner] if !needs_client => {
                let owner = *owner;
                let watched = self.take_watching(conn);
                let mut args = OwnedArgs::new();
                args.push(b"EXEC");
                let keys = watched.first().map(|(_, k)| k.args());
                args.push(
                    itoa::Buffer::new()
                        .format(keys.map_or(0, |k| k.len()))
                        .as_bytes(),
                );
                for key in keys.iter().flat_map(|k| k.iter()) {
                    args.push(key);
                }
                for i in 0..tx.cmds.len() {
                    let cmd = tx.cmd(i);
                    if let Lookup::Found(spec) = self.commands.lookup(cmd) {
                        self.state.cmdstats.get(spec.stat).calls += 1;
                    }
                    args.push(itoa::Buffer::new().format(cmd.len()).as_bytes());
                    for a in cmd.iter() {
                        args.push(a);
                    }
                }
                let proto = self.state.conns.get(conn).map_or(Proto::Resp2, |c| c.proto);
                self.forward(conn, owner, Op::Exec, args.args(), proto);
                Outcome::Done
            }
            _ => self.exec_with_pauses(conn, *tx, shards),
        }
    }

    /// Hands the session an EXEC over `shards` to drive with pauses.
    fn exec_with_pauses(&mut self, conn: ConnId, tx: Tx, shards: Vec<usize>) -> Outcome {
        let watched = self.take_watching(conn);
        Outcome::Exec(Box::new(ExecPlan {
            tx,
            shards,
            watched,
        }))
    }

    /// Runs a transaction sent whole by connection `from`'s shard (see [`Op::Exec`]):
    /// the verdict on its watched keys here, then its commands, with nothing in between.
    pub(super) fn exec_here(&mut self, from: Watcher, args: Args, out: &mut Reply) {
        let int = |a: &[u8]| corekv_protocol::number::parse_i64(a).map_or(0, |n| n.max(0) as usize);
        let watched = int(args.get(1)).min(args.len().saturating_sub(2));
        let keys = args.slice(2, watched);
        if self.unwatch_here(from, keys) {
            out.null_array();
            return;
        }
        let mut cmds = Vec::new();
        let mut i = 2 + watched;
        while i < args.len() {
            let n = int(args.get(i)).min(args.len() - i - 1);
            cmds.push(args.slice(i + 1, n));
            i += 1 + n;
        }
        out.array(cmds.len());
        self.state.store.log.begin();
        for cmd in cmds {
            self.run_key(cmd, out, false);
        }
        self.state.store.log.end();
        self.state.serve_ready();
    }

    /// The watched keys of `conn`, by owner; the connection watches nothing afterwards.
    fn take_watching(&mut self, conn: ConnId) -> Vec<(usize, OwnedArgs)> {
        let Some(c) = self.state.conns.get_mut(conn) else {
            return Vec::new();
        };
        let mut by_owner: Vec<(usize, OwnedArgs)> = Vec::new();
        for (key, owner) in std::mem::take(&mut c.watching) {
            let owner = owner as usize;
            match by_owner.iter_mut().find(|(s, _)| *s == owner) {
                Some((_, keys)) => keys.push(&key),
                None => by_owner.push((owner, OwnedArgs::from_slices(&[&*key]))),
            }
        }
        by_owner.sort_unstable_by_key(|(s, _)| *s);
        by_owner
    }

    /// UNWATCH (and DISCARD, EXEC, RESET, a closed connection): the owners forget the
    /// connection's keys. Nobody waits for the other shards' answers.
    pub fn unwatch_all(&mut self, conn: ConnId) {
        let w = self.watcher(conn);
        let proto = match self.state.conns.get(conn) {
            Some(c) if !c.watching.is_empty() => c.proto,
            _ => return,
        };
        for (s, keys) in self.take_watching(conn) {
            if s == self.state.id {
                self.state.store.watches.unwatch(w, keys.args().iter());
            } else {
                // The reply goes to no hole: it is dropped on arrival.
                let ticket = Ticket {
                    conn: conn.slot,
                    gen: conn.gen,
                    hole: u32::MAX,
                };
                self.links
                    .enqueue(s, ticket, proto, Op::Unwatch, keys.args().iter());
                self.state.stats.hops_out += 1;
            }
        }
    }

    /// The verdict on the watched keys owned here (EXEC): whether one changed.
    pub fn exec_unwatch_here(&mut self, conn: ConnId, keys: &OwnedArgs) -> bool {
        let w = self.watcher(conn);
        self.unwatch_here(w, keys.args())
    }

    /// EXEC of a transaction a command failed to join.
    pub fn exec_abort(&mut self, conn: ConnId) {
        self.unwatch_all(conn);
        self.state.reply_error(
            conn,
            b"EXECABORT Transaction discarded because of previous errors.",
        );
    }

    /// EXEC when a watched key changed: the null array.
    pub fn exec_refused(&mut self, conn: ConnId) {
        if let Some(c) = self.state.conns.get_mut(conn) {
            Reply::new(&mut c.replies.local, c.proto).null_array();
        }
    }

    /// Starts running `n` queued commands of `conn` (the array header), in exec mode for
    /// `token` when it paused shards.
    pub fn exec_begin(&mut self, conn: ConnId, token: Option<Token>, n: usize) {
        self.exec = token;
        self.in_exec = true;
        if let Some(c) = self.state.conns.get_mut(conn) {
            Reply::new(&mut c.replies.local, c.proto).array(n);
        }
    }

    /// The queued commands were dispatched.
    pub fn exec_end(&mut self) {
        self.exec = None;
        self.in_exec = false;
        // Clients blocked on keys the transaction pushed to are served after it.
        self.state.serve_ready();
    }
}
