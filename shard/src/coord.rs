//! Commands that must be atomic across shards: MSETNX, RENAME, RENAMENX and COPY when their
//! keys have different owners, and the families' read-compute-write commands
//! ([`Gather`]: the multi-set commands).
//!
//! The connection's shard drives a [`CoordPlan`]: it pauses every shard involved, in
//! ascending shard order (a global order, so two coordinators never wait on each other in
//! a cycle), runs the plan's steps on those shards, and resumes them. While paused, a shard
//! runs nothing but the coordinator's steps, so no client sees a state between steps: a
//! key renamed across shards is never missing from both, and MSETNX sets all its keys or
//! none. The plan itself is pure: results in, next step out.

use corekv_protocol::frame::{self, Frame};
use corekv_protocol::Proto;

use corekv_protocol::Reply;

use crate::args::{Args, OwnedArgs};
use crate::message::StepOp;
use crate::slot::SlotMap;

/// Which plan a coordinated command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coord {
    /// MSETNX: all or nothing.
    Msetnx,
    /// RENAME.
    Rename,
    /// RENAMENX.
    RenameNx,
    /// COPY.
    Copy,
    /// Read, compute, write: a family's [`Gather`].
    Gather(&'static Gather),
    /// A script (EVAL, EVALSHA and their read-only forms) whose declared keys span
    /// shards: the keys are read whole on their owners, the script runs on the client's
    /// shard over those copies, and the keys it changed are written back (see
    /// `command/scripting.rs`).
    Script,
}

/// A command that reads its keys on their owners, computes on the client's shard and
/// writes the outcome back (SINTERSTORE, SMOVE, SUNION across shards). The family says
/// what to read and how to compute; the plan runs it with every owner paused.
pub struct Gather {
    /// For the error texts and debugging.
    pub name: &'static str,
    /// The reads for the key at argument position `pos` (keyed commands, run on its
    /// owner; none for a key only written). Their replies come back in key order.
    pub reads: fn(Args, usize) -> Vec<OwnedArgs>,
    /// From the parsed replies of the reads (any error among them has already been
    /// replied), writes the client's reply and returns the writes: keyed commands, each
    /// with the argument position of the key whose owner runs it, in order. When it
    /// returns writes without writing a reply, the last write's reply is the client's.
    pub compute: ComputeFn,
    /// Keys the computation needs that the request does not name (SORT's BY and GET
    /// patterns name them through what the reads found), if the command can have any.
    pub lookups: Option<&'static Lookups>,
}

/// How a [`Gather`] finds the keys it reads beyond its arguments. Those keys can be on
/// any shard, so a request that has some pauses every shard; they are read after the
/// gather's reads, on their owners, and their values passed to the computation after
/// the reads' replies as one array (a bulk string or null per lookup, in order).
pub struct Lookups {
    /// Whether this request reads keys it does not name (else it runs as a plain
    /// gather, on its keys' shards).
    pub needed: fn(Args) -> bool,
    /// The lookups, from the request and the parsed replies of the gather's reads.
    pub keys: fn(Args, &[Frame]) -> Vec<Lookup>,
}

/// One read of a key the request does not name: a string's value, or with a field, a
/// hash's field; null for a missing key, a missing field or another type.
pub type Lookup = (Vec<u8>, Option<Vec<u8>>);

/// A [`Gather`] read `[DUMP, key]` reads the key's whole value whatever its type, as
/// `[type, deadline, payload]` (see `Store::dump_value`) or null, where a command could
/// fail on a type the computation accepts (ZUNION takes sets and sorted sets).
pub const DUMP: &[u8] = b"\0dump";

/// Writes a [`Gather`] asks for: keyed commands, each with the argument position of the
/// key whose owner runs it.
pub type Writes = Vec<(usize, OwnedArgs)>;

/// A [`Gather`]'s computation.
pub type ComputeFn = fn(Args, &[Frame], &mut Reply) -> Writes;

