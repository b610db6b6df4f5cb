//! Fuzzes the reply decoder (`frame`), which the server uses to gather replies from other
//! shards and clients use to read replies: no panic on any input, `frame_len` agrees with
//! `parse`, and a parsed frame encodes to bytes that parse back to the same frame.
#![no_main]

use corekv_protocol::frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = frame::parse(data);
    let len = frame::frame_len(data);
    match (&parsed, &len) {
        (Ok(Some((_, n))), Ok(Some(m))) => assert_eq!(n, m, "frame_len disagrees with parse"),
        (Ok(None), Ok(None)) | (Err(_), _) | (_, Err(_)) => {}
        _ => panic!("parse {parsed:?} vs frame_len {len:?}"),
    }
    if let Ok(Some((f, n))) = parsed {
        assert!(n <= data.len());
        let mut out = Vec::new();
        f.encode(&mut out);
        let (again, m) = frame::parse(&out)
            .expect("re-encoded frame is valid")
            .expect("re-encoded frame is complete");
        assert_eq!(m, out.len());
        assert_eq!(again, f, "parse(encode(frame)) != frame");
    }
});
