//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO (keyed: a script runs on the
//! shard that owns its declared keys, atomically, since a shard runs one thing at a
//! time) and SCRIPT LOAD, EXISTS, FLUSH, KILL (on every shard). The Lua side is
//! [`crate::script`]; this file runs the commands a script calls on the shard's keyspace.
//!
//! Every shard keeps the same script cache: SCRIPT LOAD compiles on all of them before
//! it replies, and a script EVAL compiles on one shard is sent to the others right after
//! it runs (so an EVALSHA that races the EVAL it follows can still find no script).
//!
//! Where Redis Cluster would refuse, so does corekv: a script whose declared keys live on
//! different shards gets `-CROSSSLOT` (hash-tag the keys, `{queue}:jobs`), and a command
//! in a script that names a key of another shard fails as a non-local key in Redis
//! Cluster does. A script may call the keyed commands; commands that run on the client's
//! shard or on every shard (PING, INFO, DBSIZE) are refused inside scripts for now.

use corekv_protocol::number::parse_i64;
use corekv_protocol::{Proto, Reply};

use super::{
    errors, every_shard, Args, Check, Commands, Coordinated, Ctx, Env, Fanout, Flow, Local, Lookup,
    OwnedArgs, Plan, Registrations, Route,
};
use crate::assembly::{MergeCtx, MergeData};
use crate::script::functions::{Fcall, RestorePolicy, ALLOW_OOM, NO_WRITES};
use crate::script::{Host, Outcome};
use crate::state::State;
use crate::store::Keyspace;

/// The scripting family.
pub(super) const COMMANDS: Registrations = &[
    ("eval", Route::coordinated(eval, &CROSS_SHARD)),
    ("evalsha", Route::coordinated(evalsha, &CROSS_SHARD)),
    ("eval_ro", Route::coordinated(eval_ro, &CROSS_SHARD)),
    ("evalsha_ro", Route::coordinated(evalsha_ro, &CROSS_SHARD)),
    ("script|load", Route::Fanout(&SCRIPT_LOAD)),
    ("script|exists", Route::Fanout(&SCRIPT_EXISTS)),
    ("script|flush", Route::Fanout(&SCRIPT_FLUSH)),
    ("script|kill", Route::Local(script_kill)),
    ("fcall", Route::coordinated(fcall, &CROSS_SHARD)),
    ("fcall_ro", Route::coordinated(fcall_ro, &CROSS_SHARD)),
    ("function|load", Route::Fanout(&FUNCTION_LOAD)),
    ("function|list", Route::Fanout(&FUNCTION_LIST)),
    ("function|delete", Route::Fanout(&FUNCTION_DELETE)),
    ("function|flush", Route::Fanout(&FUNCTION_FLUSH)),
    ("function|stats", Route::Fanout(&FUNCTION_STATS)),
    ("function|dump", Route::Fanout(&FUNCTION_DUMP)),
    ("function|restore", Route::Fanout(&FUNCTION_RESTORE)),
    ("function|kill", Route::Local(function_kill)),
];

/// A script whose declared keys span shards: run over copies of them with their owners
/// paused (see [`run_gathered`]).
const CROSS_SHARD: Coordinated = Coordinated {
    kind: super::Coord::Script,
    check: |out, _, args| numkeys(out, args).map(|_| false),
    blocking: None,
};

/// EVAL's `numkeys`, checked as Redis checks it (errors written).
fn numkeys(out: &mut Reply, args: Args) -> Option<usize> {
    let Some(n) = parse_i64(args.get(2)) else {
        out.err(errors::NOT_INTEGER);
        return None;
    };
    if n > args.len() as i64 - 3 {
        out.err("Number of keys can't be greater than number of args");
        return None;
    }
    if n < 0 {
        out.err("Number of keys can't be negative");
        return None;
    }
    Some(n as usize)
}

