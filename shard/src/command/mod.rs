//! The command table and the code of every command, grouped in families
//! (`string`, `keyspace`, `connection`, `server`) as Dragonfly does.
//!
//! A [`Spec`] is one command: its name, arity and key positions (from the generated
//! [`table`], so they match Redis), and its [`Route`], which says where it runs:
//!
//! - [`Route::Key`]: on the shard that owns its key(s). Multi-key commands also say how to
//!   [`Split`] or [`Coord`]inate them when their keys live on several shards;
//! - [`Route::Conn`]: on the connection's own shard, with the connection's state;
//! - [`Route::All`]: on every shard, gathered by the connection's shard;
//! - [`Route::Scan`]: on the shard the cursor names.
//!
//! Keyed code sees a [`Ctx`]: one shard's store, the reply buffer and the clock. It never
//! sees a connection or another shard, so the same function serves a local request and a
//! forwarded one.

pub mod connection;
pub mod expire;
pub mod keyspace;
pub mod meta;
pub mod server;
pub mod string;
pub mod table;

use ahash::RandomState;
use corekv_protocol::{Reply, Span};
use hashbrown::HashMap;

use crate::store::Store;

/// The arguments of one request (name included): spans into a buffer, which is the
/// connection's read buffer for a local request or a message's buffer for a forwarded one.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Args<'a> {
    /// Arguments `spans` of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8], spans: &'a [Span]) -> Self {
        Args { buf, spans }
    }

    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no arguments at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 is the command name).
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.spans[i].of(self.buf)
    }

    /// All arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        self.spans.iter().map(|s| s.of(self.buf))
    }
}

/// Arguments held in their own buffer, for requests built rather than received.
#[derive(Clone, Debug, Default)]
pub struct OwnedArgs {
    buf: Vec<u8>,
    spans: Vec<Span>,
}

impl OwnedArgs {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds from a list of arguments.
    pub fn from_slices<A: AsRef<[u8]>>(args: &[A]) -> Self {
        let mut owned = OwnedArgs::new();
        for a in args {
            owned.push(a.as_ref());
        }
        owned
    }

    /// Appends an argument.
    pub fn push(&mut self, arg: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(arg);
        self.spans.push(Span {
            start,
            end: self.buf.len(),
        });
    }

    /// A view for running a command.
    pub fn args(&self) -> Args<'_> {
        Args::new(&self.buf, &self.spans)
    }
}

/// What a keyed command runs with: one shard's keyspace and where to write its reply.
pub struct Ctx<'a> {
    /// The shard's keyspace.
    pub store: &'a mut Store,
    /// The reply being written.
    pub out: Reply<'a>,
    /// Unix time in milliseconds, fixed for the batch being executed.
    pub now: u64,
    /// `proto-max-bulk-len`: the largest string APPEND and SETRANGE may build.
    pub max_bulk_len: u64,
    /// The command's full name, for error texts that quote it.
    pub name: &'static str,
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
}

/// Runs keyed command `f` (named `name`) against `store`, appending its reply to `out` in
/// `proto`. Returns whether the reply is an error.
pub fn run_keyed(
    f: KeyFn,
    name: &'static str,
    args: Args,
    store: &mut Store,
    env: Env,
    out: &mut Vec<u8>,
    proto: corekv_protocol::Proto,
) -> bool {
    let start = out.len();
    let mut ctx = Ctx {
        store,
        out: Reply::new(out, proto),
        now: env.now,
        max_bulk_len: env.max_bulk_len,
        name,
    };
    f(&mut ctx, args);
    out.get(start) == Some(&b'-')
}

/// How a multi-key command is split by owner and gathered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// MGET: values in key order.
    Mget,
    /// MSET: `+OK` once every part is set.
    Mset,
    /// DEL, UNLINK, EXISTS, TOUCH: the sum of the parts' counts.
    Count,
}

/// A multi-key command that must be atomic across shards.
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
}

/// A command that runs on every shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum All {
    /// KEYS: the concatenation of each shard's matches.
    Keys,
    /// DBSIZE: the sum.
    Dbsize,
    /// FLUSHDB / FLUSHALL.
    Flush,
    /// RANDOMKEY: a random shard's random key.
    RandomKey,
    /// INFO: the connection's shard formats every shard's numbers.
    Info,
    /// CLIENT LIST: every shard's connections.
    ClientList,
    /// CONFIG SET: every shard applies the new values.
    ConfigSet,
    /// CONFIG RESETSTAT: every shard zeroes its counters.
    ConfigResetStat,
    /// CLIENT KILL: every shard closes its matching connections; the counts are summed.
    ClientKill,
    /// SLOWLOG GET: every shard's entries, merged newest first.
    SlowlogGet,
    /// SLOWLOG LEN: the sum.
    SlowlogLen,
    /// SLOWLOG RESET.
    SlowlogReset,
    /// LATENCY HISTOGRAM: every shard's latency histograms, merged per command.
    LatencyHistogram,
}