impl Coord {
    /// Whether this request reads keys it does not name (see [`Lookups`]): then every
    /// shard takes part, wherever its named keys are.
    pub fn looks_up(self, args: Args) -> bool {
        match self {
            Coord::Gather(Gather {
                lookups: Some(l), ..
            }) => (l.needed)(args),
            _ => false,
        }
    }
}

impl PartialEq for Gather {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Gather {}

impl std::fmt::Debug for Gather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gather({})", self.name)
    }
}

/// What to do next.
#[derive(Debug)]
pub enum Step {
    /// Run these operations (each on its shard) and feed the replies, in the same order,
    /// to [`CoordPlan::next`].
    Run(Vec<(usize, StepOp)>),
    /// Finished: this is the client's reply.
    Reply(Vec<u8>),
}

/// One coordinated command in progress. See the module docs.
#[derive(Debug)]
pub struct CoordPlan {
    kind: Coord,
    args: OwnedArgs,
    /// Owner of each key argument, by argument position.
    owners: Vec<(usize, usize)>,
    /// The shards to pause, ascending.
    pub shards: Vec<usize>,
    /// Protocol of the client's reply.
    pub proto: Proto,
    replace: bool,
    stage: u8,
    /// A gather's reply, held while its writes run.
    held: Vec<u8>,
    /// A gather's reads' replies, held while its lookups run.
    reads: Vec<Vec<u8>>,
    /// The client's shard (where a script runs).
    home: usize,
    /// A script's distinct declared keys, in the order their copies were read.
    script_keys: Vec<Vec<u8>>,
    /// The shard asked for each lookup, in the order [`Lookups::keys`] gave them.
    asked: Vec<usize>,
    map: SlotMap,
}

impl CoordPlan {
    /// A plan for `kind` with the request's arguments, the owner of each key argument
    /// (`(position, shard)`) by `map`, and, for COPY, whether REPLACE was given.
    pub fn new(
        kind: Coord,
        args: OwnedArgs,
        owners: Vec<(usize, usize)>,
        map: SlotMap,
        home: usize,
        proto: Proto,
        replace: bool,
    ) -> Self {
        let mut shards: Vec<usize> = if kind.looks_up(args.args()) {
            (0..map.shards()).collect()
        } else {
            owners.iter().map(|&(_, s)| s).collect()
        };
        shards.sort_unstable();
        shards.dedup();
        CoordPlan {
            kind,
            args,
            owners,
            shards,
            proto,
            replace,
            stage: 0,
            held: Vec::new(),
            reads: Vec::new(),
            home,
            script_keys: Vec::new(),
            asked: Vec::new(),
            map,
        }
    }

    /// The command this plan runs.
    pub fn kind(&self) -> Coord {
        self.kind
    }

    fn arg(&self, i: usize) -> &[u8] {
        self.args.args().get(i)
    }

    fn owner_of(&self, pos: usize) -> usize {
        self.owners
            .iter()
            .find(|&&(p, _)| p == pos)
            .map(|&(_, s)| s)
            .expect("owner of every key position is known")
    }

    /// `name` followed by the key arguments (and, with `with_values`, the value after
    /// each) that `shard` owns.
    fn per_shard(&self, name: &str, shard: usize, with_values: bool) -> OwnedArgs {
        let mut a = OwnedArgs::new();
        a.push(name.as_bytes());
        for &(pos, s) in &self.owners {
            if s == shard {
                a.push(self.arg(pos));
                if with_values {
                    a.push(self.arg(pos + 1));
                }
            }
        }
        a
    }

