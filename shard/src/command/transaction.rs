//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Their state belongs to the connection (the queued commands, the watched keys) and to
//! the keys' owners (who watches which key: `store/watch.rs`), so they are steps of the
//! session's state machine, not functions over a keyspace: the shard queues and watches
//! (`shard/transaction.rs`) and the session drives EXEC (`session/transaction.rs`),
//! pausing the shards the transaction touches in ascending order so that its commands run
//! with nothing in between and their writes appear together.

use super::{Registrations, Route, SessionCmd};

pub(super) const COMMANDS: Registrations = &[
    ("multi", Route::Session(SessionCmd::Multi)),
    ("exec", Route::Session(SessionCmd::Exec)),
    ("discard", Route::Session(SessionCmd::Discard)),
    ("watch", Route::Session(SessionCmd::Watch)),
    ("unwatch", Route::Session(SessionCmd::Unwatch)),
];
