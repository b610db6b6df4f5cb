//! Every command: a family file per group (`string`, `expire`, `keyspace`, `connection`,
//! `server`), as Dragonfly does, and the table built from them.
//!
//! A family declares its commands in one place, `COMMANDS`: each name with its [`Route`],
//! which says where the command runs and, for one that spans shards, how it is split, run
//! on each shard and merged. The router (`crate::shard`) and the reply assembler
//! (`crate::assembly`) know no command by name; adding a command is its family's code and
//! registration. Redis's metadata for it (arity, flags, key positions, COMMAND INFO and
//! DOCS) is already in [`meta`]'s data, captured from redis-server.
//!
//! The routes:
//! - [`Route::Keyed`]: on the shard that owns its key(s), with a [`Ctx`] (that shard's
//!   keyspace and the reply); a multi-key command also says how to [`Split`] it or
//!   [`Coord`]inate it when its keys live on several shards;
//! - [`Route::Local`]: on the client's shard, with a [`Local`] (the client, the settings);
//! - [`Route::Fanout`]: on every shard (or the one a SCAN cursor names): a [`Fanout`]'s
//!   check on the client's shard, its part on each shard, its merge back on the client's.

pub mod coll;
pub mod connection;
pub mod expire;
pub mod hash;
pub mod keyspace;
pub mod list;
pub mod merge;
pub mod meta;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod set;
pub mod setops;
pub mod sort;
pub mod string;
pub mod transaction;
pub mod zset;
pub mod zsetops;

use ahash::RandomState;
use corekv_protocol::Reply;
use hashbrown::HashMap;

pub use crate::args::{Args, OwnedArgs};
use crate::assembly::{MergeData, MergeFn};
use crate::config::Config;
use crate::conn::Client;
use crate::shutdown::Shutdown;
use crate::state::State;
use crate::store::Keyspace;

/// What a keyed command runs with: one shard's keyspace and where to write its reply.
pub struct Ctx<'a> {
    /// The shard's keyspace (its store and the wheel its deadlines are in).
    pub store: Keyspace<'a>,
    /// The reply being written.
    pub out: Reply<'a>,
    /// Unix time in milliseconds, fixed for the batch being executed.
    pub now: u64,
    /// `proto-max-bulk-len`: the largest string APPEND and SETRANGE may build.
    pub max_bulk_len: u64,
    /// When hashes and sets leave their compact encodings.
    pub coll: crate::config::CollLimits,
    /// Whether Redis would share small integer values (no LRU or LFU `maxmemory`
    /// policy): OBJECT REFCOUNT.
    pub shared_ints: bool,
    /// The command's full name, for error texts that quote it.
    pub name: &'static str,
    /// Whether a blocking command may block (not inside MULTI/EXEC or a coordinated
    /// command's step, where it behaves as its non-blocking form).
    pub may_block: bool,
    /// Set by a blocking command that found nothing to serve and blocks (it wrote no
    /// reply): see [`crate::blocking`].
    pub block: Option<Block>,
    /// The shard's scripts, for EVAL and its kin (none for commands a script calls).
    pub scripting: Option<Scripting<'a>>,
}

/// What EVAL needs beyond the keyspace: the shard's Lua engine and where its keys are.
pub struct Scripting<'a> {
    /// The shard's scripts.
    pub scripts: &'a mut crate::script::Scripts,
    /// This shard.
    pub shard: usize,
    /// Which shard owns which key.
    pub map: crate::slot::SlotMap,
    /// Scripts EVAL compiled here, to load on the other shards (bodies).
    pub loaded: &'a mut Vec<Vec<u8>>,
    /// A script running over copies of keys from several shards: it may touch only its
    /// declared keys.
    pub declared_only: bool,
    /// The cap on the shard's Lua heap (see `State::script_memory_limit`).
    pub memory_limit: usize,
    /// `busy-reply-threshold`, ms.
    pub busy_threshold: u64,
    /// The shard's share of `maxmemory` (0: none) and the eviction policy: a script's
    /// commands that may grow memory are admitted as a client's are.
    pub maxmemory: u64,
    /// See `maxmemory`.
    pub policy: &'static crate::config::Policy,
    /// For eviction's sampling.
    pub rng: &'a mut fastrand::Rng,
    /// Whether the keyspace is over `maxmemory`, when already known (a script over
    /// copies of keys: the real keyspace's state, not the copies'); `None`: look.
    pub oom: Option<bool>,
}

/// A blocking command's request to wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// When it times out (Unix ms), 0 for never.
    pub deadline: u64,
    /// The argument positions of the keys it waits on.
    pub keys: Vec<usize>,
    /// Whether it times out with a null array (else a null bulk string).
    pub null_array: bool,
}

