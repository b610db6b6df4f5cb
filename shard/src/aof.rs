//! The append-only log, as a shard sees it: the records its writes append (every write
//! command in RESP form, made deterministic), the hand-off of those bytes to the
//! server's log writer, durability for `appendfsync always`, the manifest that names
//! the files, and replaying a log at startup.
//!
//! What is logged: every keyed write that ran without error goes through
//! [`command::run_keyed`](crate::command::run_keyed), which calls [`record`]: the command
//! as it came, except that relative deadlines become absolute (`PEXPIREAT`, `SET ..
//! PXAT`), a deadline already past becomes `DEL`, and SPOP becomes the `SREM` of what it
//! popped. The store logs `DEL` for every key it removes by expiry or eviction, so a
//! replay never has to decide what had expired: it runs with expiry off (`now` 0), as
//! Redis loads its AOF. A script logs the writes it made (never the script); a fan-out
//! write (FLUSHALL, FUNCTION LOAD) logs its part on each shard; a key written by a
//! cross-shard step (RENAME, COPY, a script across shards) logs the commands that
//! rebuild it. The records of one command, EXEC or step that wrote more than one are
//! wrapped in `MULTI`/`EXEC`, so a torn tail never applies half of them.
//!
//! Files: one directory (`appenddirname`) holding, as Redis 7's multi-part AOF, a base
//! (an RDB snapshot), the increments (here one per shard and generation) and the
//! manifest that lists them. A rewrite (BGREWRITEAOF) is a snapshot: at its instant
//! every shard starts a new increment ([`Log::rotate`]), and once the base is written
//! the manifest drops the older files.

use std::task::Waker;

use corekv_protocol::frame::{self, Frame};

use crate::args::Args;
use crate::persist::{self, Item, Next, Parser};

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Every batch of records is durable before the replies that follow it leave.
    Always,
    /// Synced about once a second.
    EverySec,
    /// Left to the kernel.
    No,
}

impl Fsync {
    /// The setting's text.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }

    /// Parses the setting (case-insensitive).
    pub fn parse(text: &[u8]) -> Option<Fsync> {
        match text.to_ascii_lowercase().as_slice() {
            b"always" => Some(Fsync::Always),
            b"everysec" => Some(Fsync::EverySec),
            b"no" => Some(Fsync::No),
            _ => None,
        }
    }
}

/// Bytes the writer takes from a shard's log: records of finished generations (a
/// rotation happened) and of the current one.
#[derive(Debug, Default)]
pub struct Taken {
    /// `(generation, records)` of increments that are finished, oldest first.
    pub sealed: Vec<(u64, Vec<u8>)>,
    /// The current generation and its new records.
    pub current: (u64, Vec<u8>),
    /// [`Log::appended`] at the time of taking: once these bytes are durable, every
    /// record up to this count is.
    pub upto: u64,
}

/// A shard's log. See the module docs.
#[derive(Debug, Default)]
pub struct Log {
    /// Whether writes are logged (`appendonly yes`, and not while loading).
    pub on: bool,
    /// Records not yet handed to the writer.
    buf: Vec<u8>,
    /// Increment generation `buf` belongs to.
    gen: u64,
    /// The newest generation whose file the manifest lists: records of a newer one
    /// wait in memory until it does.
    allowed: u64,
    /// Finished generations not yet handed to the writer.
    sealed: Vec<(u64, Vec<u8>)>,
    /// Bytes handed to the writer (this run).
    taken: u64,
    /// Bytes known durable.
    durable: u64,
    /// Open groups (a command, an EXEC, a step).
    depth: u32,
    /// Where in `buf` the outermost open group began.
    group_at: usize,
    /// Records the outermost open group holds.
    group_records: u32,
    /// The writer, to wake when records arrive.
    writer: Option<Waker>,
    /// Connections and flushers waiting for records to be durable.
    waiters: Vec<Waker>,
    /// Someone waits for durability: the writer syncs whatever `appendfsync` says.
    sync_wanted: bool,
    /// The last write or sync error of the writer (INFO `aof_last_write_status`; writes
    /// are refused with `-MISCONF` while it stands).
    pub error: Option<String>,
}

