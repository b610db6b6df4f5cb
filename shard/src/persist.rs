//! Snapshots, as a shard sees them: the RDB file's header and footer, reading a file back
//! (each shard keeps the keys it owns), and the shard's persistence state (changes since
//! the last snapshot, when it was, how it went) that INFO, LASTSAVE and the `save`
//! schedule read.
//!
//! How a snapshot is taken: the shard that runs it pauses every shard (the coordinated
//! commands' pause), marks the instant on each ([`crate::store::snapshot`]: copy-on-write
//! per key), resumes them, then asks each shard for its keys in chunks and writes them
//! to one file, a plain Redis RDB (version 10) that redis-server loads. Its own I/O is
//! the server's (`server/src/persist.rs`); the messages are in `session::snapshot`.

use crate::args::OwnedArgs;
use crate::command::{self, Commands, Env, Lookup, Route};
use crate::conn::ConnId;
use crate::rdb::{self, op, ty, Reader};
use crate::state::State;
use crate::store::Keyspace;

/// Bytes of keys a shard encodes for one request of the saver.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// What a SAVE, BGSAVE or SHUTDOWN asked of this shard's saver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// BGSAVE, or the `save` schedule: nobody waits.
    Background,
    /// SAVE: the clients in `waiters` wait for the outcome.
    Foreground,
}

/// Redis's reply to a write while snapshots fail (see [`Persist::refuses_writes`]).
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's \
currently unable to persist to disk. Commands that may modify the data set are disabled, \
because this instance is configured to report errors during writes if RDB snapshotting \
fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about \
the RDB error.";

/// SAVE's reply once its snapshot ended with `result`.
pub fn save_reply(result: &Result<(), String>) -> Vec<u8> {
    match result {
        Ok(()) => b"+OK\r\n".to_vec(),
        Err(e) => format!("-ERR {e}\r\n").into_bytes(),
    }
}

/// A shard's persistence state. See the module docs.
#[derive(Debug)]
pub struct Persist {
    /// Writes since the last snapshot that succeeded (this shard's part of INFO's
    /// `rdb_changes_since_last_save`).
    pub dirty: u64,
    /// `dirty` when this shard's part of the snapshot in progress was taken.
    dirty_at_start: u64,
    /// Unix seconds of the last snapshot that succeeded, or of startup.
    pub lastsave: u64,
    /// Whether the last snapshot failed.
    pub last_failed: bool,
    /// Snapshots that succeeded since startup.
    pub saves: u64,
    /// How long the last snapshot took, seconds; -1 before the first.
    pub last_secs: i64,
    /// Unix ms when the snapshot in progress began, if one is.
    pub started_ms: Option<u64>,
    /// Unix ms of the last snapshot attempt (the schedule waits 5 s after a failure).
    pub last_try_ms: u64,
    /// A snapshot this shard's saver is to run.
    pub job: Option<Job>,
    /// This shard's saver is running a snapshot (from taking the job to answering).
    pub running: bool,
    /// A BGSAVE SCHEDULE waits for the snapshot in progress to end.
    pub scheduled: bool,
    /// SAVE clients (connection, hole in its output) waiting for the job.
    pub waiters: Vec<(ConnId, u32)>,
    /// The saver, to wake when a job arrives.
    pub saver: Option<std::task::Waker>,
    /// Keys the last load read, and how many of them had expired.
    pub loaded: (u64, u64),
    /// The append-only log's rewrites and files, as far as this shard knows.
    pub aof: AofInfo,
}

/// The append-only files' state INFO shows (see [`crate::aof`]).
#[derive(Debug)]
pub struct AofInfo {
    /// A rewrite (BGREWRITEAOF) is asked of this shard's saver.
    pub asked: bool,
    /// BGREWRITEAOF came while a snapshot ran: asked once it ends.
    pub scheduled: bool,
    /// Unix ms the rewrite in progress began, if one is.
    pub started_ms: Option<u64>,
    /// Rewrites that succeeded since startup.
    pub rewrites: u64,
    /// Whether the last rewrite failed, and how many in a row did.
    pub failed: bool,
    /// Rewrites that failed in a row.
    pub failures: u64,
    /// Seconds the last rewrite took; -1 before the first.
    pub last_secs: i64,
    /// Bytes of the base file (on the shard that wrote or loaded it).
    pub base_size: u64,
    /// Bytes of this shard's increments.
    pub incr_size: u64,
    /// `incr_size` of every shard together when the last rewrite ended (the automatic
    /// rewrite's growth is measured from it).
    pub size_at_rewrite: u64,
    /// Syncs of `everysec` that found the previous one still running.
    pub delayed_fsync: u64,
}

