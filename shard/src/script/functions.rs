//! Redis 7.0 functions: FUNCTION LOAD's libraries (`#!lua name=<lib>` then code that calls
//! `redis.register_function`), the functions they register (with their flags and
//! descriptions), and FCALL, on the shard's Lua state.
//!
//! A library's code runs once, at load, with the load-time API the prelude builds
//! (`redis.register_function`, `redis.log`, the version fields; nothing else, not even
//! `string`); the functions it registers run with the scripts' API and receive their
//! keys and arguments as two tables. Errors carry `script: <function>, on
//! @user_function:N.` Every shard holds the same libraries (FUNCTION LOAD reaches all of
//! them before it replies).

use corekv_protocol::Reply;
use mlua::{Function, Table, Value};

use super::{Engine, Host, Scripts};

/// `no-writes`, and the other flags in Redis's order (FUNCTION LIST shows them so).
pub const FLAGS: [(&str, u8); 5] = [
    ("no-writes", 1),
    ("allow-oom", 2),
    ("allow-stale", 4),
    ("no-cluster", 8),
    ("allow-cross-slot-keys", 16),
];

/// The flag that makes a function read-only (and lets FCALL_RO call it).
pub const NO_WRITES: u8 = 1;
/// The flag that lets a script's writes past `maxmemory`.
pub const ALLOW_OOM: u8 = 2;

/// Whether a script with these (shebang or function) flags may start: one that may
/// write and is not `allow-oom` does not while the keyspace is over `maxmemory`, as in
/// Redis.
pub(super) fn may_start(flags: u8, host: &mut dyn Host) -> bool {
    flags & (NO_WRITES | ALLOW_OOM) != 0 || !host.over_maxmemory()
}

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and \
                        must be at least one character long";

struct Func {
    name: String,
    callback: Function,
    flags: u8,
    description: Option<Vec<u8>>,
}

struct Library {
    name: String,
    code: Vec<u8>,
    functions: Vec<Func>,
}

/// The loaded libraries, in load order.
#[derive(Default)]
pub(super) struct Libraries {
    libs: Vec<Library>,
}

impl Libraries {
    /// Functions registered, and their libraries' code bytes.
    pub(super) fn counts(&self) -> (usize, usize) {
        (
            self.libs.iter().map(|l| l.functions.len()).sum(),
            self.libs.iter().map(|l| l.code.len()).sum(),
        )
    }

    fn function(&self, name: &[u8]) -> Option<&Func> {
        self.libs
            .iter()
            .flat_map(|l| l.functions.iter())
            .find(|f| f.name.as_bytes() == name)
    }
}

/// The library's name and where its code starts (at the newline that ends the
/// `#!lua name=...` line, so line numbers count it), as Redis's
/// `functionExtractLibMetaData` reads them.
fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = memchr::memchr(b'\n', code) else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]).into_owned();
    let mut parts = line.split([' ', '\t', '\r']).filter(|p| !p.is_empty());
    let engine = parts.next().map_or("", |p| &p[2..]).to_string();
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {part}"));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(BAD_NAME.into());
    }
    Ok((name, end))
}

impl Engine {
    fn load_function_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, start) = metadata(code)?;
        if !replace && self.libs.libs.iter().any(|l| l.name == name) {
            return Err(format!("Library '{name}' already exists"));
        }
        let chunk = self
            .lua
            .load(&code[start..])
            .set_name("@user_function")
            .set_environment(self.fenv.clone())
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                format!("Error compiling function: {msg}")
            })?;
        Engine::arm_hook(&self.lua).map_err(|e| e.to_string())?;
        let ctx = self.ctx();
        ctx.loading = true;
        ctx.start = std::time::Instant::now();
        let ran: mlua::Result<(bool, Value)> = self.load_library.call(chunk);
        self.ctx().loading = false;
        let (ok, got) = ran.map_err(|e| format!("Error registering functions: {e}"))?;
        let Value::Table(got) = got else {
            return Err("Error registering functions: execution failure".into());
        };
        if !ok {
            let msg = got
                .raw_get::<mlua::String>("err")
                .map(|s| s.to_string_lossy())
                .unwrap_or_else(|_| "execution failure".into());
            return Err(format!("Error registering functions: {msg}"));
        }
        let mut functions = Vec::new();
        for entry in got.sequence_values::<Table>() {
            let entry = entry.map_err(|e| e.to_string())?;
            let fname: String = entry.raw_get(1).map_err(|e| e.to_string())?;
            let callback: Function = entry.raw_get(2).map_err(|e| e.to_string())?;
            let flags: f64 = entry.raw_get(3).map_err(|e| e.to_string())?;
            let description: Option<mlua::String> = entry.raw_get(4).map_err(|e| e.to_string())?;
            functions.push(Func {
                name: fname,
                callback,
                flags: flags as u8,
                description: description.map(|d| d.as_bytes().to_vec()),
            });
        }
        if functions.is_empty() {
            return Err("No functions registered".into());
        }
        for f in &functions {
            let taken = self
                .libs
                .libs
                .iter()
                .filter(|l| l.name != name)
                .flat_map(|l| l.functions.iter())
                .any(|g| g.name == f.name);
            if taken {
                return Err(format!("Function {} already exists", f.name));
            }
        }
        self.libs.libs.retain(|l| l.name != name);
        self.libs.libs.push(Library {
            name: name.clone(),
            code: code.to_vec(),
            functions,
        });
        Ok(name)
    }
}

