//! The typed tree COMMAND INFO and COMMAND DOCS reply with, and its encoding: RESP3 sets
//! and maps, or their RESP2 array forms, exactly as Redis writes them.

use corekv_protocol::Reply;

/// One node of command metadata.
#[derive(Debug)]
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