/// Runs the commands a script calls on this shard's keyspace.
struct ScriptHost<'c, 'a, 'k> {
    store: &'c mut Keyspace<'a>,
    env: Env,
    shard: usize,
    map: crate::slot::SlotMap,
    /// Over copies of keys from several shards: the declared keys, the only ones it may
    /// touch.
    declared: Option<&'k [&'k [u8]]>,
    readonly: bool,
    /// The keyspace was over `maxmemory` when the script started (after evicting what
    /// the policy allows): as in Redis, its first write that may grow memory is refused
    /// (unless the script is `allow-oom`), and nothing is evicted mid-script.
    oom: bool,
    allow_oom: bool,
    /// It has run a write command.
    wrote: bool,
}

impl Host for ScriptHost<'_, '_, '_> {
    fn call(&mut self, a: Args, proto: Proto, out: &mut Vec<u8>) -> bool {
        let mut refuse = |msg: &str| {
            Reply::new(out, proto).err(msg);
            false
        };
        let Lookup::Found(spec) = Commands::global().lookup(a) else {
            return refuse("Unknown Redis command called from script");
        };
        if !spec.arity_ok(a.len()) {
            return refuse("Wrong number of args calling Redis command from script");
        }
        if spec.noscript {
            return refuse("This Redis command is not allowed from script");
        }
        if self.readonly && spec.write {
            return refuse("Write commands are not allowed from read-only scripts.");
        }
        if spec.denyoom && self.oom && !self.allow_oom && !self.wrote {
            Reply::new(out, proto).error(crate::state::OOM);
            return false;
        }
        if let Route::Keyed(_, Some(super::Multi::Coord(how))) = spec.route {
            if self.map.shards() > 1 && how.kind.looks_up(a) {
                // SORT's BY and GET patterns name keys anywhere: not from a script.
                return refuse("Script attempted to access a non local key in a cluster node");
            }
        }
        let Route::Keyed(f, _) = spec.route else {
            self.call_unkeyed(spec.name, a, &mut Reply::new(out, proto));
            return false;
        };
        let foreign = |k: &[u8]| match self.declared {
            Some(keys) => !keys.contains(&k),
            None => self.map.shard_of(k) != self.shard,
        };
        if spec.key_positions(a).any(|p| foreign(a.get(p))) {
            return refuse("Script attempted to access a non local key in a cluster node");
        }
        super::run_keyed(
            f,
            spec.name,
            a,
            self.store.reborrow(),
            Env {
                write: spec.write,
                ..self.env
            },
            out,
            proto,
            None,
        );
        self.wrote |= spec.write;
        spec.write
    }

    fn set_flags(&mut self, flags: u8) {
        self.readonly |= flags & NO_WRITES != 0;
        self.allow_oom = flags & ALLOW_OOM != 0;
    }

    fn over_maxmemory(&self) -> bool {
        self.oom
    }
}

impl ScriptHost<'_, '_, '_> {
    /// The commands without keys a script may call that need no client or other shard:
    /// PING, ECHO, TIME, SELECT 0. Others are refused with a clear error.
    fn call_unkeyed(&mut self, name: &str, a: Args, out: &mut Reply) {
        match name {
            "ping" if a.len() == 1 => out.simple(b"PONG"),
            "ping" => out.bulk(a.get(1)),
            "echo" => out.bulk(a.get(1)),
            "time" => super::server::time_reply(out),
            "select" => match parse_i64(a.get(1)) {
                Some(0) => out.ok(),
                Some(_) => out.err("DB index is out of range"),
                None => out.err(errors::NOT_INTEGER),
            },
            _ => out.err(&format!("corekv does not run '{name}' inside scripts yet")),
        }
    }
}

/// Whether the keyspace is over `maxmemory` as a script starts, after evicting what the
/// policy allows (on the shard's real keyspace; a script over copies was told by
/// `run_gathered`).
fn over_maxmemory(store: &mut Keyspace, scripting: &mut super::Scripting) -> bool {
    match scripting.oom {
        Some(oom) => oom,
        None => !store.admit(scripting.maxmemory, scripting.policy, scripting.rng),
    }
}