/// How FUNCTION RESTORE merges the libraries it reads with the loaded ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePolicy {
    /// Drop every loaded library first.
    Flush,
    /// Add them; a library or function that exists already is an error (the default).
    Append,
    /// Add them, replacing loaded libraries of the same names.
    Replace,
}

impl Engine {
    /// FUNCTION RESTORE: all of the payload's libraries or none (the loaded ones stay as
    /// they were on any error).
    fn restore_functions(&mut self, payload: &[u8], policy: RestorePolicy) -> Result<(), String> {
        use crate::rdb;
        let body = rdb::unseal(payload).ok_or("DUMP payload version or checksum are wrong")?;
        let mut codes = Vec::new();
        let mut r = rdb::Reader::new(body);
        while !r.is_empty() {
            match r.byte() {
                Some(rdb::OPCODE_FUNCTION2) => {}
                Some(rdb::OPCODE_FUNCTION_PRE_GA) => {
                    return Err("Pre-GA function format not supported".into())
                }
                Some(_) => return Err("given type is not a function".into()),
                None => return Err("can not read data type".into()),
            }
            codes.push(
                r.string()
                    .ok_or("failed loading the given functions payload")?,
            );
        }
        // Load them apart from the current libraries, then join.
        let old = std::mem::take(&mut self.libs.libs);
        let mut loaded = Ok(());
        for code in &codes {
            if let Err(e) = self.load_function_library(code, false) {
                loaded = Err(e);
                break;
            }
        }
        let fresh = std::mem::replace(&mut self.libs.libs, old);
        loaded?;
        if policy == RestorePolicy::Flush {
            self.libs.libs = fresh;
            return Ok(());
        }
        let replace = policy == RestorePolicy::Replace;
        let mut kept: Vec<&Library> = Vec::new();
        for l in &self.libs.libs {
            if fresh.iter().any(|f| f.name == l.name) {
                if !replace {
                    return Err(format!("Library {} already exists", l.name));
                }
            } else {
                kept.push(l);
            }
        }
        for f in fresh.iter().flat_map(|l| l.functions.iter()) {
            if kept
                .iter()
                .flat_map(|l| l.functions.iter())
                .any(|g| g.name == f.name)
            {
                return Err(format!("Function {} already exists", f.name));
            }
        }
        self.libs
            .libs
            .retain(|l| !fresh.iter().any(|f| f.name == l.name));
        self.libs.libs.extend(fresh);
        Ok(())
    }
}

/// What FCALL found.
pub enum Fcall {
    /// It ran (its reply or error is written).
    Ran,
    /// No function by that name.
    NotFound,
}

impl Scripts {
    /// FUNCTION LOAD \[REPLACE\] code: the library's name, or Redis's error text.
    pub fn function_load(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        self.engine().load_function_library(code, replace)
    }

    /// FUNCTION DUMP: every library as a DUMP-style payload (RDB `FUNCTION2` entries,
    /// strings compressed as Redis compresses them when `compress` (`rdbcompression`), the
    /// version and CRC footer), which redis-server restores.
    pub fn function_dump(&self, compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for code in self.library_codes() {
            out.push(crate::rdb::OPCODE_FUNCTION2);
            crate::rdb::put_string_packed(&mut out, &code, compress);
        }
        crate::rdb::seal(&mut out);
        out
    }

    /// Every library's code, in load order.
    pub fn library_codes(&self) -> Vec<Vec<u8>> {
        self.engine
            .iter()
            .flat_map(|e| e.libs.libs.iter())
            .map(|l| l.code.clone())
            .collect()
    }

    /// FUNCTION RESTORE payload \[FLUSH|APPEND|REPLACE\]: Redis's error text on failure.
    pub fn function_restore(
        &mut self,
        payload: &[u8],
        policy: RestorePolicy,
    ) -> Result<(), String> {
        self.engine().restore_functions(payload, policy)
    }

    /// FUNCTION DELETE library: whether it existed.
    pub fn function_delete(&mut self, name: &[u8]) -> bool {
        let Some(e) = self.engine.as_mut() else {
            return false;
        };
        let before = e.libs.libs.len();
        e.libs.libs.retain(|l| l.name.as_bytes() != name);
        before != e.libs.libs.len()
    }

