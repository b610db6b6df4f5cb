//! SAVE, BGSAVE, LASTSAVE: snapshots on demand (see [`crate::persist`]). The shard that
//! receives one runs the snapshot (its saver, in the server, pauses every shard for the
//! instant and writes the file); every shard learns when one begins and ends, so any of
//! them answers LASTSAVE and "in progress" alike. BGREWRITEAOF goes to shard 0, whose
//! saver runs every rewrite of the append-only files (see [`crate::aof`]).

use super::super::{errors, is, Args, Fanout, Flow, Local, MergeData, Plan, Targets};
use crate::assembly::MergeCtx;
use crate::persist::Job;
use corekv_protocol::Reply;

/// BGREWRITEAOF: asks shard 0's saver for a rewrite (one at a time, after a snapshot
/// in progress).
pub(super) const BGREWRITEAOF: Fanout = Fanout {
    check: |_, _| {
        Some(Plan {
            targets: Targets::One(0),
            args: Default::default(),
            data: MergeData::None,
        })
    },
    part: |st, _, out| {
        let p = &mut st.persist;
        if p.aof.started_ms.is_some() || p.aof.asked {
            out.err("Background append only file rewriting already in progress");
        } else if p.busy() {
            p.aof.scheduled = true;
            out.simple(b"Background append only file rewriting scheduled");
        } else {
            p.request_rewrite();
            out.simple(b"Background append only file rewriting started");
        }
    },
    merge: |_: &mut MergeCtx, _: &MergeData, parts: &[&[u8]], out: &mut Reply| {
        out.raw(parts.first().copied().unwrap_or_default())
    },
};

/// SAVE: replies once the file is in place (other clients keep being served meanwhile,
/// where Redis blocks them).
pub(super) fn save(l: &mut Local, _: Args) -> Flow {
    if l.persist.busy() {
        l.reply().err("Background save already in progress");
        return Flow::Continue;
    }
    Flow::Snapshot
}

/// BGSAVE \[SCHEDULE\].
pub(super) fn bgsave(l: &mut Local, args: Args) -> Flow {
    let schedule = match args.len() {
        1 => false,
        2 if is(args.get(1), "schedule") => true,
        _ => {
            l.reply().err(errors::SYNTAX);
            return Flow::Continue;
        }
    };
    if l.persist.busy() {
        if schedule {
            l.persist.scheduled = true;
            l.reply().simple(b"Background saving scheduled");
        } else {
            l.reply().err("Background save already in progress");
        }
        return Flow::Continue;
    }
    l.persist.request(Job::Background);
    l.reply().simple(b"Background saving started");
    Flow::Continue
}

/// LASTSAVE: Unix time of the last snapshot that succeeded (startup before the first).
pub(super) fn lastsave(l: &mut Local, _: Args) -> Flow {
    let at = l.persist.lastsave as i64;
    l.reply().int(at);
    Flow::Continue
}
