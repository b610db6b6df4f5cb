//! The shard's Lua engine for EVAL and friends: one Lua 5.1 state per shard (created on
//! first use), the script cache (SHA1 → compiled function), and the `redis` library
//! scripts see, as Redis 7.0 gives it: `redis.call`/`pcall`, `error_reply`,
//! `status_reply`, `sha1hex`, `log`, `setresp`, `set_repl`, `replicate_commands`,
//! `breakpoint`, `debug`, the LOG_* and REPL_* constants, KEYS and ARGV, `math.random`
//! over Redis's lrand48 sequence, and the libraries Redis ships (`cjson`, `cmsgpack`,
//! `bit`, `struct`). Functions (FUNCTION LOAD, FCALL) live in the same state: see
//! [`functions`].
//!
//! Commands a script calls go through a [`Host`] (the family file runs them on the
//! shard's keyspace), so this module knows Lua and the reply conversions, not the store.
//! Replies convert between RESP and Lua by Redis's rules (RESP2 by default, RESP3 after
//! `redis.setresp(3)`), and errors carry Redis's `script: <sha>, on @user_script:N.`
//! suffix.
//!
//! The sandbox, as Redis 7.0's: no `io`, `os`, `package`, `debug`, `loadfile`, `dofile`,
//! `getfenv`, `setfenv`, `newproxy` or `print`; a script
//! cannot create or assign globals ("Attempt to modify a readonly table") and reading
//! one that does not exist is an error. Scripts see the globals through a read-only
//! proxy, so one script cannot change what the next one sees.

use std::cell::Cell;
use std::rc::Rc;