/// A keyed command.
pub type KeyFn = fn(&mut Ctx, Args);

/// What a keyed command needs from its shard besides the store: the batch's clock and the
/// string size limit.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    /// Unix time in milliseconds, fixed for the batch.
    pub now: u64,
    /// `proto-max-bulk-len`.
    pub max_bulk_len: u64,
    /// Hash and set encoding thresholds.
    pub coll: crate::config::CollLimits,
    /// See [`Ctx::shared_ints`].
    pub shared_ints: bool,
    /// See [`Ctx::may_block`].
    pub may_block: bool,
    /// The command may write (flag `write`): [`run_keyed`] logs it if it ran without
    /// error (see [`crate::aof`]).
    pub write: bool,
}

/// Runs keyed command `f` (named `name`) on a shard's keyspace, appending its reply to
/// `out` in `proto`. Returns whether the reply is an error, and a blocking command's
/// request to block.
#[allow(clippy::too_many_arguments)]
pub fn run_keyed(
    f: KeyFn,
    name: &'static str,
    args: Args,
    store: Keyspace,
    env: Env,
    out: &mut Vec<u8>,
    proto: corekv_protocol::Proto,
    scripting: Option<Scripting>,
) -> (bool, Option<Block>) {
    let start = out.len();
    let mut ctx = Ctx {
        store,
        out: Reply::new(out, proto),
        now: env.now,
        max_bulk_len: env.max_bulk_len,
        coll: env.coll,
        shared_ints: env.shared_ints,
        name,
        may_block: env.may_block,
        block: None,
        scripting,
    };
    f(&mut ctx, args);
    let block = ctx.block.take();
    let error = ctx.out.buffer().get(start) == Some(&b'-');
    if env.write && !error && block.is_none() {
        let log = &mut ctx.store.store().log;
        if log.on {
            crate::aof::record(log, name, args, &ctx.out.buffer()[start..], env.now);
        }
    }
    (error, block)
}

pub use crate::coord::Coord;

/// How a keyed command runs when its keys live on several shards.
#[derive(Clone, Copy)]
pub enum Multi {
    /// One part per owner (the command over that owner's keys), merged.
    Split(&'static Split),
    /// Atomically across the owners: see [`crate::coord`].
    Coord(&'static Coordinated),
}

/// A multi-key command run as one part per owner of its keys.
pub struct Split {
    /// Arguments per key: 1 (`MGET k1 k2`), or 2 (`MSET k1 v1 k2 v2`: a request with a
    /// key and no value is refused with the arity error before anything runs).
    pub step: usize,
    /// Combines the parts (in ascending shard order). Its data holds, for each key in
    /// request order, `part << 32 | index of the key in its part`.
    pub merge: MergeFn,
}

/// A multi-key command that must be atomic across shards.
pub struct Coordinated {
    /// Which plan runs it.
    pub kind: Coord,
    /// Checks what can be checked before any shard is paused; writes Redis's error and
    /// returns `None` when the request is wrong, else whether to replace the
    /// destination (COPY's REPLACE).
    pub check: fn(&mut Reply, &'static str, Args) -> Option<bool>,
    /// For a blocking command: how it waits when its keys span shards and the gather
    /// found nothing (see [`crate::blocking`]).
    pub blocking: Option<Blocking>,
}

/// How a blocking command whose keys span shards waits.
#[derive(Clone, Copy, Debug)]
pub struct Blocking {
    /// Its timeout in milliseconds (0: forever), from a request `check` accepted.
    pub timeout: fn(Args) -> u64,
    /// The argument positions of the keys it waits on.
    pub keys: fn(Args) -> Vec<usize>,
    /// Whether it times out with a null array (else a null bulk string).
    pub null_array: bool,
}

/// What a local command tells the connection to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Write what was produced, then close (QUIT, SHUTDOWN).
    Quit,
    /// The reply comes when a snapshot ends (SAVE): this shard's saver runs one and
    /// answers for it.
    Snapshot,
}

/// What a local command runs with: the client and the shard's settings.
pub struct Local<'a> {
    /// The client that sent it.
    pub client: &'a mut Client,
    /// Its id on this shard.
    pub conn: crate::conn::ConnId,
    /// This shard's subscribers.
    pub pubsub: &'a mut crate::pubsub::PubSub,
    /// Where its reply goes (in the client's protocol, which HELLO may change first).
    pub out: &'a mut Vec<u8>,
    /// The settings.
    pub config: &'a Config,
    /// The command table (COMMAND).
    pub commands: &'a Commands,
    /// The shard's part of a shutdown (SHUTDOWN).
    pub shutdown: &'a mut Shutdown,
    /// Snapshots (SAVE, BGSAVE, LASTSAVE).
    pub persist: &'a mut crate::persist::Persist,
    /// Unix ms.
    pub now: u64,
}

impl Local<'_> {
    /// A reply in the client's current protocol.
    pub fn reply(&mut self) -> Reply<'_> {
        Reply::new(&mut *self.out, self.client.proto)
    }
}

