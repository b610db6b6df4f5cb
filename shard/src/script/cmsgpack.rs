//! The `cmsgpack` library Redis gives scripts, with lua-cmsgpack 0.4.0's behaviour:
//! `pack(...)` (each argument encoded, concatenated), `unpack(s)` (every value in `s`),
//! `unpack_one(s [, offset])` and `unpack_limit(s, limit [, offset])` (a next offset,
//! -1 at the end, then the values).
//!
//! Encoding as lua-cmsgpack chooses: integral numbers in the smallest integer format,
//! others as a float when a float holds them exactly, else a double; strings as str8/16/32
//! (fixstr when short); a table whose keys are exactly 1..n an array (the empty table
//! too), any other a map; tables nested 16 deep encode as nil. Decoding reads what
//! lua-cmsgpack reads (no bin or ext types: "Bad data format in input."), builds the
//! values in Rust and pushes them only once the input decoded; nesting deeper than
//! 256 is refused as bad data rather than risking the stack.

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

/// Tables nested deeper than this encode as nil (lua-cmsgpack's guard against cycles).
const MAX_NESTING: u32 = 16;
/// Deepest nesting decoded (lua-cmsgpack has no limit but the C stack; the decoder
/// recurses, so it has one).
const MAX_DECODE_DEPTH: u32 = 256;

unsafe fn raise(state: *mut lua_State, msg: &CStr) -> c_int {
    unsafe {
        ffi::luaL_where(state, 1);
        ffi::lua_pushstring(state, msg.as_ptr());
        ffi::lua_concat(state, 2);
        ffi::lua_error(state)
    }
}

// ---- pack ----

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    // C's `(int64_t)n == n`, where a conversion out of range never compares equal.
    if crate::float::c_i64(n).is_some_and(|i| i as f64 == n) {
        encode_int(out, n as i64);
        return;
    }
    let f = n as f32;
    if f64::from(f) == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn encode_len(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Encodes the value on top of the stack, and pops it.
unsafe fn encode(state: *mut lua_State, out: &mut Vec<u8>, level: u32) {
    unsafe {
        let mut t = ffi::lua_type(state, -1);
        if t == ffi::LUA_TTABLE && level == MAX_NESTING {
            t = ffi::LUA_TNIL;
        }
        match t {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(state, -1, &mut len);
                encode_str(out, std::slice::from_raw_parts(p.cast(), len));
            }
            ffi::LUA_TBOOLEAN => out.push(if ffi::lua_toboolean(state, -1) != 0 {
                0xc3
            } else {
                0xc2
            }),
            ffi::LUA_TNUMBER => encode_number(out, ffi::lua_tonumber(state, -1)),
            ffi::LUA_TTABLE => encode_table(state, out, level),
            _ => out.push(0xc0),
        }
        ffi::lua_settop(state, -2);
    }
}

/// lua-cmsgpack's `table_is_an_array`: every key an integer >= 1 and as many keys as the
/// largest.
unsafe fn is_array(state: *mut lua_State) -> bool {
    unsafe {
        let top = ffi::lua_gettop(state);
        let (mut count, mut max) = (0i64, 0i64);
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, -2) != 0 {
            ffi::lua_settop(state, -2);
            if ffi::lua_type(state, -1) != ffi::LUA_TNUMBER {
                ffi::lua_settop(state, top);
                return false;
            }
            let n = ffi::lua_tonumber(state, -1);
            if n <= 0.0 || n.is_infinite() || f64::from(n as i32) != n {
                ffi::lua_settop(state, top);
                return false;
            }
            max = max.max(n as i64);
            count += 1;
        }
        ffi::lua_settop(state, top);
        max == count
    }
}