    /// FUNCTION FLUSH.
    pub fn function_flush(&mut self) {
        if let Some(e) = self.engine.as_mut() {
            e.libs.libs.clear();
            let _ = e.lua.gc_collect();
        }
    }

    /// A function's flags, if it exists.
    pub fn function_flags(&self, name: &[u8]) -> Option<u8> {
        self.engine.as_ref()?.libs.function(name).map(|f| f.flags)
    }

    /// FUNCTION LIST: the libraries whose name matches `pattern` (case-insensitive
    /// glob), with their code when `with_code`.
    pub fn function_list(&self, pattern: Option<&[u8]>, with_code: bool, out: &mut Reply) {
        let libs: Vec<&Library> = self
            .engine
            .as_ref()
            .map(|e| {
                e.libs
                    .libs
                    .iter()
                    .filter(|l| {
                        pattern.is_none_or(|p| crate::glob::matches(p, l.name.as_bytes(), true))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.array(libs.len());
        for l in libs {
            out.map(if with_code { 4 } else { 3 });
            out.bulk(b"library_name");
            out.bulk(l.name.as_bytes());
            out.bulk(b"engine");
            out.bulk(b"LUA");
            out.bulk(b"functions");
            out.array(l.functions.len());
            for f in &l.functions {
                out.map(3);
                out.bulk(b"name");
                out.bulk(f.name.as_bytes());
                out.bulk(b"description");
                match &f.description {
                    Some(d) => out.bulk(d),
                    None => out.null(),
                }
                out.bulk(b"flags");
                let set: Vec<&str> = FLAGS
                    .iter()
                    .filter(|(_, bit)| f.flags & bit != 0)
                    .map(|(n, _)| *n)
                    .collect();
                out.set(set.len());
                for n in set {
                    out.simple(n.as_bytes());
                }
            }
            if with_code {
                out.bulk(b"library_code");
                out.bulk(&l.code);
            }
        }
    }

    /// FUNCTION STATS: no running script (a function runs to its end before anything
    /// else is read), and the counts.
    pub fn function_stats(&self, out: &mut Reply) {
        let (libs, funcs) = self.engine.as_ref().map_or((0, 0), |e| {
            (
                e.libs.libs.len(),
                e.libs.libs.iter().map(|l| l.functions.len()).sum(),
            )
        });
        out.map(2);
        out.bulk(b"running_script");
        out.null();
        out.bulk(b"engines");
        out.map(1);
        out.bulk(b"LUA");
        out.map(2);
        out.bulk(b"libraries_count");
        out.int(libs as i64);
        out.bulk(b"functions_count");
        out.int(funcs as i64);
    }

    /// FCALL: runs function `name` with `keys` and `argv`.
    pub fn fcall(
        &mut self,
        name: &[u8],
        keys: &[&[u8]],
        argv: &[&[u8]],
        host: &mut dyn Host,
        out: &mut Reply,
    ) -> Fcall {
        let Some(engine) = self.engine.as_mut() else {
            return Fcall::NotFound;
        };
        let Some(f) = engine.libs.function(name) else {
            return Fcall::NotFound;
        };
        let (callback, label, flags) = (f.callback.clone(), f.name.clone(), f.flags);
        if !may_start(flags, host) {
            out.error(crate::state::OOM);
            return Fcall::Ran;
        }
        host.set_flags(flags);
        let caller = engine.call_function.clone();
        let start = out.len();
        if let Err(e) = engine.run(&caller, &callback, true, &label, keys, argv, host, out) {
            out.buffer().truncate(start);
            out.err(&format!("Error running function {label}: {e}"));
        }
        Fcall::Ran
    }
}

#[cfg(test)]
mod tests {
    use super::metadata;

    #[test]
    fn library_metadata_is_read_as_redis_reads_it() {
        assert_eq!(metadata(b"#!lua name=lib\nx"), Ok(("lib".into(), 14)));
        assert_eq!(
            metadata(b"#!LUA  NAME=lib\n").map(|m| m.0),
            Ok("lib".into())
        );
        let err = |code: &[u8]| metadata(code).unwrap_err();
        assert_eq!(err(b"return 1"), "Missing library metadata");
        assert_eq!(err(b"#!lua name=x"), "Invalid library metadata");
        assert_eq!(err(b"#!lua\n"), "Library name was not given");
        assert_eq!(err(b"#!js name=x\n"), "Engine 'js' not found");
        assert_eq!(
            err(b"#!lua name=x foo=bar\n"),
            "Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            err(b"#!lua name=x name=y\n"),
            "Invalid metadata value, name argument was given multiple times"
        );
        assert!(err(b"#!lua name=a-b\n").starts_with("Library names can only contain"));
    }
}