/// A local command.
pub type LocalFn = fn(&mut Local, Args) -> Flow;

/// Where a fan-out's parts run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Every shard.
    All,
    /// One shard.
    One(usize),
}

/// What a fan-out's check decided: where the parts run, with which arguments, and what
/// its merge needs to know.
pub struct Plan {
    /// Where the parts run.
    pub targets: Targets,
    /// The arguments each part gets.
    pub args: OwnedArgs,
    /// Left for the merge.
    pub data: MergeData,
}

impl Plan {
    /// A part on every shard with no arguments, and nothing for the merge.
    pub fn all() -> Plan {
        Plan::all_with(OwnedArgs::new())
    }

    /// A part on every shard with `args`, and nothing for the merge.
    pub fn all_with(args: OwnedArgs) -> Plan {
        Plan {
            targets: Targets::All,
            args,
            data: MergeData::None,
        }
    }
}

/// What a fan-out's check sees: the request's reply (for errors), the settings, the
/// client's id and the number of shards.
pub struct Check<'a> {
    /// Where an error goes.
    pub out: Reply<'a>,
    /// The settings.
    pub config: &'a Config,
    /// CLIENT ID of the client that sent it.
    pub client_id: u64,
    /// Number of shards.
    pub shards: usize,
}

/// A command that runs on several shards: checked on the client's shard, run there and
/// on the others (each shard's part), merged back on the client's shard.
pub struct Fanout {
    /// Validates the request and plans the parts; `None` after writing Redis's error.
    pub check: fn(&mut Check, Args) -> Option<Plan>,
    /// One shard's part, from the plan's arguments.
    pub part: fn(&mut State, Args, &mut Reply),
    /// Combines the parts, in shard order.
    pub merge: MergeFn,
}

/// A check for fan-outs that take no arguments but their name: a part on every shard.
pub fn every_shard(_: &mut Check, _: Args) -> Option<Plan> {
    Some(Plan::all())
}

/// Where a command runs. See the module docs.
#[derive(Clone, Copy)]
pub enum Route {
    /// On the owner of its keys; `None` when its keys never span shards.
    Keyed(KeyFn, Option<Multi>),
    /// On the client's shard.
    Local(LocalFn),
    /// On several shards.
    Fanout(&'static Fanout),
    /// A container (CLIENT, CONFIG) that needs a subcommand; called alone, its arity
    /// check fails first.
    Container,
    /// A step of the session's transaction state machine, which the shard runs with
    /// the connection (MULTI, EXEC, WATCH: see `transaction.rs`).
    Session(SessionCmd),
}

/// The transaction commands (see [`Route::Session`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionCmd {
    /// MULTI.
    Multi,
    /// EXEC.
    Exec,
    /// DISCARD.
    Discard,
    /// WATCH.
    Watch,
    /// UNWATCH.
    Unwatch,
}

impl Route {
    /// A keyed command whose keys never span shards.
    pub const fn keyed(f: KeyFn) -> Route {
        Route::Keyed(f, None)
    }

    /// A multi-key command split by owner.
    pub const fn split(f: KeyFn, how: &'static Split) -> Route {
        Route::Keyed(f, Some(Multi::Split(how)))
    }

    /// A multi-key command coordinated across owners.
    pub const fn coordinated(f: KeyFn, how: &'static Coordinated) -> Route {
        Route::Keyed(f, Some(Multi::Coord(how)))
    }
}

/// A family's registrations: full lower-case names (`client|list` for a subcommand)
/// and their routes.
pub type Registrations = &'static [(&'static str, Route)];

/// Every family's registrations.
const FAMILIES: &[Registrations] = &[
    string::COMMANDS,
    expire::COMMANDS,
    keyspace::COMMANDS,
    hash::COMMANDS,
    set::COMMANDS,
    setops::COMMANDS,
    list::COMMANDS,
    zset::COMMANDS,
    zsetops::COMMANDS,
    sort::COMMANDS,
    scripting::COMMANDS,
    connection::COMMANDS,
    server::COMMANDS,
    transaction::COMMANDS,
    pubsub::COMMANDS,
];

