//! The shard's side of a blocking command whose keys span shards (see
//! `session::blocking`): a round of notify-only waiters on the keys' owners.

use super::Shard;
use crate::conn::{ConnId, SIGNAL};
use crate::message::{Op, Ticket};
use crate::session::MultiBlock;

impl Shard {
    /// Starts a round of waiting for `conn`'s command over several shards: a notify
    /// waiter on each owner of its keys. Returns the round, or `None` when the
    /// connection is gone.
    pub fn await_keys(&mut self, conn: ConnId, mb: &MultiBlock) -> Option<u32> {
        let c = self.state.conns.get_mut(conn)?;
        c.multi_block.round = (c.multi_block.round + 1) & (SIGNAL - 1);
        c.multi_block.signal = None;
        c.blocked = Some(crate::conn::ALL_SHARDS);
        c.multi_block.deadline = mb.deadline;
        let round = c.multi_block.round;
        let me = self.state.id;
        let deadline = mb.deadline.to_string();
        let null: &[u8] = if mb.null_array { b"1" } else { b"0" };
        for (owner, keys) in &mb.waits {
            if *owner == me {
                let reply_to = crate::blocking::ReplyTo::Local(conn, SIGNAL | round);
                self.state.add_notify_waiter(
                    reply_to,
                    mb.proto,
                    keys.args(),
                    mb.deadline,
                    mb.null_array,
                );
            } else {
                let ticket = Ticket {
                    conn: conn.slot,
                    gen: conn.gen,
                    hole: SIGNAL | round,
                };
                let mut args = vec![deadline.as_bytes(), null];
                args.extend(keys.args().iter());
                self.links
                    .enqueue(*owner, ticket, mb.proto, Op::Await, args);
            }
        }
        self.publish_pending();
        Some(round)
    }
}