unsafe fn encode_table(state: *mut lua_State, out: &mut Vec<u8>, level: u32) {
    unsafe {
        if is_array(state) {
            let n = ffi::lua_objlen(state, -1);
            encode_len(out, n, 0x90, 0xdc, 0xdd);
            for j in 1..=n {
                // Raw, where lua-cmsgpack honours __index: a metamethod could raise
                // while the buffer is held.
                ffi::lua_rawgeti(state, -1, j as _);
                encode(state, out, level + 1);
            }
        } else {
            let mut n = 0;
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, -2) != 0 {
                ffi::lua_settop(state, -2);
                n += 1;
            }
            encode_len(out, n, 0x80, 0xde, 0xdf);
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, -2) != 0 {
                ffi::lua_pushvalue(state, -2);
                encode(state, out, level + 1);
                encode(state, out, level + 1);
            }
        }
    }
}

unsafe extern "C-unwind" fn pack(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua; the argument error is raised before anything is held. The
    // stack is grown for the deepest nesting first and tables are read raw, so encoding
    // allocates nothing in Lua (nothing there can raise); the result is pushed in
    // protected mode and the buffer dropped before an error is raised.
    unsafe {
        let n = ffi::lua_gettop(state);
        if n == 0 {
            return ffi::luaL_argerror(state, 0, c"MessagePack pack needs input.".as_ptr());
        }
        ffi::luaL_checkstack(
            state,
            4 * MAX_NESTING as c_int + 8,
            c"too deep to pack".as_ptr(),
        );
        let mut out = Vec::new();
        for i in 1..=n {
            ffi::lua_pushvalue(state, i);
            encode(state, &mut out, 0);
        }
        let ok = super::raw::protected(state, &mut |s| {
            ffi::lua_pushlstring(s, out.as_ptr().cast(), out.len());
        });
        drop(out);
        if !ok {
            ffi::lua_error(state);
        }
        1
    }
}

// ---- unpack ----