/// One command or subcommand.
pub struct Spec {
    /// Full lower-case name: `get`, `client|list`.
    pub name: &'static str,
    /// Redis arity: exact if positive, a minimum if negative.
    pub arity: i64,
    /// Position of the first key (0: no keys, or movable keys).
    pub first_key: i64,
    /// For a `movablekeys` command, how its key specs find its keys.
    pub movable: Option<Vec<KeyFind>>,
    /// Position of the last key (negative counts from the end).
    pub last_key: i64,
    /// Distance between keys.
    pub step: i64,
    /// Where it runs.
    pub route: Route,
    /// Whether it may change the keyspace (flag `write`).
    pub write: bool,
    /// It may block the client (BLPOP and the like).
    pub blocking: bool,
    /// Flagged `noscript`: refused inside scripts.
    pub noscript: bool,
    /// Whether it may grow memory, so `maxmemory` applies (flag `denyoom`).
    pub denyoom: bool,
    /// Whether a client may run it before authenticating (flag `no_auth`).
    pub no_auth: bool,
    /// Its metadata (COMMAND INFO entry and COMMAND DOCS map).
    pub info: &'static meta::Meta,
    /// Its COMMAND DOCS map.
    pub docs: &'static meta::Meta,
    /// Subcommands, for containers.
    pub subcommands: Vec<Spec>,
    /// Dense index of this command or subcommand, for per-command statistics.
    pub stat: usize,
}

impl Spec {
    /// Whether `argc` arguments satisfy the arity.
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity > 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Positions of the keys in `args` (empty when none). A command with movable keys
    /// (SINTERCARD's `numkeys`) finds them through its key specs; one whose count does
    /// not parse or overruns the arguments has none here, and its own checks report the
    /// error.
    #[inline]
    pub fn key_positions(&self, args: Args) -> KeyPositions {
        if let Some(finds) = &self.movable {
            return KeyPositions::Listed(movable_positions(finds, args).into_iter());
        }
        let argc = args.len() as i64;
        let (first, step) = (self.first_key, self.step.max(1));
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key.min(argc - 1)
        };
        KeyPositions::Fixed(
            (first > 0 && last >= first)
                .then_some(first as usize..=last as usize)
                .into_iter()
                .flatten()
                .step_by(step as usize),
        )
    }

    /// Whether requests for this command may name keys.
    pub fn has_keys(&self) -> bool {
        self.first_key > 0 || self.movable.is_some()
    }

    /// Whether this is a container (has subcommands).
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }
}

/// The key positions of one request: see [`Spec::key_positions`].
pub enum KeyPositions {
    /// A fixed layout: first, last, step.
    Fixed(
        std::iter::StepBy<
            std::iter::Flatten<std::option::IntoIter<std::ops::RangeInclusive<usize>>>,
        >,
    ),
    /// Found by the key specs.
    Listed(std::vec::IntoIter<usize>),
}

impl Iterator for KeyPositions {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            KeyPositions::Fixed(it) => it.next(),
            KeyPositions::Listed(it) => it.next(),
        }
    }
}

/// How a movable-keys command's key spec finds keys, from its `begin_search` (by
/// index) and `find_keys` (a range, or a count argument then the keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFind {
    /// Keys from `begin` to `begin + last` (negative `last`: from the end, or, with a
    /// `limit`, a 1/limit share of the arguments left), every `step`.
    Range {
        /// Argument where the search begins.
        begin: usize,
        /// `lastkey`.
        last: i64,
        /// `keystep`.
        step: usize,
        /// `limit`.
        limit: usize,
    },
    /// A key count at `begin + keynumidx`, the first key at `begin + first`, every
    /// `step`.
    Keynum {
        /// Argument where the search begins.
        begin: usize,
        /// Offset of the count.
        keynumidx: usize,
        /// Offset of the first key.
        first: usize,
        /// `keystep`.
        step: usize,
    },
    /// SORT's STORE destination (its spec is `unknown`: the keyword can follow any
    /// option), found as Redis's `sortGetKeys` finds it: the argument after the last
    /// STORE, options' arguments skipped.
    SortStore,
}