impl Log {
    /// Appends one command.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.command_iter(args.iter().map(|a| a.as_ref()));
    }

    /// Appends one command, its arguments from an iterator.
    pub fn command_iter<'a>(&mut self, args: impl ExactSizeIterator<Item = &'a [u8]>) {
        if !self.on {
            return;
        }
        let b = &mut self.buf;
        b.push(b'*');
        push_num(b, args.len() as u64);
        for a in args {
            b.push(b'$');
            push_num(b, a.len() as u64);
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        self.group_records += 1;
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Appends `DEL key`.
    pub fn del(&mut self, key: &[u8]) {
        self.command(&[b"DEL".as_slice(), key]);
    }

    /// Opens a group: the records until the matching [`end`](Self::end) are replayed
    /// all or none. Groups nest; only the outermost counts.
    #[inline]
    pub fn begin(&mut self) {
        if self.depth == 0 {
            self.group_at = self.buf.len();
            self.group_records = 0;
        }
        self.depth += 1;
    }

    /// Closes a group: more than one record are wrapped in `MULTI`/`EXEC`.
    #[inline]
    pub fn end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 {
            if self.group_records > 1 && self.group_at <= self.buf.len() {
                const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
                self.buf
                    .splice(self.group_at..self.group_at, MULTI.iter().copied());
                self.buf.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
            }
            self.group_records = 0;
        }
    }

    /// Starts increment generation `gen`: records from now on go there.
    pub fn rotate(&mut self, gen: u64) {
        let old = std::mem::take(&mut self.buf);
        self.sealed.push((self.gen, old));
        self.gen = gen;
        self.group_at = 0;
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Sets the generation records go to, with nothing sealed (at startup).
    pub fn start(&mut self, gen: u64) {
        self.gen = gen;
        self.allowed = gen;
    }

    /// The manifest lists generation `gen`'s increments: the writer may write them.
    pub fn allow(&mut self, gen: u64) {
        self.allowed = self.allowed.max(gen);
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// The generation records go to.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Bytes appended this run.
    pub fn appended(&self) -> u64 {
        self.taken
            + self.sealed.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
            + self.buf.len() as u64
    }

    /// Bytes appended but not yet handed to the writer.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.sealed.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    /// For the writer: what there is to write, or `None` (and `waker` is woken when
    /// records arrive).
    pub fn take(&mut self, waker: &Waker) -> Option<Taken> {
        let current_ok = self.gen <= self.allowed;
        if self.sealed.is_empty() && (self.buf.is_empty() || !current_ok) {
            self.writer = Some(waker.clone());
            return None;
        }
        let sealed = std::mem::take(&mut self.sealed);
        let mut n: u64 = sealed.iter().map(|(_, b)| b.len() as u64).sum();
        let current = if current_ok {
            let b = std::mem::take(&mut self.buf);
            n += b.len() as u64;
            b
        } else {
            Vec::new()
        };
        self.taken += n;
        Some(Taken {
            sealed,
            current: (self.gen, current),
            upto: self.taken,
        })
    }

    /// For the writer: every record up to `upto` bytes is durable.
    pub fn synced(&mut self, upto: u64) {
        if upto > self.durable {
            self.durable = upto;
            for w in self.waiters.drain(..) {
                w.wake();
            }
        }
    }

    /// Whether every record appended so far is durable; if not, `waker` is woken when
    /// more are.
    pub fn poll_durable(&mut self, target: u64, waker: &Waker) -> bool {
        if self.durable >= target || !self.on {
            return true;
        }
        if !self.waiters.iter().any(|w| w.will_wake(waker)) {
            self.waiters.push(waker.clone());
        }
        if !self.sync_wanted {
            self.sync_wanted = true;
            if let Some(w) = self.writer.take() {
                w.wake();
            }
        }
        false
    }

    /// For the writer: whether someone waits for a sync (and forgets it).
    pub fn take_sync_wanted(&mut self) -> bool {
        std::mem::take(&mut self.sync_wanted)
    }

    /// For the writer: waits to be woken (records, a sync wanted) without taking.
    pub fn park(&mut self, waker: &Waker) {
        self.writer = Some(waker.clone());
    }

    /// Bytes known durable.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Wakes every waiter (the log was turned off: nobody waits any more).
    pub fn release_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}

/// Logs keyed write `name` (`args`, the name first) that ran without error at `now` and
/// replied `reply`: as it came, or in the deterministic form the module docs describe.
pub fn record(log: &mut Log, name: &str, args: Args, reply: &[u8], now: u64) {
    if !log.on {
        return;
    }
    let key = || args.get(1);
    let num = |i: usize| corekv_protocol::number::parse_i64(args.get(i)).unwrap_or(0);
    let mut deadline = |at: i64, rest: Args| {
        if at <= now as i64 {
            log.del(key());
        } else {
            let at = at.to_string();
            let mut cmd = vec![b"PEXPIREAT".as_slice(), key(), at.as_bytes()];
            cmd.extend(rest.iter());
            log.command(&cmd);
        }
    };
    match name {
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            // `:0`: nothing changed.
            if reply.starts_with(b":1") {
                let t = num(2);
                let at = match name {
                    "expire" => (now as i64).saturating_add(t.saturating_mul(1000)),
                    "pexpire" => (now as i64).saturating_add(t),
                    "expireat" => t.saturating_mul(1000),
                    _ => t,
                };
                deadline(at, args.slice(3, args.len() - 3));
            }
        }
        "setex" | "psetex" => {
            let t = num(2);
            let at = if name == "setex" {
                (now as i64).saturating_add(t.saturating_mul(1000))
            } else {
                (now as i64).saturating_add(t)
            };
            let at = at.to_string();
            log.command(&[
                b"SET".as_slice(),
                key(),
                args.get(3),
                b"PXAT",
                at.as_bytes(),
            ]);
        }
        "set" | "getex" => {
            // Options follow SET's key and value, GETEX's key.
            let first = if name == "set" { 3 } else { 2 };
            let mut out: Vec<Vec<u8>> = args.iter().take(first).map(<[u8]>::to_vec).collect();
            let mut at = None;
            let mut persist = false;
            let mut i = first;
            while i < args.len() {
                let a = args.get(i);
                let opt = a.to_ascii_uppercase();
                let unit = match opt.as_slice() {
                    b"EX" => Some(1000),
                    b"PX" => Some(1),
                    b"EXAT" | b"PXAT" => None,
                    b"PERSIST" => {
                        persist = true;
                        i += 1;
                        continue;
                    }
                    _ => {
                        out.push(a.to_vec());
                        i += 1;
                        continue;
                    }
                };
                let t = num(i + 1);
                let abs = match (unit, opt.as_slice()) {
                    (Some(u), _) => (now as i64).saturating_add(t.saturating_mul(u)),
                    (None, b"EXAT") => t.saturating_mul(1000),
                    _ => t,
                };
                at = Some(abs);
                if name == "set" {
                    out.push(b"PXAT".to_vec());
                    out.push(abs.to_string().into_bytes());
                }
                i += 2;
            }
            if name == "set" {
                log.command(&out);
            } else if reply.starts_with(b"$-1") || reply.starts_with(b"_") {
                // No such key: nothing changed.
            } else if let Some(at) = at {
                deadline(at, args.slice(0, 0));
            } else if persist {
                log.command(&[b"PERSIST".as_slice(), key()]);
            }
        }
        "spop" => {
            if let Ok(Some((frame, _))) = frame::parse(reply) {
                let members: Vec<Vec<u8>> = match frame {
                    Frame::Bulk(m) => vec![m],
                    Frame::Array(v) | Frame::Set(v) => v
                        .into_iter()
                        .filter_map(|f| match f {
                            Frame::Bulk(m) => Some(m),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                if !members.is_empty() {
                    let mut cmd = vec![b"SREM".as_slice(), key()];
                    cmd.extend(members.iter().map(Vec::as_slice));
                    log.command(&cmd);
                }
            }
        }
        _ => log.command_iter(args.iter()),
    }
}

fn push_num(b: &mut Vec<u8>, n: u64) {
    corekv_protocol::number::push_u64(b, n);
    b.extend_from_slice(b"\r\n");
}

/// Logs the commands that rebuild `key` as it now is on this shard (`DEL` first; only
/// `DEL` if it is gone), for writes that are no command of their own: a key restored by
/// a cross-shard RENAME, COPY or script.
pub fn log_key(state: &mut crate::state::State, key: &[u8]) {
    if !state.store.log.on {
        return;
    }
    let now = state.now();
    state.store.log.begin();
    state.store.log.del(key);
    let mut encoded = Vec::new();
    if let Some(idx) = state.store.find(key, now, &mut state.timers) {
        state.store.encode_entry(idx, &mut encoded, false);
    }
    if !encoded.is_empty() {
        let mut parser = Parser::start(b"REDIS0010").expect("a valid header");
        if let Ok(Next::Item(Item::Key(k, at, Some(value)), _)) = parser.next(&encoded, &|_| true) {
            let log = &mut state.store.log;
            persist::commands(&k, at, value, |a| log.command_iter(a.args().iter()));
        }
    }
    state.store.log.end();
}

/// The name of the base file of generation `gen`.
pub fn base_name(prefix: &str, gen: u64) -> String {
    format!("{prefix}.{gen}.base.rdb")
}

/// The name of shard `shard`'s increment of generation `gen`.
pub fn incr_name(prefix: &str, gen: u64, shard: usize) -> String {
    format!("{prefix}.{gen}.{shard}.incr.aof")
}

/// The name of the manifest.
pub fn manifest_name(prefix: &str) -> String {
    format!("{prefix}.manifest")
}

/// One increment the manifest lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incr {
    /// Its file, in the directory.
    pub file: String,
    /// Its generation.
    pub gen: u64,
    /// The shard that writes it.
    pub shard: usize,
}

/// The manifest: which files hold the data, in the order they replay. Its lines are
/// Redis 7's (`file <name> seq <n> type b|i`), with a `shard <i>` pair on increments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base (an RDB file) and its generation, if there is one.
    pub base: Option<(String, u64)>,
    /// Increments, oldest generation first.
    pub incrs: Vec<Incr>,
}

impl Manifest {
    /// The manifest's text.
    pub fn format(&self) -> String {
        let mut s = String::new();
        if let Some((file, gen)) = &self.base {
            s.push_str(&format!("file {file} seq {gen} type b\n"));
        }
        for i in &self.incrs {
            s.push_str(&format!(
                "file {} seq {} type i shard {}\n",
                i.file, i.gen, i.shard
            ));
        }
        s
    }

    /// Reads a manifest. `Err` names what is wrong.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let text = std::str::from_utf8(text).map_err(|_| "Invalid AOF manifest file format")?;
        let mut m = Manifest::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            if words.len() < 6 || words.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut file, mut seq, mut ty, mut shard) = (None, None, None, 0usize);
            for pair in words.chunks(2) {
                match pair[0] {
                    "file" => file = Some(pair[1]),
                    "seq" => seq = pair[1].parse::<u64>().ok(),
                    "type" => ty = Some(pair[1]),
                    "shard" => {
                        shard = pair[1]
                            .parse()
                            .map_err(|_| "Invalid AOF manifest file format")?
                    }
                    _ => {}
                }
            }
            let (Some(file), Some(gen), Some(ty)) = (file, seq, ty) else {
                return Err("Invalid AOF manifest file format".into());
            };
            if file.contains('/') || file.is_empty() {
                return Err(format!("Invalid AOF file name in the manifest: {file}"));
            }
            match ty {
                "b" => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base = Some((file.to_string(), gen));
                }
                "i" => m.incrs.push(Incr {
                    file: file.to_string(),
                    gen,
                    shard,
                }),
                "h" => {} // A history file: replaced, waiting to be deleted.
                _ => return Err("Unknown AOF file type".into()),
            }
        }
        Ok(m)
    }

    /// The next generation number.
    pub fn next_gen(&self) -> u64 {
        let base = self.base.as_ref().map_or(0, |b| b.1);
        self.incrs.iter().map(|i| i.gen).fold(base, u64::max) + 1
    }

    /// The shards the increments belong to (each shard replays its own).
    pub fn shards(&self) -> usize {
        self.incrs.iter().map(|i| i.shard + 1).max().unwrap_or(0)
    }
}