/// A command that runs on the connection's shard with connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    /// PING
    Ping,
    /// ECHO
    Echo,
    /// QUIT
    Quit,
    /// SELECT
    Select,
    /// HELLO
    Hello,
    /// RESET
    Reset,
    /// CLIENT ID
    ClientId,
    /// CLIENT SETNAME
    ClientSetName,
    /// CLIENT GETNAME
    ClientGetName,
    /// CLIENT SETINFO
    ClientSetInfo,
    /// CLIENT INFO
    ClientInfo,
    /// CLIENT HELP
    ClientHelp,
    /// COMMAND (no subcommand)
    Command,
    /// COMMAND COUNT
    CommandCount,
    /// COMMAND INFO
    CommandInfo,
    /// COMMAND DOCS
    CommandDocs,
    /// COMMAND LIST
    CommandList,
    /// COMMAND GETKEYS
    CommandGetKeys,
    /// COMMAND HELP
    CommandHelp,
    /// TIME
    Time,
    /// CONFIG GET
    ConfigGet,
    /// CONFIG HELP
    ConfigHelp,
    /// AUTH
    Auth,
    /// SHUTDOWN
    Shutdown,
    /// CLIENT NO-EVICT (accepted: corekv never evicts clients)
    ClientNoEvict,
    /// SLOWLOG HELP
    SlowlogHelp,
    /// LATENCY HELP
    LatencyHelp,
}

/// Where a command runs. See the module docs.
#[derive(Clone, Copy)]
pub enum Route {
    /// On the owner of its keys; `None` when its keys never span shards.
    Key(KeyFn, Option<Multi>),
    /// On the connection's shard.
    Conn(Conn),
    /// On every shard.
    All(All),
    /// On the shard in the cursor.
    Scan,
    /// A container (CLIENT, CONFIG) that needs a subcommand; called alone, its arity
    /// check fails first.
    Container,
}

/// What a keyed command does when its keys span shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Multi {
    /// Split by owner and gather.
    Split(Split),
    /// Run atomically across the owners.
    Coord(Coord),
}

/// One command or subcommand.
pub struct Spec {
    /// Full lower-case name: `get`, `client|list`.
    pub name: &'static str,
    /// Redis arity: exact if positive, a minimum if negative.
    pub arity: i64,
    /// Position of the first key (0: no keys).
    pub first_key: i64,
    /// Position of the last key (negative counts from the end).
    pub last_key: i64,
    /// Distance between keys.
    pub step: i64,
    /// Where it runs.
    pub route: Route,
    /// Whether it may change the keyspace (flag `write`).
    pub write: bool,
    /// Whether it may grow memory, so `maxmemory` applies (flag `denyoom`).
    pub denyoom: bool,
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

