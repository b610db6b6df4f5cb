//! The hot path between Lua and the shard, over Lua's C API (through `mlua::ffi`):
//! `redis.call` and `redis.pcall`, RESP replies pushed as Lua values, and a script's
//! result written as RESP. Each EVALSHA of a short script crosses this boundary a few
//! times; mlua's safe values (a registry reference per value) cost more than the script.
//!
//! Every function here is `unsafe`: it takes the running Lua state and keeps to Lua's
//! stack discipline (what it pushes, it pops or returns). The only non-local exit is
//! `lua_error` in [`redis_call`], taken after every Rust value of the call is dropped.

use std::ffi::{c_int, CStr};

use corekv_protocol::{Proto, Reply};
use mlua::ffi::{self, lua_State};

use super::Host;
use crate::args::OwnedArgs;
use crate::float::{c_i64, format_double};

/// What `redis.call` needs while a script runs: the host, and buffers kept between
/// calls. It lives in a `Box` owned by the engine (a stable address, passed to the C
/// functions as their upvalue).
pub(super) struct CallCtx {
    /// The running script's host; `None` between scripts.
    pub host: Option<*mut (dyn Host + 'static)>,
    /// The protocol `redis.call` replies in (`redis.setresp`).
    pub resp: std::rc::Rc<std::cell::Cell<u8>>,
    args: OwnedArgs,
    number: Vec<u8>,
    reply: Vec<u8>,
    /// When the running script started.
    pub start: std::time::Instant,
    /// The shard it runs on (its `control` cell).
    pub shard: usize,
    /// `busy-reply-threshold`, ms.
    pub threshold_ms: u64,
    /// It is a function.
    pub function: bool,
    /// It has run a write command.
    pub wrote: bool,
    /// Its control cell says it is busy.
    pub marked: bool,
    /// A library's code is running (FUNCTION LOAD, FUNCTION RESTORE): stopped after
    /// [`LOAD_TIMEOUT_MS`], as in Redis.
    pub loading: bool,
}

/// How long a library's code may run at load.
pub(super) const LOAD_TIMEOUT_MS: u128 = 500;

impl CallCtx {
    pub fn new() -> Self {
        CallCtx {
            host: None,
            resp: std::rc::Rc::new(std::cell::Cell::new(2)),
            args: OwnedArgs::new(),
            number: Vec::new(),
            reply: Vec::new(),
            start: std::time::Instant::now(),
            shard: 0,
            threshold_ms: 5000,
            function: false,
            wrote: false,
            marked: false,
            loading: false,
        }
    }
}

/// `redis.call`: runs the command; an error reply is raised.
///
/// # Safety
///
/// Called by Lua, with upvalue 1 a light userdata pointing at the engine's [`CallCtx`].
pub(super) unsafe extern "C-unwind" fn redis_call(state: *mut lua_State) -> c_int {
    // SAFETY: as the caller promises; `call` leaves exactly its result on the stack.
    let failed = unsafe { call(state) };
    if failed {
        // SAFETY: `call` has returned, so no Rust value of this call is alive: the
        // longjmp crosses only this frame, which holds nothing to drop.
        unsafe { ffi::lua_error(state) }
    }
    1
}

/// `redis.pcall`: runs the command; an error reply is returned as `{err = ...}`.
///
/// # Safety
///
/// As [`redis_call`].
pub(super) unsafe extern "C-unwind" fn redis_pcall(state: *mut lua_State) -> c_int {
    // SAFETY: as the caller promises.
    unsafe { call(state) };
    1
}

/// Runs the command named by the arguments on the stack through the host and pushes
/// its reply; true when that is an error table.
unsafe fn call(state: *mut lua_State) -> bool {
    // SAFETY: upvalue 1 is the engine's CallCtx (see `redis_call`), not otherwise
    // borrowed while a script runs.
    let ctx =
        unsafe { &mut *(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *mut CallCtx) };
    let n = unsafe { ffi::lua_gettop(state) };
    if n == 0 {
        unsafe {
            push_error(
                state,
                b"Please specify at least one argument for this redis lib call",
            )
        };
        return true;
    }
    ctx.args.clear();
    for i in 1..=n {
        match unsafe { ffi::lua_type(state, i) } {
            ffi::LUA_TNUMBER => {
                ctx.number.clear();
                format_double(unsafe { ffi::lua_tonumber(state, i) }, &mut ctx.number);
                ctx.args.push(&ctx.number);
            }
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = unsafe { ffi::lua_tolstring(state, i, &mut len) };
                // SAFETY: Lua keeps the string alive while it is on the stack.
                ctx.args
                    .push(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) });
            }
            _ => {
                unsafe {
                    push_error(
                        state,
                        b"Lua redis lib command arguments must be strings or integers",
                    )
                };
                return true;
            }
        }
    }
    let Some(host) = ctx.host else {
        unsafe { push_error(state, b"redis.call outside a script") };
        return true;
    };
    let proto = if ctx.resp.get() == 3 {
        Proto::Resp3
    } else {
        Proto::Resp2
    };
    ctx.reply.clear();
    // SAFETY: the host outlives the script run that set it (see `Engine::run`).
    let wrote = unsafe { (*host).call(ctx.args.args(), proto, &mut ctx.reply) };
    if wrote && !ctx.wrote {
        ctx.wrote = true;
        if ctx.marked {
            // A busy script is now unkillable: say so at once, not at the next check.
            super::control::of(ctx.shard).set_wrote();
        }
    }
    let mut pos = 0;
    unsafe { push_resp(state, &ctx.reply, &mut pos) }
}