    /// The first step, or the next one given the replies to the previous step.
    pub fn next(&mut self, results: &[Vec<u8>]) -> Step {
        if let Some(err) = results.iter().find(|r| r.first() == Some(&b'-')) {
            return Step::Reply(err.clone());
        }
        let stage = self.stage;
        self.stage += 1;
        match (self.kind, stage) {
            (Coord::Gather(g), _) => self.gather_next(g, stage, results),
            (Coord::Script, _) => self.script_next(stage, results),
            (Coord::Msetnx, 0) => Step::Run(
                self.shards
                    .iter()
                    .map(|&s| (s, StepOp::Run(self.per_shard("EXISTS", s, false))))
                    .collect(),
            ),
            (Coord::Msetnx, 1) => {
                if results.iter().any(|r| int_of(r) != Some(0)) {
                    return Step::Reply(b":0\r\n".to_vec());
                }
                Step::Run(
                    self.shards
                        .iter()
                        .map(|&s| (s, StepOp::Run(self.per_shard("MSET", s, true))))
                        .collect(),
                )
            }
            (Coord::Msetnx, _) => Step::Reply(b":1\r\n".to_vec()),
            (_, 0) => {
                let (src, dst) = (self.owner_of(1), self.owner_of(2));
                Step::Run(vec![
                    (src, StepOp::Dump(self.arg(1).to_vec())),
                    (
                        dst,
                        StepOp::Run(OwnedArgs::from_slices(&[&b"EXISTS"[..], self.arg(2)])),
                    ),
                ])
            }
            (kind, 1) => {
                let dumped = results.first().and_then(|r| frame::parse(r).ok().flatten());
                let dst_exists = results.get(1).and_then(|r| int_of(r)).unwrap_or(0) > 0;
                let entry = match dumped {
                    Some((Frame::Array(items), _)) if items.len() == 3 => items,
                    _ => {
                        return Step::Reply(match kind {
                            Coord::Copy => b":0\r\n".to_vec(),
                            _ => b"-ERR no such key\r\n".to_vec(),
                        })
                    }
                };
                let no_overwrite = match kind {
                    Coord::RenameNx => true,
                    Coord::Copy => !self.replace,
                    _ => false,
                };
                if dst_exists && no_overwrite {
                    return Step::Reply(b":0\r\n".to_vec());
                }
                let expire_at = match entry[1] {
                    Frame::Integer(n) if n > 0 => n as u64,
                    _ => 0,
                };
                let payload = entry[2].as_bytes().unwrap_or_default().to_vec();
                let ty = entry[0].as_bytes().unwrap_or_default().to_vec();
                let (src, dst) = (self.owner_of(1), self.owner_of(2));
                let mut ops = vec![(
                    dst,
                    StepOp::Restore {
                        key: self.arg(2).to_vec(),
                        ty,
                        replace: true,
                        expire_at,
                        payload,
                        event: Some(if kind == Coord::Copy {
                            "copy_to"
                        } else {
                            "rename_to"
                        }),
                    },
                )];
                if kind != Coord::Copy {
                    ops.push((src, StepOp::Unlink(self.arg(1).to_vec())));
                }
                Step::Run(ops)
            }
            (Coord::Rename, _) => Step::Reply(b"+OK\r\n".to_vec()),
            (_, _) => Step::Reply(b":1\r\n".to_vec()),
        }
    }
}