/// The declared keys and the arguments of EVAL or FCALL with `n` keys.
fn keys_and_argv(args: Args<'_>, n: usize) -> (Vec<&[u8]>, Vec<&[u8]>) {
    (
        (3..3 + n).map(|i| args.get(i)).collect(),
        (3 + n..args.len()).map(|i| args.get(i)).collect(),
    )
}

/// What the commands a script calls run with (they never block).
fn script_env(ctx: &Ctx) -> Env {
    Env {
        now: ctx.now,
        max_bulk_len: ctx.max_bulk_len,
        coll: ctx.coll,
        shared_ints: ctx.shared_ints,
        may_block: false,
        write: false,
    }
}

/// Readies the engine for a script (heap limit, kill cell) and makes its host, with
/// the keyspace's `maxmemory` state taken once, at the start.
fn prepare<'c, 'a, 'k>(
    store: &'c mut Keyspace<'a>,
    env: Env,
    scripting: &mut super::Scripting,
    keys: &'k [&'k [u8]],
    readonly: bool,
) -> ScriptHost<'c, 'a, 'k> {
    let oom = over_maxmemory(store, scripting);
    scripting.scripts.limit_memory(scripting.memory_limit);
    scripting
        .scripts
        .set_control(scripting.shard, scripting.busy_threshold);
    ScriptHost {
        store,
        env,
        shard: scripting.shard,
        map: scripting.map,
        declared: scripting.declared_only.then_some(keys),
        readonly,
        oom,
        allow_oom: false,
        wrote: false,
    }
}

/// EVAL and its kin here: `body` for EVAL (its SHA1 computed), else the SHA1 argument.
fn run(ctx: &mut Ctx, args: Args, with_body: bool, readonly: bool) {
    let Some(n) = numkeys(&mut ctx.out, args) else {
        return;
    };
    let Some(mut scripting) = ctx.scripting.take() else {
        ctx.out.err("scripts cannot call scripts");
        return;
    };
    let (body, sha) = if with_body {
        let body = args.get(1);
        (Some(body), crate::script::sha1hex(body).into_bytes())
    } else {
        (None, args.get(1).to_vec())
    };
    let (keys, argv) = keys_and_argv(args, n);
    let fresh = with_body && !scripting.scripts.exists(&sha);
    let env = script_env(ctx);
    let mut host = prepare(&mut ctx.store, env, &mut scripting, &keys, readonly);
    match scripting
        .scripts
        .run(body, &sha, &keys, &argv, readonly, &mut host, &mut ctx.out)
    {
        Outcome::Ran => {
            if fresh && scripting.scripts.exists(&sha) && scripting.map.shards() > 1 {
                scripting.loaded.push(args.get(1).to_vec());
            }
        }
        Outcome::NoScript => ctx
            .out
            .error(b"NOSCRIPT No matching script. Please use EVAL."),
    }
    ctx.scripting = Some(scripting);
}

/// FCALL and FCALL_RO here: the function first, then its keys, as Redis checks them.
fn fcall_here(ctx: &mut Ctx, args: Args, ro_command: bool) {
    let Some(mut scripting) = ctx.scripting.take() else {
        ctx.out.err("scripts cannot call scripts");
        return;
    };
    let name = args.get(1);
    let flags = scripting.scripts.function_flags(name);
    let checked = match flags {
        None => Err("Function not found"),
        Some(flags) => match parse_i64(args.get(2)) {
            None => Err("Bad number of keys provided"),
            Some(n) if n > args.len() as i64 - 3 => {
                Err("Number of keys can't be greater than number of args")
            }
            Some(n) if n < 0 => Err("Number of keys can't be negative"),
            Some(_) if ro_command && flags & NO_WRITES == 0 => {
                Err("Can not execute a script with write flag using *_ro command.")
            }
            Some(n) => Ok((n as usize, ro_command || flags & NO_WRITES != 0)),
        },
    };
    let (n, readonly) = match checked {
        Ok(found) => found,
        Err(e) => {
            ctx.out.err(e);
            ctx.scripting = Some(scripting);
            return;
        }
    };
    let (keys, argv) = keys_and_argv(args, n);
    let env = script_env(ctx);
    let mut host = prepare(&mut ctx.store, env, &mut scripting, &keys, readonly);
    if let Fcall::NotFound = scripting
        .scripts
        .fcall(name, &keys, &argv, &mut host, &mut ctx.out)
    {
        ctx.out.err("Function not found");
    }
    ctx.scripting = Some(scripting);
}