/// Redis's `getKeysUsingKeySpecs`: every spec's keys in order; any spec whose
/// arguments are invalid (a count that does not parse, keys past the end) makes it no
/// keys at all.
fn movable_positions(finds: &[KeyFind], args: Args) -> Vec<usize> {
    let argc = args.len() as i64;
    let mut out = Vec::new();
    for f in finds {
        let (first, last, step) = match *f {
            KeyFind::SortStore => {
                out.extend(sort_store_position(args));
                continue;
            }
            KeyFind::Range {
                begin,
                last,
                step,
                limit,
            } => {
                let first = begin as i64;
                if first >= argc {
                    continue;
                }
                let end = if last >= 0 {
                    first + last
                } else if limit == 0 {
                    argc + last
                } else {
                    first + (argc - first) / limit as i64 + last
                };
                (first, end, step)
            }
            KeyFind::Keynum {
                begin,
                keynumidx,
                first,
                step,
            } => {
                if (begin + keynumidx) as i64 >= argc {
                    continue;
                }
                let Some(n) = corekv_protocol::number::parse_i64(args.get(begin + keynumidx))
                    .filter(|&n| n >= 0)
                else {
                    return Vec::new();
                };
                let first = (begin + first) as i64;
                (first, first.saturating_add(n - 1), step)
            }
        };
        if last >= argc || last < first || first >= argc {
            return Vec::new();
        }
        out.extend((first as usize..=last as usize).step_by(step.max(1)));
    }
    out
}

/// Where Redis's `sortGetKeys` finds SORT's STORE destination.
fn sort_store_position(args: Args) -> Option<usize> {
    let mut found = None;
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i);
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
            found = Some(i + 1);
        }
        i += 1;
    }
    found
}

/// The key specs of a `movablekeys` command, if every one is of a kind
/// [`KeyFind`] covers. SORT's `unknown` specs: its STORE destination is found as Redis
/// finds it; the keys its BY and GET patterns name are not arguments (see
/// `sort.rs`).
fn key_finds(name: &str, info: &meta::Meta) -> Option<Vec<KeyFind>> {
    let specs = info.at(8).items();
    let mut finds = Vec::with_capacity(specs.len());
    for spec in specs {
        let bs = spec.get("begin_search")?;
        if bs.get("type")?.str() == "unknown" && matches!(name, "sort" | "sort_ro") {
            let flags = spec.get("flags")?.items();
            if flags.iter().any(|f| f.str() == "OW") {
                finds.push(KeyFind::SortStore);
            }
            continue;
        }
        if bs.get("type")?.str() != "index" {
            return None;
        }
        let begin = usize::try_from(bs.get("spec")?.get("index")?.int()).ok()?;
        let fk = spec.get("find_keys")?;
        let fs = fk.get("spec")?;
        let n = |k: &str| fs.get(k).map(meta::Meta::int);
        finds.push(match fk.get("type")?.str() {
            "range" => KeyFind::Range {
                begin,
                last: n("lastkey")?,
                step: usize::try_from(n("keystep")?).ok()?,
                limit: usize::try_from(n("limit")?).ok()?,
            },
            "keynum" => KeyFind::Keynum {
                begin,
                keynumidx: usize::try_from(n("keynumidx")?).ok()?,
                first: usize::try_from(n("firstkey")?).ok()?,
                step: usize::try_from(n("keystep")?).ok()?,
            },
            _ => return None,
        });
    }
    Some(finds)
}

/// What looking up a request's command found.
pub enum Lookup<'a> {
    /// The command (or subcommand) to run.
    Found(&'a Spec),
    /// No such command.
    Unknown,
    /// A container without such a subcommand; carries the container.
    UnknownSubcommand(&'a Spec),
}

/// All commands, with a case-insensitive index by name.
pub struct Commands {
    specs: Vec<Spec>,
    by_name: HashMap<&'static [u8], usize, RandomState>,
    /// Full names by statistics slot (`Spec::stat`).
    stat_names: &'static [&'static str],
    /// Where each statistics slot's spec is: top-level index, subcommand index.
    by_stat: Vec<(usize, Option<usize>)>,
}

/// Longest command name; longer names cannot be commands.
const MAX_NAME: usize = 32;

/// Lower-cases `name` into `buf`; `None` if it is too long to be a command.
#[inline]
fn lower<'b>(name: &[u8], buf: &'b mut [u8; MAX_NAME]) -> Option<&'b [u8]> {
    if name.len() > MAX_NAME {
        return None;
    }
    let out = &mut buf[..name.len()];
    for (o, c) in out.iter_mut().zip(name) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

impl Default for Commands {
    fn default() -> Self {
        Commands::new()
    }
}

