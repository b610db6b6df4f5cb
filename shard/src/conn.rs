//! The shard's connection table and, per connection, the assembly of its replies.
//!
//! Replies must leave in request order whichever shard produced them. While every request
//! of a read batch runs on this shard, replies are simply appended to one buffer, which is
//! then written as is (the common case costs nothing extra). When a request is forwarded,
//! its reply becomes a *hole*: a numbered place in the output that a reply message from
//! the owning shard fills later. A multi-shard command becomes a *gather*: parts from
//! several shards combined into one reply. The output is put together only when every
//! hole is filled, then written in one go.

use std::task::Waker;

use corekv_protocol::{frame::frame_len, Proto, Reply};

use crate::message::{recycle, KEEP_BYTES};
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

/// How the parts of a multi-shard reply combine.
#[derive(Clone, Debug)]
pub enum GatherKind {
    /// MGET: for each key in request order, which part holds it and at which index.
    Mget(Vec<(u16, u32)>),
    /// DEL, UNLINK, EXISTS, TOUCH, DBSIZE: the sum of integer replies.
    Sum,
    /// MSET, FLUSHDB, FLUSHALL: `+OK` when every part said so.
    Ok,
    /// KEYS: the arrays concatenated.
    Concat,
    /// RANDOMKEY: parts are `[size, key|null]`; a key is picked weighted by shard size.
    RandomKey,
    /// SCAN on `shard` of `shards`: the part is `[next position or -1, keys]`.
    Scan {
        /// Shard the cursor named.
        shard: u32,
        /// Number of shards, to encode the next cursor.
        shards: u32,
    },
    /// INFO: parts are each shard's numbers; formatted by the shard.
    Info(Vec<u8>),
    /// CLIENT LIST: parts are bulk strings of lines, concatenated; with `ID` filters, the
    /// lines are put in the order of the IDs asked (repeats included), as Redis does.
    ClientList(Option<Vec<u64>>),
    /// SLOWLOG GET: parts are arrays of `[time_us, entry]`; the newest `usize` entries of
    /// all of them, newest first.
    Slowlog(usize),
    /// CLIENT KILL ip:port (the old form): `+OK` if a part killed one, else an error.
    KillAddr,
    /// LATENCY HISTOGRAM: parts are `[name, buckets]` arrays; merged per command, in the
    /// order of the names asked (all commands, by name, when none).
    LatencyHist(Vec<Vec<u8>>),
}

/// Where one part of a gather is.
#[derive(Clone, Copy, Debug)]
enum Part {
    /// Bytes in [`Assembly::parts`].
    Local(usize, usize),
    /// A hole to be filled by another shard.
    Hole(u32),
}

#[derive(Clone, Debug)]
struct Gather {
    kind: GatherKind,
    parts: Vec<Part>,
    /// Protocol of the request, which a later HELLO or RESET in the pipeline must not
    /// change.
    proto: Proto,
}

#[derive(Clone, Copy, Debug)]
enum Seg {
    Local(usize, usize),
    Hole(u32),
    Gather(u32),
}

/// A gather under construction (see [`Assembly::begin_gather`]).
pub struct GatherBuilder {
    kind: GatherKind,
    parts: Vec<Part>,
    proto: Proto,
}

impl GatherBuilder {
    /// Number of parts added so far.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether no part was added.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Formats an INFO reply from the requested sections and every shard's numbers.
pub type InfoFormatter<'a> = dyn FnMut(&[u8], &[&[u8]], &mut Reply) + 'a;

/// Bit marking a hole whose bytes go to the coordinator, not to the output.
const PRIVATE: u32 = 1 << 31;

/// The replies of one connection's current read batch. See the module docs.
#[derive(Default)]
pub struct Assembly {
    /// Replies produced on this shard, in order. When no hole or gather exists this is
    /// the whole output.
    pub local: Vec<u8>,
    segs: Vec<Seg>,
    /// Start in `local` of the run of local replies not yet closed into a segment.
    run_start: usize,
    /// Parts of gathers produced on this shard.
    parts: Vec<u8>,
    /// Bytes received from other shards.
    remote: Vec<u8>,
    /// Where each filled hole's bytes are in `remote`.
    holes: Vec<Option<(usize, usize)>>,
    gathers: Vec<Gather>,
    /// Results of a coordinator's steps, by private hole.
    private: Vec<Option<Vec<u8>>>,
    /// Private holes not filled yet.
    private_pending: u32,
    outstanding: u32,
    waker: Option<Waker>,
}

impl Assembly {
    /// Whether every hole is filled.
    #[inline]
    pub fn ready(&self) -> bool {
        self.outstanding == 0
    }

    /// Whether the output is exactly `local` (no hole, no gather).
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.segs.is_empty()
    }