/// Runs `f`, which pushes one value, in Lua's protected mode: true with the value on
/// top, or false with the error (an allocation past the heap cap) on top. For C functions
/// that hold Rust values while they push: an error inside `f` unwinds to here, never
/// across the caller's frame, so the caller drops its values and then raises the error.
///
/// # Safety
///
/// `state` is a running Lua state; `f` keeps Lua's stack discipline and holds no value
/// that needs dropping in its own frame.
pub(super) unsafe fn protected(state: *mut lua_State, f: &mut dyn FnMut(*mut lua_State)) -> bool {
    unsafe extern "C-unwind" fn trampoline(state: *mut lua_State) -> c_int {
        // SAFETY: the light userdata is the `&mut dyn FnMut` `protected` passed, alive
        // for this call.
        unsafe {
            let f = &mut *(ffi::lua_touserdata(state, 1) as *mut &mut dyn FnMut(*mut lua_State));
            f(state);
            ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, c"corekv_protected".as_ptr());
        }
        0
    }
    let mut f = f;
    unsafe {
        let ud: *mut &mut dyn FnMut(*mut lua_State) = &mut f;
        if ffi::lua_cpcall(state, trampoline, ud.cast()) != 0 {
            return false;
        }
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, c"corekv_protected".as_ptr());
        ffi::lua_pushnil(state);
        ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, c"corekv_protected".as_ptr());
    }
    true
}

/// Raises `msg` as a Lua error, prefixed (as `luaL_error` does) with where the script
/// called the running C function. The message is copied into Lua in protected mode and
/// dropped before anything can raise.
///
/// # Safety
///
/// Called from a C function Lua is running, whose own frame holds nothing to drop.
pub(super) unsafe fn raise_message(state: *mut lua_State, msg: String) -> ! {
    unsafe {
        let ok = protected(state, &mut |s| {
            ffi::lua_pushlstring(s, msg.as_ptr().cast(), msg.len());
        });
        drop(msg);
        if ok {
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, -2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state)
    }
}

/// Instructions between two looks at the clock while a script runs.
pub(super) const HOOK_EVERY: c_int = 100_000;