impl CoordPlan {
    /// A [`Gather`]'s steps: its reads; its lookups, if it has some; the computation
    /// and its writes; the reply.
    fn gather_next(&mut self, g: &'static Gather, stage: u8, results: &[Vec<u8>]) -> Step {
        let lookups = g.lookups.filter(|l| (l.needed)(self.args.args()));
        match (stage, lookups) {
            (0, _) => {
                let mut ops = Vec::new();
                let mut owners = self.owners.clone();
                owners.sort_unstable();
                for (pos, shard) in owners {
                    for read in (g.reads)(self.args.args(), pos) {
                        let op = if read.args().get(0) == DUMP {
                            StepOp::Dump(read.args().get(1).to_vec())
                        } else {
                            StepOp::Run(read)
                        };
                        ops.push((shard, op));
                    }
                }
                if ops.is_empty() {
                    return self.next(&[]);
                }
                Step::Run(ops)
            }
            (1, Some(l)) => {
                self.reads = results.to_vec();
                let keys = (l.keys)(self.args.args(), &parse_all(results));
                self.asked = keys.iter().map(|(k, _)| self.map.shard_of(k)).collect();
                let mut per_shard: Vec<Vec<Lookup>> = vec![Vec::new(); self.map.shards()];
                for (key, &s) in keys.into_iter().zip(&self.asked) {
                    per_shard[s].push(key);
                }
                let ops: Vec<(usize, StepOp)> = per_shard
                    .into_iter()
                    .enumerate()
                    .filter(|(_, l)| !l.is_empty())
                    .map(|(s, l)| (s, StepOp::Lookup(l)))
                    .collect();
                if ops.is_empty() {
                    return self.next(&[]);
                }
                Step::Run(ops)
            }
            (1, None) => self.compute(g, parse_all(results)),
            (2, Some(_)) => {
                // One array per shard asked, in ascending shard order; each holds the
                // values of that shard's lookups in the order asked.
                let mut shards: Vec<usize> = self.asked.clone();
                shards.sort_unstable();
                shards.dedup();
                let mut answers: Vec<std::vec::IntoIter<Frame>> =
                    vec![Vec::new().into_iter(); self.map.shards()];
                for (&s, r) in shards.iter().zip(results) {
                    if let Ok(Some((Frame::Array(items), _))) = frame::parse(r) {
                        answers[s] = items.into_iter();
                    }
                }
                let values = self
                    .asked
                    .iter()
                    .map(|&s| answers[s].next().unwrap_or(Frame::Null))
                    .collect();
                let mut frames = parse_all(&std::mem::take(&mut self.reads));
                frames.push(Frame::Array(values));
                self.compute(g, frames)
            }
            // A computation that wrote no reply answers with its last write's (LMPOP
            // across shards pops with an LMPOP on the owner).
            _ if self.held.is_empty() => Step::Reply(results.last().cloned().unwrap_or_default()),
            _ => Step::Reply(std::mem::take(&mut self.held)),
        }
    }

    /// A script across shards: copies of its keys, the run on the client's shard, the
    /// changed keys written back on their owners, the script's reply.
    fn script_next(&mut self, stage: u8, results: &[Vec<u8>]) -> Step {
        match stage {
            0 => {
                let mut owners = self.owners.clone();
                owners.sort_by_key(|&(_, s)| s);
                let mut ops = Vec::new();
                for (pos, shard) in owners {
                    let key = self.arg(pos).to_vec();
                    if !self.script_keys.contains(&key) {
                        self.script_keys.push(key.clone());
                        ops.push((shard, StepOp::Dump(key)));
                    }
                }
                Step::Run(ops)
            }
            1 => Step::Run(vec![(
                self.home,
                StepOp::Script(
                    self.args.clone(),
                    self.script_keys
                        .iter()
                        .cloned()
                        .zip(results.iter().cloned())
                        .collect(),
                ),
            )]),
            2 => {
                // [script reply, changed keys...]: a changed key is [key, type, deadline,
                // payload], a deleted one [key].
                let Ok(Some((Frame::Array(items), _))) = frame::parse(&results[0]) else {
                    return Step::Reply(results[0].clone());
                };
                let mut items = items.into_iter();
                let reply = items
                    .next()
                    .and_then(|f| f.as_bytes().map(<[u8]>::to_vec))
                    .unwrap_or_default();
                let mut ops = Vec::new();
                for item in items {
                    let Frame::Array(parts) = item else { continue };
                    let bytes = |i: usize| {
                        parts
                            .get(i)
                            .and_then(Frame::as_bytes)
                            .unwrap_or_default()
                            .to_vec()
                    };
                    let key = bytes(0);
                    let owner = self.map.shard_of(&key);
                    if parts.len() == 1 {
                        ops.push((owner, StepOp::Drop(key)));
                    } else {
                        let expire_at = match parts.get(2) {
                            Some(Frame::Integer(n)) if *n > 0 => *n as u64,
                            _ => 0,
                        };
                        ops.push((
                            owner,
                            StepOp::Restore {
                                key,
                                ty: bytes(1),
                                replace: true,
                                expire_at,
                                payload: bytes(3),
                                event: None,
                            },
                        ));
                    }
                }
                if ops.is_empty() {
                    return Step::Reply(reply);
                }
                self.held = reply;
                Step::Run(ops)
            }
            _ => Step::Reply(std::mem::take(&mut self.held)),
        }
    }

