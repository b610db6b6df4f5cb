//! Fuzzes the inline request form (`SET "a b" 'c'\r\n`, what telnet and redis-cli's pipe
//! mode send): the input never starts with `*`, so every request goes through the inline
//! splitter with its quotes, escapes and NUL handling. See `common.rs` for the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let split = data.len().min(4);
    let (cuts, input) = data.split_at(split);
    // Keep every line inline: a `*` at the start of a line becomes a space.
    let mut input = input.to_vec();
    let mut line_start = true;
    for b in &mut input {
        if line_start && *b == b'*' {
            *b = b' ';
        }
        line_start = *b == b'\n';
    }
    common::check(&input, cuts);
});
