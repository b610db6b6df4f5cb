//! Fuzzes the request parser with arbitrary bytes (mostly multibulk, as a `*` start is
//! the likeliest first byte in the corpus). See `common.rs` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    // The first 4 bytes choose the read boundaries; the rest is the client's input.
    let split = data.len().min(4);
    let (cuts, input) = data.split_at(split);
    common::check(input, cuts);
});
