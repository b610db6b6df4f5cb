//! Clients blocked on keys (BLPOP, BLMOVE, BLMPOP and the like), kept by the shard that
//! owns the keys.
//!
//! A blocking command whose keys are all one shard's runs there like any keyed command;
//! when it finds nothing to pop it asks to block ([`crate::command::Block`]) and the
//! shard keeps a [`Waiter`]: where its reply goes (a hole in a local connection's
//! output, or a ticket of the client's shard), the request, its keys and its timeout
//! timer. The store keeps, per waited key, the waiters in the order they blocked
//! (`Store::waited`), and a push marks the key ready (`Keyspace::signal_ready`). After
//! each command the shard serves ready keys: it re-runs each waiter's request, first
//! blocked first, while the key holds elements; a served waiter leaves every queue and
//! its reply goes out. So one push serves one client, in Redis's order, exactly once.
//!
//! A waiter also ends by its timer (a null reply), by CLIENT UNBLOCK, or because its
//! connection closed (its shard tells the owner, `Op::Unblock`).

use std::collections::VecDeque;

use ahash::RandomState;
use hashbrown::HashMap;

use corekv_protocol::Proto;

use crate::args::OwnedArgs;
use crate::conn::ConnId;
use crate::message::Ticket;
use crate::wheel::TimerHandle;

/// Where a blocked client's reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyTo {
    /// A connection of this shard: the hole in its output.
    Local(ConnId, u32),
    /// A connection of shard `.0`: the ticket of its request.
    Remote(usize, Ticket),
}

impl ReplyTo {
    /// Whether the reply goes to this connection (`shard`'s `conn`).
    pub fn is_conn(&self, here: usize, shard: usize, conn: ConnId) -> bool {
        match *self {
            ReplyTo::Local(c, _) => shard == here && c == conn,
            ReplyTo::Remote(s, t) => s == shard && t.conn == conn.slot && t.gen == conn.gen,
        }
    }
}

/// One blocked request.
#[derive(Debug)]
pub struct Waiter {
    /// Where the reply goes.
    pub reply_to: ReplyTo,
    /// Its protocol.
    pub proto: Proto,
    /// The request, run again when a key is ready.
    pub args: OwnedArgs,
    /// The keys it waits on.
    pub keys: Vec<Box<[u8]>>,
    /// Its timeout's timer ([`TimerHandle::NONE`]: blocked forever).
    pub timer: TimerHandle,
    /// Whether it times out with a null array (BLPOP, BLMPOP) or a null bulk (BLMOVE).
    pub null_array: bool,
    /// Its command, to run again; `None` for a command waiting on several shards, which
    /// is only told that a key may be ready (`+READY`) and tries again itself.
    pub(crate) runner: Option<Runner>,
}

/// The waited keys' queues: per key, waiter ids in the order they blocked.
pub type Queues = HashMap<Box<[u8]>, VecDeque<u64>, RandomState>;

/// This shard's waiters, by id.
#[derive(Debug, Default)]
pub struct Blocked {
    waiters: HashMap<u64, Waiter, RandomState>,
    next: u64,
}

impl Blocked {
    /// How many clients are blocked here (INFO's `blocked_clients`).
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Adds a waiter at the back of its keys' queues; returns its id.
    pub fn add(&mut self, w: Waiter, queues: &mut Queues) -> u64 {
        let id = self.next;
        self.next += 1;
        for k in &w.keys {
            let q = queues.entry_ref(&**k).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
        self.waiters.insert(id, w);
        id
    }

    /// The waiter `id`.
    pub fn get(&self, id: u64) -> Option<&Waiter> {
        self.waiters.get(&id)
    }

    /// The waiter `id`, to change (its timer).
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Waiter> {
        self.waiters.get_mut(&id)
    }

    /// Takes waiter `id` out of the registry and of every queue.
    pub fn remove(&mut self, id: u64, queues: &mut Queues) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        for k in &w.keys {
            if let Some(q) = queues.get_mut(&**k) {
                q.retain(|&x| x != id);
                if q.is_empty() {
                    queues.remove(&**k);
                }
            }
        }
        Some(w)
    }

    /// Every waiter.
    pub fn iter(&self) -> impl Iterator<Item = &Waiter> {
        self.waiters.values()
    }

    /// The ids of the waiters for which `pred` holds.
    pub fn find(&self, mut pred: impl FnMut(&Waiter) -> bool) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| pred(w))
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// How a blocked command ends other than by being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// As if it timed out (its timer, or CLIENT UNBLOCK \[TIMEOUT\]): a null reply.
    Timeout,
    /// CLIENT UNBLOCK ERROR: Redis's `-UNBLOCKED` error.
    Error,
    /// Its connection closed: no reply.
    Close,
}