impl Default for AofInfo {
    fn default() -> Self {
        AofInfo {
            asked: false,
            scheduled: false,
            started_ms: None,
            rewrites: 0,
            failed: false,
            failures: 0,
            last_secs: -1,
            base_size: 0,
            incr_size: 0,
            size_at_rewrite: 0,
            delayed_fsync: 0,
        }
    }
}

impl Default for Persist {
    fn default() -> Self {
        Persist {
            dirty: 0,
            dirty_at_start: 0,
            lastsave: crate::ticks::unix_ms() / 1000,
            last_failed: false,
            saves: 0,
            last_secs: -1,
            started_ms: None,
            last_try_ms: 0,
            job: None,
            running: false,
            scheduled: false,
            waiters: Vec::new(),
            saver: None,
            loaded: (0, 0),
            aof: AofInfo::default(),
        }
    }
}

impl Persist {
    /// Asks the saver for `job`.
    pub fn request(&mut self, job: Job) {
        if self.job != Some(Job::Foreground) {
            self.job = Some(job);
        }
        if let Some(w) = self.saver.take() {
            w.wake();
        }
    }

    /// Asks the saver for a rewrite of the append-only files.
    pub fn request_rewrite(&mut self) {
        self.aof.asked = true;
        if let Some(w) = self.saver.take() {
            w.wake();
        }
    }

    /// Whether writes (and PING) are refused with [`MISCONF`]: the last snapshot failed,
    /// `save` has a schedule and `stop-writes-on-bgsave-error` is on.
    pub fn refuses_writes(&self, config: &crate::config::Config) -> bool {
        self.last_failed && config.stop_writes_on_bgsave_error && !config.save.is_empty()
    }

    /// A rewrite began now on this shard (its instant).
    pub fn rewrite_began(&mut self, now_ms: u64) {
        self.aof.started_ms = Some(now_ms);
    }

    /// The rewrite in progress ended (`ok`: the new base is in place).
    pub fn rewrite_ended(&mut self, ok: bool, now_ms: u64) {
        let Some(start) = self.aof.started_ms.take() else {
            return;
        };
        self.aof.last_secs = (now_ms.saturating_sub(start) / 1000) as i64;
        self.aof.failed = !ok;
        if ok {
            self.aof.rewrites += 1;
            self.aof.failures = 0;
        } else {
            self.aof.failures += 1;
        }
        if std::mem::take(&mut self.aof.scheduled) {
            self.request_rewrite();
        }
    }

    /// Whether a snapshot is under way as far as this shard knows: asked of its saver,
    /// run by it, or marked here by another shard's.
    pub fn busy(&self) -> bool {
        self.started_ms.is_some()
            || self.job.is_some()
            || self.running
            || self.aof.started_ms.is_some()
            || self.aof.asked
    }

    /// This shard's part of a snapshot began now.
    pub fn began(&mut self, now_ms: u64) {
        self.started_ms = Some(now_ms);
        self.last_try_ms = now_ms;
        self.dirty_at_start = self.dirty;
    }

    /// The snapshot in progress ended (`ok`: its file is in place) after `secs`.
    pub fn ended(&mut self, ok: bool, now_ms: u64) {
        let Some(start) = self.started_ms.take() else {
            return;
        };
        self.last_secs = (now_ms.saturating_sub(start) / 1000) as i64;
        self.last_failed = !ok;
        if ok {
            self.dirty -= self.dirty_at_start.min(self.dirty);
            self.lastsave = now_ms / 1000;
            self.saves += 1;
        }
        if std::mem::take(&mut self.scheduled) {
            self.request(Job::Background);
        }
    }
}

