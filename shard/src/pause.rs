//! [`Pause`]: a coordinated command's hold on this shard.
//!
//! A command that must be atomic across shards (see [`crate::coord`]) pauses every shard
//! it involves, in ascending order. While paused, a shard runs only that command's steps:
//! its own clients' requests wait ([`Pause::is_paused`], [`Pause::on_unpause`]) and
//! request batches from other shards are held. Requests for the pause queue up, local
//! ones with a waker, remote ones with the ticket to acknowledge, and get it in order.

use std::collections::VecDeque;
use std::task::Waker;

use corekv_protocol::Proto;

use crate::message::{Ticket, Token};

/// Someone waiting for the pause.
enum Waiter {
    /// A coordinator on this shard.
    Local(Token, Waker),
    /// A coordinator on shard `.1`, to acknowledge with `.2`.
    Remote(Token, usize, Ticket, Proto),
}

/// Who gets the pause when it is handed on.
pub enum Next {
    /// Nobody waits.
    Free,
    /// A coordinator on this shard (already woken).
    Local,
    /// A coordinator on another shard, to acknowledge: shard, ticket, protocol.
    Remote(usize, Ticket, Proto),
}

/// See the module docs.
#[derive(Default)]
pub struct Pause {
    owner: Option<Token>,
    queue: VecDeque<Waiter>,
    /// Tasks waiting for the pause to end (connections with a request held).
    blocked: Vec<Waker>,
    next_token: u64,
}

impl Pause {
    /// Whether a coordinated command holds this shard.
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.owner.is_some()
    }

    /// The token holding the pause, if any.
    pub fn owner(&self) -> Option<Token> {
        self.owner
    }

    /// Whether `token` waits in line for the pause.
    pub fn is_waiting(&self, token: Token) -> bool {
        self.queue.iter().any(|w| match w {
            Waiter::Local(t, _) | Waiter::Remote(t, ..) => *t == token,
        })
    }

    /// Registers a task to wake when the pause ends.
    pub fn on_unpause(&mut self, waker: &Waker) {
        self.blocked.push(waker.clone());
    }

    /// A token for a new coordinated command started on shard `id`.
    pub fn new_token(&mut self, id: usize) -> Token {
        self.next_token += 1;
        ((id as u64) << 48) | self.next_token
    }

    /// Takes the pause for `token` if it is free, or queues the request; true once
    /// `token` holds it. Call again when woken.
    pub fn take_local(&mut self, token: Token, waker: &Waker) -> bool {
        match self.owner {
            Some(owner) if owner == token => true,
            None if self.queue.is_empty() => {
                self.owner = Some(token);
                true
            }
            _ => {
                let queued = self.queue.iter_mut().find_map(|w| match w {
                    Waiter::Local(t, w) if *t == token => Some(w),
                    _ => None,
                });
                match queued {
                    Some(w) => *w = waker.clone(),
                    None => self.queue.push_back(Waiter::Local(token, waker.clone())),
                }
                false
            }
        }
    }

    /// Another shard's coordinator asks for the pause: true if granted now (acknowledge
    /// at once), else it is queued and granted by [`release`](Self::release).
    pub fn take_remote(&mut self, token: Token, from: usize, ticket: Ticket, proto: Proto) -> bool {
        if self.owner.is_none() && self.queue.is_empty() {
            self.owner = Some(token);
            true
        } else {
            self.queue
                .push_back(Waiter::Remote(token, from, ticket, proto));
            false
        }
    }

    /// Ends `token`'s pause (nothing if it does not hold it) and hands it to the next in
    /// line; wakes the tasks waiting for the end. `None` when `token` did not hold it.
    pub fn release(&mut self, token: Token) -> Option<Next> {
        self.end(token).then(|| self.hand_on())
    }

    /// Ends `token`'s pause without handing it on yet (see [`hand_on`](Self::hand_on)):
    /// the shard runs the requests it held first, so a stream of coordinated commands
    /// does not starve them. Wakes the tasks waiting for the end. False when `token` did
    /// not hold it.
    pub fn end(&mut self, token: Token) -> bool {
        if self.owner != Some(token) {
            return false;
        }
        self.owner = None;
        for w in self.blocked.drain(..) {
            w.wake();
        }
        true
    }

    /// Gives the pause, if free, to the first in line.
    pub fn hand_on(&mut self) -> Next {
        if self.owner.is_some() {
            return Next::Free;
        }
        match self.queue.pop_front() {
            None => Next::Free,
            Some(Waiter::Local(t, w)) => {
                self.owner = Some(t);
                w.wake();
                Next::Local
            }
            Some(Waiter::Remote(t, from, ticket, proto)) => {
                self.owner = Some(t);
                Next::Remote(from, ticket, proto)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_queue_in_order() {
        let mut p = Pause::default();
        let (a, b) = (p.new_token(0), p.new_token(0));
        assert!(p.take_local(a, Waker::noop()));
        assert!(!p.take_local(b, Waker::noop()));
        assert!(p.release(b).is_none(), "not the owner: no effect");
        assert!(!p.take_local(b, Waker::noop()));
        assert!(matches!(p.release(a), Some(Next::Local)));
        assert!(p.take_local(b, Waker::noop()));
        assert!(matches!(p.release(b), Some(Next::Free)));
        assert!(!p.is_paused());
    }

    #[test]
    fn a_remote_request_is_acknowledged_when_its_turn_comes() {
        let mut p = Pause::default();
        let a = p.new_token(0);
        let t = Ticket {
            conn: 1,
            gen: 1,
            hole: 7,
        };
        assert!(p.take_local(a, Waker::noop()));
        assert!(!p.take_remote(99, 1, t, Proto::Resp2));
        assert!(matches!(p.release(a), Some(Next::Remote(1, tk, _)) if tk == t));
        assert_eq!(p.owner(), Some(99));
    }
}