impl Commands {
    /// The table of every registered command, built once per process (see
    /// [`Commands::new`]).
    pub fn global() -> &'static Commands {
        static TABLE: std::sync::OnceLock<Commands> = std::sync::OnceLock::new();
        TABLE.get_or_init(Commands::new)
    }

    /// Builds the table: every family's registrations, each bound to Redis's metadata
    /// for it. Panics if a registered name has no metadata, is registered twice, or a
    /// plain command has no route (a build-time mistake; a unit test builds it).
    pub fn new() -> Self {
        let data = meta::Metadata::parse();
        let mut routes: std::collections::BTreeMap<&'static str, Route> = Default::default();
        for family in FAMILIES {
            for &(name, route) in family.iter() {
                assert!(
                    routes.insert(name, route).is_none(),
                    "command {name} is registered twice"
                );
            }
        }
        let mut tops: Vec<&'static str> = routes
            .keys()
            .map(|n| n.split('|').next().unwrap_or(n))
            .collect();
        tops.dedup();
        let mut specs = Vec::new();
        let mut by_name = HashMap::with_hasher(RandomState::new());
        for top in tops {
            let info = data
                .info(top)
                .unwrap_or_else(|| panic!("no metadata for command {top}"));
            let docs = data
                .docs(top)
                .unwrap_or_else(|| panic!("no docs for command {top}"));
            let prefix = format!("{top}|");
            let subs: Vec<(&'static str, Route)> = routes
                .iter()
                .filter(|(n, _)| n.starts_with(&prefix))
                .map(|(&n, &r)| (n, r))
                .collect();
            let spec = if subs.is_empty() {
                build_spec(top, info, docs, routes[top], Vec::new())
            } else {
                let (info, docs, subcommands) = containers(info, docs, &subs);
                let route = routes.get(top).copied().unwrap_or(Route::Container);
                build_spec(top, info, docs, route, subcommands)
            };
            by_name.insert(top.as_bytes(), specs.len());
            specs.push(spec);
        }
        let mut stat_names = Vec::new();
        let mut by_stat = Vec::new();
        for (i, spec) in specs.iter_mut().enumerate() {
            spec.stat = stat_names.len();
            stat_names.push(spec.name);
            by_stat.push((i, None));
            for (j, sub) in spec.subcommands.iter_mut().enumerate() {
                sub.stat = stat_names.len();
                stat_names.push(sub.name);
                by_stat.push((i, Some(j)));
            }
        }
        Commands {
            specs,
            by_name,
            stat_names: Box::leak(stat_names.into_boxed_slice()),
            by_stat,
        }
    }

    /// The command or subcommand counted in statistics slot `stat`.
    pub fn by_stat(&self, stat: usize) -> Option<&Spec> {
        let &(top, sub) = self.by_stat.get(stat)?;
        let spec = &self.specs[top];
        match sub {
            None => Some(spec),
            Some(j) => spec.subcommands.get(j),
        }
    }

    /// Full names by statistics slot (`Spec::stat`).
    pub fn stat_names(&self) -> &'static [&'static str] {
        self.stat_names
    }

    /// Every top-level command, sorted by name.
    pub fn all(&self) -> &[Spec] {
        &self.specs
    }

    /// The command named `name` (any case), top level only.
    pub fn get(&self, name: &[u8]) -> Option<&Spec> {
        let mut buf = [0u8; MAX_NAME];
        let lower = lower(name, &mut buf)?;
        self.by_name.get(lower).map(|&i| &self.specs[i])
    }

    /// Resolves the command a request names, descending into containers as Redis does:
    /// a container called with a second argument looks that up as a subcommand.
    #[inline]
    pub fn lookup(&self, args: Args) -> Lookup<'_> {
        let Some(spec) = self.get(args.get(0)) else {
            return Lookup::Unknown;
        };
        if !spec.is_container() || args.len() < 2 {
            return Lookup::Found(spec);
        }
        let mut buf = [0u8; MAX_NAME];
        let found = lower(args.get(1), &mut buf).and_then(|sub| {
            spec.subcommands
                .iter()
                .find(|s| s.name.as_bytes()[spec.name.len() + 1..] == *sub)
        });
        match found {
            Some(sub) => Lookup::Found(sub),
            None => Lookup::UnknownSubcommand(spec),
        }
    }

    /// The (sub)command with full name `name` (`client|list`), any case.
    pub fn by_full_name(&self, name: &[u8]) -> Option<&Spec> {
        let mut buf = [0u8; MAX_NAME];
        let lower = lower(name, &mut buf)?;
        match lower.iter().position(|&c| c == b'|') {
            None => self.get(lower),
            Some(bar) => {
                let parent = self.get(&lower[..bar])?;
                parent
                    .subcommands
                    .iter()
                    .find(|s| s.name.as_bytes() == lower)
            }
        }
    }
}