/// What replaying a log did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Commands run.
    pub commands: u64,
    /// Bytes of a truncated tail left out (`aof-load-truncated yes`), and how many
    /// complete records of an unfinished MULTI they included.
    pub dropped: Option<(usize, usize)>,
}

/// Replays `bytes`, a whole increment, on this shard (with expiry off: `now` 0). A
/// truncated last record (and an unfinished MULTI) is left out when `truncated_ok`;
/// otherwise, and for anything that is not a log, `Err` says what is wrong.
pub fn replay(
    state: &mut crate::state::State,
    bytes: &[u8],
    truncated_ok: bool,
) -> Result<Replayed, String> {
    let mut done = Replayed::default();
    let mut at = 0usize;
    let mut multi: Option<(usize, Vec<Vec<Vec<u8>>>)> = None;
    let flags = std::mem::take(&mut state.store.events.flags);
    let result = loop {
        if at == bytes.len() {
            break Ok(());
        }
        let (frame, n) = match frame::parse(&bytes[at..]) {
            Ok(Some(f)) => f,
            Ok(None) => break Err(None),
            Err(_) => break Err(Some(Err(at))),
        };
        let Frame::Array(items) = frame else {
            break Err(Some(Err(at)));
        };
        let n_items = items.len();
        let args: Vec<Vec<u8>> = items
            .into_iter()
            .filter_map(|f| match f {
                Frame::Bulk(b) => Some(b),
                _ => None,
            })
            .collect();
        if args.is_empty() || args.len() != n_items {
            break Err(Some(Err(at)));
        }
        at += n;
        if args[0].eq_ignore_ascii_case(b"multi") && args.len() == 1 {
            multi = Some((at - n, Vec::new()));
        } else if args[0].eq_ignore_ascii_case(b"exec") && args.len() == 1 {
            let Some((_, cmds)) = multi.take() else {
                break Err(Some(Err(at - n)));
            };
            if let Err(e) = cmds.iter().try_for_each(|c| run(state, c)) {
                break Err(Some(Ok(e)));
            }
            done.commands += cmds.len() as u64;
        } else if let Some((_, cmds)) = &mut multi {
            cmds.push(args);
        } else {
            if let Err(e) = run(state, &args) {
                break Err(Some(Ok(e)));
            }
            done.commands += 1;
        }
    };
    state.store.events.flags = flags;
    match result {
        Ok(()) if multi.is_none() => Ok(done),
        Ok(()) | Err(None) => {
            // A torn tail: a record cut short, or a MULTI without its EXEC.
            let from = multi.as_ref().map_or(at, |m| m.0);
            let whole = multi.as_ref().map_or(0, |m| m.1.len());
            if !truncated_ok {
                return Err(format!(
                    "Unexpected end of file reading the append only file at offset {from} \
                     (aof-load-truncated is no)"
                ));
            }
            done.dropped = Some((bytes.len() - from, whole));
            Ok(done)
        }
        Err(Some(Err(pos))) => Err(format!(
            "Bad file format reading the append only file at offset {pos}"
        )),
        Err(Some(Ok(e))) => Err(e),
    }
}