impl Unblock {
    /// The word [`Op::Unblock`](crate::message::Op::Unblock) carries.
    pub fn word(self) -> &'static [u8] {
        match self {
            Unblock::Timeout => b"timeout",
            Unblock::Error => b"error",
            Unblock::Close => b"close",
        }
    }

    /// The reverse of [`Unblock::word`] (anything else: close).
    pub fn parse(word: &[u8]) -> Unblock {
        match word {
            b"timeout" => Unblock::Timeout,
            b"error" => Unblock::Error,
            _ => Unblock::Close,
        }
    }
}

/// What the shard must send for its blocked clients (the state has no links).
#[derive(Debug)]
pub enum BlockMsg {
    /// A reply to a blocked request of shard `.0`'s connection.
    Reply(usize, Ticket, Vec<u8>),
    /// Tell shard `.0` that this shard's connection's blocked command ends.
    Unblock(usize, ConnId, Proto, Unblock),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(keys: &[&str]) -> Waiter {
        Waiter {
            reply_to: ReplyTo::Local(ConnId { slot: 1, gen: 1 }, 0),
            proto: Proto::Resp2,
            args: OwnedArgs::from_slices(&["BLPOP", "k", "0"]),
            keys: keys.iter().map(|k| k.as_bytes().into()).collect(),
            timer: TimerHandle::NONE,
            null_array: true,
            runner: None,
        }
    }

    #[test]
    fn queues_keep_blocking_order_and_forget_removed_waiters() {
        let mut b = Blocked::default();
        let mut q = Queues::default();
        let a = b.add(waiter(&["x", "y"]), &mut q);
        let c = b.add(waiter(&["y"]), &mut q);
        let d = b.add(waiter(&["x", "x"]), &mut q);
        assert_eq!(q[&b"x"[..]], [a, d]);
        assert_eq!(q[&b"y"[..]], [a, c]);
        assert!(b.remove(a, &mut q).is_some());
        assert_eq!(q[&b"y"[..]], [c]);
        assert_eq!(q[&b"x"[..]], [d]);
        b.remove(d, &mut q);
        assert!(!q.contains_key(&b"x"[..]));
        assert_eq!(b.len(), 1);
        assert_eq!(b.find(|w| w.keys.len() == 1), vec![c]);
    }
}

// ---- the state's side --------------------------------------------------------------

use crate::command::{Block, KeyFn, Spec};
use crate::state::State;
use crate::timer::Timer;

/// What the state keeps of a waiter's command to run it again.
#[derive(Clone, Copy)]
pub(crate) struct Runner {
    pub spec: &'static Spec,
    pub f: KeyFn,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Runner({})", self.spec.name)
    }
}

impl State {
    /// Makes a blocking command that found nothing wait (`block` says on which of its
    /// keys and until when); its reply goes to `reply_to` when it is served or ends.
    pub(crate) fn add_waiter(
        &mut self,
        reply_to: ReplyTo,
        proto: Proto,
        spec: &'static Spec,
        f: KeyFn,
        args: crate::args::Args,
        block: Block,
    ) {
        let keys = block.keys.iter().map(|&p| args.get(p).into()).collect();
        let w = Waiter {
            reply_to,
            proto,
            args: OwnedArgs::from_args(args),
            keys,
            timer: TimerHandle::NONE,
            null_array: block.null_array,
            runner: Some(Runner { spec, f }),
        };
        self.add_with_deadline(w, block.deadline);
    }

    /// A command waiting on keys of several shards waits on `keys` here: it is told
    /// `+READY` once one may hold elements (at once if one does), or its timeout.
    pub(crate) fn add_notify_waiter(
        &mut self,
        reply_to: ReplyTo,
        proto: Proto,
        keys: crate::args::Args,
        deadline: u64,
        null_array: bool,
    ) {
        let now = self.now();
        let ready = keys
            .iter()
            .any(|k| self.store.has_elements(k, now, &mut self.timers));
        if ready {
            return self.send_blocked_reply(reply_to, b"+READY\r\n".to_vec());
        }
        let w = Waiter {
            reply_to,
            proto,
            args: OwnedArgs::new(),
            keys: keys.iter().map(Into::into).collect(),
            timer: TimerHandle::NONE,
            null_array,
            runner: None,
        };
        self.add_with_deadline(w, deadline);
    }

    fn add_with_deadline(&mut self, w: Waiter, deadline: u64) {
        let id = self.blocked.add(w, &mut self.store.waited);
        if deadline > 0 {
            let t = Timer::Blocked(id as u32, (id >> 32) as u32);
            let handle = self.timers.insert(deadline, t);
            if let Some(w) = self.blocked.get_mut(id) {
                w.timer = handle;
            }
        }
    }