use ahash::AHashMap;
use corekv_protocol::{Proto, Reply};
use mlua::{ffi, Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use crate::args::Args;

mod bit;
mod cjson;
mod cmsgpack;
pub mod control;
pub mod functions;
mod raw;
mod structlib;

/// Runs the commands a script calls.
pub trait Host {
    /// Runs `args` (a command and its arguments) for the script, appending its reply in
    /// `proto` to `out`; a refusal (unknown command, wrong arity, a key of another
    /// shard, a write from a read-only script) is an error reply.
    /// Returns whether the command was a write.
    fn call(&mut self, args: Args, proto: Proto, out: &mut Vec<u8>) -> bool;

    /// The script's flags (its shebang's, or its function's): `no-writes` makes it
    /// read-only, `allow-oom` lets its writes past `maxmemory`.
    fn set_flags(&mut self, flags: u8);

    /// Whether the keyspace was over `maxmemory` when the script started.
    fn over_maxmemory(&self) -> bool;
}

/// A script's SHA1, as 40 lower-case hex digits.
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// The shard's scripts: see the module docs.
#[derive(Default)]
pub struct Scripts {
    engine: Option<Engine>,
}

struct Engine {
    lua: Lua,
    /// Runs a script function under Redis's error handler: `(ok, value)`.
    runner: Function,
    /// The read-only view of the globals scripts run in.
    env: Table,
    /// Compiled scripts by SHA1, with their shebang flags (`None`: no shebang, Redis's
    /// compatibility mode).
    compiled: AHashMap<String, (Function, Option<u8>)>,
    /// Bytes of the compiled scripts' bodies.
    script_bytes: usize,
    /// Runs a function with its keys and arguments under the same handler.
    call_function: Function,
    /// Runs a library's code with the load-time API: `(ok, registrations | error)`.
    load_library: Function,
    /// The environment libraries and their functions run in.
    fenv: Table,
    /// Loaded function libraries and their functions.
    libs: functions::Libraries,
    /// What `redis.call` works with (its C closures point at it).
    ctx: Owned<raw::CallCtx>,
    /// cjson's settings (its C closures point at them).
    _cjson: Owned<cjson::Config>,
}

/// A heap value Lua's C functions reach through a raw pointer, owned as one: not a
/// `Box`, whose uniqueness the compiler may assume across a call into Lua. Dropped after
/// the Lua state (declared after it in [`Engine`]).
struct Owned<T>(*mut T);

impl<T> Owned<T> {
    fn new(value: T) -> Self {
        Owned(Box::into_raw(Box::new(value)))
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::into_raw` and is freed once, here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// What INFO memory shows of a shard's scripts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Bytes of the Lua heap (scripts and functions share the state).
    pub heap: usize,
    /// Cached scripts.
    pub scripts: usize,
    /// Their bodies' bytes.
    pub script_bytes: usize,
    /// Functions registered.
    pub functions: usize,
    /// Their libraries' code bytes.
    pub function_bytes: usize,
}

/// What a script run ended with.
pub enum Outcome {
    /// The script ran (its reply, or its error, is written).
    Ran,
    /// No script with this SHA1 is cached.
    NoScript,
}

/// The Lua side of the library, run once when the engine starts. `H` is the hidden table
/// of Rust helpers.
const PRELUDE: &str = r#"
local H = ...
local error, type, select, tostring, rawget, rawset, setmetatable, floor =
    error, type, select, tostring, rawget, rawset, setmetatable, math.floor
local sub, find, gsub = string.sub, string.find, string.gsub

-- An error table as Redis builds one from a message: "-CODE text" keeps its code,
-- anything else gets ERR; CR and LF are trimmed from both ends.
local function errtable(s)
  local code, msg = 'ERR', s
  if sub(s, 1, 1) == '-' then
    local sp = find(s, ' ', 1, true)
    if sp then code, msg = sub(s, 2, sp - 1), sub(s, sp + 1) else msg = sub(s, 2) end
  end
  msg = gsub(gsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return { err = code .. ' ' .. msg }
end
H.errtable = errtable

local redis = {}
-- redis.call and the library functions that raise are C functions (H.c_*), as in Redis:
-- a script's `return redis.call(...)` keeps its own frame, so errors say its line. Each
-- runs its implementation (registered here) and raises an error table it returns.
redis.call = H.c_call
redis.pcall = H.c_pcall
redis.error_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return errtable('wrong number or type of arguments')
  end
  if sub(s, 1, 1) ~= '-' then s = '-' .. s end
  return errtable(s)
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return errtable('wrong number or type of arguments')
  end
  return { ok = s }
end
H.register('corekv_sha1hex', function(...)
  if select('#', ...) ~= 1 then return errtable('wrong number of arguments') end
  return H.sha1hex(...)
end)
redis.sha1hex = H.c_sha1hex
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
H.register('corekv_log', function(...)
  local n = select('#', ...)
  if n < 2 then return errtable('redis.log() requires two arguments or more.') end
  local level = ...
  if type(level) ~= 'number' then return errtable('First argument must be a number.') end
  if level < 0 or level > 3 then return errtable('Invalid debug level.') end
  H.log(...)
end)
redis.log = H.c_log
H.register('corekv_setresp', function(...)
  if select('#', ...) ~= 1 then return errtable('redis.setresp() requires one argument.') end
  local v = ...
  if v ~= 2 and v ~= 3 then return errtable('RESP version must be 2 or 3.') end
  H.setresp(v)
end)
redis.setresp = H.c_setresp
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL =
    0, 1, 2, 2, 3
H.register('corekv_set_repl', function(...)
  if select('#', ...) ~= 1 then return errtable('redis.set_repl() requires one argument.') end
  local v = tonumber((...))
  if v == nil or v < 0 or v > 3 or v ~= floor(v) then
    return errtable('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
  end
end)
redis.set_repl = H.c_set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.REDIS_VERSION = H.version
redis.REDIS_VERSION_NUM = H.version_num

-- Lua's math.random over Redis's lrand48 sequence.
local rand = H.rand
local function checkint(i, v)
  if type(v) ~= 'number' then
    local got = v == nil and 'no value' or type(v)
    error("bad argument #" .. i .. " to 'random' (number expected, got " .. got .. ")", 3)
  end
  return v >= 0 and floor(v) or -floor(-v)
end
math.random = function(...)
  local r = rand()
  local n = select('#', ...)
  if n == 0 then return r end
  if n == 1 then
    local u = checkint(1, (...))
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
    return floor(r * u) + 1
  end
  if n == 2 then
    local l, u = ...
    l, u = checkint(1, l), checkint(2, u)
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 2)
end
math.randomseed = function(...)
  H.seed(checkint(1, (...)))
end

-- Redis's pcall hands back an error table's message, not the table.
local lua_pcall = pcall
local function caught(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'table' and type(rawget(e, 'err')) == 'string' then
    return false, rawget(e, 'err')
  end
  return false, e
end
pcall = function(f, ...)
  return caught(lua_pcall(f, ...))
end

-- What Redis 7.0 removes from scripts' reach.
loadfile, dofile, getfenv, setfenv, newproxy, print = nil, nil, nil, nil, nil, nil
rawset(_G, 'redis', redis)

-- Every library table, and the globals, read-only for scripts.
local function readonly(t)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error('Attempt to modify a readonly table', 2) end,
    __metatable = false,
  })
end
local G = _G
for _, name in ipairs({
  'redis', 'string', 'math', 'table', 'coroutine', 'bit', 'cjson', 'cmsgpack', 'struct'
}) do
  rawset(G, name, readonly(rawget(G, name)))
end
setmetatable(G, {
  __index = function(_, n)
    error("Script attempted to access nonexistent global variable '" .. tostring(n) .. "'", 2)
  end,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})
local env = readonly(G)
rawset(G, '_G', env)

-- Runs a script as Redis does: errors become tables carrying where they happened.
local xpcall = xpcall
local where = H.where
local function handler(err)
  if type(err) ~= 'table' then err = { err = 'ERR ' .. tostring(err) } end
  local source, line = where()
  if source then
    rawset(err, 'source', source)
    rawset(err, 'line', line)
  end
  return err
end
local runner = function(f)
  return xpcall(f, handler)
end

-- Functions (FUNCTION LOAD). A library's code runs once, seeing only
-- redis.register_function, redis.log and the version fields; the functions it registers
-- run later with the scripts' API. Both see one environment whose __index is switched.
local FLAGS = { ['no-writes'] = 1, ['allow-oom'] = 2, ['allow-stale'] = 4,
  ['no-cluster'] = 8, ['allow-cross-slot-keys'] = 16 }
local pending
local function stringish(v) return type(v) == 'string' or type(v) == 'number' end
local function fail(msg) error(errtable(msg)) end
local function register(...)
  local n = select('#', ...)
  local name, callback, flags, desc = nil, nil, 0, nil
  if n == 1 then
    local t = ...
    if type(t) ~= 'table' then
      fail('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
    end
    for k, v in pairs(t) do
      if type(k) ~= 'string' then
        fail('named argument key given to redis.register_function is not a string')
      elseif k == 'function_name' then
        if not stringish(v) then
          fail('function_name argument given to redis.register_function must be a string')
        end
        name = tostring(v)
      elseif k == 'description' then
        if not stringish(v) then
          fail('description argument given to redis.register_function must be a string')
        end
        desc = tostring(v)
      elseif k == 'callback' then
        if type(v) ~= 'function' then
          fail('callback argument given to redis.register_function must be a function')
        end
        callback = v
      elseif k == 'flags' then
        if type(v) ~= 'table' then
          fail('flags argument to redis.register_function must be a table representing function flags')
        end
        for _, f in pairs(v) do
          local b = type(f) == 'string' and FLAGS[f]
          if not b then fail('unknown flag given') end
          if flags % (2 * b) < b then flags = flags + b end
        end
      else
        fail('unknown argument given to redis.register_function')
      end
    end
    if not name then fail('redis.register_function must get a function name argument') end
    if not callback then fail('redis.register_function must get a callback argument') end
  elseif n == 2 then
    local a, b = ...
    if not stringish(a) then fail('first argument to redis.register_function must be a string') end
    if type(b) ~= 'function' then
      fail('second argument to redis.register_function must be a function')
    end
    name, callback = tostring(a), b
  else
    fail('wrong number of arguments to redis.register_function')
  end
  if name == '' or find(name, '[^%w_]') then
    fail('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long')
  end
  for _, p in ipairs(pending) do
    if p[1] == name then fail('Function already exists in the library') end
  end
  pending[#pending + 1] = { name, callback, flags, desc }
end
local function missing(_, n)
  error("Script attempted to access nonexistent global variable '" .. tostring(n) .. "'", 2)
end
local function ro() error('Attempt to modify a readonly table', 2) end
local strict = { __index = missing, __newindex = ro, __metatable = false }
local load_redis = {
  register_function = register, log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
setmetatable(load_redis, strict)
local load_globals = setmetatable({ redis = load_redis }, strict)
local fenv_mt = { __index = G, __newindex = ro, __metatable = false }
local fenv = setmetatable({}, fenv_mt)
local function load_library(chunk)
  pending = {}
  fenv_mt.__index = load_globals
  local ok, err = xpcall(chunk, handler)
  fenv_mt.__index = G
  local got = pending
  pending = nil
  if not ok then return false, err end
  return true, got
end
local function call_function(f, keys, args)
  return xpcall(function() return f(keys, args) end, handler)
end
-- rawset would write into the read-only views (one script changing what the next
-- sees): it refuses them, as Redis's read-only tables refuse it. The string metatable is
-- hidden, for its __index is the real string table.
local guarded = setmetatable({ [G] = true, [env] = true, [fenv] = true,
  [load_globals] = true, [load_redis] = true }, { __mode = 'k' })
for _, name in ipairs({
  'redis', 'string', 'math', 'table', 'coroutine', 'bit', 'cjson', 'cmsgpack', 'struct'
}) do
  guarded[rawget(G, name)] = true
end
local lua_rawset = rawset
rawset(G, 'rawset', function(t, k, v)
  if guarded[t] then error('Attempt to modify a readonly table', 0) end
  return lua_rawset(t, k, v)
end)
local string_view = rawget(G, 'string')
getmetatable('').__index = string_view
getmetatable('').__metatable = readonly({ __index = string_view })
return runner, env, fenv, load_library, call_function
"#;

/// Calls the function registered under `name` (in the Lua registry) with this C
/// function's arguments and returns its first result, raising it instead when it is an
/// error table (`{err = ...}`).
///
/// # Safety
///
/// `state` is the Lua state calling this C function (Lua guarantees it 20 free slots).
/// `lua_error` unwinds with `longjmp` across this frame only, which holds nothing to drop.
unsafe fn raise_errors(state: *mut mlua::lua_State, name: &std::ffi::CStr) -> std::ffi::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(state);
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, name.as_ptr());
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, 1);
    if ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
        ffi::lua_getfield(state, -1, c"err".as_ptr());
        let failed = ffi::lua_type(state, -1) != ffi::LUA_TNIL;
        ffi::lua_settop(state, -2);
        if failed {
            ffi::lua_error(state);
        }
    }
    1
}

macro_rules! shims {
    ($($fn:ident => $name:literal),*) => {$(
        /// A raising library function: see [`raise_errors`].
        unsafe extern "C-unwind" fn $fn(state: *mut mlua::lua_State) -> std::ffi::c_int {
            // SAFETY: called by Lua as a C function, with its own state.
            unsafe { raise_errors(state, $name) }
        }
    )*};
}

shims!(
    shim_sha1hex => c"corekv_sha1hex",
    shim_log => c"corekv_log",
    shim_setresp => c"corekv_setresp",
    shim_set_repl => c"corekv_set_repl"
);

/// lrand48's multiplier and increment.
const LRAND_A: u64 = 0x5_DEEC_E66D;
const LRAND_C: u64 = 0xB;

fn srand48(seed: i64) -> u64 {
    (((seed as u64) << 16) | 0x330E) & 0xFFFF_FFFF_FFFF
}

fn lrand48(state: &Cell<u64>) -> i64 {
    let x = (LRAND_A.wrapping_mul(state.get()).wrapping_add(LRAND_C)) & 0xFFFF_FFFF_FFFF;
    state.set(x);
    (x >> 17) as i64
}

impl Engine {
    fn new() -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let hidden = lua.create_table()?;
        // Redis's generator starts from lrand48's default state, never reseeded per
        // script: only `math.randomseed` sets it.
        let rng = Rc::new(Cell::new(0x1234_ABCD_330E));
        let ctx = Owned::new(raw::CallCtx::new());
        let ctx_ptr: *mut raw::CallCtx = ctx.0;
        // SAFETY: the registry keeps a light userdata of the boxed CallCtx, which the
        // engine owns, for the count hook.
        unsafe {
            lua.exec_raw::<()>((), |state| {
                ffi::lua_pushlightuserdata(state, ctx_ptr.cast());
                ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, c"corekv_ctx".as_ptr());
            })?;
        }
        Self::arm_hook(&lua)?;
        // SAFETY: pushes two C closures whose upvalue is the boxed CallCtx, which the
        // engine owns (and so outlives its Lua state's use of it).
        let (c_call, c_pcall): (Function, Function) = unsafe {
            lua.exec_raw((), |state| {
                ffi::lua_pushlightuserdata(state, ctx_ptr.cast());
                ffi::lua_pushcclosure(state, raw::redis_call, 1);
                ffi::lua_pushlightuserdata(state, ctx_ptr.cast());
                ffi::lua_pushcclosure(state, raw::redis_pcall, 1);
            })?
        };
        let cjson_cfg = Owned::new(cjson::Config::new());
        let cjson_ptr: *mut cjson::Config = cjson_cfg.0;
        // SAFETY: each pushes one table of C functions; cjson's point at the boxed
        // settings the engine owns.
        let (bit_lib, cjson_lib, cmsgpack_lib, struct_lib): (Table, Table, Table, Table) = unsafe {
            lua.exec_raw((), |state| {
                bit::push_library(state);
                cjson::push_library(state, cjson_ptr);
                cmsgpack::push_library(state);
                structlib::push_library(state);
            })?
        };
        lua.globals().raw_set("struct", struct_lib)?;
        lua.globals().raw_set("bit", bit_lib)?;
        lua.globals().raw_set("cjson", cjson_lib)?;
        lua.globals().raw_set("cmsgpack", cmsgpack_lib)?;
        hidden.raw_set("c_call", c_call)?;
        hidden.raw_set("c_pcall", c_pcall)?;
        // SAFETY: the CallCtx lives as long as the engine; `resp` is an Rc.
        let resp = unsafe { (*ctx.0).resp.clone() };
        hidden.raw_set(
            "sha1hex",
            lua.create_function(|lua, v: Value| {
                let s = lua.coerce_string(v)?;
                let bytes = s
                    .as_ref()
                    .map(|s| s.as_bytes().to_vec())
                    .unwrap_or_default();
                Ok(sha1hex(&bytes))
            })?,
        )?;
        hidden.raw_set(
            "log",
            lua.create_function(|_, args: MultiValue| {
                let mut it = args.into_iter();
                let level = match it.next() {
                    Some(Value::Number(n)) => n as i64,
                    Some(Value::Integer(n)) => n,
                    _ => 0,
                };
                let text: Vec<String> = it
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.to_string_lossy()),
                        Value::Number(n) => Some(n.to_string()),
                        Value::Integer(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect();
                let text = text.join(" ");
                match level {
                    0 => tracing::debug!(target: "corekv::script", "{text}"),
                    1 => tracing::info!(target: "corekv::script", "{text}"),
                    2 => tracing::info!(target: "corekv::script", "{text}"),
                    _ => tracing::warn!(target: "corekv::script", "{text}"),
                }
                Ok(())
            })?,
        )?;
        hidden.raw_set(
            "setresp",
            lua.create_function(move |_, v: f64| {
                resp.set(if v == 3.0 { 3 } else { 2 });
                Ok(())
            })?,
        )?;
        let g = rng.clone();
        hidden.raw_set(
            "rand",
            lua.create_function(move |_, ()| {
                Ok((lrand48(&g) % i64::from(i32::MAX)) as f64 / f64::from(i32::MAX))
            })?,
        )?;
        let g = rng.clone();
        hidden.raw_set(
            "seed",
            lua.create_function(move |_, s: f64| {
                g.set(srand48(s as i32 as i64));
                Ok(())
            })?,
        )?;
        hidden.raw_set(
            "where",
            lua.create_function(|lua, ()| {
                for level in 1..32 {
                    let found = lua.inspect_stack(level, |d| {
                        let s = d.source();
                        let src = s.source.map(|x| x.into_owned());
                        (src, d.current_line())
                    });
                    match found {
                        None => break,
                        Some((Some(src), line))
                            if src.starts_with("@user_script")
                                || src.starts_with("@user_function") =>
                        {
                            return Ok((Some(src), line.map(|l| l as i64)));
                        }
                        Some(_) => {}
                    }
                }
                Ok((None, None))
            })?,
        )?;
        hidden.raw_set(
            "register",
            lua.create_function(|lua, (name, f): (String, Function)| {
                lua.set_named_registry_value(&name, f)
            })?,
        )?;
        // SAFETY: each shim is a C function that only uses the Lua stack it is given (see
        // `raise_errors`).
        unsafe {
            hidden.raw_set("c_sha1hex", lua.create_c_function(shim_sha1hex)?)?;
            hidden.raw_set("c_log", lua.create_c_function(shim_log)?)?;
            hidden.raw_set("c_setresp", lua.create_c_function(shim_setresp)?)?;
            hidden.raw_set("c_set_repl", lua.create_c_function(shim_set_repl)?)?;
        }
        hidden.raw_set("version", crate::command::meta::REDIS_VERSION)?;
        hidden.raw_set(
            "version_num",
            version_num(crate::command::meta::REDIS_VERSION),
        )?;
        let (runner, env, fenv, load_library, call_function): (
            Function,
            Table,
            Table,
            Function,
            Function,
        ) = lua
            .load(PRELUDE)
            .set_name("=corekv_prelude")
            .call(hidden.clone())?;
        Ok(Engine {
            lua,
            runner,
            env,
            compiled: AHashMap::new(),
            script_bytes: 0,
            call_function,
            load_library,
            fenv,
            libs: functions::Libraries::default(),
            ctx,
            _cjson: cjson_cfg,
        })
    }

    /// Sets the count hook (every `raw::HOOK_EVERY` instructions) on the state, whatever
    /// a stopped script left there.
    fn arm_hook(lua: &Lua) -> mlua::Result<()> {
        // SAFETY: only sets the state's hook; the hook finds its context in the registry.
        unsafe {
            lua.exec_raw::<()>((), |state| {
                ffi::lua_sethook(
                    state,
                    Some(raw::count_hook),
                    ffi::LUA_MASKCOUNT,
                    raw::HOOK_EVERY,
                );
            })
        }
    }

    /// Compiles and caches `body` under `sha`: Redis's compile error text on failure.
    fn compile(&mut self, sha: &str, body: &[u8]) -> Result<(), String> {
        if self.compiled.contains_key(sha) {
            return Ok(());
        }
        let (flags, start) = shebang(body)?;
        let f = self
            .lua
            .load(&body[start..])
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                format!("Error compiling script (new function): {msg}")
            })?;
        self.compiled.insert(sha.to_string(), (f, flags));
        self.script_bytes += body.len();
        Ok(())
    }
}

/// An EVAL script's `#!lua flags=...` line, as Redis's `evalExtractShebangFlags` reads
/// it: the flags (`None` without a shebang) and where the code starts (at the newline
/// ending the shebang, so line numbers count it).
fn shebang(body: &[u8]) -> Result<(Option<u8>, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((None, 0));
    }
    let Some(end) = memchr::memchr(b'\n', body) else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]).into_owned();
    let mut parts = line.split([' ', '\t', '\r']).filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            let Some((_, bit)) = functions::FLAGS.iter().find(|(n, _)| *n == flag) else {
                return Err(format!("Unexpected flag in script shebang: {flag}"));
            };
            flags |= bit;
        }
    }
    Ok((Some(flags), end))
}