enum Value {
    Nil,
    Bool(bool),
    Number(f64),
    Str(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

enum DecodeError {
    /// "Missing bytes in input."
    Eof,
    /// "Bad data format in input."
    BadFormat,
}

struct Cursor<'b> {
    b: &'b [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let s = self.b.get(self.pos..self.pos + n).ok_or(DecodeError::Eof)?;
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |v, &b| v << 8 | u64::from(b)))
    }

    fn value(&mut self, depth: u32) -> Result<Value, DecodeError> {
        if depth > MAX_DECODE_DEPTH {
            return Err(DecodeError::BadFormat);
        }
        let c = self.take(1)?[0];
        Ok(match c {
            0xcc => Value::Number(self.uint(1)? as f64),
            0xcd => Value::Number(self.uint(2)? as f64),
            0xce => Value::Number(self.uint(4)? as f64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Number(f64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Value::Number(f64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Value::Number(f64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Value::Number(self.uint(8)? as i64 as f64),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xca => Value::Number(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xd9..=0xdb => {
                let n = self.uint(1 << (c - 0xd9))? as usize;
                Value::Str(self.take(n)?.to_vec())
            }
            0xdc | 0xdd => {
                let n = self.uint(if c == 0xdc { 2 } else { 4 })? as usize;
                self.array(n, depth)?
            }
            0xde | 0xdf => {
                let n = self.uint(if c == 0xde { 2 } else { 4 })? as usize;
                self.map(n, depth)?
            }
            _ if c & 0x80 == 0 => Value::Number(f64::from(c)),
            _ if c & 0xe0 == 0xe0 => Value::Number(f64::from(c as i8)),
            _ if c & 0xe0 == 0xa0 => Value::Str(self.take(usize::from(c & 0x1f))?.to_vec()),
            _ if c & 0xf0 == 0x90 => self.array(usize::from(c & 0x0f), depth)?,
            _ if c & 0xf0 == 0x80 => self.map(usize::from(c & 0x0f), depth)?,
            _ => return Err(DecodeError::BadFormat),
        })
    }

    fn array(&mut self, n: usize, depth: u32) -> Result<Value, DecodeError> {
        // Every element takes a byte at least: a length past the input is missing bytes.
        let mut items = Vec::with_capacity(n.min(self.b.len() - self.pos.min(self.b.len())));
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: u32) -> Result<Value, DecodeError> {
        let mut pairs = Vec::with_capacity(n.min(self.b.len() - self.pos.min(self.b.len())));
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            pairs.push((k, v));
        }
        Ok(Value::Map(pairs))
    }
}

/// The error Lua's `settable` raises for a key it refuses, if any key is one.
fn bad_key(v: &Value) -> Option<&'static CStr> {
    match v {
        Value::Array(items) => items.iter().find_map(bad_key),
        Value::Map(pairs) => pairs.iter().find_map(|(k, v)| match k {
            Value::Nil => Some(c"table index is nil"),
            Value::Number(n) if n.is_nan() => Some(c"table index is NaN"),
            _ => bad_key(k).or_else(|| bad_key(v)),
        }),
        _ => None,
    }
}

unsafe fn push(state: *mut lua_State, v: &Value) {
    unsafe {
        ffi::lua_checkstack(state, 3);
        match v {
            Value::Nil => ffi::lua_pushnil(state),
            Value::Bool(b) => ffi::lua_pushboolean(state, c_int::from(*b)),
            Value::Number(n) => ffi::lua_pushnumber(state, *n),
            Value::Str(s) => {
                ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
            }
            Value::Array(items) => {
                ffi::lua_createtable(state, items.len().min(1 << 20) as c_int, 0);
                for (i, item) in items.iter().enumerate() {
                    push(state, item);
                    ffi::lua_rawseti(state, -2, (i + 1) as _);
                }
            }
            Value::Map(pairs) => {
                ffi::lua_createtable(state, 0, pairs.len().min(1 << 20) as c_int);
                for (k, v) in pairs {
                    push(state, k);
                    push(state, v);
                    ffi::lua_rawset(state, -3);
                }
            }
        }
    }
}

/// lua-cmsgpack's `mp_unpack_full`: up to `limit` values (0 with offset 0: all of
/// them) from byte `offset` of the string argument 1.
unsafe fn unpack_full(state: *mut lua_State, limit: i64, offset: i64) -> c_int {
    unsafe {
        let mut len = 0;
        let p = ffi::luaL_checklstring(state, 1, &mut len);
        if offset < 0 || limit < 0 {
            return raise_fmt(
                state,
                format!("Invalid request to unpack with offset of {offset} and limit of {len}."),
            );
        }
        if offset as usize > len {
            return raise_fmt(
                state,
                format!("Start offset {offset} greater than input length {len}."),
            );
        }
        let all = limit == 0 && offset == 0;
        let limit = if all { i64::from(i32::MAX) } else { limit };
        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len);
        let decoded = {
            let mut c = Cursor {
                b: bytes,
                pos: offset as usize,
            };
            let mut values = Vec::new();
            let mut err = None;
            while c.pos < len && (values.len() as i64) < limit {
                match c.value(0) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            match err {
                Some(DecodeError::Eof) => Err(c"Missing bytes in input."),
                Some(DecodeError::BadFormat) => Err(c"Bad data format in input."),
                None => match values.iter().find_map(bad_key) {
                    Some(e) => Err(e),
                    None => Ok((values, c.pos)),
                },
            }
        };
        let (values, pos) = match decoded {
            Ok(found) => found,
            Err(msg) if msg.to_bytes().starts_with(b"table index") => {
                // Raised by Lua's settable inside the C function: no position.
                ffi::lua_pushstring(state, msg.as_ptr());
                ffi::lua_error(state)
            }
            Err(msg) => return raise(state, msg),
        };
        // The values go into one table in protected mode (an allocation error unwinds
        // to here), the decoded tree is dropped, and only then are they spread onto the
        // stack, where an error holds nothing of ours.
        let count = values.len();
        let ok = super::raw::protected(state, &mut |s| {
            ffi::lua_createtable(s, count.min(1 << 20) as c_int, 0);
            for (i, v) in values.iter().enumerate() {
                push(s, v);
                ffi::lua_rawseti(s, -2, (i + 1) as _);
            }
        });
        drop(values);
        if !ok {
            ffi::lua_error(state);
        }
        let table = ffi::lua_gettop(state);
        ffi::luaL_checkstack(
            state,
            count.min(1 << 20) as c_int + 2,
            c"too many results to unpack".as_ptr(),
        );
        let mut n = count as c_int;
        if !all {
            ffi::lua_pushnumber(state, if pos >= len { -1.0 } else { pos as f64 });
            n += 1;
        }
        for i in 1..=count {
            ffi::lua_rawgeti(state, table, i as _);
        }
        ffi::lua_remove(state, table);
        n
    }
}

unsafe fn raise_fmt(state: *mut lua_State, msg: String) -> c_int {
    unsafe { super::raw::raise_message(state, msg) }
}

unsafe extern "C-unwind" fn unpack(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua; errors are raised after every Rust value is dropped.
    unsafe { unpack_full(state, 0, 0) }
}

unsafe extern "C-unwind" fn unpack_one(state: *mut lua_State) -> c_int {
    // SAFETY: as `unpack`.
    unsafe {
        let offset = ffi::luaL_optinteger(state, 2, 0);
        ffi::lua_settop(state, 1);
        unpack_full(state, 1, offset as i64)
    }
}

unsafe extern "C-unwind" fn unpack_limit(state: *mut lua_State) -> c_int {
    // SAFETY: as `unpack`.
    unsafe {
        let limit = ffi::luaL_checkinteger(state, 2);
        let offset = ffi::luaL_optinteger(state, 3, 0);
        ffi::lua_settop(state, 1);
        unpack_full(state, limit as i64, offset as i64)
    }
}

const FUNCTIONS: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"pack", pack),
    (c"unpack", unpack),
    (c"unpack_one", unpack_one),
    (c"unpack_limit", unpack_limit),
];

