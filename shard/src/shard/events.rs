//! Publishing keyspace notifications: the events a command, an expiry or an eviction
//! recorded in the store go out as PUBLISHes on `__keyspace@0__:<key>` and
//! `__keyevent@0__:<event>`, to this shard's subscribers at once and to every other
//! shard's in their request batches (answers are not awaited).

use corekv_protocol::Proto;

use super::Shard;
use crate::blocking::BlockMsg;
use crate::command::pubsub::deliver;
use crate::message::{Msg, Op, Ticket};
use crate::notify::{KEYEVENT, KEYSPACE};
use crate::pubsub::Kind;

/// Where the answers to notification PUBLISHes go: no connection.
const NOBODY: Ticket = Ticket {
    conn: u32::MAX,
    gen: 0,
    hole: u32::MAX,
};

impl Shard {
    /// Publishes the keyspace notifications recorded since the last call, if any, and
    /// sends what blocked clients need from other shards.
    #[inline]
    pub(super) fn publish_pending(&mut self) {
        if !self.state.store.events.list.is_empty() {
            self.publish_events();
        }
        if !self.state.block_out.is_empty() {
            self.send_blocking();
        }
        if !self.state.scripts_out.is_empty() {
            self.send_scripts();
        }
    }

    /// Loads the scripts EVAL compiled here on every other shard (SCRIPT LOAD parts whose
    /// replies nobody waits for), so EVALSHA finds them wherever it runs.
    #[cold]
    fn send_scripts(&mut self) {
        let stat = match self
            .commands
            .lookup(crate::args::OwnedArgs::from_slices(&["SCRIPT", "LOAD"]).args())
        {
            crate::command::Lookup::Found(spec) => spec.stat as u16,
            _ => return,
        };
        let (me, shards) = (self.state.id, self.map.shards());
        for body in std::mem::take(&mut self.state.scripts_out) {
            for s in (0..shards).filter(|&s| s != me) {
                self.links
                    .enqueue(s, NOBODY, Proto::Resp2, Op::Part(stat), [&body[..]]);
            }
        }
    }

    /// Sends blocked clients' replies to their shards, and ends blocked commands of this
    /// shard's connections that wait on other shards.
    #[cold]
    fn send_blocking(&mut self) {
        for msg in std::mem::take(&mut self.state.block_out) {
            match msg {
                BlockMsg::Reply(shard, ticket, bytes) => {
                    let batch = self.links.single_reply(ticket, &bytes);
                    self.links.send(shard, Msg::Replies(batch));
                }
                BlockMsg::Unblock(shard, conn, proto, how) => {
                    let ticket = Ticket {
                        conn: conn.slot,
                        gen: conn.gen,
                        hole: u32::MAX,
                    };
                    self.links
                        .enqueue(shard, ticket, proto, Op::Unblock, [how.word()]);
                }
            }
        }
    }

    #[cold]
    fn publish_events(&mut self) {
        let mut events = std::mem::take(&mut self.state.store.events.list);
        let flags = self.state.store.events.flags;
        let (me, shards) = (self.state.id, self.map.shards());
        let mut channel = Vec::new();
        for (event, key) in &events {
            for kind in [KEYSPACE, KEYEVENT] {
                if flags & kind == 0 {
                    continue;
                }
                channel.clear();
                let message: &[u8] = if kind == KEYSPACE {
                    channel.extend_from_slice(b"__keyspace@0__:");
                    channel.extend_from_slice(key);
                    event.as_bytes()
                } else {
                    channel.extend_from_slice(b"__keyevent@0__:");
                    channel.extend_from_slice(event.as_bytes());
                    key
                };
                deliver(&mut self.state, Kind::Channel, &channel, message);
                for s in (0..shards).filter(|&s| s != me) {
                    let args = [&channel[..], message];
                    self.links
                        .enqueue(s, NOBODY, Proto::Resp2, Op::Part(self.publish_stat), args);
                }
            }
        }
        events.clear();
        self.state.store.events.list = events;
    }

    /// Runs what the wheel has due (see [`crate::state::State::run_timers`]) and
    /// publishes the expiries' notifications.
    pub fn run_timers(&mut self, budget: usize) -> bool {
        let more = self.state.run_timers(budget);
        self.publish_pending();
        more
    }
}
