//! The shard's connection table: what it keeps about each client connection.

use std::task::Waker;

use corekv_protocol::Proto;

use crate::args::OwnedArgs;
use crate::assembly::Assembly;
use crate::wheel::TimerHandle;

/// Identifies a connection in its shard's table; the generation tells a reused slot from
/// the connection that held it before (a late reply must not reach a newer connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// Slot in the table.
    pub slot: u32,
    /// Generation of the slot.
    pub gen: u32,
}

/// What the shard keeps about a connection.
pub struct Client {
    /// Generation of the table slot this client occupies.
    pub gen: u32,
    /// CLIENT ID: unique across shards.
    pub id: u64,
    /// Reply protocol (HELLO).
    pub proto: Proto,
    /// CLIENT SETNAME.
    pub name: Option<Vec<u8>>,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Option<Vec<u8>>,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Option<Vec<u8>>,
    /// Peer address, `ip:port`.
    pub addr: String,
    /// Local address, `ip:port`.
    pub laddr: String,
    /// Socket descriptor.
    pub fd: i32,
    /// When it connected (Unix ms).
    pub created_ms: u64,
    /// Last read or write (Unix ms): what the idle timeout measures, as Redis's
    /// `lastinteraction`.
    pub last_ms: u64,
    /// Its idle timer in the shard's wheel, while `timeout` is set.
    pub timer: TimerHandle,
    /// Set when the shard closes the connection (idle timeout).
    pub killed: bool,
    /// The connection's task while it waits for input, to wake when killed.
    pub kill_waker: Option<Waker>,
    /// Full name of the last command.
    pub last_cmd: &'static str,
    /// The server's own connection (the metrics endpoint's INFO): not listed, not
    /// counted as a client.
    pub internal: bool,
    /// Whether the client may run commands: it authenticated, or connected while no
    /// password was set (Redis's `authenticated` flag).
    pub authenticated: bool,
    /// Bytes in the read buffer not yet consumed.
    pub qbuf: usize,
    /// Free space in the read buffer.
    pub qbuf_free: usize,
    /// Bytes of replies waiting to be written.
    pub omem: usize,
    /// The current batch's replies.
    pub replies: Assembly,
    /// The transaction being queued, between MULTI and EXEC.
    pub tx: Option<Box<Tx>>,
    /// The keys it WATCHes, each with its owner.
    pub watching: Vec<(Box<[u8]>, u16)>,
    /// Closed for passing its output limit while messages were delivered to it: its
    /// pending write is abandoned (a killed connection's round is written first).
    pub overflowed: bool,
    /// What it subscribes to (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE), once it did.
    pub subs: Option<Box<crate::pubsub::Subscriptions>>,
    /// While a blocking command of this client is out: the shard it waits on
    /// ([`ALL_SHARDS`] when its keys span shards).
    pub blocked: Option<u16>,
    /// A blocking command over several shards' keys, for the I/O layer to drive (see
    /// `session::blocking`), and its waiting's state.
    pub multi_block: MultiBlockState,
}

/// [`Client::blocked`] of a command waiting on keys of several shards.
pub const ALL_SHARDS: u16 = u16::MAX;

/// Bit of a ticket's hole naming a blocked command's wake-up signal (the rest: its
/// round), not a hole of the output.
pub const SIGNAL: u32 = 1 << 30;

/// A connection's blocking command over several shards: see `session::blocking`.
#[derive(Default)]
pub struct MultiBlockState {
    /// The command, until the I/O layer takes it to drive it.
    pub pending: Option<Box<crate::session::MultiBlock>>,
    /// The current round of waiting; signals of older rounds are stale.
    pub round: u32,
    /// What the owners signalled this round: `+READY`, a null (timed out), an error.
    pub signal: Option<Vec<u8>>,
    /// The task waiting for the signal.
    pub waker: Option<std::task::Waker>,
    /// The command's deadline (Unix ms, 0 for none), while it waits.
    pub deadline: u64,
}

impl Client {
    /// Takes a reply from a shard into hole `hole`: a hole of the output, or the wake-up
    /// signal of a blocked command (see [`SIGNAL`]).
    pub fn fill(&mut self, hole: u32, bytes: &[u8]) {
        if hole & SIGNAL != 0 && hole & (1 << 31) == 0 {
            let b = &mut self.multi_block;
            if hole & !SIGNAL == b.round && b.signal.is_none() {
                b.signal = Some(bytes.to_vec());
                if let Some(w) = b.waker.take() {
                    w.wake();
                }
            }
            return;
        }
        self.replies.fill(hole, bytes);
    }

