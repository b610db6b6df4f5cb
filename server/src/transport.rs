//! The one place glommio's channel mesh is used: moving [`Msg`]s between shards, and
//! driving a coordinated command across them.
//!
//! Per peer, each shard runs two tasks in a latency-sensitive task queue:
//! - a **receiver** hands every message to [`Shard::on_message`], which runs requests,
//!   delivers replies and serves control messages without ever waiting;
//! - a **flusher** is the only code that sends to that peer. It takes what the shard
//!   queued ([`Shard::take_outgoing`]) and may wait for room in the channel. Because no
//!   receiver ever waits on a send, every channel keeps draining and shards cannot
//!   deadlock on each other, whatever the capacity; capacity only buys fewer waits.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use corekv_shard::conn::ConnId;
use corekv_shard::coord::{CoordPlan, Step};
use corekv_shard::message::{Control, Msg};
use corekv_shard::Shard;
use futures_lite::StreamExt;
use glommio::channels::channel_mesh::Senders;
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::{GlommioError, ResourceType};

/// Capacity of each channel of the mesh: room for a full window of request batches
/// ([`corekv_shard::shard::MAX_INFLIGHT`]), as many reply batches, and control messages.
pub const MESH_CAPACITY: usize = 2 * corekv_shard::shard::MAX_INFLIGHT as usize + 64;

/// Feeds messages from one peer to the shard.
pub async fn receiver(shard: Rc<RefCell<Shard>>, mut stream: ConnectedReceiver<Msg>) {
    while let Some(msg) = stream.next().await {
        let mut sh = shard.borrow_mut();
        sh.refresh_now();
        sh.on_message(msg);
    }
}

/// Sends everything the shard queues for shard `dest`, which is mesh peer `peer`.
pub async fn flusher(shard: Rc<RefCell<Shard>>, tx: Rc<Senders<Msg>>, dest: usize, peer: usize) {
    let mut out = Vec::new();
    loop {
        poll_fn(|cx| {
            shard.borrow_mut().take_outgoing(dest, cx.waker(), &mut out);
            if out.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        for msg in out.drain(..) {
            let sent = match tx.try_send_to(peer, msg) {
                Ok(()) => Ok(()),
                Err(GlommioError::WouldBlock(ResourceType::Channel(msg))) => {
                    tx.send_to(peer, msg).await.map_err(|_| ())
                }
                Err(_) => Err(()),
            };
            if sent.is_err() {
                // The peer has gone (the process is exiting): nothing left to do.
                tracing::debug!(dest, "peer closed its channel; flusher stops");
                return;
            }
        }
    }
}

/// Waits until every reply of `conn`'s current batch has arrived.
pub async fn wait_ready(shard: &Rc<RefCell<Shard>>, conn: ConnId) {
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
pub async fn wait_unpaused(shard: &Rc<RefCell<Shard>>) {
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

async fn private_reply(shard: &Rc<RefCell<Shard>>, conn: ConnId, hole: u32) -> Vec<u8> {
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
pub async fn coordinate(shard: &Rc<RefCell<Shard>>, conn: ConnId, mut plan: CoordPlan) -> Vec<u8> {
    let (me, token) = {
        let mut sh = shard.borrow_mut();
        (sh.id, sh.new_token())
    };
    let mut paused = Vec::with_capacity(plan.shards.len());
    let reply = run_plan(shard, conn, &mut plan, me, token, &mut paused).await;
    let mut sh = shard.borrow_mut();
    for &s in &paused {
        if s == me {
            sh.resume(token);
        } else {
            sh.send_control(conn, s, Control::Resume(token));
        }
    }
    if let Some(c) = sh.conns.get_mut(conn) {
        c.replies.clear_private();
    }
    reply
}

/// Takes the pauses (recording each in `paused` once held) and runs the steps.
async fn run_plan(
    shard: &Rc<RefCell<Shard>>,
    conn: ConnId,
    plan: &mut CoordPlan,
    me: usize,
    token: corekv_shard::message::Token,
    paused: &mut Vec<usize>,
) -> Vec<u8> {
    let proto = plan.proto;
    let gone = || b"-ERR connection closed during a cross-shard command\r\n".to_vec();
    for s in plan.shards.clone() {
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
                return gone();
            };
            private_reply(shard, conn, hole).await;
        }
        paused.push(s);
    }
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
                        sh.run_step(&op, proto, &mut results[i]);
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