/// The count hook: past `busy-reply-threshold` the script's control cell says it is
/// busy, and a stop asked there (SCRIPT KILL, FUNCTION KILL, a shutdown) ends it with
/// Redis's error. After that the hook runs on every line, so a `pcall` that catches the
/// error cannot keep the script going.
///
/// # Safety
///
/// Set by the engine on its own state, whose registry holds the engine's [`CallCtx`]
/// under `corekv_ctx`. Nothing here is dropped across `lua_error`.
pub(super) unsafe extern "C-unwind" fn count_hook(state: *mut lua_State, ar: *mut ffi::lua_Debug) {
    let stop: Option<&'static [u8]> = unsafe {
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, c"corekv_ctx".as_ptr());
        let ctx = ffi::lua_touserdata(state, -1) as *mut CallCtx;
        ffi::lua_settop(state, -2);
        let Some(ctx) = ctx.as_mut() else {
            return;
        };
        if ctx.loading {
            (ctx.start.elapsed().as_millis() > LOAD_TIMEOUT_MS).then_some(b"FUNCTION LOAD timeout")
        } else if ctx.host.is_none() || (ctx.start.elapsed().as_millis() as u64) < ctx.threshold_ms
        {
            None
        } else {
            let cell = super::control::of(ctx.shard);
            if !ctx.marked {
                ctx.marked = true;
                tracing::warn!(
                    shard = ctx.shard,
                    "a script has run past busy-reply-threshold; SCRIPT KILL or FUNCTION KILL \
                     can stop it"
                );
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_millis() as u64);
                cell.mark_busy(now, ctx.function, ctx.wrote);
            }
            match cell.stop_request() {
                super::control::ABORT => Some(&b"Script killed by user with SCRIPT KILL..."[..]),
                super::control::KILL if !ctx.wrote => {
                    Some(&b"Script killed by user with SCRIPT KILL..."[..])
                }
                _ => None,
            }
        }
    };
    // Only in the script's own code: corekv's (the runner, pcall's wrapper, the error
    // handler) must be let finish, or the stop would escape them.
    let in_user_code = stop.is_some()
        && unsafe {
            ffi::lua_getinfo(state, c"S".as_ptr(), ar) != 0
                && !(*ar).source.is_null()
                && std::ffi::CStr::from_ptr((*ar).source)
                    .to_bytes()
                    .starts_with(b"@user_")
        };
    if let (Some(msg), true) = (stop, in_user_code) {
        // SAFETY: as above; nothing of ours is alive past this point (`msg` is static).
        unsafe {
            ffi::lua_sethook(state, Some(count_hook), ffi::LUA_MASKLINE, 0);
            push_error(state, msg);
            ffi::lua_error(state);
        }
    }
}

/// Pushes a table of C functions by name (a library: `bit`, `struct`, `cmsgpack`).
///
/// # Safety
///
/// `state` is a Lua state with room for two more values.
pub(super) unsafe fn push_functions(state: *mut lua_State, fns: &[(&CStr, ffi::lua_CFunction)]) {
    unsafe {
        ffi::lua_createtable(state, 0, fns.len() as c_int);
        for (name, f) in fns {
            ffi::lua_pushcfunction(state, *f);
            ffi::lua_setfield(state, -2, name.as_ptr());
        }
    }
}

/// Pushes `{err = "ERR <msg>"}`.
unsafe fn push_error(state: *mut lua_State, msg: &[u8]) {
    // Nothing of ours to drop if an allocation here raises.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushstring(state, c"ERR ".as_ptr());
        ffi::lua_pushlstring(state, msg.as_ptr().cast(), msg.len());
        ffi::lua_concat(state, 2);
        ffi::lua_setfield(state, -2, c"err".as_ptr());
    }
}

/// Sets field `name` of the table below the value on top of the stack to that value.
unsafe fn set_field(state: *mut lua_State, name: &CStr) {
    unsafe { ffi::lua_setfield(state, -2, name.as_ptr()) };
}

fn line<'b>(b: &'b [u8], pos: &mut usize) -> (u8, &'b [u8]) {
    let t = b.get(*pos).copied().unwrap_or(b'_');
    let start = (*pos + 1).min(b.len());
    let end = memchr::memchr(b'\r', &b[start..]).map_or(b.len(), |i| start + i);
    *pos = (end + 2).min(b.len());
    (t, &b[start..end])
}

