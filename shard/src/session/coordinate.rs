//! The driver of a command that must be atomic across shards (see [`crate::coord`] for
//! the plans), and the waits a round makes: for replies from other shards, and for a
//! coordinated command's pause to end. Plain `std` futures over the shard.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::Poll;

use crate::conn::ConnId;
use crate::coord::{CoordPlan, Step};
use crate::message::{Control, Token};
use crate::shard::Shard;

/// Waits until every reply of `conn`'s current batch has arrived.
pub async fn wait_ready(shard: &RefCell<Shard>, conn: ConnId) {
    poll_fn(|cx| {
        if shard.borrow_mut().output_ready(conn, cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Waits until no coordinated command holds this shard.
pub async fn wait_unpaused(shard: &RefCell<Shard>) {
    poll_fn(|cx| {
        let mut sh = shard.borrow_mut();
        if sh.is_paused() {
            sh.on_unpause(cx.waker());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await
}

pub(super) async fn private_reply(shard: &RefCell<Shard>, conn: ConnId, hole: u32) -> Vec<u8> {
    poll_fn(
        |cx| match shard.borrow_mut().take_private(conn, hole, cx.waker()) {
            Some(bytes) => Poll::Ready(bytes),
            None => Poll::Pending,
        },
    )
    .await
}

/// Runs a command that must be atomic across shards, for `conn`, whose earlier replies
/// have all arrived. Pauses the shards involved in ascending order, runs the plan's steps,
/// resumes them; returns the client's reply. Every shard paused is resumed, whatever
/// path the command ends on.
pub async fn coordinate(shard: &RefCell<Shard>, conn: ConnId, mut plan: CoordPlan) -> Vec<u8> {
    let (me, token) = {
        let mut sh = shard.borrow_mut();
        (sh.id(), sh.new_token())
    };
    let mut paused = Vec::with_capacity(plan.shards.len());
    let reply = run_plan(shard, conn, &mut plan, me, token, &mut paused).await;
    release(&mut shard.borrow_mut(), conn, token, &paused);
    reply
}

/// Takes the pauses (recording each in `paused` once held) and runs the steps.
async fn run_plan(
    shard: &RefCell<Shard>,
    conn: ConnId,
    plan: &mut CoordPlan,
    me: usize,
    token: Token,
    paused: &mut Vec<usize>,
) -> Vec<u8> {
    if !take_pauses(shard, conn, &plan.shards, me, token, paused).await {
        return gone();
    }
    run_steps(shard, conn, plan, me, token).await
}

fn gone() -> Vec<u8> {
    b"-ERR connection closed during a cross-shard command\r\n".to_vec()
}

/// Pauses `shards` (ascending) for `token`, recording each in `paused` once held; false
/// when the connection went away meanwhile.
pub(super) async fn take_pauses(
    shard: &RefCell<Shard>,
    conn: ConnId,
    shards: &[usize],
    me: usize,
    token: Token,
    paused: &mut Vec<usize>,
) -> bool {
    for &s in shards {
        if s == me {
            poll_fn(|cx| {
                if shard.borrow_mut().pause_local(token, cx.waker()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        } else {
            let Some(hole) = shard
                .borrow_mut()
                .send_control(conn, s, Control::Pause(token))
            else {
                return false;
            };
            private_reply(shard, conn, hole).await;
        }
        paused.push(s);
    }
    true
}

/// Ends the pauses `token` holds on `paused`.
pub(super) fn release(sh: &mut Shard, conn: ConnId, token: Token, paused: &[usize]) {
    let me = sh.id();
    for &s in paused {
        if s == me {
            sh.resume(token);
        } else {
            sh.send_control(conn, s, Control::Resume(token));
        }
    }
    sh.end_coordination(conn);
}

/// Runs a plan's steps on shards `token` already holds.
pub(super) async fn run_steps(
    shard: &RefCell<Shard>,
    conn: ConnId,
    plan: &mut CoordPlan,
    me: usize,
    token: Token,
) -> Vec<u8> {
    let proto = plan.proto;
    let mut results: Vec<Vec<u8>> = Vec::new();
    loop {
        match plan.next(&results) {
            Step::Reply(reply) => return reply,
            Step::Run(ops) => {
                let mut pending = Vec::with_capacity(ops.len());
                results = vec![Vec::new(); ops.len()];
                for (i, (s, op)) in ops.into_iter().enumerate() {
                    if s == me {
                        let mut sh = shard.borrow_mut();
                        sh.refresh_now();
                        let w = sh.watcher(conn);
                        sh.run_step(&op, w, proto, &mut results[i]);
                    } else {
                        match shard
                            .borrow_mut()
                            .send_control(conn, s, Control::Step(token, op))
                        {
                            Some(hole) => pending.push((i, hole)),
                            None => return gone(),
                        }
                    }
                }
                for (i, hole) in pending {
                    results[i] = private_reply(shard, conn, hole).await;
                }
            }
        }
    }
}
