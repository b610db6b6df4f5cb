//! The `cjson` library Redis gives scripts, with lua-cjson 2.1.0's behaviour:
//! `cjson.encode`, `cjson.decode`, `cjson.null` and the settings functions
//! (`encode_max_depth`, `decode_max_depth`, `encode_number_precision`,
//! `encode_sparse_array`, `encode_invalid_numbers`, `decode_invalid_numbers`,
//! `encode_keep_buffer`), which last for the shard's Lua state as they do in Redis.
//!
//! Encoding: numbers with `%.14g`, `/` escaped as `\/`, a table with keys 1..n an array
//! (holes as `null`, too sparse an error), any other table an object, the empty table
//! `{}`. Decoding builds the value in Rust first and pushes it only when the whole text
//! parsed, so a syntax error raises with nothing half-built; errors carry lua-cjson's
//! texts ("Expected value but found invalid token at character 1").

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

use crate::float::{format_g, strtod_prefix};

/// The settings, one per Lua state (the C functions' upvalue).
pub(super) struct Config {
    encode_max_depth: i32,
    decode_max_depth: i32,
    precision: u8,
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    /// 0: error, 1: allowed, 2: as null.
    encode_invalid: u8,
    decode_invalid: bool,
    keep_buffer: bool,
}

impl Config {
    pub fn new() -> Self {
        Config {
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_invalid: 0,
            decode_invalid: true,
            keep_buffer: true,
        }
    }
}

/// The settings behind a C function's upvalue.
///
/// # Safety
///
/// Called from one of this module's C functions, whose upvalue 1 is the engine's boxed
/// `Config`.
unsafe fn config<'c>(state: *mut lua_State) -> &'c mut Config {
    unsafe { &mut *(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *mut Config) }
}

/// Raises `msg` (see `raw::raise_message`). Every Rust value of the caller must be
/// dropped first: callers return an `Err(String)` up to their C entry point, which
/// calls this last.
unsafe fn raise(state: *mut lua_State, msg: String) -> c_int {
    unsafe { super::raw::raise_message(state, msg) }
}

fn type_name(state: *mut lua_State, idx: c_int) -> String {
    // SAFETY: lua_typename returns a static C string for any type tag.
    unsafe {
        CStr::from_ptr(ffi::lua_typename(state, ffi::lua_type(state, idx)))
            .to_string_lossy()
            .into_owned()
    }
}

// ---- encode ----

/// The largest JSON text `encode` builds.
const MAX_OUTPUT: usize = 512 << 20;