fn number(text: &[u8]) -> i64 {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Pushes the RESP value at `pos` as Lua sees a reply (Redis's rules: integers as
/// numbers, nulls as false in RESP2 and nil in RESP3, status and error as `{ok=}` and
/// `{err=}`, RESP3 maps, sets, doubles and big numbers as `{map=}`, `{set=}`,
/// `{double=}`, `{big_number=}`); true when it is an error.
unsafe fn push_resp(state: *mut lua_State, b: &[u8], pos: &mut usize) -> bool {
    // Nested replies need a few slots each.
    if unsafe { ffi::lua_checkstack(state, 4) } == 0 {
        unsafe { ffi::lua_pushnil(state) };
        return false;
    }
    let (t, text) = line(b, pos);
    unsafe {
        match t {
            b'+' | b'-' => {
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_pushlstring(state, text.as_ptr().cast(), text.len());
                set_field(state, if t == b'+' { c"ok" } else { c"err" });
                return t == b'-';
            }
            b':' => ffi::lua_pushnumber(state, number(text) as f64),
            b'$' | b'=' => {
                let n = number(text);
                if n < 0 {
                    ffi::lua_pushboolean(state, 0);
                } else {
                    let n = n as usize;
                    let body = &b[(*pos).min(b.len())..(*pos + n).min(b.len())];
                    *pos = (*pos + n + 2).min(b.len());
                    if t == b'$' {
                        ffi::lua_pushlstring(state, body.as_ptr().cast(), body.len());
                    } else {
                        // Verbatim: "txt:..." as {verbatim_string = {format=, string=}}.
                        let (format, string) = body.split_at(body.len().min(4));
                        ffi::lua_createtable(state, 0, 1);
                        ffi::lua_createtable(state, 0, 2);
                        let format = &format[..format.len().min(3)];
                        ffi::lua_pushlstring(state, format.as_ptr().cast(), format.len());
                        set_field(state, c"format");
                        ffi::lua_pushlstring(state, string.as_ptr().cast(), string.len());
                        set_field(state, c"string");
                        set_field(state, c"verbatim_string");
                    }
                }
            }
            b'*' | b'>' => {
                let n = number(text);
                if n < 0 {
                    ffi::lua_pushboolean(state, 0);
                } else {
                    ffi::lua_createtable(state, n.min(1 << 20) as c_int, 0);
                    for i in 1..=n {
                        push_resp(state, b, pos);
                        ffi::lua_rawseti(state, -2, i as _);
                    }
                }
            }
            b'%' | b'~' => {
                let n = number(text);
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_createtable(state, 0, n.min(1 << 20) as c_int);
                for _ in 0..n {
                    push_resp(state, b, pos);
                    if t == b'%' {
                        push_resp(state, b, pos);
                    } else {
                        ffi::lua_pushboolean(state, 1);
                    }
                    ffi::lua_rawset(state, -3);
                }
                set_field(state, if t == b'%' { c"map" } else { c"set" });
            }
            b',' => {
                let d = match text {
                    b"inf" => f64::INFINITY,
                    b"-inf" => f64::NEG_INFINITY,
                    _ => std::str::from_utf8(text)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(f64::NAN),
                };
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_pushnumber(state, d);
                set_field(state, c"double");
            }
            b'#' => ffi::lua_pushboolean(state, c_int::from(text == b"t")),
            b'(' => {
                ffi::lua_createtable(state, 0, 1);
                ffi::lua_pushlstring(state, text.as_ptr().cast(), text.len());
                set_field(state, c"big_number");
            }
            b'|' => {
                // Attributes are dropped; the reply follows them.
                for _ in 0..number(text) * 2 {
                    push_resp(state, b, pos);
                    ffi::lua_settop(state, -2);
                }
                return push_resp(state, b, pos);
            }
            _ => ffi::lua_pushnil(state),
        }
    }
    false
}

/// Raw field `name` of the table at `idx` pushed; its type returned.
unsafe fn raw_field(state: *mut lua_State, idx: c_int, name: &CStr) -> c_int {
    unsafe {
        ffi::lua_pushstring(state, name.as_ptr());
        ffi::lua_rawget(state, idx);
        ffi::lua_type(state, -1)
    }
}

/// The string at `idx` (which is one).
unsafe fn string_at<'s>(state: *mut lua_State, idx: c_int) -> &'s [u8] {
    let mut len = 0usize;
    unsafe {
        let p = ffi::lua_tolstring(state, idx, &mut len);
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// Writes the Lua value at absolute index `idx` as the client's reply, by Redis's
/// rules (`resp3`: the script called `redis.setresp(3)`). Leaves the stack as it was.
pub(super) unsafe fn write_value(state: *mut lua_State, idx: c_int, out: &mut Reply, resp3: bool) {
    unsafe { write_nested(state, idx, out, resp3, 0) }
}

/// Deepest nesting of a script's reply (a table that contains itself would recurse
/// forever; Redis stops where Lua's stack ends).
const MAX_REPLY_DEPTH: usize = 1000;

unsafe fn write_nested(
    state: *mut lua_State,
    idx: c_int,
    out: &mut Reply,
    resp3: bool,
    depth: usize,
) {
    unsafe {
        if depth > MAX_REPLY_DEPTH || ffi::lua_checkstack(state, 4) == 0 {
            out.err("reached lua stack limit");
            return;
        }
        match ffi::lua_type(state, idx) {
            ffi::LUA_TSTRING => out.bulk(string_at(state, idx)),
            ffi::LUA_TBOOLEAN => {
                let b = ffi::lua_toboolean(state, idx) != 0;
                match (resp3, b) {
                    (false, true) => out.int(1),
                    (false, false) => out.null(),
                    (true, b) => out.boolean(b),
                }
            }
            ffi::LUA_TNUMBER => out.int(c_i64(ffi::lua_tonumber(state, idx)).unwrap_or(i64::MIN)),
            ffi::LUA_TTABLE => write_table(state, idx, out, resp3, depth),
            _ => out.null(),
        }
    }
}

unsafe fn write_table(
    state: *mut lua_State,
    idx: c_int,
    out: &mut Reply,
    resp3: bool,
    depth: usize,
) {
    unsafe {
        let top = ffi::lua_gettop(state);
        if raw_field(state, idx, c"err") == ffi::LUA_TSTRING {
            out.error(string_at(state, -1));
            ffi::lua_settop(state, top);
            return;
        }
        ffi::lua_settop(state, top);
        if raw_field(state, idx, c"ok") == ffi::LUA_TSTRING {
            let mut text = string_at(state, -1).to_vec();
            for b in &mut text {
                if *b == b'\r' || *b == b'\n' {
                    *b = b' ';
                }
            }
            out.simple(&text);
            ffi::lua_settop(state, top);
            return;
        }
        ffi::lua_settop(state, top);
        if raw_field(state, idx, c"double") == ffi::LUA_TNUMBER {
            let d = ffi::lua_tonumber(state, -1);
            ffi::lua_settop(state, top);
            // A double as a sorted-set score is replied: `,` in RESP3, bulk in RESP2.
            crate::command::zset::reply_score(out, d);
            return;
        }
        ffi::lua_settop(state, top);
        if raw_field(state, idx, c"big_number") == ffi::LUA_TSTRING {
            let text = string_at(state, -1).to_vec();
            ffi::lua_settop(state, top);
            match out.proto() {
                Proto::Resp2 => out.bulk(&text),
                Proto::Resp3 => {
                    out.buffer().push(b'(');
                    out.buffer().extend_from_slice(&text);
                    out.buffer().extend_from_slice(b"\r\n");
                }
            }
            return;
        }
        ffi::lua_settop(state, top);
        for (name, map) in [(c"map", true), (c"set", false)] {
            if raw_field(state, idx, name) == ffi::LUA_TTABLE {
                let inner = ffi::lua_gettop(state);
                let mut n = 0usize;
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, inner) != 0 {
                    n += 1;
                    ffi::lua_settop(state, -2);
                }
                if map {
                    out.map(n);
                } else {
                    out.set(n);
                }
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, inner) != 0 {
                    let top2 = ffi::lua_gettop(state);
                    write_nested(state, top2 - 1, out, resp3, depth + 1);
                    if map {
                        write_nested(state, top2, out, resp3, depth + 1);
                    }
                    ffi::lua_settop(state, top2 - 1);
                }
                ffi::lua_settop(state, top);
                return;
            }
            ffi::lua_settop(state, top);
        }
        // An array: elements 1, 2, ... up to the first nil.
        let mut n = 0;
        while ffi::lua_rawgeti(state, idx, n + 1) != ffi::LUA_TNIL {
            ffi::lua_settop(state, top);
            n += 1;
        }
        ffi::lua_settop(state, top);
        out.array(n as usize);
        for i in 1..=n {
            ffi::lua_rawgeti(state, idx, i);
            write_nested(state, top + 1, out, resp3, depth + 1);
            ffi::lua_settop(state, top);
        }
    }
}

/// The error reply of a script that raised the value at `idx` (an error table the
/// handler filled with `source` and `line`, or anything else).
pub(super) unsafe fn write_error(state: *mut lua_State, idx: c_int, sha: &str, out: &mut Reply) {
    unsafe {
        if ffi::lua_type(state, idx) == ffi::LUA_TSTRING {
            // An error the handler never saw: Lua's "not enough memory".
            let msg = String::from_utf8_lossy(string_at(state, idx)).into_owned();
            out.err(&format!("Error running script {sha}: {msg}"));
            return;
        }
        if ffi::lua_type(state, idx) != ffi::LUA_TTABLE {
            out.err(&format!("Error running script {sha}, execution failure"));
            return;
        }
        // Every Lua step first (they may allocate, and so raise), then Rust's.
        let top = ffi::lua_gettop(state);
        let err = raw_field(state, idx, c"err") == ffi::LUA_TSTRING;
        let source = raw_field(state, idx, c"source") == ffi::LUA_TSTRING;
        let line = raw_field(state, idx, c"line") == ffi::LUA_TNUMBER;
        if !err {
            ffi::lua_settop(state, top);
            out.err(&format!("Error running script {sha}, execution failure"));
            return;
        }
        let mut msg = string_at(state, top + 1).to_vec();
        if source && line {
            let source = String::from_utf8_lossy(string_at(state, top + 2)).into_owned();
            let line = ffi::lua_tonumber(state, top + 3) as i64;
            msg.extend_from_slice(format!(" script: {sha}, on {source}:{line}.").as_bytes());
        }
        ffi::lua_settop(state, top);
        out.error(&msg);
    }
}

/// Pushes an array of `items`.
pub(super) unsafe fn push_array(state: *mut lua_State, items: &[&[u8]]) {
    unsafe {
        ffi::lua_createtable(state, items.len().min(1 << 20) as c_int, 0);
        for (i, item) in items.iter().enumerate() {
            ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
            ffi::lua_rawseti(state, -2, (i + 1) as _);
        }
    }
}

/// Removes global `name` (bypassing the globals' read-only guard).
pub(super) unsafe fn clear_global(state: *mut lua_State, name: &CStr) {
    unsafe {
        ffi::lua_pushstring(state, name.as_ptr());
        ffi::lua_pushnil(state);
        ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
    }
}

/// Sets global `name` (bypassing the globals' read-only guard) to an array of `items`.
pub(super) unsafe fn set_global_array(state: *mut lua_State, name: &CStr, items: &[&[u8]]) {
    unsafe {
        ffi::lua_pushstring(state, name.as_ptr());
        push_array(state, items);
        ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
    }
}