/// The start of a snapshot file: the magic and version, the auxiliary fields Redis 7.0
/// writes, the function libraries, and database 0.
pub fn header(out: &mut Vec<u8>, now_ms: u64, used_memory: u64, libraries: &[Vec<u8>]) {
    out.extend_from_slice(format!("REDIS{:04}", rdb::RDB_VERSION).as_bytes());
    let aux = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.push(op::AUX);
        rdb::put_string(out, name.as_bytes());
        rdb::put_string_packed(out, value.as_bytes(), false);
    };
    aux(out, "redis-ver", crate::command::meta::REDIS_VERSION);
    aux(out, "redis-bits", "64");
    aux(out, "ctime", &(now_ms / 1000).to_string());
    aux(out, "used-mem", &used_memory.to_string());
    aux(out, "aof-base", "0");
    for code in libraries {
        out.push(rdb::OPCODE_FUNCTION2);
        rdb::put_string_packed(out, code, true);
    }
    out.push(op::SELECTDB);
    rdb::put_len(out, 0);
}

/// The end of a snapshot file whose bytes before it have CRC `crc`: the EOF opcode and
/// the checksum (zero when `rdbchecksum no`, which loaders take as "not checked").
pub fn footer(out: &mut Vec<u8>, crc: u64, checksum: bool) {
    out.push(op::EOF);
    let crc = if checksum {
        rdb::crc64(crc, &[op::EOF])
    } else {
        0
    };
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A value read from a snapshot.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    /// A string.
    Str(Vec<u8>),
    /// A list's elements, head first.
    List(Vec<Vec<u8>>),
    /// A set's members.
    Set(Vec<Vec<u8>>),
    /// A hash's fields and values, alternating.
    Hash(Vec<Vec<u8>>),
    /// A sorted set's members and scores.
    ZSet(Vec<(Vec<u8>, f64)>),
}

/// One thing read from a snapshot file.
#[derive(Debug, PartialEq)]
pub enum Item {
    /// A key: its deadline (Unix ms, 0 for none) and value, or `None` for a key the
    /// reader did not want (another shard's), stepped over without decoding.
    Key(Vec<u8>, u64, Option<Loaded>),
    /// A function library's code.
    Function(Vec<u8>),
    /// Something that changes nothing here (an auxiliary field, sizes).
    Meta,
    /// The end: everything after it is the checksum.
    End,
}

/// Reads a snapshot file item by item from a window of its bytes, checking its CRC.
pub struct Parser {
    crc: u64,
    /// The file's RDB version.
    pub version: u16,
}

/// What [`Parser::next`] found.
pub enum Next {
    /// An item, and how many bytes of the window it took.
    Item(Item, usize),
    /// The window ends inside the next item: more bytes are needed.
    More,
}

impl Parser {
    /// Reads the file's first 9 bytes (`REDIS` and a 4-digit version).
    pub fn start(head: &[u8]) -> Result<Parser, String> {
        let magic = head
            .get(..9)
            .ok_or("the file is too short to be an RDB file")?;
        if &magic[..5] != b"REDIS" {
            return Err("Wrong signature trying to load DB from file".into());
        }
        let version: u16 = std::str::from_utf8(&magic[5..])
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or("Wrong signature trying to load DB from file")?;
        if !(1..=rdb::RDB_LOAD_VERSION).contains(&version) {
            return Err(format!("Can't handle RDB format version {version}"));
        }
        Ok(Parser {
            crc: rdb::crc64(0, magic),
            version,
        })
    }

    /// The next item of `window` (the bytes after the last item taken). `wanted` says
    /// whether a key's value should be decoded. `Err` for a file that is not valid.
    pub fn next(&mut self, window: &[u8], wanted: &dyn Fn(&[u8]) -> bool) -> Result<Next, String> {
        let mut r = Reader::new(window);
        let item = match read_item(&mut r, wanted)? {
            Some(item) => item,
            None => return Ok(Next::More),
        };
        self.crc = rdb::crc64(self.crc, &window[..r.pos()]);
        Ok(Next::Item(item, r.pos()))
    }

    /// Checks the 8 bytes after the EOF opcode against the CRC of everything before
    /// them (a file saved with `rdbchecksum no` has zeros there: not checked).
    pub fn check(&self, stored: &[u8], verify: bool) -> Result<(), String> {
        if self.version < 5 {
            return Ok(());
        }
        let stored = u64::from_le_bytes(
            stored
                .try_into()
                .map_err(|_| "Short read or OOM loading DB. Unrecoverable error, aborting now.")?,
        );
        if verify && stored != 0 && stored != self.crc {
            return Err(format!(
                "Wrong RDB checksum expected: ({:x}) got: ({stored:x}). Aborting now.",
                self.crc
            ));
        }
        Ok(())
    }
}

