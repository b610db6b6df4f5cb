//! [`Shard`]'s side of the mesh: running request batches from other shards, taking
//! their replies into the connections' holes, and serving coordinated commands (pause,
//! steps, resume).

use std::task::Waker;

use corekv_protocol::{Proto, Reply};

use super::{execute, Executed, Shard};
use crate::args::Args;
use crate::command::{self, Lookup, Route};
use crate::conn::ConnId;
use crate::message::{
    Control, ControlMsg, Msg, Op, ReplyBatch, RequestBatch, SnapOp, StepOp, Ticket, Token,
};
use crate::pause::Next;
use crate::state::OOM;
use crate::store::watch::Watcher;

impl Shard {
    /// Runs a keyed command sent by another shard (or by a coordinator), reply in `out`.
    /// A blocking command may block only when `may_block`; then it wrote no reply and
    /// the request to block is returned.
    pub(super) fn run_key(
        &mut self,
        args: Args,
        out: &mut Reply,
        may_block: bool,
    ) -> Option<(&'static command::Spec, command::KeyFn, command::Block)> {
        let commands = self.commands;
        let (spec, f) = match commands.lookup(args) {
            Lookup::Found(spec) => match spec.route {
                Route::Keyed(f, _) => (spec, f),
                _ => {
                    out.err("internal error: forwarded a command without keys");
                    return None;
                }
            },
            _ => {
                out.err("internal error: forwarded an unknown command");
                return None;
            }
        };
        let proto = out.proto();
        let start = out.buffer().len();
        match execute(
            &mut self.state,
            spec,
            f,
            args,
            out.buffer(),
            proto,
            may_block,
        ) {
            Executed::Blocked(block) => return Some((spec, f, block)),
            Executed::Refused => {
                // Counted here as a rejected call (the client's shard counted the call).
                self.state.cmdstats.error(OOM);
                self.state.cmdstats.get(spec.stat).rejected += 1;
            }
            Executed::Ran { .. } => {
                let ticks = self.state.lap();
                self.record_remote(spec, args, ticks, &out.buffer()[start..]);
            }
        }
        None
    }

    /// Runs one request from another shard (for its connection `from`, whose reply goes
    /// to `ticket`): a keyed command, a fan-out's part, a WATCH or UNWATCH. Returns
    /// false when it wrote no reply: a blocking command that blocks (its reply goes out
    /// when it is served or times out).
    fn run_request(
        &mut self,
        from: Watcher,
        ticket: Ticket,
        op: Op,
        args: Args,
        out: &mut Reply,
    ) -> bool {
        match op {
            Op::Key => {
                let may_block = !self.in_exec;
                if let Some((spec, f, block)) = self.run_key(args, out, may_block) {
                    let reply_to = crate::blocking::ReplyTo::Remote(from.shard as usize, ticket);
                    self.state
                        .add_waiter(reply_to, out.proto(), spec, f, args, block);
                    return false;
                }
            }
            Op::Await => {
                let deadline = corekv_protocol::number::parse_i64(args.get(0)).unwrap_or(0);
                let reply_to = crate::blocking::ReplyTo::Remote(from.shard as usize, ticket);
                let keys = args.slice(2, args.len().saturating_sub(2));
                let null_array = args.get(1) == b"1";
                self.state.add_notify_waiter(
                    reply_to,
                    out.proto(),
                    keys,
                    deadline.max(0) as u64,
                    null_array,
                );
                return false;
            }
            Op::Unblock => {
                let conn = ConnId {
                    slot: from.slot,
                    gen: from.gen,
                };
                let how = crate::blocking::Unblock::parse(args.get(0));
                self.state.unblock_conn(from.shard as usize, conn, how);
                out.ok();
            }
            Op::Part(stat) => self.run_part(stat, args, out),
            Op::Watch => {
                for key in args.iter() {
                    self.watch_here(from, key);
                }
                out.ok();
            }
            Op::Unwatch => {
                self.state.store.watches.unwatch(from, args.iter());
                out.ok();
            }
            Op::Exec => self.exec_here(from, args, out),
        }
        true
    }

