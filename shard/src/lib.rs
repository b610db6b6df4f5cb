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
//!            │ execute_batch ─► Store (its slots)                         │
//!            └────────────────────────────────────────────────────────────┘
//! ```
//!
//! - [`store`]: the keyspace of one shard (slab + hash index, lazy expiry);
//! - [`command`]: the command table and every command's code, by family;
//! - [`shard`]: [`Shard`], the per-core state, and request dispatch;
//! - [`conn`]: the connection table and in-order reply assembly;
//! - [`message`]: what shards send each other; [`coord`]: atomic cross-shard commands;
//! - [`slot`]: key → hash slot → shard, in one place;
//! - [`wheel`], [`timer`]: the shard's timing wheel (key deadlines, idle connections);
//! - [`glob`], [`float`]: Redis's pattern matching and INCRBYFLOAT arithmetic;
//! - [`pool`]: the shard's pools of connection buffers;
//! - [`shutdown`]: this shard's part of a shutdown;
//! - [`slowlog`]: each shard's slow log; [`ticks`]: the cheap clock commands are timed with.
//!
//! The server crate owns the runtime (glommio): it moves bytes between sockets and
//! [`Shard`], and messages between shards.
#![warn(missing_docs)]

pub mod args;
pub mod assembly;
pub mod command;
pub mod config;
pub mod conn;
pub mod coord;
pub mod float;
pub mod glob;
pub mod links;
pub mod message;
pub mod pause;
pub mod pool;
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