    /// Positions of the keys in a request with `argc` arguments (empty when none).
    #[inline]
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let argc = argc as i64;
        let (first, step) = (self.first_key, self.step.max(1));
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key.min(argc - 1)
        };
        (first > 0 && last >= first)
            .then_some(first..=last)
            .into_iter()
            .flatten()
            .step_by(step as usize)
            .map(|p| p as usize)
    }

    /// Whether this is a container (has subcommands).
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }
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
    stat_names: Vec<&'static str>,
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
    /// Builds the table from the generated metadata, binding each command to its code.
    /// Panics if a command in the metadata has no implementation (a build-time mistake).
    pub fn new() -> Self {
        let mut specs = Vec::new();
        let mut by_name = HashMap::with_hasher(RandomState::new());
        for cmd in table::COMMANDS.iter() {
            let spec = build_spec(cmd.name, &cmd.info, &cmd.docs);
            by_name.insert(cmd.name.as_bytes(), specs.len());
            specs.push(spec);
        }
        let mut stat_names = Vec::new();
        for spec in &mut specs {
            spec.stat = stat_names.len();
            stat_names.push(spec.name);
            for sub in &mut spec.subcommands {
                sub.stat = stat_names.len();
                stat_names.push(sub.name);
            }
        }
        Commands {
            specs,
            by_name,
            stat_names,
        }
    }

    /// Full names by statistics slot (`Spec::stat`).
    pub fn stat_names(&self) -> &[&'static str] {
        &self.stat_names
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

fn build_spec(name: &'static str, info: &'static meta::Meta, docs: &'static meta::Meta) -> Spec {
    let flags = info.at(2).items();
    let subcommands = info
        .at(9)
        .items()
        .iter()
        .map(|sub| {
            let sub_name = sub.at(0).str();
            let sub_docs = docs
                .get("subcommands")
                .and_then(|m| m.get(sub_name))
                .unwrap_or_else(|| panic!("no docs for {sub_name}"));
            build_spec(sub_name, sub, sub_docs)
        })
        .collect::<Vec<_>>();
    let route = match (subcommands.is_empty(), name) {
        (true, _) => route_of(name),
        // COMMAND alone lists every command; other containers need a subcommand.
        (false, "command") => Route::Conn(Conn::Command),
        (false, _) => Route::Container,
    };
    Spec {
        name,
        arity: info.at(1).int(),
        first_key: info.at(3).int(),
        last_key: info.at(4).int(),
        step: info.at(5).int(),
        route,
        write: flags.iter().any(|f| f.str() == "write"),
        denyoom: flags.iter().any(|f| f.str() == "denyoom"),
        info,
        docs,
        subcommands,
        stat: 0,
    }
}

/// Binds a command name to its code. Every name in the generated table must appear here.
fn route_of(name: &str) -> Route {
    use expire as e;
    use keyspace as k;
    use string as s;
    let key = |f: KeyFn| Route::Key(f, None);
    let split = |f: KeyFn, how| Route::Key(f, Some(Multi::Split(how)));
    let coord = |f: KeyFn, how| Route::Key(f, Some(Multi::Coord(how)));
    match name {
        "get" => key(s::get),
        "set" => key(s::set),
        "setnx" => key(s::setnx),
        "getset" => key(s::getset),
        "getdel" => key(s::getdel),
        "append" => key(s::append),
        "strlen" => key(s::strlen),
        "incr" => key(s::incr),
        "decr" => key(s::decr),
        "incrby" => key(s::incrby),
        "decrby" => key(s::decrby),
        "incrbyfloat" => key(s::incrbyfloat),
        "getrange" | "substr" => key(s::getrange),
        "setrange" => key(s::setrange),
        "setex" => key(s::setex),
        "psetex" => key(s::psetex),
        "getex" => key(s::getex),
        "expire" => key(e::expire),
        "pexpire" => key(e::pexpire),
        "expireat" => key(e::expireat),
        "pexpireat" => key(e::pexpireat),
        "ttl" => key(e::ttl),
        "pttl" => key(e::pttl),
        "expiretime" => key(e::expiretime),
        "pexpiretime" => key(e::pexpiretime),
        "persist" => key(e::persist),
        "mget" => split(s::mget, Split::Mget),
        "mset" => split(s::mset, Split::Mset),
        "msetnx" => coord(s::msetnx, Coord::Msetnx),
        "del" | "unlink" => split(k::del, Split::Count),
        "exists" => split(k::exists, Split::Count),
        "touch" => split(k::touch, Split::Count),
        "type" => key(k::type_),
        "rename" => coord(k::rename, Coord::Rename),
        "renamenx" => coord(k::renamenx, Coord::RenameNx),
        "copy" => coord(k::copy, Coord::Copy),
        "keys" => Route::All(All::Keys),
        "dbsize" => Route::All(All::Dbsize),
        "flushdb" | "flushall" => Route::All(All::Flush),
        "randomkey" => Route::All(All::RandomKey),
        "info" => Route::All(All::Info),
        "client|list" => Route::All(All::ClientList),
        "scan" => Route::Scan,
        "ping" => Route::Conn(Conn::Ping),
        "echo" => Route::Conn(Conn::Echo),
        "quit" => Route::Conn(Conn::Quit),
        "select" => Route::Conn(Conn::Select),
        "hello" => Route::Conn(Conn::Hello),
        "reset" => Route::Conn(Conn::Reset),
        "client|id" => Route::Conn(Conn::ClientId),
        "client|setname" => Route::Conn(Conn::ClientSetName),
        "client|getname" => Route::Conn(Conn::ClientGetName),
        "client|setinfo" => Route::Conn(Conn::ClientSetInfo),
        "client|info" => Route::Conn(Conn::ClientInfo),
        "client|help" => Route::Conn(Conn::ClientHelp),
        "client|kill" => Route::All(All::ClientKill),
        "client|no-evict" => Route::Conn(Conn::ClientNoEvict),
        "auth" => Route::Conn(Conn::Auth),
        "shutdown" => Route::Conn(Conn::Shutdown),
        "slowlog|get" => Route::All(All::SlowlogGet),
        "slowlog|len" => Route::All(All::SlowlogLen),
        "slowlog|reset" => Route::All(All::SlowlogReset),
        "slowlog|help" => Route::Conn(Conn::SlowlogHelp),
        "config|resetstat" => Route::All(All::ConfigResetStat),
        "latency|histogram" => Route::All(All::LatencyHistogram),
        "latency|help" => Route::Conn(Conn::LatencyHelp),
        "command|count" => Route::Conn(Conn::CommandCount),
        "command|info" => Route::Conn(Conn::CommandInfo),
        "command|docs" => Route::Conn(Conn::CommandDocs),
        "command|list" => Route::Conn(Conn::CommandList),
        "command|getkeys" => Route::Conn(Conn::CommandGetKeys),
        "command|help" => Route::Conn(Conn::CommandHelp),
        "time" => Route::Conn(Conn::Time),
        "config|get" => Route::Conn(Conn::ConfigGet),
        "config|help" => Route::Conn(Conn::ConfigHelp),
        "config|set" => Route::All(All::ConfigSet),
        other => panic!("command {other} is in the table but has no implementation"),
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
    fn every_generated_command_is_implemented() {
        let cmds = Commands::new();
        assert_eq!(cmds.all().len(), table::COMMANDS.len());
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
                .key_positions(argc)
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
    fn arity_matches_redis() {
        let cmds = Commands::new();
        let get = cmds.get(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(3) && !get.arity_ok(1));
        let del = cmds.get(b"del").unwrap();
        assert!(del.arity_ok(2) && del.arity_ok(10) && !del.arity_ok(1));
    }
}