/// Reads one item; `Ok(None)` when `r` ends inside it.
fn read_item(r: &mut Reader, wanted: &dyn Fn(&[u8]) -> bool) -> Result<Option<Item>, String> {
    let mut expire_at = 0u64;
    loop {
        let Some(t) = r.byte() else {
            return Ok(None);
        };
        let meta = |x: Option<()>| Ok(x.map(|_| Item::Meta));
        match t {
            op::EOF => return Ok(Some(Item::End)),
            op::AUX => return meta(r.skip_string().and_then(|_| r.skip_string())),
            op::RESIZEDB => return meta(r.length().and_then(|_| r.length()).map(drop)),
            op::SELECTDB => {
                return match r.length() {
                    None => Ok(None),
                    Some(0) => Ok(Some(Item::Meta)),
                    Some(db) => Err(format!(
                        "the file holds keys of database {db}; corekv has only database 0"
                    )),
                }
            }
            op::EXPIRETIME_MS => match r.u64_le() {
                Some(at) => expire_at = at,
                None => return Ok(None),
            },
            op::EXPIRETIME => match r.u32_le() {
                Some(at) => expire_at = u64::from(at) * 1000,
                None => return Ok(None),
            },
            op::IDLE => {
                if r.length().is_none() {
                    return Ok(None);
                }
            }
            op::FREQ => {
                if r.byte().is_none() {
                    return Ok(None);
                }
            }
            op::MODULE_AUX => {
                return Err("the file holds module data; corekv loads no modules".into())
            }
            rdb::OPCODE_FUNCTION2 => return Ok(r.string().map(Item::Function)),
            rdb::OPCODE_FUNCTION_PRE_GA => {
                return Err("the file holds functions in Redis's pre-release format".into())
            }
            t => {
                let Some(key) = r.string() else {
                    return Ok(None);
                };
                if !supported(t) {
                    return Err(format!(
                        "key '{}' has a type corekv does not support (RDB type {t})",
                        String::from_utf8_lossy(&key)
                    ));
                }
                let value = if wanted(&key) {
                    match read_value(r, t) {
                        Ok(Some(v)) => Some(v),
                        Ok(None) => return Ok(None),
                        Err(()) => return Err(corrupt(&key)),
                    }
                } else {
                    match skip_value(r, t) {
                        Some(()) => None,
                        None => return Ok(None),
                    }
                };
                return Ok(Some(Item::Key(key, expire_at, value)));
            }
        }
    }
}

fn corrupt(key: &[u8]) -> String {
    format!(
        "the value of key '{}' is corrupt",
        String::from_utf8_lossy(key)
    )
}

fn supported(t: u8) -> bool {
    matches!(
        t,
        ty::STRING
            | ty::LIST
            | ty::SET
            | ty::ZSET
            | ty::HASH
            | ty::ZSET_2
            | ty::HASH_ZIPMAP
            | ty::LIST_ZIPLIST
            | ty::SET_INTSET
            | ty::ZSET_ZIPLIST
            | ty::HASH_ZIPLIST
            | ty::LIST_QUICKLIST
            | ty::HASH_LISTPACK
            | ty::ZSET_LISTPACK
            | ty::LIST_QUICKLIST_2
            | ty::SET_LISTPACK
    )
}

/// Steps over a value of type `t`; `None` when `r` ends inside it.
fn skip_value(r: &mut Reader, t: u8) -> Option<()> {
    match t {
        ty::LIST | ty::SET => {
            for _ in 0..r.count()? {
                r.skip_string()?;
            }
        }
        ty::ZSET => {
            for _ in 0..r.count()? {
                r.skip_string()?;
                r.text_double()?;
            }
        }
        ty::ZSET_2 => {
            for _ in 0..r.count()? {
                r.skip_string()?;
                r.bytes(8)?;
            }
        }
        ty::HASH => {
            for _ in 0..r.count()? {
                r.skip_string()?;
                r.skip_string()?;
            }
        }
        ty::LIST_QUICKLIST => {
            for _ in 0..r.count()? {
                r.skip_string()?;
            }
        }
        ty::LIST_QUICKLIST_2 => {
            for _ in 0..r.count()? {
                r.length()?;
                r.skip_string()?;
            }
        }
        _ => r.skip_string()?,
    }
    Some(())
}