/// `7.0.15` as Redis's `REDIS_VERSION_NUM`: `0x00MMmmpp`.
fn version_num(v: &str) -> i64 {
    let mut parts = v.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (a << 16) | (b << 8) | c
}

impl Scripts {
    fn engine(&mut self) -> &mut Engine {
        self.engine
            .get_or_insert_with(|| Engine::new().expect("the script engine starts"))
    }

    /// What INFO memory shows.
    pub fn stats(&self) -> Stats {
        let Some(e) = self.engine.as_ref() else {
            return Stats::default();
        };
        let (functions, function_bytes) = e.libs.counts();
        Stats {
            heap: e.lua.used_memory(),
            scripts: e.compiled.len(),
            script_bytes: e.script_bytes,
            functions,
            function_bytes,
        }
    }

    /// The shard scripts run on and its `busy-reply-threshold` (see [`control`]).
    pub fn set_control(&mut self, shard: usize, threshold_ms: u64) {
        self.engine().set_control(shard, threshold_ms);
    }

    /// Caps the Lua heap at `bytes` (0: no cap): past it an allocation fails and the
    /// script running stops with an error.
    pub fn limit_memory(&mut self, bytes: usize) {
        let lua = &self.engine().lua;
        // A script stopped at the cap leaves its garbage behind: collect it before the
        // next one starts short of room.
        if bytes > 0 && lua.used_memory() >= bytes / 4 * 3 {
            // Without the cap while collecting: mlua's collection itself allocates.
            let _ = lua.set_memory_limit(0);
            let _ = lua.gc_collect();
        }
        let _ = lua.set_memory_limit(bytes);
    }

