//! The merges many commands share (sum, all-OK, concatenation), and helpers for reading
//! the parts. A part that is an error never reaches a merge: the reply assembler answers
//! with the first one (see [`crate::assembly`]).

use corekv_protocol::frame::frame_len;
use corekv_protocol::Reply;

use crate::assembly::{MergeCtx, MergeData};

/// The elements of a RESP array reply, each as its bytes.
pub fn array_elements(reply: &[u8]) -> Option<Vec<&[u8]>> {
    if reply.first() != Some(&b'*') {
        return None;
    }
    let cr = memchr::memchr(b'\r', reply)?;
    let n = corekv_protocol::number::parse_i64(&reply[1..cr])?;
    let mut pos = cr + 2;
    let mut items = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let len = frame_len(&reply[pos..]).ok()??;
        items.push(&reply[pos..pos + len]);
        pos += len;
    }
    Some(items)
}

/// The value of an integer reply.
pub fn int_of(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    corekv_protocol::number::parse_i64(body)
}

/// The sum of integer parts (DEL, EXISTS, DBSIZE, SLOWLOG LEN).
pub fn sum(_: &mut MergeCtx, _: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    out.int(parts.iter().filter_map(|p| int_of(p)).sum());
}

/// `+OK` once every part said so (MSET, FLUSHALL, CONFIG SET).
pub fn all_ok(_: &mut MergeCtx, _: &MergeData, _: &[&[u8]], out: &mut Reply) {
    out.ok();
}

/// The array parts, concatenated in shard order (KEYS).
pub fn concat(_: &mut MergeCtx, _: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let split: Vec<Vec<&[u8]>> = parts
        .iter()
        .map(|p| array_elements(p).unwrap_or_default())
        .collect();
    out.array(split.iter().map(Vec::len).sum());
    for e in split.iter().flatten() {
        out.raw(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use corekv_protocol::Proto;

    fn merged(f: crate::assembly::MergeFn, parts: &[&[u8]]) -> Vec<u8> {
        let config = Config::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut ctx = MergeCtx {
            config: &config,
            rng: &mut rng,
        };
        let mut out = Vec::new();
        f(
            &mut ctx,
            &MergeData::None,
            parts,
            &mut Reply::new(&mut out, Proto::Resp2),
        );
        out
    }

    #[test]
    fn sums_oks_and_concatenations() {
        assert_eq!(merged(sum, &[b":2\r\n", b":3\r\n"]), b":5\r\n");
        assert_eq!(merged(all_ok, &[b"+OK\r\n", b"+OK\r\n"]), b"+OK\r\n");
        assert_eq!(
            merged(
                concat,
                &[
                    b"*1\r\n$1\r\nx\r\n",
                    b"*0\r\n",
                    b"*2\r\n$1\r\ny\r\n$1\r\nz\r\n"
                ]
            ),
            b"*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"
        );
        assert_eq!(
            array_elements(b"*2\r\n:1\r\n$-1\r\n"),
            Some(vec![&b":1\r\n"[..], b"$-1\r\n"])
        );
    }
}