struct Encoder<'c> {
    state: *mut lua_State,
    cfg: &'c Config,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn exception(&self, idx: c_int, reason: &str) -> String {
        format!("Cannot serialise {}: {reason}", type_name(self.state, idx))
    }

    /// The value on top of the stack.
    unsafe fn value(&mut self, depth: i32) -> Result<(), String> {
        let state = self.state;
        unsafe {
            match ffi::lua_type(state, -1) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let p = ffi::lua_tolstring(state, -1, &mut len);
                    self.string(std::slice::from_raw_parts(p.cast(), len));
                }
                ffi::LUA_TNUMBER => self.number(-1)?,
                ffi::LUA_TBOOLEAN => {
                    let b = ffi::lua_toboolean(state, -1) != 0;
                    self.out
                        .extend_from_slice(if b { b"true" } else { b"false" });
                }
                ffi::LUA_TTABLE => {
                    let depth = depth + 1;
                    // Recursion here: never deeper than the default, whatever the setting.
                    if depth > self.cfg.encode_max_depth.min(1000) {
                        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
                    }
                    match self.array_length()? {
                        Some(n) if n > 0 => self.array(n, depth)?,
                        _ => self.object(depth)?,
                    }
                }
                ffi::LUA_TNIL => self.out.extend_from_slice(b"null"),
                ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(state, -1).is_null() => {
                    self.out.extend_from_slice(b"null")
                }
                _ => return Err(self.exception(-1, "type not supported")),
            }
        }
        Ok(())
    }

    unsafe fn number(&mut self, idx: c_int) -> Result<(), String> {
        let n = unsafe { ffi::lua_tonumber(self.state, idx) };
        if !n.is_finite() {
            match self.cfg.encode_invalid {
                0 => return Err(self.exception(idx, "must not be NaN or Inf")),
                1 if n.is_nan() => {
                    self.out.extend_from_slice(b"nan");
                    return Ok(());
                }
                1 => {}
                _ => {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
            }
        }
        format_g(n, self.cfg.precision, &mut self.out);
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        self.out.push(b'"');
        for &c in s {
            match c {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                8 => self.out.extend_from_slice(b"\\b"),
                9 => self.out.extend_from_slice(b"\\t"),
                10 => self.out.extend_from_slice(b"\\n"),
                12 => self.out.extend_from_slice(b"\\f"),
                13 => self.out.extend_from_slice(b"\\r"),
                0..=31 | 127 => {
                    self.out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                }
                _ => self.out.push(c),
            }
        }
        self.out.push(b'"');
    }

    /// lua-cjson's `lua_array_length`: `Some(max index)` when every key is an integer
    /// >= 1 (0 for the empty table), `None` for an object.
    unsafe fn array_length(&mut self) -> Result<Option<i64>, String> {
        let state = self.state;
        let (mut max, mut items) = (0i64, 0i64);
        unsafe {
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, -2) != 0 {
                if ffi::lua_type(state, -2) == ffi::LUA_TNUMBER {
                    let k = ffi::lua_tonumber(state, -2);
                    if k != 0.0 && k.floor() == k && k >= 1.0 {
                        max = max.max(k as i64);
                        items += 1;
                        ffi::lua_settop(state, -2);
                        continue;
                    }
                }
                ffi::lua_settop(state, -3);
                return Ok(None);
            }
        }
        let ratio = i64::from(self.cfg.sparse_ratio);
        if ratio > 0 && max > items * ratio && max > i64::from(self.cfg.sparse_safe) {
            if !self.cfg.sparse_convert {
                return Err(self.exception(-1, "excessively sparse array"));
            }
            return Ok(None);
        }
        Ok(Some(max))
    }

    unsafe fn array(&mut self, n: i64, depth: i32) -> Result<(), String> {
        self.out.push(b'[');
        for i in 1..=n {
            if i > 1 {
                self.out.push(b',');
            }
            // A sparse array can ask for more nulls than memory holds (with the sparse
            // check off): the buffer is Rust's, outside the Lua heap's cap.
            if self.out.len() > MAX_OUTPUT {
                return Err("Cannot serialise, output too large (not enough memory)".into());
            }
            unsafe {
                ffi::lua_rawgeti(self.state, -1, i as _);
                self.value(depth)?;
                ffi::lua_settop(self.state, -2);
            }
        }
        self.out.push(b']');
        Ok(())
    }

    unsafe fn object(&mut self, depth: i32) -> Result<(), String> {
        let state = self.state;
        self.out.push(b'{');
        let mut first = true;
        unsafe {
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, -2) != 0 {
                if !first {
                    self.out.push(b',');
                }
                first = false;
                match ffi::lua_type(state, -2) {
                    ffi::LUA_TNUMBER => {
                        self.out.push(b'"');
                        self.number(-2)?;
                        self.out.extend_from_slice(b"\":");
                    }
                    ffi::LUA_TSTRING => {
                        let mut len = 0;
                        let p = ffi::lua_tolstring(state, -2, &mut len);
                        self.string(std::slice::from_raw_parts(p.cast(), len));
                        self.out.push(b':');
                    }
                    _ => return Err(self.exception(-2, "table key must be a number or string")),
                }
                self.value(depth)?;
                ffi::lua_settop(state, -2);
            }
        }
        self.out.push(b'}');
        Ok(())
    }
}