/// Reads a value of type `t`: `Ok(None)` when `r` ends inside it, `Err` when it is
/// malformed.
fn read_value(r: &mut Reader, t: u8) -> Result<Option<Loaded>, ()> {
    macro_rules! need {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return Ok(None),
            }
        };
    }
    let strings =
        |r: &mut Reader, n: usize| -> Option<Vec<Vec<u8>>> { (0..n).map(|_| r.string()).collect() };
    let pairs_to_zset = |items: Vec<Vec<u8>>| -> Result<Vec<(Vec<u8>, f64)>, ()> {
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(m), Some(s)) = (it.next(), it.next()) {
            let score = crate::float::parse_double(&s).ok_or(())?;
            out.push((m, score));
        }
        Ok(out)
    };
    let blob = |r: &mut Reader| r.string();
    Ok(Some(match t {
        ty::STRING => Loaded::Str(need!(r.string())),
        ty::LIST => {
            let n = need!(r.count());
            Loaded::List(need!(strings(r, n)))
        }
        ty::SET => {
            let n = need!(r.count());
            Loaded::Set(need!(strings(r, n)))
        }
        ty::HASH => {
            let n = need!(r.count());
            Loaded::Hash(need!(strings(r, n * 2)))
        }
        ty::ZSET | ty::ZSET_2 => {
            let n = need!(r.count());
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let m = need!(r.string());
                let score = if t == ty::ZSET {
                    need!(r.text_double())
                } else {
                    need!(r.binary_double())
                };
                if score.is_nan() {
                    return Err(());
                }
                out.push((m, score));
            }
            Loaded::ZSet(out)
        }
        ty::HASH_ZIPMAP => Loaded::Hash(rdb::zipmap_entries(&need!(blob(r))).ok_or(())?),
        ty::LIST_ZIPLIST => Loaded::List(rdb::ziplist_entries(&need!(blob(r))).ok_or(())?),
        ty::SET_INTSET => Loaded::Set(rdb::intset_members(&need!(blob(r))).ok_or(())?),
        ty::SET_LISTPACK => Loaded::Set(rdb::listpack_entries(&need!(blob(r))).ok_or(())?),
        ty::HASH_ZIPLIST | ty::HASH_LISTPACK => {
            let b = need!(blob(r));
            let items = if t == ty::HASH_ZIPLIST {
                rdb::ziplist_entries(&b)
            } else {
                rdb::listpack_entries(&b)
            };
            let items = items.ok_or(())?;
            if items.len() % 2 != 0 {
                return Err(());
            }
            Loaded::Hash(items)
        }
        ty::ZSET_ZIPLIST | ty::ZSET_LISTPACK => {
            let b = need!(blob(r));
            let items = if t == ty::ZSET_ZIPLIST {
                rdb::ziplist_entries(&b)
            } else {
                rdb::listpack_entries(&b)
            };
            let items = items.ok_or(())?;
            if items.len() % 2 != 0 {
                return Err(());
            }
            Loaded::ZSet(pairs_to_zset(items)?)
        }
        ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => {
            let n = need!(r.count());
            let mut out = Vec::new();
            for _ in 0..n {
                // Quicklist 2 nodes say whether they are packed (2) or one plain
                // element (1).
                let container = if t == ty::LIST_QUICKLIST_2 {
                    need!(r.length())
                } else {
                    2
                };
                let b = need!(blob(r));
                match container {
                    1 => out.push(b),
                    2 if t == ty::LIST_QUICKLIST => out.extend(rdb::ziplist_entries(&b).ok_or(())?),
                    2 => out.extend(rdb::listpack_entries(&b).ok_or(())?),
                    _ => return Err(()),
                }
            }
            Loaded::List(out)
        }
        _ => return Err(()),
    }))
}

/// Elements per command when a loaded collection is written.
const BATCH: usize = 512;

/// Writes a key read from a snapshot into this shard's keyspace, through the commands
/// that build each type (so encodings follow the configured limits, as if a client
/// had written it). A key whose deadline passed is dropped unless `keep_expired` (an
/// AOF base: the log that follows may still touch it); returns whether it was kept.
pub fn apply(
    state: &mut State,
    key: &[u8],
    expire_at: u64,
    value: Loaded,
    keep_expired: bool,
) -> bool {
    if !keep_expired && expire_at != 0 && expire_at < state.now() {
        state.persist.loaded.1 += 1;
        return false;
    }
    // Loading raises no keyspace events (Redis's loading publishes none).
    let flags = std::mem::take(&mut state.store.events.flags);
    let now = if keep_expired { 0 } else { state.now() };
    commands(key, expire_at, value, |a| run_command(state, a.args(), now));
    state.store.events.flags = flags;
    state.persist.loaded.0 += 1;
    true
}