/// FCALL function numkeys [key ...] [arg ...]
pub fn fcall(ctx: &mut Ctx, args: Args) {
    fcall_here(ctx, args, false);
}

/// FCALL_RO function numkeys [key ...] [arg ...]
pub fn fcall_ro(ctx: &mut Ctx, args: Args) {
    fcall_here(ctx, args, true);
}

/// EVAL script numkeys [key ...] [arg ...]
pub fn eval(ctx: &mut Ctx, args: Args) {
    run(ctx, args, true, false);
}

/// EVALSHA sha1 numkeys [key ...] [arg ...]
pub fn evalsha(ctx: &mut Ctx, args: Args) {
    run(ctx, args, false, false);
}

/// EVAL_RO script numkeys [key ...] [arg ...]
pub fn eval_ro(ctx: &mut Ctx, args: Args) {
    run(ctx, args, true, true);
}

/// EVALSHA_RO sha1 numkeys [key ...] [arg ...]
pub fn evalsha_ro(ctx: &mut Ctx, args: Args) {
    run(ctx, args, false, true);
}

/// A script whose declared keys span shards, on the client's shard with every owner
/// paused (see [`crate::coord::Coord::Script`]): `copies` are the keys as their owners
/// dumped them. The script runs over a scratch keyspace holding them; the reply is
/// `[the script's reply, changed keys...]`, a changed key `[key, type, deadline,
/// payload]` and a deleted one `[key]`. The script's keyspace events are raised here.
pub fn run_gathered(
    state: &mut State,
    request: Args,
    copies: &[(Vec<u8>, Vec<u8>)],
    out: &mut Reply,
) {
    use corekv_protocol::frame::{self, Frame};
    let now = state.now();
    let mut store = crate::store::Store::new();
    store.events.flags = state.store.events.flags;
    let mut timers = crate::timer::Timers::new(now);
    let mut before: Vec<&[u8]> = Vec::with_capacity(copies.len());
    for (key, dumped) in copies {
        if let Ok(Some((Frame::Array(items), _))) = frame::parse(dumped) {
            if let [ty, deadline, payload] = &items[..] {
                let deadline = match deadline {
                    Frame::Integer(n) if *n > 0 => *n as u64,
                    _ => 0,
                };
                let (ty, payload) = (
                    ty.as_bytes().unwrap_or_default(),
                    payload.as_bytes().unwrap_or_default(),
                );
                store.restore_value(key, ty, payload, deadline, &mut timers);
            }
        }
        before.push(key);
    }
    // Each copy watched by a watcher of its own: what the script changed is what the
    // store marks, whatever the values look like after (the copies' internal order may
    // differ from their owners').
    let watcher = |i: usize| crate::store::watch::Watcher {
        shard: 0,
        slot: i as u32,
        gen: 0,
    };
    for (i, key) in before.iter().enumerate() {
        store.watches.watch(key, watcher(i));
    }
    let spec = match Commands::global().lookup(request) {
        Lookup::Found(spec) => spec,
        _ => return out.err("internal error: not a script command"),
    };
    let Route::Keyed(f, _) = spec.route else {
        return out.err("internal error: not a script command");
    };
    let env = Env {
        now,
        max_bulk_len: state.config.limits.max_bulk_len,
        coll: state.config.coll,
        shared_ints: state.config.shared_ints(),
        may_block: false,
        write: false,
    };
    // The memory state is the real keyspace's, never the scratch store's (which holds
    // only copies: nothing may be evicted from it).
    let oom = !Keyspace::new(&mut state.store, &mut state.timers).admit(
        state.config.shard_maxmemory(),
        state.config.maxmemory_policy,
        &mut state.rng,
    );
    let scripting = super::Scripting {
        memory_limit: state.script_memory_limit(),
        busy_threshold: state.config.busy_reply_threshold,
        maxmemory: state.config.shard_maxmemory(),
        policy: state.config.maxmemory_policy,
        rng: &mut state.rng,
        oom: Some(oom),
        scripts: &mut state.scripts,
        shard: state.id,
        map: crate::slot::SlotMap::new(state.shards),
        loaded: &mut state.scripts_out,
        declared_only: true,
    };
    let mut reply = Vec::new();
    super::run_keyed(
        f,
        spec.name,
        request,
        Keyspace::new(&mut store, &mut timers),
        env,
        &mut reply,
        out.proto(),
        Some(scripting),
    );
    let mut changed = Vec::new();
    for (i, key) in before.iter().enumerate() {
        if !store.watches.unwatch(watcher(i), [*key]) {
            continue;
        }
        let after = store.find(key, now, &mut timers).map(|idx| {
            let mut payload = Vec::new();
            store.dump_value(idx, &mut payload);
            let deadline = store.entry(idx).expire_at().unwrap_or(0);
            (store.dump_type(idx).to_vec(), deadline, payload)
        });
        changed.push((*key, after));
    }
    state.store.events.list.append(&mut store.events.list);
    out.array(1 + changed.len());
    out.bulk(&reply);
    for (key, after) in changed {
        match after {
            None => {
                out.array(1);
                out.bulk(key);
            }
            Some((ty, deadline, payload)) => {
                out.array(4);
                out.bulk(key);
                out.bulk(&ty);
                out.int(deadline as i64);
                out.bulk(&payload);
            }
        }
    }
}