unsafe extern "C-unwind" fn encode(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the Config upvalue. The stack is grown for the deepest
    // nesting before the buffer exists, so encoding allocates nothing in Lua (nothing
    // there can raise); the result is pushed in protected mode (`raw::protected`), and
    // every Rust value is dropped before an error is raised.
    unsafe {
        if ffi::lua_gettop(state) != 1 {
            ffi::luaL_argerror(state, 1, c"expected 1 argument".as_ptr());
        }
        let depth = config(state).encode_max_depth.min(1000);
        ffi::luaL_checkstack(state, 3 * depth + 8, c"too deep to encode".as_ptr());
        let result = {
            let mut e = Encoder {
                state,
                cfg: config(state),
                out: Vec::new(),
            };
            e.value(0).map(|()| e.out)
        };
        let json = match result {
            Ok(json) => json,
            Err(msg) => return raise(state, msg),
        };
        let ok = super::raw::protected(state, &mut |s| {
            ffi::lua_pushlstring(s, json.as_ptr().cast(), json.len());
        });
        drop(json);
        if !ok {
            ffi::lua_error(state);
        }
        1
    }
}

// ---- decode ----

/// A decoded value, built before anything is pushed.
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    Str(Vec<u8>),
    Array(Vec<Json>),
    Object(Vec<(Vec<u8>, Json)>),
}

#[derive(Debug, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// An error, with lua-cjson's text.
    Error(&'static str),
}

impl Token {
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Bool(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(e) => e,
        }
    }
}

struct Decoder<'c> {
    /// The text, with a NUL after it (lua-cjson reads a C string: a NUL ends it).
    data: Vec<u8>,
    pos: usize,
    depth: i32,
    cfg: &'c Config,
}