/// A container's metadata with only the subcommands registered (COMMAND INFO and DOCS
/// must not list what corekv lacks), and those subcommands' specs.
fn containers(
    info: &'static meta::Meta,
    docs: &'static meta::Meta,
    subs: &[(&'static str, Route)],
) -> (&'static meta::Meta, &'static meta::Meta, Vec<Spec>) {
    use meta::Meta;
    let sub_infos: Vec<&'static Meta> = subs
        .iter()
        .map(|(name, _)| {
            info.at(9)
                .items()
                .iter()
                .find(|s| s.at(0).str() == *name)
                .unwrap_or_else(|| panic!("no metadata for subcommand {name}"))
        })
        .collect();
    let sub_docs = docs
        .get("subcommands")
        .unwrap_or_else(|| panic!("no subcommand docs for {}", info.at(0).str()));
    let kept_docs: Vec<Meta> = subs
        .iter()
        .flat_map(|(name, _)| {
            let d = sub_docs
                .get(name)
                .unwrap_or_else(|| panic!("no docs for {name}"));
            [Meta::Bulk(name), d.clone()]
        })
        .collect();
    let mut info_items: Vec<Meta> = info.items().to_vec();
    info_items[9] = Meta::Array(meta::leak(sub_infos.iter().map(|m| (*m).clone()).collect()));
    let mut doc_items: Vec<Meta> = docs.items().to_vec();
    if let Some(i) = doc_items
        .chunks(2)
        .position(|kv| matches!(kv[0], Meta::Bulk("subcommands")))
    {
        doc_items[2 * i + 1] = Meta::Map(meta::leak(kept_docs));
    }
    let info: &'static Meta = Box::leak(Box::new(Meta::Array(meta::leak(info_items))));
    let docs: &'static Meta = Box::leak(Box::new(Meta::Map(meta::leak(doc_items))));
    let specs = subs
        .iter()
        .zip(sub_infos)
        .map(|(&(name, route), sub_info)| {
            let d = sub_docs.get(name).expect("checked above");
            build_spec(name, sub_info, d, route, Vec::new())
        })
        .collect();
    (info, docs, specs)
}

fn build_spec(
    name: &'static str,
    info: &'static meta::Meta,
    docs: &'static meta::Meta,
    route: Route,
    subcommands: Vec<Spec>,
) -> Spec {
    let flags = info.at(2).items();
    let flag = |f: &str| flags.iter().any(|m| m.str() == f);
    Spec {
        name,
        arity: info.at(1).int(),
        first_key: info.at(3).int(),
        movable: if flag("movablekeys") {
            Some(
                key_finds(name, info)
                    .unwrap_or_else(|| panic!("key specs of {name} are of a kind not handled")),
            )
        } else {
            None
        },
        last_key: info.at(4).int(),
        step: info.at(5).int(),
        route,
        write: flag("write"),
        blocking: flag("blocking"),
        noscript: flag("noscript"),
        denyoom: flag("denyoom"),
        no_auth: flag("no_auth"),
        info,
        docs,
        subcommands,
        stat: 0,
    }
}

/// Whether argument `i` of a request for `spec` is a password, which the slow log shows
/// as `(redacted)` as Redis 7 does: AUTH's arguments, HELLO's two after `AUTH`, and the
/// value of `requirepass` in CONFIG SET.
pub fn is_secret(spec: &Spec, args: Args, i: usize) -> bool {
    match spec.name {
        "auth" => i > 0,
        "hello" => (1..=2).any(|back| i > back && is(args.get(i - back), "auth")),
        "config|set" => i >= 3 && i % 2 == 1 && is(args.get(i - 1), "requirepass"),
        _ => false,
    }
}

/// Error texts Redis shares between commands (`shared.*` in `server.c`).
pub mod errors {
    /// `shared.syntaxerr`
    pub const SYNTAX: &str = "syntax error";
    /// `shared.wrongtypeerr`, with its code.
    pub const WRONGTYPE: &[u8] =
        b"WRONGTYPE Operation against a key holding the wrong kind of value";
    /// Integer argument errors.
    pub const NOT_INTEGER: &str = "value is not an integer or out of range";
    /// `shared.nokeyerr`
    pub const NO_SUCH_KEY: &str = "no such key";
    /// `shared.sameobjecterr`
    pub const SAME_OBJECT: &str = "source and destination objects are the same";
    /// SELECT / COPY DB with an index other than 0.
    pub const DB_RANGE: &str = "DB index is out of range";
}

/// `getIntFromObjectOrReply`: a C `int` argument, or Redis's error for it.
pub fn int32_arg(out: &mut Reply, arg: &[u8]) -> Option<i32> {
    match corekv_protocol::number::parse_i64(arg) {
        None => {
            out.err(errors::NOT_INTEGER);
            None
        }
        Some(v) => match i32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                out.err("value is out of range, value must between -2147483648 and 2147483647");
                None
            }
        },
    }
}