    /// Runs this shard's part of a fan-out command.
    fn run_part(&mut self, stat: u16, args: Args, out: &mut Reply) {
        match self.commands.by_stat(stat as usize).map(|s| s.route) {
            Some(Route::Fanout(f)) => (f.part)(&mut self.state, args, out),
            _ => out.err("internal error: a part of a command that has none"),
        }
        // Parts are not timed; the next keyed request must not count this one.
        self.state.lap();
    }

    /// Handles a message from another shard: runs requests (or holds them while paused),
    /// delivers replies, serves control messages. Never waits; anything to send goes to
    /// the flushers.
    pub fn on_message(&mut self, msg: Msg) {
        match msg {
            Msg::Requests(batch) => {
                if self.pause.is_paused() || !self.deferred.is_empty() {
                    self.deferred.push_back(batch);
                } else {
                    let from = batch.from;
                    let reply = self.execute_batch(batch);
                    self.links.send(from, Msg::Replies(reply));
                }
            }
            Msg::Replies(batch) => self.deliver(batch),
            Msg::Control(c) => self.on_control(c),
        }
        self.publish_pending();
    }

    /// Runs a batch of requests from another shard, all at once without yielding, and
    /// returns the replies (with the emptied batch, for its sender to reuse).
    fn execute_batch(&mut self, mut batch: RequestBatch) -> ReplyBatch {
        let mut reply = self.links.reply_batch();
        self.links.take_returned(&mut batch);
        let reqs = std::mem::take(&mut batch.reqs);
        for req in &reqs {
            let args = batch.args(req);
            let start = reply.buf.len();
            let from = Watcher {
                shard: batch.from as u16,
                slot: req.ticket.conn,
                gen: req.ticket.gen,
            };
            let replied = self.run_request(
                from,
                req.ticket,
                req.op,
                args,
                &mut Reply::new(&mut reply.buf, req.proto),
            );
            if replied {
                reply.replies.push((req.ticket, start, reply.buf.len()));
            }
        }
        self.state.stats.hops_in += reqs.len() as u64;
        self.state.stats.batches_in += 1;
        batch.reqs = reqs;
        batch.clear();
        reply.request = Some(batch);
        reply
    }

    /// Runs the request batches held while paused, unless paused again.
    fn run_deferred(&mut self) {
        while !self.pause.is_paused() {
            let Some(batch) = self.deferred.pop_front() else {
                break;
            };
            let from = batch.from;
            let reply = self.execute_batch(batch);
            self.links.send(from, Msg::Replies(reply));
        }
    }

    /// Takes replies from another shard into the connections waiting for them.
    fn deliver(&mut self, batch: ReplyBatch) {
        for &(t, s, e) in &batch.replies {
            let id = ConnId {
                slot: t.conn,
                gen: t.gen,
            };
            if let Some(c) = self.state.conns.get_mut(id) {
                c.fill(t.hole, &batch.buf[s..e]);
            }
        }
        self.links.delivered(batch);
    }

    /// Everything ready to send to `dest` (see [`crate::links::Links::take_outgoing`]); when there is
    /// nothing, `waker` is woken once there is.
    pub fn take_outgoing(&mut self, dest: usize, waker: &Waker, out: &mut Vec<Msg>) {
        self.state.stats.batches_out += self.links.take_outgoing(dest, waker, out);
    }

