//! One shard's slow log: commands that ran longer than `slowlog-log-slower-than`, newest
//! first, at most `slowlog-max-len` kept, with Redis's limits on what an entry holds
//! (32 arguments, 128 bytes each, the rest summarised).
//!
//! SLOWLOG GET merges every shard's log by time. An entry is logged on the shard that
//! ran the command; for a command forwarded from another shard's client the client's
//! address and name are not known there and are left empty.

use std::collections::VecDeque;

use corekv_protocol::Reply;

/// Most arguments an entry keeps (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const MAX_ARGC: usize = 32;
/// Longest argument an entry keeps (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const MAX_STRING: usize = 128;

/// One slow command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unique across shards: this shard's sequence number × shards + shard.
    pub id: u64,
    /// When it ran, Unix microseconds (SLOWLOG GET shows seconds).
    pub time_us: u64,
    /// How long it ran, microseconds.
    pub duration_us: u64,
    /// Its arguments, shortened as Redis shortens them.
    pub args: Vec<Vec<u8>>,
    /// Client `ip:port`, empty when the command came from another shard.
    pub addr: String,
    /// Client name, empty when unset or unknown.
    pub name: Vec<u8>,
}

/// A shard's slow log.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
    seq: u64,
}

impl SlowLog {
    /// Adds an entry made of `args` (already the command's full argument list), keeping at
    /// most `max_len` entries. `shard`/`shards` make the id unique across shards.
    #[allow(clippy::too_many_arguments)]
    pub fn push<'a>(
        &mut self,
        max_len: u64,
        shard: usize,
        shards: usize,
        time_us: u64,
        duration_us: u64,
        args: impl ExactSizeIterator<Item = &'a [u8]>,
        addr: &str,
        name: &[u8],
    ) {
        if max_len == 0 {
            return;
        }
        let argc = args.len();
        let keep = if argc > MAX_ARGC { MAX_ARGC - 1 } else { argc };
        let mut kept: Vec<Vec<u8>> = args
            .take(keep)
            .map(|a| {
                if a.len() > MAX_STRING {
                    let mut s = a[..MAX_STRING].to_vec();
                    s.extend_from_slice(
                        format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                    );
                    s
                } else {
                    a.to_vec()
                }
            })
            .collect();
        if argc > MAX_ARGC {
            kept.push(format!("... ({} more arguments)", argc - MAX_ARGC + 1).into_bytes());
        }
        let id = self.seq * shards as u64 + shard as u64;
        self.seq += 1;
        self.entries.push_front(Entry {
            id,
            time_us,
            duration_us,
            args: kept,
            addr: addr.to_string(),
            name: name.to_vec(),
        });
        self.trim(max_len);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every entry (ids keep growing, as in Redis).
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Drops the oldest entries beyond `max_len` (after CONFIG SET slowlog-max-len).
    pub fn trim(&mut self, max_len: u64) {
        while self.entries.len() as u64 > max_len {
            self.entries.pop_back();
        }
    }

    /// Newest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

impl Entry {
    /// The entry as SLOWLOG GET shows it: id, Unix seconds, microseconds, arguments,
    /// client address, client name.
    pub fn encode(&self, out: &mut Reply) {
        out.array(6);
        out.int(self.id as i64);
        out.int((self.time_us / 1_000_000) as i64);
        out.int(self.duration_us as i64);
        out.array(self.args.len());
        for a in &self.args {
            out.bulk(a);
        }
        out.bulk(self.addr.as_bytes());
        out.bulk(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(log: &mut SlowLog, max: u64, args: &[&[u8]]) {
        log.push(
            max,
            1,
            4,
            7_000_000,
            15,
            args.iter().copied(),
            "1.2.3.4:5",
            b"",
        );
    }

    #[test]
    fn newest_first_bounded_ids_unique() {
        let mut log = SlowLog::default();
        for i in 0..5u8 {
            push(&mut log, 3, &[b"get", &[b'a' + i]]);
        }
        let ids: Vec<u64> = log.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![17, 13, 9]);
        assert_eq!(log.iter().next().unwrap().args[1], b"e");
        log.trim(1);
        assert_eq!(log.len(), 1);
        log.reset();
        assert!(log.is_empty());
        push(&mut log, 0, &[b"get"]);
        assert!(log.is_empty());
    }

    #[test]
    fn long_arguments_are_shortened_as_redis() {
        let mut log = SlowLog::default();
        let big = vec![b'x'; 200];
        let many: Vec<&[u8]> = std::iter::repeat_n(&b"a"[..], 40).collect();
        push(&mut log, 10, &[b"set", &big]);
        let e = log.iter().next().unwrap();
        assert_eq!(e.args[1].len(), 128 + "... (72 more bytes)".len());
        assert!(e.args[1].ends_with(b"... (72 more bytes)"));
        push(&mut log, 10, &many);
        let e = log.iter().next().unwrap();
        assert_eq!(e.args.len(), 32);
        assert_eq!(e.args[31], b"... (9 more arguments)");
    }
}