    /// SCRIPT LOAD: compiles and caches `body`; its SHA1, or Redis's compile error.
    pub fn load(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1hex(body);
        self.engine().compile(&sha, body)?;
        Ok(sha)
    }

    /// Whether a script with this SHA1 (lower or upper case hex) is cached.
    pub fn exists(&self, sha: &[u8]) -> bool {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.engine
            .as_ref()
            .is_some_and(|e| e.compiled.contains_key(&sha))
    }

    /// SCRIPT FLUSH: forgets every script (not the functions).
    pub fn flush(&mut self) {
        if let Some(e) = self.engine.as_mut() {
            e.compiled.clear();
            e.script_bytes = 0;
            let _ = e.lua.gc_collect();
        }
    }

    /// Runs the script `sha` (compiling `body` first when given: EVAL) with `keys` and
    /// `argv`, writing its reply (or error) to `out`. `ro_command`: EVAL_RO or
    /// EVALSHA_RO, which refuse a script whose shebang does not say `no-writes`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        body: Option<&[u8]>,
        sha: &[u8],
        keys: &[&[u8]],
        argv: &[&[u8]],
        ro_command: bool,
        host: &mut dyn Host,
        out: &mut Reply,
    ) -> Outcome {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        let engine = self.engine();
        if let Some(body) = body {
            if let Err(e) = engine.compile(&sha, body) {
                out.err(&e);
                return Outcome::Ran;
            }
        }
        let Some((f, flags)) = engine.compiled.get(&sha).cloned() else {
            return Outcome::NoScript;
        };
        if let Some(flags) = flags {
            if flags & functions::NO_WRITES == 0 && ro_command {
                out.err("Can not execute a script with write flag using *_ro command.");
                return Outcome::Ran;
            }
            if !functions::may_start(flags, host) {
                out.error(crate::state::OOM);
                return Outcome::Ran;
            }
            host.set_flags(flags);
        }
        let caller = engine.runner.clone();
        let start = out.len();
        if let Err(e) = engine.run(&caller, &f, false, &sha, keys, argv, host, out) {
            // Whatever part of a reply was written before the failure goes.
            out.buffer().truncate(start);
            out.err(&format!("Error running script {sha}: {e}"));
        }
        Outcome::Ran
    }
}

