//! A snapshot's messages, for the server's saver (see [`crate::persist`]): marking the
//! instant on every shard under one pause, and asking shards for their keys, their
//! write counts and the end. Plain `std` futures over the shard, for an internal
//! connection of the saver's.

use std::cell::RefCell;

use super::coordinate::{private_reply, release, take_pauses};
use crate::conn::ConnId;
use crate::message::{Control, SnapOp, StepOp};
use crate::shard::Shard;

/// Marks the instant of a snapshot on every shard: all are paused (in ascending order,
/// as every coordinated command pauses), each marks it, all resume. `Err` with Redis's
/// text when a snapshot is already in progress. With `rotate`, the snapshot is an
/// append-only rewrite's base and every shard's log moves to that generation at the
/// instant.
pub async fn begin(
    shard: &RefCell<Shard>,
    conn: ConnId,
    rotate: Option<u64>,
) -> Result<(), String> {
    let (me, token, n) = {
        let mut sh = shard.borrow_mut();
        (sh.id(), sh.new_token(), sh.slot_map().shards())
    };
    let all: Vec<usize> = (0..n).collect();
    let mut paused = Vec::with_capacity(n);
    let mut began = Vec::with_capacity(n);
    let mut failed = false;
    if take_pauses(shard, conn, &all, me, token, &mut paused).await {
        let mut pending = Vec::new();
        for &s in &all {
            if s == me {
                let mut sh = shard.borrow_mut();
                sh.refresh_now();
                let w = sh.watcher(conn);
                let mut out = Vec::new();
                sh.run_step(
                    &StepOp::SnapshotBegin { rotate },
                    w,
                    corekv_protocol::Proto::Resp2,
                    &mut out,
                );
                if out.starts_with(b"+") {
                    began.push(s);
                } else {
                    failed = true;
                }
            } else {
                match shard.borrow_mut().send_control(
                    conn,
                    s,
                    Control::Step(token, StepOp::SnapshotBegin { rotate }),
                ) {
                    Some(hole) => pending.push((s, hole)),
                    None => failed = true,
                }
            }
        }
        for (s, hole) in pending {
            if private_reply(shard, conn, hole).await.starts_with(b"+") {
                began.push(s);
            } else {
                failed = true;
            }
        }
    } else {
        failed = true;
    }
    release(&mut shard.borrow_mut(), conn, token, &paused);
    if !failed {
        return Ok(());
    }
    // Only a snapshot in progress refuses the mark; undo it where it was made.
    for s in began {
        let rewrite = rotate.is_some();
        ask(shard, conn, s, SnapOp::End { ok: false, rewrite }).await;
    }
    Err("Background save already in progress".into())
}

/// Sends `op` to shard `s` (this one included) and waits for its reply.
pub async fn ask(shard: &RefCell<Shard>, conn: ConnId, s: usize, op: SnapOp) -> Vec<u8> {
    match send(shard, conn, s, op) {
        Sent::Here(reply) => reply,
        Sent::Away(hole) => private_reply(shard, conn, hole).await,
        Sent::Gone => Vec::new(),
    }
}

/// Where the reply to a [`send`] is.
pub enum Sent {
    /// Served at once (this shard).
    Here(Vec<u8>),
    /// On its way: wait for it with [`reply`].
    Away(u32),
    /// The connection is gone.
    Gone,
}

/// Sends `op` to shard `s` without waiting (this shard serves it at once).
pub fn send(shard: &RefCell<Shard>, conn: ConnId, s: usize, op: SnapOp) -> Sent {
    let mut sh = shard.borrow_mut();
    if s == sh.id() {
        sh.refresh_now();
        return Sent::Here(sh.snapshot_op(op));
    }
    match sh.send_control(conn, s, Control::Snapshot(op)) {
        Some(hole) => Sent::Away(hole),
        None => Sent::Gone,
    }
}

/// The reply to a request [`send`] sent away.
pub async fn reply(shard: &RefCell<Shard>, conn: ConnId, hole: u32) -> Vec<u8> {
    private_reply(shard, conn, hole).await
}

/// Forgets the replies taken so far (call after each snapshot).
pub fn done(shard: &RefCell<Shard>, conn: ConnId) {
    shard.borrow_mut().end_coordination(conn);
}
