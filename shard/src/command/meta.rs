//! Redis's metadata of every command, and the typed tree COMMAND INFO and COMMAND DOCS
//! reply with: RESP3 sets and maps, or their RESP2 array forms, exactly as Redis writes
//! them.
//!
//! The data is `commands.resp`, captured from redis-server by `shard/tools/gen_commands.py`
//! (COMMAND INFO and COMMAND DOCS of all 240 commands of Redis 7.0, CLIENT SETINFO from
//! 7.2), parsed once per process into a tree that lives as long as it. The command table
//! keeps what the families register.

use std::collections::HashMap;

use corekv_protocol::frame::{self, Frame};
use corekv_protocol::Reply;

/// The Redis version the metadata was captured from (HELLO and INFO report it).
pub const REDIS_VERSION: &str = "7.0.15";

/// The captured metadata: RESP3 `[version, [COMMAND INFO entries], {name: COMMAND DOCS}]`.
static DATA: &[u8] = include_bytes!("commands.resp");

/// One node of command metadata.
#[derive(Clone, Debug)]
pub enum Meta {
    /// A bulk string.
    Bulk(&'static str),
    /// A simple string (command flags and ACL categories are sent this way).
    Simple(&'static str),
    /// An integer.
    Int(i64),
    /// An array.
    Array(&'static [Meta]),
    /// A set (an array in RESP2).
    Set(&'static [Meta]),
    /// A map, as key, value, key, value… (a flat array in RESP2).
    Map(&'static [Meta]),
}

impl Meta {
    /// Writes this node in the reply's protocol.
    pub fn encode(&self, r: &mut Reply) {
        match self {
            Meta::Bulk(s) => r.bulk(s.as_bytes()),
            Meta::Simple(s) => r.simple(s.as_bytes()),
            Meta::Int(n) => r.int(*n),
            Meta::Array(items) => {
                r.array(items.len());
                items.iter().for_each(|m| m.encode(r));
            }
            Meta::Set(items) => {
                r.set(items.len());
                items.iter().for_each(|m| m.encode(r));
            }
            Meta::Map(items) => {
                r.map(items.len() / 2);
                items.iter().for_each(|m| m.encode(r));
            }
        }
    }

    /// Element `i` of an array, set or map; panics otherwise (the table is generated).
    pub fn at(&self, i: usize) -> &Meta {
        match self {
            Meta::Array(items) | Meta::Set(items) | Meta::Map(items) => &items[i],
            other => panic!("not an aggregate: {other:?}"),
        }
    }

    /// The children of an aggregate; empty for scalars.
    pub fn items(&self) -> &'static [Meta] {
        match self {
            Meta::Array(items) | Meta::Set(items) | Meta::Map(items) => items,
            _ => &[],
        }
    }

    /// The value under `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Meta> {
        self.items()
            .chunks(2)
            .find(|kv| matches!(kv[0], Meta::Bulk(k) | Meta::Simple(k) if k == key))
            .map(|kv| &kv[1])
    }

    /// The integer in an `Int` node.
    pub fn int(&self) -> i64 {
        match self {
            Meta::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The text of a string node.
    pub fn str(&self) -> &'static str {
        match self {
            Meta::Bulk(s) | Meta::Simple(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
}

/// Moves nodes into storage that lives as long as the process.
pub fn leak(items: Vec<Meta>) -> &'static [Meta] {
    Box::leak(items.into_boxed_slice())
}

fn leak_str(bytes: Vec<u8>) -> &'static str {
    Box::leak(
        String::from_utf8_lossy(&bytes)
            .into_owned()
            .into_boxed_str(),
    )
}

/// A decoded RESP3 reply as metadata.
fn from_frame(f: Frame) -> Meta {
    match f {
        Frame::Simple(b) => Meta::Simple(leak_str(b)),
        Frame::Bulk(b) => Meta::Bulk(leak_str(b)),
        Frame::Integer(n) => Meta::Int(n),
        Frame::Array(items) => Meta::Array(leak(items.into_iter().map(from_frame).collect())),
        Frame::Set(items) => Meta::Set(leak(items.into_iter().map(from_frame).collect())),
        Frame::Map(pairs) => Meta::Map(leak(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [from_frame(k), from_frame(v)])
                .collect(),
        )),
        other => panic!("unexpected node in the command metadata: {other:?}"),
    }
}

/// Every command's COMMAND INFO entry and COMMAND DOCS map, by name, as spans of the
/// captured data: a command's metadata is decoded into a [`Meta`] tree (for the life of
/// the process) only when the table asks for it, so the commands corekv lacks cost
/// nothing.
pub struct Metadata {
    /// The version of Redis it was captured from.
    pub version: String,
    info: HashMap<String, &'static [u8]>,
    docs: HashMap<String, &'static [u8]>,
}

/// The count of an aggregate's header (`*n`, `%n`) at the start of `buf`, and the
/// header's length.
fn aggregate(buf: &[u8], kind: u8) -> (usize, usize) {
    let end = memchr::memchr(b'\n', buf).expect("a header line");
    assert_eq!(buf[0], kind, "commands.resp: unexpected frame");
    let n = corekv_protocol::number::parse_i64(&buf[1..end - 1]).expect("a count");
    (n as usize, end + 1)
}

/// The next frame of `buf` from `*pos`, moving past it.
fn next_frame(buf: &'static [u8], pos: &mut usize) -> &'static [u8] {
    let len = frame::frame_len(&buf[*pos..])
        .ok()
        .flatten()
        .expect("commands.resp holds whole frames");
    let f = &buf[*pos..*pos + len];
    *pos += len;
    f
}

/// The text of a bulk string frame.
fn bulk_text(f: &[u8]) -> String {
    match frame::parse(f) {
        Ok(Some((frame, _))) => {
            String::from_utf8_lossy(frame.as_bytes().unwrap_or_default()).into_owned()
        }
        _ => String::new(),
    }
}

/// Decodes one frame of the captured data into metadata for the life of the process.
fn decode(f: &[u8]) -> &'static Meta {
    match frame::parse(f) {
        Ok(Some((frame, _))) => Box::leak(Box::new(from_frame(frame))),
        other => panic!("commands.resp: bad frame {other:?}"),
    }
}

impl Metadata {
    /// Indexes the captured data (no decoding; the command table does it once).
    pub fn parse() -> Metadata {
        let (n, mut pos) = aggregate(DATA, b'*');
        assert_eq!(n, 3, "commands.resp is [version, info, docs]");
        let version = bulk_text(next_frame(DATA, &mut pos));
        let (infos, head) = aggregate(&DATA[pos..], b'*');
        pos += head;
        let mut info = HashMap::new();
        for _ in 0..infos {
            let entry = next_frame(DATA, &mut pos);
            // The entry's first element is the name.
            let (_, head) = aggregate(entry, b'*');
            let mut at = head;
            let name = bulk_text(next_frame(entry, &mut at));
            info.insert(name, entry);
        }
        let (docs_n, head) = aggregate(&DATA[pos..], b'%');
        pos += head;
        let mut docs = HashMap::new();
        for _ in 0..docs_n {
            let name = bulk_text(next_frame(DATA, &mut pos));
            docs.insert(name, next_frame(DATA, &mut pos));
        }
        assert_eq!(pos, DATA.len(), "commands.resp holds one reply");
        Metadata {
            version,
            info,
            docs,
        }
    }

    /// COMMAND INFO's entry for top-level command `name`.
    pub fn info(&self, name: &str) -> Option<&'static Meta> {
        self.info.get(name).map(|f| decode(f))
    }

    /// COMMAND DOCS's map for top-level command `name`.
    pub fn docs(&self, name: &str) -> Option<&'static Meta> {
        self.docs.get(name).map(|f| decode(f))
    }

    /// Names of every command Redis has, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.info.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_is_redis_7_0_with_every_command() {
        let m = Metadata::parse();
        assert_eq!(m.version, REDIS_VERSION);
        assert_eq!(m.names().len(), 240);
        let hset = m.info("hset").unwrap();
        assert_eq!((hset.at(0).str(), hset.at(1).int()), ("hset", -4));
        assert_eq!(
            m.docs("zadd").unwrap().get("group").unwrap().str(),
            "sorted-set"
        );
        // CLIENT SETINFO is overlaid from Redis 7.2.
        let client = m.info("client").unwrap();
        assert!(client
            .at(9)
            .items()
            .iter()
            .any(|s| s.at(0).str() == "client|setinfo"));
    }
}