/// SCRIPT LOAD script: compiled on every shard; the first shard's reply (the SHA1, or
/// the compile error every shard finds alike).
const SCRIPT_LOAD: Fanout = Fanout {
    check: |_: &mut Check, args| Some(after_subcommand(args)),
    part: |state: &mut State, args, out| match state.scripts.load(args.get(0)) {
        Ok(sha) => out.bulk(sha.as_bytes()),
        Err(e) => out.err(&e),
    },
    merge: first,
};

/// A part on every shard with the arguments after `SCRIPT <subcommand>`.
fn after_subcommand(args: Args) -> Plan {
    let mut a = OwnedArgs::new();
    for arg in args.iter().skip(2) {
        a.push(arg);
    }
    Plan::all_with(a)
}

fn first(_: &mut MergeCtx, _: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    if let Some(p) = parts.first() {
        out.raw(p);
    }
}

/// SCRIPT EXISTS sha1 [sha1 ...]: 1 where any shard has the script.
const SCRIPT_EXISTS: Fanout = Fanout {
    check: |_: &mut Check, args| Some(after_subcommand(args)),
    part: |state: &mut State, args, out| {
        out.array(args.len());
        for sha in args.iter() {
            out.int(i64::from(state.scripts.exists(sha)));
        }
    },
    merge: |_, _, parts, out| {
        let lists: Vec<Vec<&[u8]>> = parts
            .iter()
            .filter_map(|p| super::merge::array_elements(p))
            .collect();
        let n = lists.first().map_or(0, Vec::len);
        out.array(n);
        for i in 0..n {
            let any = lists.iter().any(|l| l.get(i) == Some(&&b":1\r\n"[..]));
            out.int(i64::from(any));
        }
    },
};