/// The commands that write `value` under `key`, each type as the command that builds
/// it (a collection a batch at a time), then its deadline (`PEXPIREAT`), to `emit`.
pub fn commands(key: &[u8], expire_at: u64, value: Loaded, mut emit: impl FnMut(&OwnedArgs)) {
    let mut a = OwnedArgs::new();
    let start = |a: &mut OwnedArgs, name: &str| {
        a.clear();
        a.push(name.as_bytes());
        a.push(key);
    };
    let (name, items, per) = match value {
        Loaded::Str(v) => ("set", vec![v], 1),
        Loaded::List(items) => ("rpush", items, BATCH),
        Loaded::Set(items) => ("sadd", items, BATCH),
        Loaded::Hash(items) => ("hset", items, BATCH * 2),
        Loaded::ZSet(pairs) => (
            "zadd",
            pairs
                .into_iter()
                .flat_map(|(m, score)| [format!("{score:?}").into_bytes(), m])
                .collect(),
            BATCH * 2,
        ),
    };
    for chunk in items.chunks(per) {
        start(&mut a, name);
        chunk.iter().for_each(|e| a.push(e));
        emit(&a);
    }
    if expire_at != 0 {
        start(&mut a, "pexpireat");
        a.push(expire_at.to_string().as_bytes());
        emit(&a);
    }
}

/// Runs keyed command `args` on this shard's keyspace at `now` (0: nothing expires),
/// its reply dropped.
pub(crate) fn run_command(state: &mut State, args: crate::args::Args, now: u64) {
    let Lookup::Found(spec) = Commands::global().lookup(args) else {
        unreachable!("loading runs known commands");
    };
    let Route::Keyed(f, _) = spec.route else {
        unreachable!("loading runs keyed commands");
    };
    let env = Env {
        now,
        max_bulk_len: u64::MAX,
        coll: state.config.coll,
        shared_ints: state.config.shared_ints(),
        may_block: false,
        write: false,
    };
    let mut out = Vec::new();
    let keyspace = Keyspace::new(&mut state.store, &mut state.timers);
    command::run_keyed(
        f,
        spec.name,
        args,
        keyspace,
        env,
        &mut out,
        corekv_protocol::Proto::Resp2,
        None,
    );
}

/// Loads a function library read from a snapshot into this shard's engine (every shard
/// reads the whole file, so each loads every library).
pub fn load_library(state: &mut State, code: &[u8]) -> Result<(), String> {
    state
        .scripts
        .function_load(code, true)
        .map(drop)
        .map_err(|e| format!("cannot load a function library from the snapshot: {e}"))
}

