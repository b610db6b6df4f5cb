//! Fuzzes the snapshot reader (`persist::Parser`), which reads `dump.rdb` files written
//! by corekv or by redis-server at startup: no panic and no unbounded allocation on any
//! input, given whole or cut into windows the way the loader feeds it; and LZF, which
//! those files' strings use, round-trips.
#![no_main]

use corekv_shard::persist::{Item, Next, Parser};
use corekv_shard::rdb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(packed) = rdb::lzf_compress(data, data.len() + data.len() / 16 + 64) {
        assert_eq!(rdb::lzf_decompress(&packed, data.len()).as_deref(), Some(data));
    }
    let mut file = b"REDIS0010".to_vec();
    file.extend_from_slice(data);
    let Ok(mut p) = Parser::start(&file) else {
        return;
    };
    let mut at = 9;
    while at < file.len() {
        match p.next(&file[at..], &|k: &[u8]| k.len() % 2 == 0) {
            Ok(Next::Item(Item::End, n)) => {
                at += n;
                let _ = p.check(&file[at..(at + 8).min(file.len())], true);
                return;
            }
            Ok(Next::Item(_, n)) => {
                assert!(n > 0 && at + n <= file.len());
                at += n;
            }
            Ok(Next::More) | Err(_) => return,
        }
    }
});
