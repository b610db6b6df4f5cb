//! The `struct` library Redis gives scripts (Roberto Ierusalimschy's struct 0.2):
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, s [, pos])`, `struct.size(fmt)`.
//!
//! Formats: `>` `<` `=` endianness, `!n` maximum alignment, `x` a padding byte, `b` `B`
//! `h` `H` `l` `L` `T` `i[n]` `I[n]` integers (lower case signed; `l` and `T` are 8
//! bytes, `i` 4 by default, up to 32), `f` `d` floats, `c[n]` n bytes (`c0`: as long as
//! the string, or in unpack the previous number), `s` a zero-terminated string. Errors
//! carry the library's texts. `pack` checks every argument before it builds anything,
//! so an error raised from it leaves nothing behind.

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

const MAXINTSIZE: usize = 32;
/// `struct cD { char c; double d; }`'s padding, or an int's size if larger: 8.
const MAXALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Self {
        Header {
            little: cfg!(target_endian = "little"),
            align: 1,
        }
    }
}

/// Where the format is, and how to raise its errors.
struct Fmt<'f> {
    state: *mut lua_State,
    f: &'f [u8],
    i: usize,
}

impl Fmt<'_> {
    /// The format, argument 1 (raises Lua's argument error when it is not a string).
    unsafe fn new<'f>(state: *mut lua_State) -> Fmt<'f> {
        Fmt {
            state,
            f: unsafe { fmt_arg(state) },
            i: 0,
        }
    }

    fn peek(&self) -> u8 {
        self.f.get(self.i).copied().unwrap_or(0)
    }

    /// A number after an option, or `df`.
    unsafe fn num(&mut self, df: usize) -> usize {
        if !self.peek().is_ascii_digit() {
            return df;
        }
        let mut a: usize = 0;
        while self.peek().is_ascii_digit() {
            let d = usize::from(self.peek() - b'0');
            if a > (i32::MAX as usize) / 10 || a * 10 > i32::MAX as usize - d {
                unsafe { error(self.state, c"integral size overflow") };
            }
            a = a * 10 + d;
            self.i += 1;
        }
        a
    }

    unsafe fn optsize(&mut self, opt: u8) -> usize {
        match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' => 8,
            b'f' => 4,
            b'd' => 8,
            b'x' => 1,
            b'c' => unsafe { self.num(1) },
            b'i' | b'I' => {
                let sz = unsafe { self.num(4) };
                if sz > MAXINTSIZE {
                    let msg = format!("integral size {sz} is larger than limit of {MAXINTSIZE}");
                    unsafe { error_string(self.state, msg) };
                }
                sz
            }
            _ => 0,
        }
    }

    /// `>`, `<`, `=`, `!n` and spaces; anything else is an invalid option.
    unsafe fn control(&mut self, opt: u8, h: &mut Header) {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'=' => h.little = cfg!(target_endian = "little"),
            b'!' => {
                let a = unsafe { self.num(MAXALIGN) };
                if !a.is_power_of_two() {
                    unsafe {
                        error_string(self.state, format!("alignment {a} is not a power of 2"))
                    };
                }
                h.align = a;
            }
            _ => unsafe {
                // The option is one byte: the message fits a fixed buffer, nothing to drop.
                let mut msg = *b"invalid format option 'x'\0";
                msg[23] = opt;
                ffi::luaL_argerror(self.state, 1, msg.as_ptr().cast());
            },
        }
    }
}

fn toalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

/// `luaL_error` with a static message (position prefix included, as Lua adds it).
unsafe fn error(state: *mut lua_State, msg: &CStr) -> ! {
    unsafe {
        ffi::luaL_where(state, 1);
        ffi::lua_pushstring(state, msg.as_ptr());
        ffi::lua_concat(state, 2);
        ffi::lua_error(state)
    }
}

unsafe fn error_string(state: *mut lua_State, msg: String) -> ! {
    unsafe { super::raw::raise_message(state, msg) }
}

unsafe fn fmt_arg<'f>(state: *mut lua_State) -> &'f [u8] {
    unsafe {
        let mut len = 0;
        let p = ffi::luaL_checklstring(state, 1, &mut len);
        let s = std::slice::from_raw_parts(p.cast::<u8>(), len);
        // The C library reads a C string: the format ends at a NUL.
        &s[..memchr::memchr(0, s).unwrap_or(len)]
    }
}

/// One pass of `pack`: with `out` None it only checks (and raises), with `out` it
/// builds (and cannot fail: the checking pass ran first).
unsafe fn pack_pass(state: *mut lua_State, mut out: Option<&mut Vec<u8>>) {
    unsafe {
        let mut f = Fmt::new(state);
        let mut h = Header::new();
        let mut arg = 2;
        let mut total = 0usize;
        while f.i < f.f.len() {
            let opt = f.f[f.i];
            f.i += 1;
            let mut size = f.optsize(opt);
            let pad = toalign(total, &h, opt, size);
            total += pad;
            if let Some(o) = out.as_deref_mut() {
                o.extend(std::iter::repeat_n(0u8, pad));
            }
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let n = ffi::luaL_checknumber(state, arg);
                    arg += 1;
                    if let Some(o) = out.as_deref_mut() {
                        let mut value = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                        let mut buf = [0u8; MAXINTSIZE];
                        for b in buf.iter_mut().take(size) {
                            *b = (value & 0xff) as u8;
                            value >>= 8;
                        }
                        if !h.little {
                            buf[..size].reverse();
                        }
                        o.extend_from_slice(&buf[..size]);
                    }
                }
                b'x' => {
                    if let Some(o) = out.as_deref_mut() {
                        o.push(0);
                    }
                }
                b'f' | b'd' => {
                    let n = ffi::luaL_checknumber(state, arg);
                    arg += 1;
                    if let Some(o) = out.as_deref_mut() {
                        let mut bytes = if opt == b'f' {
                            (n as f32).to_le_bytes().to_vec()
                        } else {
                            n.to_le_bytes().to_vec()
                        };
                        if !h.little {
                            bytes.reverse();
                        }
                        o.extend_from_slice(&bytes);
                    }
                }
                b'c' | b's' => {
                    let mut l = 0;
                    let p = ffi::luaL_checklstring(state, arg, &mut l);
                    arg += 1;
                    if size == 0 {
                        size = l;
                    }
                    if l < size {
                        ffi::luaL_argerror(state, arg, c"string too short".as_ptr());
                    }
                    if let Some(o) = out.as_deref_mut() {
                        o.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), size));
                        if opt == b's' {
                            o.push(0);
                        }
                    }
                    if opt == b's' {
                        size += 1;
                    }
                }
                _ => f.control(opt, &mut h),
            }
            total += size;
        }
    }
}

unsafe extern "C-unwind" fn pack(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua; the checking pass raises before anything is held (and
    // turns number arguments given for strings into strings, so the building pass
    // allocates nothing in Lua); the result is pushed in protected mode.
    unsafe {
        pack_pass(state, None);
        let mut out = Vec::new();
        pack_pass(state, Some(&mut out));
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

fn getinteger(b: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let mut push = |byte: u8| l = l.wrapping_shl(8) | u64::from(byte);
    if little {
        b.iter().rev().for_each(|&x| push(x));
    } else {
        b.iter().for_each(|&x| push(x));
    }
    if !signed {
        return l as f64;
    }
    let bits = b.len() * 8;
    let mask = if bits == 0 || bits > 64 {
        0
    } else {
        u64::MAX << (bits - 1)
    };
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

unsafe extern "C-unwind" fn unpack(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua; nothing held across the calls that may raise.
    unsafe {
        let fmt = fmt_arg(state);
        let mut ld = 0;
        let data = ffi::luaL_checklstring(state, 2, &mut ld);
        let data = std::slice::from_raw_parts(data.cast::<u8>(), ld);
        let start = ffi::luaL_optinteger(state, 3, 1) as i64;
        if start < 1 || (start - 1) as u64 > ld as u64 {
            ffi::luaL_argerror(state, 3, c"offset must be 1 or greater".as_ptr());
        }
        let mut pos = (start - 1) as usize;
        let mut f = Fmt {
            state,
            f: fmt,
            i: 0,
        };
        let mut h = Header::new();
        let mut n: c_int = 0;
        while f.i < f.f.len() {
            let opt = f.f[f.i];
            f.i += 1;
            let mut size = f.optsize(opt);
            pos += toalign(pos, &h, opt, size);
            if !(size <= ld && pos <= ld - size) {
                ffi::luaL_argerror(state, 2, c"data string too short".as_ptr());
            }
            ffi::luaL_checkstack(state, 2, c"too many results".as_ptr());
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let v = getinteger(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                    ffi::lua_pushnumber(state, v);
                    n += 1;
                }
                b'x' => {}
                b'f' | b'd' => {
                    let mut b = [0u8; 8];
                    b[..size].copy_from_slice(&data[pos..pos + size]);
                    if !h.little {
                        b[..size].reverse();
                    }
                    let v = if opt == b'f' {
                        f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    } else {
                        f64::from_le_bytes(b)
                    };
                    ffi::lua_pushnumber(state, v);
                    n += 1;
                }
                b'c' => {
                    if size == 0 {
                        if n == 0 || ffi::lua_isnumber(state, -1) == 0 {
                            error(state, c"format 'c0' needs a previous size");
                        }
                        size = ffi::lua_tonumber(state, -1) as usize;
                        ffi::lua_settop(state, -2);
                        n -= 1;
                        if !(size <= ld && pos <= ld - size) {
                            ffi::luaL_argerror(state, 2, c"data string too short".as_ptr());
                        }
                    }
                    ffi::lua_pushlstring(state, data[pos..].as_ptr().cast(), size);
                    n += 1;
                }
                b's' => {
                    let Some(e) = memchr::memchr(0, &data[pos..]) else {
                        error(state, c"unfinished string in data");
                    };
                    size = e + 1;
                    ffi::lua_pushlstring(state, data[pos..].as_ptr().cast(), e);
                    n += 1;
                }
                _ => f.control(opt, &mut h),
            }
            pos += size;
        }
        ffi::lua_pushnumber(state, (pos + 1) as f64);
        n + 1
    }
}

unsafe extern "C-unwind" fn size(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua; nothing held across the calls that may raise.
    unsafe {
        let mut f = Fmt::new(state);
        let mut h = Header::new();
        let mut pos = 0usize;
        while f.i < f.f.len() {
            let opt = f.f[f.i];
            f.i += 1;
            let size = f.optsize(opt);
            pos += toalign(pos, &h, opt, size);
            if opt == b's' {
                ffi::luaL_argerror(state, 1, c"option 's' has no fixed size".as_ptr());
            } else if opt == b'c' && size == 0 {
                ffi::luaL_argerror(state, 1, c"option 'c0' has no fixed size".as_ptr());
            }
            if !opt.is_ascii_alphanumeric() {
                f.control(opt, &mut h);
            }
            pos += size;
        }
        ffi::lua_pushnumber(state, pos as f64);
        1
    }
}

const FUNCTIONS: &[(&CStr, ffi::lua_CFunction)] =
    &[(c"pack", pack), (c"unpack", unpack), (c"size", size)];

/// Pushes the `struct` table.
///
/// # Safety
///
/// `state` is a Lua state with room for two more values.
pub(super) unsafe fn push_library(state: *mut lua_State) {
    unsafe { super::raw::push_functions(state, FUNCTIONS) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_back_with_sign_and_endianness() {
        assert_eq!(getinteger(&[0xff, 0xff], true, true), -1.0);
        assert_eq!(getinteger(&[0xff, 0xff], true, false), 65535.0);
        assert_eq!(getinteger(&[0x01, 0x02], false, false), 258.0);
        assert_eq!(getinteger(&[0x01, 0x02], true, false), 513.0);
        assert_eq!(getinteger(&[0x80], true, true), -128.0);
    }

    #[test]
    fn alignment_follows_the_header() {
        let h = Header {
            little: true,
            align: 8,
        };
        assert_eq!(toalign(1, &h, b'i', 4), 3);
        assert_eq!(toalign(4, &h, b'd', 8), 4);
        assert_eq!(toalign(3, &h, b'c', 4), 0);
        let h = Header {
            little: true,
            align: 1,
        };
        assert_eq!(toalign(1, &h, b'i', 4), 0);
    }
}
