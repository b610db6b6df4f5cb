//! The one place glommio's channel mesh is used: moving [`Msg`]s between shards.
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

use corekv_shard::message::Msg;
use corekv_shard::Shard;
use futures_lite::StreamExt;
use glommio::channels::channel_mesh::Senders;
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::{GlommioError, ResourceType};

/// Capacity of each channel of the mesh: room for a full window of request batches
/// ([`corekv_shard::links::MAX_INFLIGHT`]), as many reply batches, and control messages.
pub const MESH_CAPACITY: usize = 2 * corekv_shard::links::MAX_INFLIGHT as usize + 64;

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
        if out.iter().any(|m| matches!(m, Msg::Replies(_))) {
            // appendfsync always: what the replies report is durable first.
            crate::aof::durable(&shard).await;
        }
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
