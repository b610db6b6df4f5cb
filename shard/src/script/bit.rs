//! The `bit` library Redis gives scripts (LuaBitOp's interface): `tobit`, `tohex`,
//! `bnot`, `band`, `bor`, `bxor`, `lshift`, `rshift`, `arshift`, `rol`, `ror`, `bswap`
//! over 32-bit integers. Numbers become 32-bit by rounding to the nearest integer (ties
//! to even) and wrapping, results are signed; arguments are checked as Lua's
//! `luaL_checknumber` checks them, with its error text.

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

/// A number as LuaBitOp normalises it: rounded to the nearest integer (ties to even),
/// modulo 2^32.
pub fn tobit(n: f64) -> i32 {
    // Adding 2^52 + 2^51 leaves the integer part in the low bits of the mantissa.
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

/// Argument `i` as 32 bits.
///
/// # Safety
///
/// Called from a C function Lua is running; raises Lua's argument error (a longjmp out
/// of that function, which must hold nothing to drop) when `i` is not a number.
unsafe fn arg(state: *mut lua_State, i: c_int) -> u32 {
    tobit(unsafe { ffi::luaL_checknumber(state, i) }) as u32
}

/// Pushes a result (as the signed 32-bit number LuaBitOp returns); one result.
unsafe fn ret(state: *mut lua_State, b: u32) -> c_int {
    unsafe { ffi::lua_pushnumber(state, f64::from(b as i32)) };
    1
}

macro_rules! unary {
    ($name:ident, |$b:ident| $e:expr) => {
        unsafe extern "C-unwind" fn $name(state: *mut lua_State) -> c_int {
            // SAFETY: called by Lua; `arg` may raise before anything is held.
            unsafe {
                let $b = arg(state, 1);
                ret(state, $e)
            }
        }
    };
}

macro_rules! fold {
    ($name:ident, $op:tt) => {
        unsafe extern "C-unwind" fn $name(state: *mut lua_State) -> c_int {
            // SAFETY: called by Lua; `arg` may raise before anything is held.
            unsafe {
                let mut b = arg(state, 1);
                for i in 2..=ffi::lua_gettop(state) {
                    b $op arg(state, i);
                }
                ret(state, b)
            }
        }
    };
}

macro_rules! shift {
    ($name:ident, |$b:ident, $n:ident| $e:expr) => {
        unsafe extern "C-unwind" fn $name(state: *mut lua_State) -> c_int {
            // SAFETY: called by Lua; `arg` may raise before anything is held.
            unsafe {
                let $b = arg(state, 1);
                let $n = arg(state, 2) & 31;
                ret(state, $e)
            }
        }
    };
}

unary!(bit_tobit, |b| b);
unary!(bit_bnot, |b| !b);
unary!(bit_bswap, |b| b.swap_bytes());
fold!(bit_band, &=);
fold!(bit_bor, |=);
fold!(bit_bxor, ^=);
shift!(bit_lshift, |b, n| b << n);
shift!(bit_rshift, |b, n| b >> n);
shift!(bit_arshift, |b, n| ((b as i32) >> n) as u32);
shift!(bit_rol, |b, n| b.rotate_left(n));
shift!(bit_ror, |b, n| b.rotate_right(n));

/// `bit.tohex(x [, n])`: the low `n` hex digits of `x` (8 by default; negative `n` for
/// upper case).
unsafe extern "C-unwind" fn bit_tohex(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua; `arg` may raise before anything is held.
    unsafe {
        let mut b = arg(state, 1);
        let mut n = if ffi::lua_type(state, 2) <= ffi::LUA_TNIL {
            8
        } else {
            arg(state, 2) as i32
        };
        if n == i32::MIN {
            // As Redis's patched LuaBitOp: -n would overflow.
            n += 1;
        }
        let digits: &[u8; 16] = if n < 0 {
            n = -n;
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let n = n.min(8) as usize;
        let mut buf = [0u8; 8];
        for i in (0..n).rev() {
            buf[i] = digits[(b & 15) as usize];
            b >>= 4;
        }
        ffi::lua_pushlstring(state, buf.as_ptr().cast(), n);
        1
    }
}

const FUNCTIONS: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"tobit", bit_tobit),
    (c"tohex", bit_tohex),
    (c"bnot", bit_bnot),
    (c"band", bit_band),
    (c"bor", bit_bor),
    (c"bxor", bit_bxor),
    (c"lshift", bit_lshift),
    (c"rshift", bit_rshift),
    (c"arshift", bit_arshift),
    (c"rol", bit_rol),
    (c"ror", bit_ror),
    (c"bswap", bit_bswap),
];

/// Pushes the `bit` table.
///
/// # Safety
///
/// `state` is a Lua state with room for two more values.
pub(super) unsafe fn push_library(state: *mut lua_State) {
    unsafe { super::raw::push_functions(state, FUNCTIONS) }
}

#[cfg(test)]
mod tests {
    use super::tobit;

    #[test]
    fn numbers_round_to_even_and_wrap_as_luabitop() {
        assert_eq!(tobit(0.0), 0);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(4294967296.0 + 7.0), 7);
        assert_eq!(tobit(2147483648.0), i32::MIN);
    }
}