/// Writes Redis's arity error for `name`.
pub fn arity_error(out: &mut Reply, name: &str) {
    out.err(&format!("wrong number of arguments for '{name}' command"));
}

/// A byte string cut at its first NUL, as the C string Redis compares option names with.
#[inline]
pub fn cstr(arg: &[u8]) -> &[u8] {
    match memchr::memchr(0, arg) {
        Some(nul) => &arg[..nul],
        None => arg,
    }
}

/// Whether `arg`, read as a C string, equals `word` ignoring ASCII case (`strcasecmp`).
#[inline]
pub fn is(arg: &[u8], word: &str) -> bool {
    cstr(arg).eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registration_has_redis_metadata() {
        let cmds = Commands::new();
        let registered: usize = FAMILIES.iter().map(|f| f.len()).sum();
        let built: usize = cmds.all().iter().map(|s| 1 + s.subcommands.len()).sum();
        // Containers with no route of their own are added; COMMAND is both.
        let containers = cmds
            .all()
            .iter()
            .filter(|s| matches!(s.route, Route::Container))
            .count();
        assert_eq!(built, registered + containers);
        for (stat, name) in cmds.stat_names().iter().enumerate() {
            assert_eq!(cmds.by_stat(stat).map(|s| s.name), Some(*name));
        }
    }

    #[test]
    fn containers_list_only_registered_subcommands() {
        let cmds = Commands::new();
        let client = cmds.get(b"client").unwrap();
        let listed: Vec<&str> = client
            .info
            .at(9)
            .items()
            .iter()
            .map(|s| s.at(0).str())
            .collect();
        let specs: Vec<&str> = client.subcommands.iter().map(|s| s.name).collect();
        assert_eq!(listed, specs);
        assert!(listed.contains(&"client|setinfo") && !listed.contains(&"client|pause"));
        let docs = client.docs.get("subcommands").unwrap();
        assert_eq!(docs.items().len(), 2 * specs.len());
    }

    #[test]
    fn lookup_is_case_insensitive_and_finds_subcommands() {
        let cmds = Commands::new();
        let args = OwnedArgs::from_slices(&["gEt", "k"]);
        assert!(matches!(cmds.lookup(args.args()), Lookup::Found(s) if s.name == "get"));
        let args = OwnedArgs::from_slices(&["client", "LIST"]);
        assert!(matches!(cmds.lookup(args.args()), Lookup::Found(s) if s.name == "client|list"));
        let args = OwnedArgs::from_slices(&["client", "nope"]);
        assert!(
            matches!(cmds.lookup(args.args()), Lookup::UnknownSubcommand(s) if s.name == "client")
        );
        let args = OwnedArgs::from_slices(&["client"]);
        assert!(matches!(cmds.lookup(args.args()), Lookup::Found(s) if s.name == "client"));
        let args = OwnedArgs::from_slices(&["nosuch"]);
        assert!(matches!(cmds.lookup(args.args()), Lookup::Unknown));
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let cmds = Commands::new();
        let pos = |name: &str, argc| {
            cmds.get(name.as_bytes())
                .unwrap()
                .key_positions(OwnedArgs::from_slices(&vec!["x"; argc]).args())
                .collect::<Vec<_>>()
        };
        assert_eq!(pos("get", 2), vec![1]);
        assert_eq!(pos("mset", 5), vec![1, 3]);
        assert_eq!(pos("del", 4), vec![1, 2, 3]);
        assert_eq!(pos("copy", 5), vec![1, 2]);
        assert_eq!(pos("ping", 1), Vec::<usize>::new());
        assert_eq!(pos("keys", 2), Vec::<usize>::new());
    }

    #[test]
    fn arity_and_flags_match_redis() {
        let cmds = Commands::new();
        let get = cmds.get(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(3) && !get.arity_ok(1));
        let del = cmds.get(b"del").unwrap();
        assert!(del.arity_ok(2) && del.arity_ok(10) && !del.arity_ok(1));
        let no_auth: Vec<&str> = cmds
            .all()
            .iter()
            .filter(|s| s.no_auth)
            .map(|s| s.name)
            .collect();
        assert_eq!(no_auth, ["auth", "hello", "quit", "reset"]);
        assert!(cmds.get(b"set").unwrap().denyoom && !get.write);
    }
}