    /// Whether a coordinated command holds this shard.
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.pause.is_paused()
    }

    /// Registers a task to wake when the pause ends.
    pub fn on_unpause(&mut self, waker: &Waker) {
        self.pause.on_unpause(waker);
    }

    /// A token for a new coordinated command started here.
    pub fn new_token(&mut self) -> Token {
        self.pause.new_token(self.state.id)
    }

    /// Pauses this shard for `token` if it is free, or queues the request; true once
    /// `token` holds the pause. Call again when woken.
    pub fn pause_local(&mut self, token: Token, waker: &Waker) -> bool {
        self.pause.take_local(token, waker)
    }

    /// Ends `token`'s pause, runs the requests held meanwhile, and hands the pause to
    /// the next in line.
    pub fn resume(&mut self, token: Token) {
        if !self.pause.end(token) {
            return;
        }
        // Clients blocked on keys the coordinated command pushed to (a cross-shard EXEC,
        // LMOVE's push) are served once it is done, before anything else runs here.
        self.state.serve_ready();
        self.publish_pending();
        // What other shards sent meanwhile runs before the next coordinated command.
        self.run_deferred();
        if let Next::Remote(from, ticket, _) = self.pause.hand_on() {
            let token = self.pause.owner().expect("just handed on");
            self.granted(token, from, ticket);
        }
    }

    /// Serves a control message from another shard's coordinator.
    fn on_control(&mut self, msg: ControlMsg) {
        match msg.kind {
            Control::Pause(token) => {
                if self
                    .pause
                    .take_remote(token, msg.from, msg.ticket, msg.proto)
                {
                    self.granted(token, msg.from, msg.ticket);
                }
            }
            Control::Resume(token) => self.resume(token),
            Control::Snapshot(op) => {
                let out = self.snapshot_op(op);
                let r = self.links.single_reply(msg.ticket, &out);
                self.links.send(msg.from, Msg::Replies(r));
            }
            Control::Step(token, _) => {
                if self.pause.owner() != Some(token) && self.pause.is_waiting(token) {
                    // Sent right behind its pause (an EXEC's last shard): runs once the
                    // pause is granted.
                    self.early_steps.push(msg);
                    return;
                }
                debug_assert_eq!(self.pause.owner(), Some(token), "step without the pause");
                if let Control::Step(_, op) = &msg.kind {
                    self.serve_step(op, &msg);
                }
            }
        }
    }

    /// Runs a coordinator's step and sends its reply.
    fn serve_step(&mut self, op: &StepOp, msg: &ControlMsg) {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let from = Watcher {
            shard: msg.from as u16,
            slot: msg.ticket.conn,
            gen: msg.ticket.gen,
        };
        self.run_step(op, from, msg.proto, &mut out);
        let r = self.links.single_reply(msg.ticket, &out);
        crate::message::recycle(&mut out, crate::message::KEEP_BYTES);
        self.scratch = out;
        self.links.send(msg.from, Msg::Replies(r));
    }

    /// The pause went to `token` of another shard: acknowledges it, then runs the steps
    /// that arrived before it did.
    fn granted(&mut self, token: Token, from: usize, ticket: Ticket) {
        let ack = self.links.single_reply(ticket, b"+OK\r\n");
        self.links.send(from, Msg::Replies(ack));
        if self.early_steps.is_empty() {
            return;
        }
        let (mine, rest): (Vec<ControlMsg>, Vec<ControlMsg>) =
            std::mem::take(&mut self.early_steps)
                .into_iter()
                .partition(|m| matches!(m.kind, Control::Step(t, _) if t == token));
        self.early_steps = rest;
        for msg in mine {
            if let Control::Step(_, op) = &msg.kind {
                self.serve_step(op, &msg);
            }
        }
    }

    /// Sends a coordinator's control message to `dest` on behalf of `conn`. Returns the
    /// private hole its reply will fill (none for `Resume`, which is not answered).
    pub fn send_control(&mut self, conn: ConnId, dest: usize, kind: Control) -> Option<u32> {
        let c = self.state.conns.get_mut(conn)?;
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
        self.send_control_msg(dest, ticket, proto, kind);
        hole
    }

    /// Sends a control message from this shard to `dest`.
    pub(super) fn send_control_msg(
        &mut self,
        dest: usize,
        ticket: Ticket,
        proto: Proto,
        kind: Control,
    ) {
        let from = self.state.id;
        self.links.send(
            dest,
            Msg::Control(ControlMsg {
                from,
                ticket,
                proto,
                kind,
            }),
        );
    }

    /// The reply a private hole received, or `None` (and `waker` registered) if it has
    /// not arrived yet.
    pub fn take_private(&mut self, conn: ConnId, hole: u32, waker: &Waker) -> Option<Vec<u8>> {
        let c = self.state.conns.get_mut(conn)?;
        let got = c.replies.take_private(hole);
        if got.is_none() {
            c.replies.set_waker(waker);
        }
        got
    }

    /// Clears a connection's private holes once its coordination is over.
    pub fn end_coordination(&mut self, conn: ConnId) {
        if let Some(c) = self.state.conns.get_mut(conn) {
            c.replies.clear_private();
        }
    }

    /// Serves a snapshot's request (see [`SnapOp`]) on this shard.
    pub fn snapshot_op(&mut self, op: SnapOp) -> Vec<u8> {
        match op {
            SnapOp::Chunk => {
                let mut out = Vec::new();
                let last = self
                    .state
                    .store
                    .snapshot_chunk(&mut out, crate::persist::CHUNK_BYTES);
                out.push(if last { b'1' } else { b'0' });
                out
            }
            SnapOp::End { ok, rewrite } => {
                let keys = self.state.store.end_snapshot();
                let now = self.state.now();
                if rewrite {
                    self.state.persist.rewrite_ended(ok, now);
                } else {
                    self.state.persist.ended(ok, now);
                }
                tracing::debug!(shard = self.state.id, keys, ok, "snapshot part ended");
                b"+OK\r\n".to_vec()
            }
            SnapOp::Dirty => format!(":{}\r\n", self.state.persist.dirty).into_bytes(),
            SnapOp::Allow(gen) => {
                self.state.store.log.allow(gen);
                b"+OK\r\n".to_vec()
            }
            SnapOp::LogSize => format!(
                "*2\r\n:{}\r\n:{}\r\n",
                self.state.store.log.generation(),
                self.state.persist.aof.incr_size
            )
            .into_bytes(),
        }
    }

    /// The snapshot this shard's saver ran ended: its waiting clients get their
    /// replies.
    pub fn answer_waiters(&mut self, result: &Result<(), String>) {
        let reply = crate::persist::save_reply(result);
        for (conn, hole) in std::mem::take(&mut self.state.persist.waiters) {
            if let Some(c) = self.state.conns.get_mut(conn) {
                c.replies.fill(hole, &reply);
            }
        }
    }

    /// Runs one step of a coordinated command (or of an EXEC) on this shard, for
    /// connection `from`.
    pub fn run_step(&mut self, op: &StepOp, from: Watcher, proto: Proto, out: &mut Vec<u8>) {
        let mut reply = Reply::new(out, proto);
        let now = self.state.now();
        match op {
            StepOp::Run(args) => {
                self.run_key(args.args(), &mut reply, false);
            }
            StepOp::Part(stat, args) => self.run_part(*stat, args.args(), &mut reply),
            StepOp::Unwatch(keys) => {
                let dirty = self.unwatch_here(from, keys.args());
                reply.int(i64::from(dirty));
            }
            StepOp::Dump(key) => {
                command::keyspace::dump_entry(self.state.keyspace(), key, now, &mut reply)
            }
            StepOp::Restore {
                key,
                ty,
                replace,
                expire_at,
                payload,
                event,
            } => {
                let restored = reply.len();
                command::keyspace::restore_entry(
                    self.state.keyspace(),
                    key,
                    ty,
                    *replace,
                    *expire_at,
                    payload,
                    now,
                    &mut reply,
                );
                let wrote = reply.buffer()[restored..].starts_with(b":1");
                if wrote {
                    crate::aof::log_key(&mut self.state, key);
                }
                if let (Some(event), true) = (event, wrote) {
                    self.state.store.notify(crate::notify::GENERIC, event, key);
                }
                if wrote {
                    // A list or sorted set moved here may serve a blocked client.
                    self.state.keyspace().signal_ready(key);
                }
            }
            StepOp::Drop(key) => {
                let gone = self.state.keyspace().remove(key, now).is_some();
                if gone {
                    self.state.store.log.del(key);
                }
                reply.int(i64::from(gone));
            }
            StepOp::Script(request, copies) => {
                command::scripting::run_gathered(
                    &mut self.state,
                    request.args(),
                    copies,
                    &mut reply,
                );
            }
            StepOp::Unlink(key) => {
                let gone = self.state.keyspace().remove(key, now).is_some();
                if gone {
                    self.state.store.log.del(key);
                    self.state
                        .store
                        .notify(crate::notify::GENERIC, "rename_from", key);
                }
                reply.int(i64::from(gone));
            }
            StepOp::SnapshotBegin { rotate } => {
                let compress = self.state.config.rdbcompression;
                if self.state.store.begin_snapshot(compress) {
                    match rotate {
                        Some(gen) => {
                            self.state.persist.rewrite_began(now);
                            if self.state.store.log.on {
                                self.state.store.log.rotate(*gen);
                            }
                        }
                        None => self.state.persist.began(now),
                    }
                    reply.ok();
                } else {
                    reply.err("Background save already in progress");
                }
            }
            StepOp::Lookup(keys) => {
                reply.array(keys.len());
                let mut ks = self.state.keyspace();
                for (key, field) in keys {
                    match command::sort::pattern_value(&mut ks, key, field.as_deref(), now) {
                        Some(v) => reply.bulk(&v),
                        None => reply.null(),
                    }
                }
            }
        }
        self.publish_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::MAX_BATCH;
    use crate::shard::Outcome;
    use crate::testkit::{key_on, output, pump, run, shards};

    #[test]
    fn forwarded_requests_come_back_in_order() {
        let mut s = shards(2);
        let conn = s[0].state_mut().connect("a".into(), "b".into(), 3);
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
        assert_eq!(s[0].state().stats().hops_out, 2);
        assert_eq!(s[1].state().stats().hops_in, 2);
    }

    #[test]
    fn batches_are_capped_and_in_flight_is_bounded() {
        let mut s = shards(2);
        let conn = s[0].state_mut().connect("a".into(), "b".into(), 3);
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
        let conn = s[0].state_mut().connect("a".into(), "b".into(), 3);
        let remote = key_on(1, 2);
        let token = s[1].new_token();
        assert!(s[1].pause_local(token, Waker::noop()));
        run(&mut s[0], conn, &["SET", &remote, "v"]);
        pump(&mut s);
        assert!(!s[0].output_ready(conn, Waker::noop()), "held while paused");
        // Local work on the paused shard waits too.
        let local_conn = s[1].state_mut().connect("c".into(), "d".into(), 4);
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
    fn fanout_parts_run_on_every_shard_and_merge_on_the_clients() {
        let mut s = shards(3);
        let conn = s[1].state_mut().connect("a".into(), "b".into(), 3);
        for shard in 0..3 {
            run(&mut s[1], conn, &["SET", &key_on(shard, 3), "v"]);
        }
        run(&mut s[1], conn, &["DBSIZE"]);
        pump(&mut s);
        assert_eq!(output(&mut s[1], conn), "+OK\r\n+OK\r\n+OK\r\n:3\r\n");
        // Nothing about DBSIZE is left in flight anywhere.
        for sh in &mut s {
            let mut out = Vec::new();
            for dest in 0..3 {
                if dest != sh.id() {
                    sh.take_outgoing(dest, Waker::noop(), &mut out);
                }
            }
            assert!(out.is_empty());
        }
    }
}