/// Pushes the `cmsgpack` table.
///
/// # Safety
///
/// `state` is a Lua state with room for two more values.
pub(super) unsafe fn push_library(state: *mut lua_State) {
    unsafe {
        super::raw::push_functions(state, FUNCTIONS);
        for (k, v) in [
            (c"_NAME", c"cmsgpack"),
            (c"_VERSION", c"lua-cmsgpack 0.4.0"),
            (c"_COPYRIGHT", c"Copyright (C) 2012, Salvatore Sanfilippo"),
            (c"_DESCRIPTION", c"MessagePack C implementation for Lua"),
        ] {
            ffi::lua_pushstring(state, v.as_ptr());
            ffi::lua_setfield(state, -2, k.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_the_smallest_format() {
        let enc = |n: f64| {
            let mut out = Vec::new();
            encode_number(&mut out, n);
            out
        };
        assert_eq!(enc(5.0), [5]);
        assert_eq!(enc(-1.0), [0xff]);
        assert_eq!(enc(200.0), [0xcc, 200]);
        assert_eq!(enc(-200.0), [0xd1, 0xff, 0x38]);
        assert_eq!(enc(70000.0), [0xce, 0, 1, 0x11, 0x70]);
        assert_eq!(enc(1.5), [0xca, 0x3f, 0xc0, 0, 0]);
        assert_eq!(enc(0.1)[0], 0xcb);
        assert_eq!(enc(9_223_372_036_854_775_808.0), [0xca, 0x5f, 0, 0, 0]);
    }

    #[test]
    fn decoding_reads_what_it_wrote_and_refuses_the_rest() {
        let mut c = Cursor {
            b: &[0x92, 0x01, 0xa1, b'x'],
            pos: 0,
        };
        assert!(matches!(c.value(0), Ok(Value::Array(v)) if v.len() == 2));
        let mut c = Cursor {
            b: &[0x92, 0x01],
            pos: 0,
        };
        assert!(matches!(c.value(0), Err(DecodeError::Eof)));
        let mut c = Cursor {
            b: &[0xc4, 0x01, 0x00],
            pos: 0,
        };
        assert!(matches!(c.value(0), Err(DecodeError::BadFormat)));
        let deep = vec![0x91u8; 300];
        let mut c = Cursor { b: &deep, pos: 0 };
        assert!(matches!(c.value(0), Err(DecodeError::BadFormat)));
    }
}