impl Decoder<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    /// The next token and where it starts (where an error was found, for errors).
    fn next(&mut self) -> (Token, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let c = self.at(start);
        let single = match c {
            0 => return (Token::End, start),
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b':' => Some(Token::Colon),
            b',' => Some(Token::Comma),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return (t, start);
        }
        match c {
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if !self.cfg.decode_invalid && self.invalid_number() {
                    return (Token::Error("invalid number"), self.pos);
                }
                self.number(start)
            }
            _ if self.data[start..].starts_with(b"true") => {
                self.pos += 4;
                (Token::Bool(true), start)
            }
            _ if self.data[start..].starts_with(b"false") => {
                self.pos += 5;
                (Token::Bool(false), start)
            }
            _ if self.data[start..].starts_with(b"null") => {
                self.pos += 4;
                (Token::Null, start)
            }
            b'+' | b'i' | b'I' | b'n' | b'N'
                if self.cfg.decode_invalid && self.invalid_number() =>
            {
                self.number(start)
            }
            _ => (Token::Error("invalid token"), self.pos),
        }
    }

    /// lua-cjson's `json_is_invalid_number`: valid for strtod, not for JSON.
    fn invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return c2 | 0x20 == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let rest = &self.data[p..];
        rest.len() >= 3
            && (rest[..3].eq_ignore_ascii_case(b"inf") || rest[..3].eq_ignore_ascii_case(b"nan"))
    }

    fn number(&mut self, start: usize) -> (Token, usize) {
        let (v, n) = strtod_prefix(&self.data[start..]);
        if n == 0 {
            return (Token::Error("invalid number"), self.pos);
        }
        self.pos = start + n;
        (Token::Number(v), start)
    }

    fn string(&mut self) -> (Token, usize) {
        let start = self.pos;
        self.pos += 1;
        let mut s = Vec::new();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => break,
                0 => return (Token::Error("unexpected end of string"), self.pos),
                b'\\' => {
                    let e = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            if self.unicode_escape(&mut s) {
                                continue;
                            }
                            return (Token::Error("invalid unicode escape code"), self.pos);
                        }
                        _ => return (Token::Error("invalid escape code"), self.pos),
                    };
                    s.push(e);
                    self.pos += 2;
                }
                _ => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        (Token::Str(s), start)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            v = v << 4 | char::from(self.at(at + i)).to_digit(16)?;
        }
        Some(v)
    }

    /// `\uXXXX` (a surrogate pair: two of them) at `pos`, appended as UTF-8.
    fn unicode_escape(&mut self, s: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if (0xDC00..=0xDFFF).contains(&cp) {
            return false;
        }
        if (0xD800..=0xDBFF).contains(&cp) {
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if !(0xDC00..=0xDFFF).contains(&low) {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut buf = [0u8; 4];
        // Every value here is a scalar value: surrogates were combined or refused.
        let Some(ch) = char::from_u32(cp) else {
            return false;
        };
        s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        self.pos += len;
        true
    }

    fn expected(&self, what: &str, token: &Token, at: usize) -> String {
        format!(
            "Expected {what} but found {} at character {}",
            token.name(),
            at + 1
        )
    }

    fn descend(&mut self) -> Result<(), String> {
        self.depth += 1;
        // The decoder recurses: it never goes deeper than the default, whatever the
        // setting says (lua-cjson is bounded by Lua's C stack instead).
        if self.depth > self.cfg.decode_max_depth.min(1000) {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.pos
            ));
        }
        Ok(())
    }

    fn value(&mut self, token: Token, at: usize) -> Result<Json, String> {
        Ok(match token {
            Token::Str(s) => Json::Str(s),
            Token::Number(n) => Json::Number(n),
            Token::Bool(b) => Json::Bool(b),
            Token::Null => Json::Null,
            Token::ObjBegin => self.object()?,
            Token::ArrBegin => self.array()?,
            other => return Err(self.expected("value", &other, at)),
        })
    }

    fn object(&mut self) -> Result<Json, String> {
        self.descend()?;
        let mut fields = Vec::new();
        let (mut token, mut at) = self.next();
        if token == Token::ObjEnd {
            self.depth -= 1;
            return Ok(Json::Object(fields));
        }
        loop {
            let Token::Str(key) = token else {
                return Err(self.expected("object key string", &token, at));
            };
            let (colon, cat) = self.next();
            if colon != Token::Colon {
                return Err(self.expected("colon", &colon, cat));
            }
            let (t, vat) = self.next();
            fields.push((key, self.value(t, vat)?));
            let (sep, sat) = self.next();
            match sep {
                Token::ObjEnd => {
                    self.depth -= 1;
                    return Ok(Json::Object(fields));
                }
                Token::Comma => {}
                other => return Err(self.expected("comma or object end", &other, sat)),
            }
            (token, at) = self.next();
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.descend()?;
        let mut items = Vec::new();
        let (mut token, mut at) = self.next();
        if token == Token::ArrEnd {
            self.depth -= 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(token, at)?);
            let (sep, sat) = self.next();
            match sep {
                Token::ArrEnd => {
                    self.depth -= 1;
                    return Ok(Json::Array(items));
                }
                Token::Comma => {}
                other => return Err(self.expected("comma or array end", &other, sat)),
            }
            (token, at) = self.next();
        }
    }
}

/// Pushes a decoded value.
unsafe fn push(state: *mut lua_State, v: &Json) {
    unsafe {
        ffi::lua_checkstack(state, 3);
        match v {
            Json::Null => ffi::lua_pushlightuserdata(state, std::ptr::null_mut()),
            Json::Bool(b) => ffi::lua_pushboolean(state, c_int::from(*b)),
            Json::Number(n) => ffi::lua_pushnumber(state, *n),
            Json::Str(s) => {
                ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
            }
            Json::Array(items) => {
                ffi::lua_createtable(state, items.len().min(1 << 20) as c_int, 0);
                for (i, item) in items.iter().enumerate() {
                    push(state, item);
                    ffi::lua_rawseti(state, -2, (i + 1) as _);
                }
            }
            Json::Object(fields) => {
                ffi::lua_createtable(state, 0, fields.len().min(1 << 20) as c_int);
                for (k, v) in fields {
                    ffi::lua_pushlstring(state, k.as_ptr().cast(), k.len());
                    push(state, v);
                    ffi::lua_rawset(state, -3);
                }
            }
        }
    }
}