impl Engine {
    /// Runs `f` through `caller` (the runner, or `call_function` with `as_function`:
    /// keys and arguments passed as tables rather than KEYS and ARGV), writing its reply
    /// or its error (named `label`) to `out`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        caller: &Function,
        f: &Function,
        as_function: bool,
        label: &str,
        keys: &[&[u8]],
        argv: &[&[u8]],
        host: &mut dyn Host,
        out: &mut Reply,
    ) -> mlua::Result<()> {
        let host: *mut (dyn Host + '_) = host;
        // SAFETY: only the lifetime is erased. The pointer is cleared before this
        // function returns, and only `redis.call`, during the call below, uses it.
        let ctx = self.ctx();
        ctx.host = Some(unsafe {
            std::mem::transmute::<*mut (dyn Host + '_), *mut (dyn Host + 'static)>(host)
        });
        ctx.resp.set(2);
        ctx.start = std::time::Instant::now();
        ctx.function = as_function;
        ctx.wrote = false;
        ctx.marked = false;
        // Borrowed, not owned, by the closure below: a Lua error inside it skips its
        // frame, which must then hold nothing to drop.
        // SAFETY: the CallCtx outlives this call; `resp` is a Cell, shared with the
        // C functions.
        let resp: &Cell<u8> = unsafe { &(*self.ctx.0).resp };
        // SAFETY: the closure keeps Lua's stack discipline: it gets the runner and the
        // script on the stack, calls one with the other, writes the result and leaves
        // nothing behind.
        let result = unsafe {
            self.lua
                .exec_raw::<()>((caller.clone(), f.clone()), |state| {
                    // Counting again, whatever a killed script left set.
                    ffi::lua_sethook(
                        state,
                        Some(raw::count_hook),
                        ffi::LUA_MASKCOUNT,
                        raw::HOOK_EVERY,
                    );
                    if as_function {
                        raw::push_array(state, keys);
                        raw::push_array(state, argv);
                        ffi::lua_call(state, 3, 2);
                    } else {
                        raw::set_global_array(state, c"KEYS", keys);
                        raw::set_global_array(state, c"ARGV", argv);
                        ffi::lua_call(state, 1, 2);
                    }
                    let ok = ffi::lua_toboolean(state, -2) != 0;
                    let top = ffi::lua_gettop(state);
                    if ok {
                        raw::write_value(state, top, out, resp.get() == 3);
                    } else {
                        raw::write_error(state, top, label, out);
                    }
                    ffi::lua_settop(state, 0);
                    if !as_function {
                        // Functions must not see them (reading KEYS there is an error).
                        raw::clear_global(state, c"KEYS");
                        raw::clear_global(state, c"ARGV");
                    }
                })
        };
        let ctx = self.ctx();
        ctx.host = None;
        if ctx.marked {
            control::of(ctx.shard).clear();
        }
        result
    }

    /// The call context, between calls into Lua (which reach it through its pointer).
    fn ctx(&mut self) -> &mut raw::CallCtx {
        // SAFETY: owned by the engine; no Lua code runs while this borrow lives.
        unsafe { &mut *self.ctx.0 }
    }

    /// Where the next script runs and how long it may run before it can be killed.
    fn set_control(&mut self, shard: usize, threshold_ms: u64) {
        let ctx = self.ctx();
        ctx.shard = shard;
        ctx.threshold_ms = threshold_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrand48_follows_the_c_library() {
        // srand48(0); lrand48() three times, as C's drand48 family computes it.
        let s = Cell::new(srand48(0));
        assert_eq!(
            [lrand48(&s), lrand48(&s), lrand48(&s)],
            [366850414, 1610402240, 206956554]
        );
    }

    /// Answers GET with `v`, INCR with an error, anything else with +OK.
    struct Fake(Vec<Vec<Vec<u8>>>);

    impl Host for Fake {
        fn call(&mut self, args: Args, proto: Proto, out: &mut Vec<u8>) -> bool {
            self.0.push(args.iter().map(<[u8]>::to_vec).collect());
            let mut r = Reply::new(out, proto);
            match args.get(0) {
                b"get" => r.bulk(b"v"),
                b"incr" => r.err("value is not an integer or out of range"),
                _ => r.ok(),
            }
            args.get(0) != b"get"
        }

        fn set_flags(&mut self, _: u8) {}

        fn over_maxmemory(&self) -> bool {
            false
        }
    }

    fn eval(scripts: &mut Scripts, body: &str, keys: &[&str]) -> String {
        let mut out = Vec::new();
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let sha = sha1hex(body.as_bytes());
        scripts.run(
            Some(body.as_bytes()),
            sha.as_bytes(),
            &keys,
            &[],
            false,
            &mut Fake(Vec::new()),
            &mut Reply::new(&mut out, Proto::Resp2),
        );
        String::from_utf8(out).unwrap().replace(&sha, "SHA")
    }

    #[test]
    fn scripts_call_convert_and_raise_as_redis_does() {
        let mut s = Scripts::default();
        assert_eq!(
            eval(&mut s, "return redis.call('get', KEYS[1])", &["k"]),
            "$1\r\nv\r\n"
        );
        assert_eq!(
            eval(&mut s, "return {1, 'a', {2}, nil, 3}", &[]),
            "*3\r\n:1\r\n$1\r\na\r\n*1\r\n:2\r\n"
        );
        assert_eq!(
            eval(&mut s, "\nreturn redis.call('incr', 'x')", &[]),
            "-ERR value is not an integer or out of range script: SHA, on @user_script:2.\r\n"
        );
        assert_eq!(
            eval(&mut s, "return redis.pcall('incr', 'x')", &[]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            eval(
                &mut s,
                "local ok, e = pcall(redis.call, 'incr', 'x') return e",
                &[]
            ),
            "$43\r\nERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            eval(&mut s, "return nope", &[]),
            "-ERR user_script:1: Script attempted to access nonexistent global variable 'nope' script: SHA, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval(&mut s, "x = 1", &[]),
            "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval(&mut s, "return redis.setresp(4)", &[]),
            "-ERR RESP version must be 2 or 3. script: SHA, on @user_script:1.\r\n"
        );
        assert!(eval(&mut s, "return +", &[])
            .starts_with("-ERR Error compiling script (new function): user_script:1:"));
        assert!(s.exists(sha1hex(b"return redis.call('get', KEYS[1])").as_bytes()));
        s.flush();
        assert!(!s.exists(sha1hex(b"return redis.call('get', KEYS[1])").as_bytes()));
    }

    #[test]
    fn libraries_encode_decode_and_raise() {
        let mut s = Scripts::default();
        assert_eq!(
            eval(
                &mut s,
                "return cjson.encode(cjson.decode('{\"a\":[1,2.5,null,\"x/y\"]}'))",
                &[]
            ),
            "$25\r\n{\"a\":[1,2.5,null,\"x\\/y\"]}\r\n"
        );
        assert!(eval(&mut s, "return cjson.decode('[1,')", &[])
            .starts_with("-ERR user_script:1: Expected value but found T_END at character 4"));
        assert_eq!(
            eval(
                &mut s,
                "return cmsgpack.unpack(cmsgpack.pack({1, {k='v'}}))[2].k",
                &[]
            ),
            "$1\r\nv\r\n"
        );
        assert!(eval(&mut s, "return cmsgpack.unpack('\\146\\1')", &[])
            .starts_with("-ERR user_script:1: Missing bytes in input."));
        assert_eq!(eval(&mut s, "return bit.band(0xff, 0x0f)", &[]), ":15\r\n");
        assert_eq!(
            eval(
                &mut s,
                "return {struct.unpack('>i', struct.pack('>i', -5))}",
                &[]
            ),
            "*2\r\n:-5\r\n:5\r\n"
        );
        assert_eq!(
            eval(&mut s, "return bit.tohex(65535, -2147483648)", &[]),
            "$8\r\n0000FFFF\r\n"
        );
        assert!(eval(&mut s, "local t = {} t[1] = t return t", &[])
            .ends_with("-ERR reached lua stack limit\r\n"));
        assert!(eval(&mut s, "rawset(redis, 'call', 1)", &[])
            .starts_with("-ERR Attempt to modify a readonly table script: "));
        assert!(
            eval(&mut s, "return struct.pack('i', 'x')", &[]).starts_with(
                "-ERR user_script:1: bad argument #2 to 'pack' (number expected, got string)"
            )
        );
    }

    #[test]
    fn version_num_packs_like_redis() {
        assert_eq!(version_num("7.0.15"), 458767);
    }
}