/// Runs one logged command on this shard: a keyed command, or a fan-out's part here.
fn run(state: &mut crate::state::State, args: &[Vec<u8>]) -> Result<(), String> {
    let owned = crate::args::OwnedArgs::from_slices(args);
    let a = owned.args();
    let spec = match crate::command::Commands::global().lookup(a) {
        crate::command::Lookup::Found(spec) if spec.arity_ok(a.len()) => spec,
        _ => {
            return Err(format!(
                "Unknown command '{}' reading the append only file",
                String::from_utf8_lossy(&args[0])
            ))
        }
    };
    match spec.route {
        crate::command::Route::Keyed(..) => persist::run_command(state, a, 0),
        crate::command::Route::Fanout(fanout) => {
            let mut err = Vec::new();
            let shards = state.shards;
            let plan = (fanout.check)(
                &mut crate::command::Check {
                    out: corekv_protocol::Reply::new(&mut err, corekv_protocol::Proto::Resp2),
                    config: &state.config,
                    client_id: 0,
                    shards,
                },
                a,
            );
            if let Some(plan) = plan {
                let mut out = Vec::new();
                let mut reply =
                    corekv_protocol::Reply::new(&mut out, corekv_protocol::Proto::Resp2);
                (fanout.part)(state, plan.args.args(), &mut reply);
            }
        }
        _ => {
            return Err(format!(
                "Command '{}' cannot be replayed from the append only file",
                spec.name
            ))
        }
    }
    Ok(())
}
