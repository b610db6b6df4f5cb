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

/// Every command's COMMAND INFO entry and COMMAND DOCS map, by name.
pub struct Metadata {
    /// The version of Redis it was captured from.
    pub version: &'static str,
    info: HashMap<&'static str, &'static Meta>,
    docs: HashMap<&'static str, &'static Meta>,
}

impl Metadata {
    /// Parses the captured data (about 1 ms; the command table does it once).
    pub fn parse() -> Metadata {
        let (frame, used) = match frame::parse(DATA) {
            Ok(Some(parsed)) => parsed,
            other => panic!("commands.resp does not parse: {other:?}"),
        };
        assert_eq!(used, DATA.len(), "commands.resp holds one reply");
        let root: &'static Meta = Box::leak(Box::new(from_frame(frame)));
        let info = root
            .at(1)
            .items()
            .iter()
            .map(|entry| (entry.at(0).str(), entry))
            .collect();
        let docs = root
            .at(2)
            .items()
            .chunks(2)
            .map(|kv| (kv[0].str(), &kv[1]))
            .collect();
        Metadata {
            version: root.at(0).str(),
            info,
            docs,
        }
    }

    /// COMMAND INFO's entry for top-level command `name`.
    pub fn info(&self, name: &str) -> Option<&'static Meta> {
        self.info.get(name).copied()
    }

    /// COMMAND DOCS's map for top-level command `name`.
    pub fn docs(&self, name: &str) -> Option<&'static Meta> {
        self.docs.get(name).copied()
    }

    /// Names of every command Redis has, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.info.keys().copied().collect();
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
