//! Everything one corekv core owns, and nothing that knows about threads or I/O.
//!
//! ```text
//!            ┌──────────────────────── one core ────────────────────────┐
//!  clients ─►│ connections ─► Shard::dispatch ─► Store (its slots)       │
//!            │                     │  ▲                                  │
//!            │            outboxes ▼  │ deliver (replies fill holes)     │
//!            └─────────────────── RequestBatch / ReplyBatch ─────────────┘
//!                                  ▲  │   (glommio channel mesh,
//!                                  │  ▼    in the server crate)
//!            ┌──────────────────────── another core ────────────────────┐
//!            │ on_message ─► execute ─► Store (its slots)                 │
//!            └────────────────────────────────────────────────────────────┘
//! ```
//!
//! - [`shard`]: [`Shard`], the router: where each request runs; [`state`]: [`State`],
//!   everything else one core owns;
//! - [`command`]: the command table and every command's code, by family, each family
//!   registering its commands' routes (see `docs/architecture.md`);
//! - [`session`]: one connection's rounds (parse, dispatch, assemble, limits), runtime-free;
//! - [`store`]: the keyspace of one shard (slab + hash index, lazy expiry);
//! - [`conn`]: the connection table; [`assembly`]: in-order reply assembly, holes and
//!   gathers;
//! - [`message`]: what shards send each other; [`links`]: the outboxes to each shard;
//! - [`coord`], [`pause`]: commands atomic across shards, and their hold on a shard;
//! - [`args`]: a request's arguments; [`slot`]: key → hash slot → shard, in one place;
//! - [`wheel`], [`timer`]: the shard's timing wheel (key deadlines, idle connections);
//! - [`glob`], [`float`]: Redis's pattern matching and INCRBYFLOAT arithmetic;
//! - [`pool`]: the shard's pools of connection buffers;
//! - [`shutdown`]: this shard's part of a shutdown;
//! - [`slowlog`]: each shard's slow log; [`ticks`]: the cheap clock commands are timed with.
//!
//! The server crate owns the runtime (glommio): it moves bytes between sockets and
//! [`Shard`], and messages between shards.
#![warn(missing_docs)]

pub mod aof;
pub mod args;
pub mod assembly;
pub mod blocking;
pub mod command;
pub mod config;
pub mod conn;
pub mod coord;
pub mod float;
pub mod glob;
pub mod links;
pub mod message;
pub mod notify;
pub mod pause;
pub mod persist;
pub mod pool;
pub mod pubsub;
pub mod rdb;
pub mod script;
pub mod session;
pub mod shard;
pub mod shutdown;
pub mod slot;
pub mod slowlog;
pub mod state;
pub mod stats;
pub mod store;
#[cfg(test)]
pub(crate) mod testkit;
pub mod ticks;
pub mod timer;
pub mod wheel;

pub use config::Config;
pub use conn::ConnId;
pub use shard::{Outcome, Shard};
pub use state::State;