unsafe extern "C-unwind" fn decode(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the Config upvalue; argument checks raise before
    // anything is held, other errors after every Rust value is dropped.
    unsafe {
        if ffi::lua_gettop(state) != 1 {
            ffi::luaL_argerror(state, 1, c"expected 1 argument".as_ptr());
        }
        let mut len = 0;
        let p = ffi::luaL_checklstring(state, 1, &mut len);
        let text = std::slice::from_raw_parts(p.cast::<u8>(), len);
        let result = {
            if len >= 2 && (text[0] == 0 || text[1] == 0) {
                Err("JSON parser does not support UTF-16 or UTF-32".to_string())
            } else {
                let mut data = Vec::with_capacity(len + 1);
                data.extend_from_slice(text);
                data.push(0);
                let mut d = Decoder {
                    data,
                    pos: 0,
                    depth: 0,
                    cfg: config(state),
                };
                let (t, at) = d.next();
                d.value(t, at).and_then(|v| match d.next() {
                    (Token::End, _) => Ok(v),
                    (other, at) => Err(d.expected("the end", &other, at)),
                })
            }
        };
        let v = match result {
            Ok(v) => v,
            Err(msg) => return raise(state, msg),
        };
        // SAFETY: as above; the tree is dropped before a push error is raised.
        let ok = super::raw::protected(state, &mut |s| push(s, &v));
        drop(v);
        if !ok {
            ffi::lua_error(state);
        }
        1
    }
}

// ---- settings ----

/// An integer setting's argument `i`, if given (`lo..=hi`, else Lua's argument error).
unsafe fn int_arg(state: *mut lua_State, i: c_int, lo: i64, hi: i64, name: &CStr) -> Option<i64> {
    unsafe {
        if ffi::lua_type(state, i) <= ffi::LUA_TNIL {
            return None;
        }
        let v = ffi::luaL_checknumber(state, i);
        if v.floor() != v || v < lo as f64 || v > hi as f64 {
            ffi::luaL_argerror(state, i, name.as_ptr());
        }
        Some(v as i64)
    }
}

unsafe fn bool_arg(state: *mut lua_State, i: c_int) -> Option<bool> {
    unsafe {
        match ffi::lua_type(state, i) {
            t if t <= ffi::LUA_TNIL => None,
            ffi::LUA_TBOOLEAN => Some(ffi::lua_toboolean(state, i) != 0),
            _ => {
                ffi::luaL_argerror(state, i, c"invalid option".as_ptr());
                None
            }
        }
    }
}

unsafe extern "C-unwind" fn encode_max_depth(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with the Config upvalue; argument errors hold nothing.
    unsafe {
        let cfg = config(state);
        let msg = c"expected integer between 1 and 2147483647";
        if let Some(v) = int_arg(state, 1, 1, i64::from(i32::MAX), msg) {
            cfg.encode_max_depth = v as i32;
        }
        ffi::lua_pushnumber(state, f64::from(cfg.encode_max_depth));
        1
    }
}

unsafe extern "C-unwind" fn decode_max_depth(state: *mut lua_State) -> c_int {
    // SAFETY: as `encode_max_depth`.
    unsafe {
        let cfg = config(state);
        let msg = c"expected integer between 1 and 2147483647";
        if let Some(v) = int_arg(state, 1, 1, i64::from(i32::MAX), msg) {
            cfg.decode_max_depth = v as i32;
        }
        ffi::lua_pushnumber(state, f64::from(cfg.decode_max_depth));
        1
    }
}

unsafe extern "C-unwind" fn encode_number_precision(state: *mut lua_State) -> c_int {
    // SAFETY: as `encode_max_depth`.
    unsafe {
        let cfg = config(state);
        if let Some(v) = int_arg(state, 1, 1, 14, c"expected integer between 1 and 14") {
            cfg.precision = v as u8;
        }
        ffi::lua_pushnumber(state, f64::from(cfg.precision));
        1
    }
}

unsafe extern "C-unwind" fn encode_keep_buffer(state: *mut lua_State) -> c_int {
    // SAFETY: as `encode_max_depth`.
    unsafe {
        let cfg = config(state);
        if let Some(b) = bool_arg(state, 1) {
            cfg.keep_buffer = b;
        }
        ffi::lua_pushboolean(state, c_int::from(cfg.keep_buffer));
        1
    }
}