    /// Runs a gather's computation; its writes next, or its reply.
    fn compute(&mut self, g: &'static Gather, frames: Vec<Frame>) -> Step {
        let mut reply = Vec::new();
        let writes = (g.compute)(
            self.args.args(),
            &frames,
            &mut Reply::new(&mut reply, self.proto),
        );
        if writes.is_empty() {
            return Step::Reply(reply);
        }
        self.held = reply;
        // The writes' replies come back at a stage past every other.
        self.stage = 3;
        Step::Run(
            writes
                .into_iter()
                .map(|(pos, w)| (self.owner_of(pos), StepOp::Run(w)))
                .collect(),
        )
    }
}

/// Each reply parsed (null where one does not parse).
fn parse_all(results: &[Vec<u8>]) -> Vec<Frame> {
    results
        .iter()
        .map(|r| match frame::parse(r) {
            Ok(Some((f, _))) => f,
            _ => Frame::Null,
        })
        .collect()
}

fn int_of(reply: &[u8]) -> Option<i64> {
    match frame::parse(reply).ok()?? {
        (Frame::Integer(n), _) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: Coord, args: &[&str], owners: Vec<(usize, usize)>, replace: bool) -> CoordPlan {
        CoordPlan::new(
            kind,
            OwnedArgs::from_slices(args),
            owners,
            SlotMap::new(3),
            0,
            Proto::Resp2,
            replace,
        )
    }

    fn ops(step: Step) -> Vec<(usize, String)> {
        match step {
            Step::Run(ops) => ops
                .into_iter()
                .map(|(s, op)| {
                    let text = match op.clone() {
                        StepOp::Run(a) => a
                            .args()
                            .iter()
                            .map(|x| String::from_utf8_lossy(x).into_owned())
                            .collect::<Vec<_>>()
                            .join(" "),
                        StepOp::Dump(k) => format!("DUMP {}", String::from_utf8_lossy(&k)),
                        StepOp::Unlink(k) => format!("DEL {}", String::from_utf8_lossy(&k)),
                        StepOp::Lookup(keys) => format!("LOOKUP {}", keys.len()),
                        StepOp::Script(..) | StepOp::Drop(_) | StepOp::SnapshotBegin { .. } => {
                            format!("{op:?}")
                        }
                        StepOp::Part(..) | StepOp::Unwatch(_) => format!("{op:?}"),
                        StepOp::Restore {
                            key,
                            expire_at,
                            payload,
                            ..
                        } => format!(
                            "RESTORE {} {} {}",
                            String::from_utf8_lossy(&key),
                            expire_at,
                            String::from_utf8_lossy(&payload)
                        ),
                    };
                    (s, text)
                })
                .collect(),
            Step::Reply(r) => panic!("unexpected reply {}", String::from_utf8_lossy(&r)),
        }
    }

    fn reply(step: Step) -> Vec<u8> {
        match step {
            Step::Reply(r) => r,
            Step::Run(ops) => panic!("unexpected step {ops:?}"),
        }
    }

    #[test]
    fn msetnx_checks_then_sets_per_shard() {
        let mut p = plan(
            Coord::Msetnx,
            &["MSETNX", "a", "1", "b", "2", "c", "3"],
            vec![(1, 2), (3, 0), (5, 2)],
            false,
        );
        assert_eq!(p.shards, vec![0, 2]);
        assert_eq!(
            ops(p.next(&[])),
            vec![(0, "EXISTS b".into()), (2, "EXISTS a c".into())]
        );
        assert_eq!(
            ops(p.next(&[b":0\r\n".to_vec(), b":0\r\n".to_vec()])),
            vec![(0, "MSET b 2".into()), (2, "MSET a 1 c 3".into())]
        );
        assert_eq!(
            reply(p.next(&[b"+OK\r\n".to_vec(), b"+OK\r\n".to_vec()])),
            b":1\r\n"
        );
    }

    #[test]
    fn msetnx_sets_nothing_when_a_key_exists() {
        let mut p = plan(
            Coord::Msetnx,
            &["MSETNX", "a", "1", "b", "2"],
            vec![(1, 0), (3, 1)],
            false,
        );
        p.next(&[]);
        assert_eq!(
            reply(p.next(&[b":0\r\n".to_vec(), b":1\r\n".to_vec()])),
            b":0\r\n"
        );
    }

    #[test]
    fn rename_moves_value_and_deadline() {
        let mut p = plan(
            Coord::Rename,
            &["RENAME", "s", "d"],
            vec![(1, 0), (2, 1)],
            false,
        );
        assert_eq!(
            ops(p.next(&[])),
            vec![(0, "DUMP s".into()), (1, "EXISTS d".into())]
        );
        let dumped = b"*3\r\n$6\r\nstring\r\n:1234\r\n$1\r\nv\r\n".to_vec();
        assert_eq!(
            ops(p.next(&[dumped, b":1\r\n".to_vec()])),
            vec![(1, "RESTORE d 1234 v".into()), (0, "DEL s".into())]
        );
        assert_eq!(
            reply(p.next(&[b":1\r\n".to_vec(), b":1\r\n".to_vec()])),
            b"+OK\r\n"
        );
    }

    #[test]
    fn rename_of_a_missing_key_and_renamenx_onto_an_existing_one() {
        let mut p = plan(
            Coord::Rename,
            &["RENAME", "s", "d"],
            vec![(1, 0), (2, 1)],
            false,
        );
        p.next(&[]);
        assert_eq!(
            reply(p.next(&[b"$-1\r\n".to_vec(), b":0\r\n".to_vec()])),
            b"-ERR no such key\r\n"
        );
        let mut p = plan(
            Coord::RenameNx,
            &["RENAMENX", "s", "d"],
            vec![(1, 0), (2, 1)],
            false,
        );
        p.next(&[]);
        let dumped = b"*3\r\n$6\r\nstring\r\n:0\r\n$1\r\nv\r\n".to_vec();
        assert_eq!(reply(p.next(&[dumped, b":1\r\n".to_vec()])), b":0\r\n");
    }

    #[test]
    fn copy_keeps_the_source_and_honours_replace() {
        let dumped = b"*3\r\n$6\r\nstring\r\n:0\r\n$1\r\nv\r\n".to_vec();
        let mut p = plan(
            Coord::Copy,
            &["COPY", "s", "d"],
            vec![(1, 0), (2, 1)],
            false,
        );
        p.next(&[]);
        assert_eq!(
            reply(p.next(&[dumped.clone(), b":1\r\n".to_vec()])),
            b":0\r\n"
        );
        let mut p = plan(
            Coord::Copy,
            &["COPY", "s", "d", "REPLACE"],
            vec![(1, 0), (2, 1)],
            true,
        );
        p.next(&[]);
        assert_eq!(
            ops(p.next(&[dumped, b":1\r\n".to_vec()])),
            vec![(1, "RESTORE d 0 v".into())]
        );
        assert_eq!(reply(p.next(&[b":1\r\n".to_vec()])), b":1\r\n");
    }
}