    /// Registers the task to wake when the last hole is filled.
    pub fn set_waker(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    fn close_run(&mut self) {
        if self.local.len() > self.run_start {
            self.segs.push(Seg::Local(self.run_start, self.local.len()));
        }
        self.run_start = self.local.len();
    }

    fn new_hole(&mut self) -> u32 {
        self.outstanding += 1;
        self.holes.push(None);
        (self.holes.len() - 1) as u32
    }

    /// Reserves the place of a forwarded request's reply; returns the hole to put in its
    /// ticket.
    pub fn push_hole(&mut self) -> u32 {
        self.close_run();
        let hole = self.new_hole();
        self.segs.push(Seg::Hole(hole));
        hole
    }

    /// Starts a gather of the given kind for a request in `proto`; add parts, then
    /// [`push_gather`](Self::push_gather).
    pub fn begin_gather(&self, kind: GatherKind, proto: Proto) -> GatherBuilder {
        GatherBuilder {
            kind,
            parts: Vec::new(),
            proto,
        }
    }

    /// Adds a part that another shard will send; returns its hole.
    pub fn gather_remote(&mut self, g: &mut GatherBuilder) -> u32 {
        let hole = self.new_hole();
        g.parts.push(Part::Hole(hole));
        hole
    }

    /// The buffer local gather parts are written to: note its length, write the part,
    /// then call [`gather_local`](Self::gather_local) with that start.
    pub fn parts_buf(&mut self) -> &mut Vec<u8> {
        &mut self.parts
    }

    /// Adds the part written to [`parts_buf`](Self::parts_buf) since `start`.
    pub fn gather_local(&mut self, g: &mut GatherBuilder, start: usize) {
        g.parts.push(Part::Local(start, self.parts.len()));
    }

    /// Places a finished gather in the output.
    pub fn push_gather(&mut self, g: GatherBuilder) {
        self.close_run();
        self.gathers.push(Gather {
            kind: g.kind,
            parts: g.parts,
            proto: g.proto,
        });
        self.segs.push(Seg::Gather((self.gathers.len() - 1) as u32));
    }

    /// Reserves a hole whose bytes the coordinator reads with
    /// [`take_private`](Self::take_private) instead of sending them to the client.
    pub fn private_hole(&mut self) -> u32 {
        self.outstanding += 1;
        self.private_pending += 1;
        self.private.push(None);
        (self.private.len() - 1) as u32 | PRIVATE
    }

    /// The bytes a private hole received, once filled.
    pub fn take_private(&mut self, hole: u32) -> Option<Vec<u8>> {
        self.private
            .get_mut((hole & !PRIVATE) as usize)
            .and_then(Option::take)
    }

    /// Fills a hole with a reply from another shard; wakes the connection when it was the
    /// last one.
    pub fn fill(&mut self, hole: u32, bytes: &[u8]) {
        if hole & PRIVATE != 0 {
            match self.private.get_mut((hole & !PRIVATE) as usize) {
                Some(slot @ None) => *slot = Some(bytes.to_vec()),
                _ => return,
            }
            self.private_pending -= 1;
        } else {
            match self.holes.get_mut(hole as usize) {
                Some(slot @ None) => {
                    let start = self.remote.len();
                    self.remote.extend_from_slice(bytes);
                    *slot = Some((start, self.remote.len()));
                }
                _ => return,
            }
        }
        self.outstanding -= 1;
        if self.outstanding == 0 {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    /// Clears the private holes after a coordination; holes never filled stop counting
    /// as outstanding.
    pub fn clear_private(&mut self) {
        self.outstanding -= self.private_pending;
        self.private_pending = 0;
        self.private.clear();
    }

    fn part_bytes(&self, part: Part) -> &[u8] {
        match part {
            Part::Local(s, e) => &self.parts[s..e],
            Part::Hole(h) => match self.holes[h as usize] {
                Some((s, e)) => &self.remote[s..e],
                None => b"",
            },
        }
    }

    /// Puts the batch's output together in `out` (which must be empty) once
    /// [`ready`](Self::ready), and resets for the next batch. `info` formats an INFO
    /// gather; `rng` picks RANDOMKEY's shard.
    pub fn finish(&mut self, out: &mut Vec<u8>, rng: &mut fastrand::Rng, info: &mut InfoFormatter) {
        debug_assert!(self.ready());
        if self.segs.is_empty() {
            std::mem::swap(out, &mut self.local);
        } else {
            self.close_run();
            for seg in std::mem::take(&mut self.segs) {
                match seg {
                    Seg::Local(s, e) => out.extend_from_slice(&self.local[s..e]),
                    Seg::Hole(h) => out.extend_from_slice(self.part_bytes(Part::Hole(h))),
                    Seg::Gather(g) => {
                        let g = &self.gathers[g as usize];
                        let parts: Vec<&[u8]> =
                            g.parts.iter().map(|&p| self.part_bytes(p)).collect();
                        combine(&g.kind, &parts, &mut Reply::new(out, g.proto), rng, info);
                    }
                }
            }
        }
        recycle(&mut self.local, KEEP_BYTES);
        self.run_start = 0;
        recycle(&mut self.parts, KEEP_BYTES);
        recycle(&mut self.remote, KEEP_BYTES);
        recycle(&mut self.holes, KEEP_BYTES / 16);
        recycle(&mut self.gathers, KEEP_BYTES / 64);
    }
}

/// Splits a RESP array reply into its header length and elements.
fn array_elements(reply: &[u8]) -> Option<(usize, Vec<&[u8]>)> {
    if reply.first() != Some(&b'*') {
        return None;
    }
    let cr = memchr::memchr(b'\r', reply)?;
    let n = corekv_protocol::number::parse_i64(&reply[1..cr])?;
    let mut pos = cr + 2;
    let mut items = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let len = frame_len(&reply[pos..]).ok()??;
        items.push(&reply[pos..pos + len]);
        pos += len;
    }
    Some((cr + 2, items))
}

fn int_of(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    corekv_protocol::number::parse_i64(body)
}

/// Combines gathered parts into one reply. A part that is an error becomes the reply.
fn combine(
    kind: &GatherKind,
    parts: &[&[u8]],
    out: &mut Reply,
    rng: &mut fastrand::Rng,
    info: &mut InfoFormatter,
) {
    if let Some(err) = parts.iter().find(|p| p.first() == Some(&b'-')) {
        out.raw(err);
        return;
    }
    match kind {
        GatherKind::Mget(order) => {
            let split: Vec<Vec<&[u8]>> = parts
                .iter()
                .map(|p| array_elements(p).map(|(_, e)| e).unwrap_or_default())
                .collect();
            out.array(order.len());
            for &(part, idx) in order {
                match split.get(part as usize).and_then(|e| e.get(idx as usize)) {
                    Some(bytes) => out.raw(bytes),
                    None => out.null(),
                }
            }
        }
        GatherKind::Sum => out.int(parts.iter().filter_map(|p| int_of(p)).sum()),
        GatherKind::Ok => out.ok(),
        GatherKind::Concat => {
            let split: Vec<Vec<&[u8]>> = parts
                .iter()
                .map(|p| array_elements(p).map(|(_, e)| e).unwrap_or_default())
                .collect();
            out.array(split.iter().map(Vec::len).sum());
            for e in split.iter().flatten() {
                out.raw(e);
            }
        }
        GatherKind::RandomKey => {
            let candidates: Vec<(i64, &[u8])> = parts
                .iter()
                .filter_map(|p| {
                    let (_, e) = array_elements(p)?;
                    let size = int_of(e.first()?)?;
                    let key = *e.get(1)?;
                    (size > 0 && key.first() == Some(&b'$') && key.get(1) != Some(&b'-'))
                        .then_some((size, key))
                })
                .collect();
            let total: i64 = candidates.iter().map(|c| c.0).sum();
            if total == 0 {
                out.null();
                return;
            }
            let mut pick = rng.i64(0..total);
            for (size, key) in &candidates {
                if pick < *size {
                    out.raw(key);
                    return;
                }
                pick -= size;
            }
            out.null();
        }
        GatherKind::Scan { shard, shards } => {
            let Some((_, e)) = parts.first().and_then(|p| array_elements(p)) else {
                out.err("internal error in SCAN");
                return;
            };
            let next = e.first().and_then(|b| int_of(b)).unwrap_or(-1);
            let cursor: u64 = if next >= 0 {
                next as u64 * u64::from(*shards) + u64::from(*shard)
            } else if shard + 1 < *shards {
                u64::from(shard + 1)
            } else {
                0
            };
            out.array(2);
            out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
            match e.get(1) {
                Some(keys) => out.raw(keys),
                None => out.array(0),
            }
        }
        GatherKind::Info(sections) => info(sections, parts, out),
        GatherKind::LatencyHist(names) => {
            crate::command::server::latency_histogram_reply(names, parts, out)
        }
        GatherKind::KillAddr => {
            if parts.iter().filter_map(|p| int_of(p)).sum::<i64>() > 0 {
                out.ok();
            } else {
                out.err("No such client");
            }
        }
        GatherKind::Slowlog(count) => {
            let mut entries: Vec<(i64, &[u8])> = parts
                .iter()
                .filter_map(|p| array_elements(p))
                .flat_map(|(_, pairs)| pairs)
                .filter_map(|pair| {
                    let (_, e) = array_elements(pair)?;
                    Some((int_of(e.first()?)?, *e.get(1)?))
                })
                .collect();
            // Newest first; the sort is stable, so one shard's order is kept on ties.
            entries.sort_by_key(|e| std::cmp::Reverse(e.0));
            entries.truncate(*count);
            out.array(entries.len());
            for (_, e) in entries {
                out.raw(e);
            }
        }
        GatherKind::ClientList(order) => {
            let mut text = Vec::new();
            for p in parts {
                if let Ok(Some((frame, _))) = corekv_protocol::frame::parse(p) {
                    if let Some(b) = frame.as_bytes() {
                        text.extend_from_slice(b);
                    }
                }
            }
            if let Some(ids) = order {
                let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
                let id_of = |line: &[u8]| -> Option<u64> {
                    let rest = line.strip_prefix(b"id=")?;
                    let end = rest.iter().position(|&b| b == b' ')?;
                    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
                };
                let mut ordered = Vec::new();
                for id in ids {
                    if let Some(line) = lines.iter().find(|l| id_of(l) == Some(*id)) {
                        ordered.extend_from_slice(line);
                    }
                }
                text = ordered;
            }
            out.verbatim(b"txt", &text);
        }
    }
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

    fn local_part(a: &mut Assembly, g: &mut GatherBuilder, f: impl FnOnce(&mut Reply)) {
        let start = a.parts_buf().len();
        f(&mut Reply::new(a.parts_buf(), Proto::Resp2));
        a.gather_local(g, start);
    }

    fn finish(a: &mut Assembly) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rng = fastrand::Rng::with_seed(1);
        a.finish(&mut out, &mut rng, &mut |_, _, _| {});
        out
    }

    #[test]
    fn plain_batch_is_the_local_buffer() {
        let mut a = Assembly::default();
        a.local.extend_from_slice(b"+OK\r\n:1\r\n");
        assert!(a.is_plain() && a.ready());
        assert_eq!(finish(&mut a), b"+OK\r\n:1\r\n");
        assert!(a.local.is_empty());
    }

    #[test]
    fn holes_keep_request_order_whatever_the_arrival_order() {
        let mut a = Assembly::default();
        a.local.extend_from_slice(b":1\r\n");
        let h1 = a.push_hole();
        a.local.extend_from_slice(b":3\r\n");
        let h2 = a.push_hole();
        a.local.extend_from_slice(b":5\r\n");
        assert!(!a.ready());
        a.fill(h2, b":4\r\n");
        assert!(!a.ready());
        a.fill(h1, b":2\r\n");
        assert!(a.ready());
        assert_eq!(finish(&mut a), b":1\r\n:2\r\n:3\r\n:4\r\n:5\r\n");
        // A late or duplicate fill is ignored.
        a.fill(h1, b":9\r\n");
        assert!(a.ready());
    }

    #[test]
    fn mget_gather_interleaves_parts() {
        let mut a = Assembly::default();
        // Keys a (local), b (remote), c (local).
        let mut g = a.begin_gather(GatherKind::Mget(vec![(0, 0), (1, 0), (0, 1)]), Proto::Resp2);
        local_part(&mut a, &mut g, |r| {
            r.array(2);
            r.bulk(b"A");
            r.null();
        });
        let h = a.gather_remote(&mut g);
        a.push_gather(g);
        a.fill(h, b"*1\r\n$1\r\nB\r\n");
        assert_eq!(finish(&mut a), b"*3\r\n$1\r\nA\r\n$1\r\nB\r\n$-1\r\n");
    }

    #[test]
    fn sums_concats_and_errors() {
        let mut a = Assembly::default();
        let mut g = a.begin_gather(GatherKind::Sum, Proto::Resp2);
        local_part(&mut a, &mut g, |r| r.int(2));
        let h = a.gather_remote(&mut g);
        a.push_gather(g);
        let mut g = a.begin_gather(GatherKind::Concat, Proto::Resp2);
        local_part(&mut a, &mut g, |r| {
            r.array(1);
            r.bulk(b"x");
        });
        let h2 = a.gather_remote(&mut g);
        a.push_gather(g);
        a.fill(h, b":3\r\n");
        a.fill(h2, b"*2\r\n$1\r\ny\r\n$1\r\nz\r\n");
        assert_eq!(
            finish(&mut a),
            b":5\r\n*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"
        );
        let mut g = a.begin_gather(GatherKind::Ok, Proto::Resp2);
        let h = a.gather_remote(&mut g);
        a.push_gather(g);
        a.fill(h, b"-ERR boom\r\n");
        assert_eq!(finish(&mut a), b"-ERR boom\r\n");
    }

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