unsafe extern "C-unwind" fn decode_invalid_numbers(state: *mut lua_State) -> c_int {
    // SAFETY: as `encode_max_depth`.
    unsafe {
        let cfg = config(state);
        if let Some(b) = bool_arg(state, 1) {
            cfg.decode_invalid = b;
        }
        ffi::lua_pushboolean(state, c_int::from(cfg.decode_invalid));
        1
    }
}

unsafe extern "C-unwind" fn encode_invalid_numbers(state: *mut lua_State) -> c_int {
    // SAFETY: as `encode_max_depth`.
    unsafe {
        let cfg = config(state);
        match ffi::lua_type(state, 1) {
            t if t <= ffi::LUA_TNIL => {}
            ffi::LUA_TBOOLEAN => cfg.encode_invalid = u8::from(ffi::lua_toboolean(state, 1) != 0),
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(state, 1, &mut len);
                if std::slice::from_raw_parts(p.cast::<u8>(), len) == b"null" {
                    cfg.encode_invalid = 2;
                } else {
                    ffi::luaL_argerror(state, 1, c"invalid option 'null'".as_ptr());
                }
            }
            _ => {
                ffi::luaL_argerror(state, 1, c"invalid option".as_ptr());
            }
        }
        match cfg.encode_invalid {
            0 => ffi::lua_pushboolean(state, 0),
            1 => ffi::lua_pushboolean(state, 1),
            _ => {
                ffi::lua_pushstring(state, c"null".as_ptr());
            }
        }
        1
    }
}

unsafe extern "C-unwind" fn encode_sparse_array(state: *mut lua_State) -> c_int {
    // SAFETY: as `encode_max_depth`.
    unsafe {
        let cfg = config(state);
        if let Some(b) = bool_arg(state, 1) {
            cfg.sparse_convert = b;
        }
        let msg = c"expected integer between 0 and 2147483647";
        if let Some(v) = int_arg(state, 2, 0, i64::from(i32::MAX), msg) {
            cfg.sparse_ratio = v as i32;
        }
        if let Some(v) = int_arg(state, 3, 0, i64::from(i32::MAX), msg) {
            cfg.sparse_safe = v as i32;
        }
        ffi::lua_pushboolean(state, c_int::from(cfg.sparse_convert));
        ffi::lua_pushnumber(state, f64::from(cfg.sparse_ratio));
        ffi::lua_pushnumber(state, f64::from(cfg.sparse_safe));
        3
    }
}

const FUNCTIONS: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"encode", encode),
    (c"decode", decode),
    (c"encode_max_depth", encode_max_depth),
    (c"decode_max_depth", decode_max_depth),
    (c"encode_number_precision", encode_number_precision),
    (c"encode_keep_buffer", encode_keep_buffer),
    (c"encode_invalid_numbers", encode_invalid_numbers),
    (c"decode_invalid_numbers", decode_invalid_numbers),
    (c"encode_sparse_array", encode_sparse_array),
];

/// Pushes the `cjson` table; its functions' upvalue is `cfg`.
///
/// # Safety
///
/// `state` is a Lua state with room for three more values; `cfg` outlives it.
pub(super) unsafe fn push_library(state: *mut lua_State, cfg: *mut Config) {
    unsafe {
        ffi::lua_createtable(state, 0, FUNCTIONS.len() as c_int + 3);
        for (name, f) in FUNCTIONS {
            ffi::lua_pushlightuserdata(state, cfg.cast());
            ffi::lua_pushcclosure(state, *f, 1);
            ffi::lua_setfield(state, -2, name.as_ptr());
        }
        ffi::lua_pushlightuserdata(state, std::ptr::null_mut());
        ffi::lua_setfield(state, -2, c"null".as_ptr());
        ffi::lua_pushstring(state, c"cjson".as_ptr());
        ffi::lua_setfield(state, -2, c"_NAME".as_ptr());
        ffi::lua_pushstring(state, c"2.1.0".as_ptr());
        ffi::lua_setfield(state, -2, c"_VERSION".as_ptr());
    }
}