/// The function libraries' code, for a snapshot's header.
pub fn libraries(state: &State) -> Vec<Vec<u8>> {
    state.scripts.library_codes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, Str, Value};
    use crate::timer::Timers;

    fn parse_all(file: &[u8]) -> Vec<Item> {
        let mut p = Parser::start(file).expect("header");
        let mut at = 9;
        let mut items = Vec::new();
        loop {
            match p.next(&file[at..], &|_| true).expect("valid") {
                Next::Item(Item::End, n) => {
                    at += n;
                    p.check(&file[at..], true).expect("checksum");
                    return items;
                }
                Next::Item(item, n) => {
                    at += n;
                    items.push(item);
                }
                Next::More => panic!("truncated at {at}"),
            }
        }
    }

    #[test]
    fn a_snapshot_reads_back_with_every_type_and_copy_on_write() {
        let mut s = Store::new();
        let mut t = Timers::new(0);
        s.insert(b"str", Value::Str(Str::Raw(b"hello")), 0, &mut t);
        s.insert(b"int", Value::Str(Str::Int(-12345)), 99_000, &mut t);
        let big = b"x".repeat(100);
        let idx = s.insert(b"big", Value::Str(Str::Raw(&big)), 0, &mut t);
        assert!(s.begin_snapshot(true));
        assert!(!s.begin_snapshot(true), "one at a time");
        // A write before the walk reaches the key: the snapshot keeps the old value.
        s.set_value(idx, Value::Str(Str::Raw(b"changed")));
        s.insert(b"later", Value::Str(Str::Raw(b"v")), 0, &mut t);
        let mut file = Vec::new();
        header(&mut file, 0, 0, &[b"#!lua name=x\n".to_vec()]);
        let mut body = Vec::new();
        while !s.snapshot_chunk(&mut body, 1) {}
        assert_eq!(s.end_snapshot(), 3);
        let crc = rdb::crc64(0, &file);
        let crc = rdb::crc64(crc, &body);
        file.extend_from_slice(&body);
        footer(&mut file, crc, true);
        let mut items = parse_all(&file);
        items.retain(|i| *i != Item::Meta);
        assert_eq!(items[0], Item::Function(b"#!lua name=x\n".to_vec()));
        let mut keys: Vec<_> = items[1..]
            .iter()
            .map(|i| match i {
                Item::Key(k, at, Some(Loaded::Str(v))) => (k.clone(), *at, v.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                (b"big".to_vec(), 0, big.clone()),
                (b"int".to_vec(), 99_000, b"-12345".to_vec()),
                (b"str".to_vec(), 0, b"hello".to_vec()),
            ]
        );
        // A damaged byte fails the checksum.
        let n = file.len();
        file[n - 12] ^= 1;
        let mut p = Parser::start(&file).unwrap();
        let mut at = 9;
        let mut failed = false;
        while at < file.len() {
            match p.next(&file[at..], &|_| true) {
                Ok(Next::Item(Item::End, n)) => {
                    failed = p.check(&file[at + n..], true).is_err();
                    break;
                }
                Ok(Next::Item(_, n)) => at += n,
                Ok(Next::More) | Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed);
    }

    #[test]
    fn damaged_files_never_panic_the_reader() {
        let mut st = Store::new();
        let mut t = Timers::new(0);
        for i in 0..50u32 {
            let k = format!("k{i}");
            st.insert(
                k.as_bytes(),
                Value::Str(Str::Raw(&b"xy".repeat(i as usize))),
                0,
                &mut t,
            );
        }
        let mut file = Vec::new();
        header(&mut file, 0, 0, &[]);
        st.begin_snapshot(true);
        st.snapshot_chunk(&mut file, usize::MAX);
        footer(&mut file, 0, false);
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..3000 {
            let mut f = file.clone();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(9..f.len());
                f[i] = rng.u8(..);
            }
            f.truncate(rng.usize(9..=f.len()));
            let mut p = Parser::start(&f).unwrap();
            let mut at = 9;
            while at < f.len() {
                match p.next(&f[at..], &|_| true) {
                    Ok(Next::Item(Item::End, _)) | Ok(Next::More) | Err(_) => break,
                    Ok(Next::Item(_, n)) => at += n,
                }
            }
        }
    }

    #[test]
    fn truncated_windows_ask_for_more_and_unknown_types_name_the_key() {
        let mut file = Vec::new();
        header(&mut file, 0, 0, &[]);
        let mut s = Store::new();
        let mut t = Timers::new(0);
        s.insert(b"k", Value::Str(Str::Raw(&b"v".repeat(300))), 0, &mut t);
        s.begin_snapshot(false);
        s.snapshot_chunk(&mut file, usize::MAX);
        // Every window that cuts the key's value short asks for more.
        let mut p = Parser::start(&file).unwrap();
        let mut at = 9;
        while let Next::Item(Item::Meta, n) = p.next(&file[at..], &|_| true).unwrap() {
            at += n;
        }
        for cut in at..file.len() {
            let mut p = Parser::start(&file).unwrap();
            assert!(matches!(p.next(&file[at..cut], &|_| true), Ok(Next::More)));
        }
        let mut p = Parser::start(&file).unwrap();
        assert!(matches!(
            p.next(&file[at..], &|_| false),
            Ok(Next::Item(Item::Key(_, 0, None), _))
        ));
        let stream = [ty::STREAM_LISTPACKS_2, 1, b'q'];
        let mut p = Parser::start(b"REDIS0010").unwrap();
        let err = p.next(&stream, &|_| true).err().expect("refused");
        assert!(err.contains("key 'q'") && err.contains("type 19"), "{err}");
    }
}