/// SCRIPT FLUSH's and FUNCTION FLUSH's optional ASYNC or SYNC (both flush at once):
/// a part on every shard, or `error` (each has Redis's own text).
fn flush_mode(c: &mut Check, args: Args, error: &str) -> Option<Plan> {
    let mode_ok = match args.len() {
        2 => true,
        3 => [&b"async"[..], b"sync"]
            .iter()
            .any(|m| args.get(2).eq_ignore_ascii_case(m)),
        _ => false,
    };
    if !mode_ok {
        c.out.err(error);
        return None;
    }
    Some(Plan::all())
}

/// SCRIPT FLUSH [ASYNC|SYNC]
const SCRIPT_FLUSH: Fanout = Fanout {
    check: |c: &mut Check, args| flush_mode(c, args, "SCRIPT FLUSH only support SYNC|ASYNC option"),
    part: |state: &mut State, _, out| {
        state.scripts.flush();
        out.ok();
    },
    merge: super::merge::all_ok,
};

/// FUNCTION LOAD \[REPLACE\] code, on every shard; the first shard's reply.
const FUNCTION_LOAD: Fanout = Fanout {
    check: |c: &mut Check, args| {
        let mut replace = false;
        let mut i = 2;
        while i < args.len() - 1 {
            if !args.get(i).eq_ignore_ascii_case(b"replace") {
                let opt = String::from_utf8_lossy(args.get(i)).into_owned();
                c.out.err(&format!("Unknown option given: {opt}"));
                return None;
            }
            replace = true;
            i += 1;
        }
        let mut a = OwnedArgs::new();
        a.push(if replace { b"1" } else { b"0" });
        a.push(args.get(i));
        Some(Plan::all_with(a))
    },
    part: |state: &mut State, args, out| {
        let limit = state.script_memory_limit();
        state.scripts.limit_memory(limit);
        match state
            .scripts
            .function_load(args.get(1), args.get(0) == b"1")
        {
            Ok(name) => {
                let replace: &[&[u8]] = if args.get(0) == b"1" {
                    &[b"REPLACE"]
                } else {
                    &[]
                };
                let head: [&[u8]; 2] = [b"FUNCTION", b"LOAD"];
                let cmd: Vec<&[u8]> = head
                    .iter()
                    .chain(replace)
                    .copied()
                    .chain([args.get(1)])
                    .collect();
                state.store.log.command(&cmd);
                out.bulk(name.as_bytes())
            }
            Err(e) => out.err(&e),
        }
    },
    merge: first,
};

/// FUNCTION LIST [LIBRARYNAME pattern] \[WITHCODE\]: every shard holds the same
/// libraries; the first shard's list.
const FUNCTION_LIST: Fanout = Fanout {
    check: |c: &mut Check, args| {
        let (mut pattern, mut with_code) = (None, false);
        let mut i = 2;
        while i < args.len() {
            let a = args.get(i);
            if !with_code && a.eq_ignore_ascii_case(b"withcode") {
                with_code = true;
            } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
                if i + 1 >= args.len() {
                    c.out.err("library name argument was not given");
                    return None;
                }
                i += 1;
                pattern = Some(args.get(i));
            } else {
                let a = String::from_utf8_lossy(a).into_owned();
                c.out.err(&format!("Unknown argument {a}"));
                return None;
            }
            i += 1;
        }
        let mut a = OwnedArgs::new();
        a.push(if with_code { b"1" } else { b"0" });
        if let Some(p) = pattern {
            a.push(p);
        }
        Some(Plan::all_with(a))
    },
    part: |state: &mut State, args, out| {
        let pattern = (args.len() > 1).then(|| args.get(1));
        state
            .scripts
            .function_list(pattern, args.get(0) == b"1", out);
    },
    merge: first,
};

/// FUNCTION DELETE library
const FUNCTION_DELETE: Fanout = Fanout {
    check: |_: &mut Check, args| Some(after_subcommand(args)),
    part: |state: &mut State, args, out| {
        if state.scripts.function_delete(args.get(0)) {
            state
                .store
                .log
                .command(&[b"FUNCTION".as_slice(), b"DELETE", args.get(0)]);
            out.ok();
        } else {
            out.err("Library not found");
        }
    },
    merge: first,
};