    /// Whether it subscribes to anything.
    pub fn is_subscriber(&self) -> bool {
        self.subs.as_ref().is_some_and(|s| !s.is_empty())
    }
}

/// A transaction being queued (MULTI).
#[derive(Default)]
pub struct Tx {
    /// The arguments of every queued command, back to back.
    pub args: OwnedArgs,
    /// Each queued command (checked when queued: known, arity), in order: its first
    /// argument in `args` and its number of arguments.
    pub cmds: Vec<(u32, u32)>,
    /// A command failed to queue: EXEC answers EXECABORT.
    pub aborted: bool,
}

impl Tx {
    /// Queues a command.
    pub fn push(&mut self, args: crate::args::Args) {
        let first = self.args.len() as u32;
        for a in args.iter() {
            self.args.push(a);
        }
        self.cmds.push((first, args.len() as u32));
    }

    /// Bytes held (bounded by `client-query-buffer-limit`).
    pub fn bytes(&self) -> usize {
        self.args.bytes() + self.cmds.len() * 8
    }

    /// The `i`th queued command.
    pub fn cmd(&self, i: usize) -> crate::args::Args<'_> {
        let (first, n) = self.cmds[i];
        self.args.slice(first as usize, n as usize)
    }
}

/// Connections accepted by this shard.
#[derive(Default)]
pub struct ConnTable {
    slots: Vec<Option<Client>>,
    free: Vec<u32>,
    gens: Vec<u32>,
    len: usize,
}

/// What the server knows about a new connection.
pub struct NewClient {
    /// CLIENT ID.
    pub id: u64,
    /// Peer address.
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// Socket descriptor.
    pub fd: i32,
    /// Unix ms now.
    pub now: u64,
    /// Whether it starts authenticated (no password is set).
    pub authenticated: bool,
    /// The server's own connection (see [`Client::internal`]).
    pub internal: bool,
}

impl ConnTable {
    /// Number of open client connections (internal ones are not clients).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a connection.
    pub fn insert(&mut self, c: NewClient) -> ConnId {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let gen = self.gens[slot as usize].wrapping_add(1);
        self.gens[slot as usize] = gen;
        self.slots[slot as usize] = Some(Client {
            gen,
            id: c.id,
            proto: Proto::Resp2,
            name: None,
            lib_name: None,
            lib_ver: None,
            addr: c.addr,
            laddr: c.laddr,
            fd: c.fd,
            created_ms: c.now,
            last_ms: c.now,
            timer: TimerHandle::NONE,
            killed: false,
            kill_waker: None,
            last_cmd: "NULL",
            authenticated: c.authenticated,
            internal: c.internal,
            qbuf: 0,
            qbuf_free: 0,
            omem: 0,
            replies: Assembly::default(),
            tx: None,
            watching: Vec::new(),
            subs: None,
            blocked: None,
            multi_block: Default::default(),
            overflowed: false,
        });
        self.len += usize::from(!c.internal);
        ConnId { slot, gen }
    }

    /// Removes a connection; late replies to it are then dropped.
    pub fn remove(&mut self, id: ConnId) {
        if let Some(c) = self.get(id) {
            self.len -= usize::from(!c.internal);
            self.slots[id.slot as usize] = None;
            self.free.push(id.slot);
        }
    }

    /// The connection, if it is still open.
    #[inline]
    pub fn get(&self, id: ConnId) -> Option<&Client> {
        self.slots
            .get(id.slot as usize)?
            .as_ref()
            .filter(|c| c.gen == id.gen)
    }

    /// The connection, if it is still open.
    #[inline]
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Client> {
        self.slots
            .get_mut(id.slot as usize)?
            .as_mut()
            .filter(|c| c.gen == id.gen)
    }

    /// Every open client connection (the server's own internal ones are not clients:
    /// not listed, counted or killed).
    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.slots.iter().flatten().filter(|c| !c.internal)
    }

    /// The id of every open client connection (as [`ConnTable::iter`]).
    pub fn ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| {
                c.as_ref().filter(|c| !c.internal).map(|c| ConnId {
                    slot: slot as u32,
                    gen: c.gen,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_generations_reject_stale_ids() {
        let mut t = ConnTable::default();
        let new = || NewClient {
            id: 1,
            addr: String::new(),
            laddr: String::new(),
            fd: 3,
            now: 0,
            authenticated: true,
            internal: false,
        };
        let a = t.insert(new());
        t.remove(a);
        let b = t.insert(new());
        assert_eq!(a.slot, b.slot);
        assert!(t.get(a).is_none());
        assert!(t.get(b).is_some());
        assert_eq!(t.len(), 1);
    }
}
