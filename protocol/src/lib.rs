//! corekv's wire formats, with no I/O and no async: everything here is a pure function of
//! bytes, so it can be unit-tested, property-tested and fuzzed on its own.
//!
//! - [`request`]: the incremental parser for client requests (RESP multibulk and inline),
//!   an explicit state machine over the connection's read buffer, zero-copy.
//! - [`reply`]: encoding replies in RESP2 or RESP3.
//! - [`frame`]: decoding replies, for clients, tests and gathering multi-shard replies.
//! - [`number`]: integer parsing with Redis's exact rules.
//!
//! ```
//! use bytes::BytesMut;
//! use corekv_protocol::request::{Limits, RequestParser};
//!
//! let mut parser = RequestParser::new(Limits::default());
//! let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"[..]);
//! let get = parser.parse(&mut buf).unwrap().unwrap();
//! let args: Vec<&[u8]> = parser.spans()[get].iter().map(|s| s.of(&buf)).collect();
//! assert_eq!(args, [&b"GET"[..], b"k"]);
//! assert!(parser.parse(&mut buf).unwrap().is_some()); // PING, inline
//! parser.compact(&mut buf);
//! assert!(buf.is_empty());
//! ```
#![warn(missing_docs)]

pub mod frame;
pub mod number;
pub mod reply;
pub mod request;

pub use reply::{Proto, Reply};
pub use request::{Limits, ProtocolError, RequestParser, Span};