/// FUNCTION FLUSH [ASYNC|SYNC]
const FUNCTION_FLUSH: Fanout = Fanout {
    check: |c: &mut Check, args| {
        flush_mode(c, args, "FUNCTION FLUSH only supports SYNC|ASYNC option")
    },
    part: |state: &mut State, _, out| {
        state.scripts.function_flush();
        state.store.log.command(&["FUNCTION", "FLUSH"]);
        out.ok();
    },
    merge: super::merge::all_ok,
};

/// FUNCTION DUMP: every shard holds the same libraries; the first shard's payload.
const FUNCTION_DUMP: Fanout = Fanout {
    check: every_shard,
    part: |state: &mut State, _, out| {
        out.bulk(&state.scripts.function_dump(state.config.rdbcompression))
    },
    merge: first,
};

/// FUNCTION RESTORE serialized-value \[FLUSH|APPEND|REPLACE\], on every shard.
const FUNCTION_RESTORE: Fanout = Fanout {
    check: |c: &mut Check, args| {
        let policy: &[u8] = match args.len() {
            3 => b"append",
            4 => {
                let p = args.get(3);
                if ![&b"flush"[..], b"append", b"replace"]
                    .iter()
                    .any(|w| p.eq_ignore_ascii_case(w))
                {
                    c.out.err(
                        "Wrong restore policy given, value should be either FLUSH, APPEND or \
                         REPLACE.",
                    );
                    return None;
                }
                p
            }
            _ => {
                c.out.err(
                    "unknown subcommand or wrong number of arguments for 'RESTORE'. Try \
                     FUNCTION HELP.",
                );
                return None;
            }
        };
        let mut a = OwnedArgs::new();
        a.push(args.get(2));
        a.push(&policy.to_ascii_lowercase());
        Some(Plan::all_with(a))
    },
    part: |state: &mut State, args, out| {
        let policy = match args.get(1) {
            b"flush" => RestorePolicy::Flush,
            b"replace" => RestorePolicy::Replace,
            _ => RestorePolicy::Append,
        };
        match state.scripts.function_restore(args.get(0), policy) {
            Ok(()) => {
                let logged: [&[u8]; 4] = [b"FUNCTION", b"RESTORE", args.get(0), args.get(1)];
                state.store.log.command(&logged);
                out.ok()
            }
            Err(e) => out.err(&e),
        }
    },
    merge: first,
};

/// FUNCTION STATS
const FUNCTION_STATS: Fanout = Fanout {
    check: every_shard,
    part: |state: &mut State, _, out| state.scripts.function_stats(out),
    merge: first,
};

/// SCRIPT KILL and FUNCTION KILL: a script that has run past `busy-reply-threshold` on
/// any shard is asked to stop (see `script::control`), if it has not written.
fn kill(l: &mut Local, function: bool) -> Flow {
    use crate::script::control::{self, Kill};
    let shards = l.config.shards;
    let mut out = l.reply();
    match control::kill(shards, function) {
        Kill::Killed => out.ok(),
        Kill::NotBusy => out.error(b"NOTBUSY No scripts in execution right now."),
        Kill::Unkillable => out.error(
            b"UNKILLABLE Sorry the script already executed write commands against the \
              dataset. You can either wait the script termination or kill the server in a \
              hard way using the SHUTDOWN NOSAVE command.",
        ),
        Kill::OtherKind if function => out.error(
            b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or \
              SHUTDOWN NOSAVE.",
        ),
        Kill::OtherKind => out.error(
            b"BUSY Redis is busy running a script. You can only call FUNCTION KILL or \
              SHUTDOWN NOSAVE.",
        ),
    }
    Flow::Continue
}

/// SCRIPT KILL
fn script_kill(l: &mut Local, _: Args) -> Flow {
    kill(l, false)
}

/// FUNCTION KILL
fn function_kill(l: &mut Local, _: Args) -> Flow {
    kill(l, true)
}
