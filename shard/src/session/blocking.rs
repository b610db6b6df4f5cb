//! A blocking command whose keys span shards (BLPOP a b with `a` and `b` on different
//! shards): the client's shard drives it in rounds, from messages only.
//!
//! 1. **Try**: the command's gather runs atomically across the owners, as any
//!    coordinated command (paused in ascending order), in its non-blocking form. A
//!    reply other than a null is the client's.
//! 2. **Wait**: each owner keeps a notify-only waiter on its keys (`Op::Await`), which
//!    answers the round's signal with `+READY` at once if a key holds elements, else
//!    when a push makes one ready, or with the timeout's null at the deadline (or
//!    CLIENT UNBLOCK's reply). The first signal wins; the waiters are then dropped
//!    everywhere (`Op::Unblock`) and a `+READY` starts the next round.
//!
//! Registering after the try cannot miss a push: a key that got elements in between is
//! seen when the waiter registers. An element is only ever taken by the atomic try, so
//! it is delivered exactly once whichever shards signal at the same moment; a signal of
//! an older round is recognised and dropped.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::Poll;

use corekv_protocol::Proto;

use super::coordinate::coordinate;
use crate::args::OwnedArgs;
use crate::conn::ConnId;
use crate::coord::{Coord, CoordPlan};
use crate::shard::Shard;

/// A blocking command over several shards' keys, as dispatch left it.
#[derive(Debug)]
pub struct MultiBlock {
    /// The gather that tries it.
    pub kind: Coord,
    /// The request.
    pub args: OwnedArgs,
    /// Owner of each key argument, by argument position (for the gather).
    pub owners: Vec<(usize, usize)>,
    /// The client's protocol.
    pub proto: Proto,
    /// When it times out (Unix ms), 0 for never.
    pub deadline: u64,
    /// Whether it times out with a null array.
    pub null_array: bool,
    /// The keys it waits on, by owner.
    pub waits: Vec<(usize, OwnedArgs)>,
}

/// Whether `reply` is a null (what the non-blocking form answers when it found nothing).
fn is_null(reply: &[u8]) -> bool {
    matches!(reply, b"*-1\r\n" | b"$-1\r\n" | b"_\r\n")
}

/// Drives `mb` for `conn` until it has the client's reply (empty when the connection
/// was closed meanwhile).
pub(super) async fn drive(shard: &RefCell<Shard>, conn: ConnId, mb: MultiBlock) -> Vec<u8> {
    let (map, home) = {
        let sh = shard.borrow();
        (sh.slot_map(), sh.id())
    };
    loop {
        let plan = CoordPlan::new(
            mb.kind,
            mb.args.clone(),
            mb.owners.clone(),
            map,
            home,
            mb.proto,
            false,
        );
        let reply = coordinate(shard, conn, plan).await;
        let now = shard.borrow().state().now();
        if !is_null(&reply) || (mb.deadline > 0 && now >= mb.deadline) {
            return reply;
        }
        if shard.borrow().state().is_killed(conn) {
            return Vec::new();
        }
        let Some(round) = shard.borrow_mut().await_keys(conn, &mb) else {
            return Vec::new();
        };
        let signal = poll_fn(|cx| {
            let mut sh = shard.borrow_mut();
            let st = sh.state_mut();
            if st.poll_killed(conn, cx.waker()) {
                return Poll::Ready(None);
            }
            let Some(c) = st.conns.get_mut(conn) else {
                return Poll::Ready(None);
            };
            match c.multi_block.signal.take() {
                Some(s) if c.multi_block.round == round => Poll::Ready(Some(s)),
                _ => {
                    c.multi_block.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        shard.borrow_mut().unblock_closed(conn);
        match signal {
            None => return Vec::new(),
            Some(s) if s.first() == Some(&b'+') => continue,
            Some(s) => return s,
        }
    }
}