    /// Serves the clients blocked on keys that writes made ready: for each such key in
    /// the order it became ready, its waiters first-blocked first, each running its
    /// command again, while the key holds a list. A command that still finds nothing
    /// (its key went meanwhile) keeps waiting.
    pub(crate) fn serve_ready(&mut self) {
        if self.serving {
            return;
        }
        self.serving = true;
        while !self.store.ready.is_empty() {
            let key = self.store.ready.remove(0);
            let mut tried = Vec::new();
            while let Some(id) = self
                .store
                .waited
                .get(&key)
                .and_then(|q| q.iter().copied().find(|id| !tried.contains(id)))
            {
                let now = self.now();
                if !self.store.has_elements(&key, now, &mut self.timers) {
                    break;
                }
                let Some(w) = self.blocked.get(id) else {
                    break;
                };
                let Some(runner) = w.runner else {
                    // Waiting on several shards: told, it tries again itself.
                    if let Some(w) = self.blocked.remove(id, &mut self.store.waited) {
                        if !w.timer.is_none() {
                            self.timers.cancel(w.timer);
                        }
                        self.send_blocked_reply(w.reply_to, b"+READY\r\n".to_vec());
                    }
                    continue;
                };
                let (args, proto) = (w.args.clone(), w.proto);
                let mut out = Vec::new();
                let done = crate::shard::execute(
                    self,
                    runner.spec,
                    runner.f,
                    args.args(),
                    &mut out,
                    proto,
                    true,
                );
                match done {
                    crate::shard::Executed::Blocked(_) => tried.push(id),
                    _ => {
                        if let Some(w) = self.blocked.remove(id, &mut self.store.waited) {
                            if !w.timer.is_none() {
                                self.timers.cancel(w.timer);
                            }
                            self.send_blocked_reply(w.reply_to, out);
                        }
                    }
                }
            }
        }
        self.serving = false;
    }

    /// Delivers a blocked client's reply: into a local connection's hole, or to the
    /// client's shard.
    fn send_blocked_reply(&mut self, to: ReplyTo, bytes: Vec<u8>) {
        if bytes.first() == Some(&b'-') {
            self.stats.error_replies += 1;
        }
        match to {
            ReplyTo::Local(conn, hole) => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.fill(hole, &bytes);
                }
            }
            ReplyTo::Remote(shard, ticket) => {
                self.block_out.push(BlockMsg::Reply(shard, ticket, bytes));
            }
        }
    }

    /// Clients blocked here (INFO's `blocked_clients`) and how many of them with a
    /// timeout (`clients_in_timeout_table`): commands waiting on this shard's keys, and
    /// this shard's clients waiting on several shards' keys (counted here only).
    pub(crate) fn blocked_clients(&self) -> (usize, usize) {
        let (mut n, mut timed) = (0, 0);
        for w in self.blocked.iter().filter(|w| w.runner.is_some()) {
            n += 1;
            timed += usize::from(!w.timer.is_none());
        }
        for c in self.conns.iter() {
            if c.blocked == Some(crate::conn::ALL_SHARDS) {
                n += 1;
                timed += usize::from(c.multi_block.deadline > 0);
            }
        }
        (n, timed)
    }

    /// Ends waiter `id` without serving it (see [`Unblock`]).
    pub(crate) fn end_waiter(&mut self, id: u64, how: Unblock) {
        let Some(w) = self.blocked.remove(id, &mut self.store.waited) else {
            return;
        };
        if !w.timer.is_none() {
            self.timers.cancel(w.timer);
        }
        let mut out = Vec::new();
        let mut reply = corekv_protocol::Reply::new(&mut out, w.proto);
        match how {
            Unblock::Close => return,
            Unblock::Error => reply.error(b"UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            Unblock::Timeout if w.null_array => reply.null_array(),
            Unblock::Timeout => reply.null(),
        }
        self.send_blocked_reply(w.reply_to, out);
    }

    /// Ends the blocked command of connection `conn` of shard `shard`, if it waits here.
    pub(crate) fn unblock_conn(&mut self, shard: usize, conn: ConnId, how: Unblock) -> bool {
        let here = self.id;
        let ids = self.blocked.find(|w| w.reply_to.is_conn(here, shard, conn));
        for &id in &ids {
            self.end_waiter(id, how);
        }
        !ids.is_empty()
    }

    /// Ends the blocked command of this shard's connection `conn`, wherever it waits:
    /// here at once, on another shard by message. Returns whether it was blocked.
    pub(crate) fn unblock_client(&mut self, conn: ConnId, how: Unblock) -> bool {
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        let Some(owner) = c.blocked else {
            return false;
        };
        let proto = c.proto;
        if owner == crate::conn::ALL_SHARDS {
            let here = self.id;
            self.unblock_conn(here, conn, how);
            for s in (0..self.shards).filter(|&s| s != here) {
                self.block_out.push(BlockMsg::Unblock(s, conn, proto, how));
            }
            return true;
        }
        let owner = usize::from(owner);
        if owner == self.id {
            self.unblock_conn(owner, conn, how)
        } else {
            self.block_out
                .push(BlockMsg::Unblock(owner, conn, proto, how));
            true
        }
    }
}
