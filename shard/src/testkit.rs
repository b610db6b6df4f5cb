//! In-process shards for tests: several [`Shard`]s, a pump that moves their messages as
//! the server's mesh would, and helpers to run commands and read replies. Family files
//! test their commands across shards with it, Dragonfly-style, without a runtime.

use std::task::Waker;

use crate::args::OwnedArgs;
use crate::command::Commands;
use crate::config::Config;
use crate::conn::ConnId;
use crate::shard::{Outcome, Shard};
use crate::slot::SlotMap;

/// `n` shards of one process, clocks at 1 ms.
pub fn shards(n: usize) -> Vec<Shard> {
    let config = Config {
        shards: n,
        ..Config::default()
    };
    (0..n)
        .map(|i| {
            let mut sh = Shard::new(i, config.clone(), Commands::global());
            sh.state_mut().set_now(1);
            sh
        })
        .collect()
}

/// A key owned by `shard` of `n`.
pub fn key_on(shard: usize, n: usize) -> String {
    let map = SlotMap::new(n);
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| map.shard_of(k.as_bytes()) == shard)
        .expect("some key lands on every shard")
}

/// Moves every queued message between shards until none is left.
pub fn pump(shards: &mut [Shard]) {
    loop {
        let mut moved = false;
        for from in 0..shards.len() {
            for to in 0..shards.len() {
                if from == to {
                    continue;
                }
                let mut out = Vec::new();
                shards[from].take_outgoing(to, Waker::noop(), &mut out);
                for msg in out {
                    moved = true;
                    shards[to].on_message(msg);
                }
            }
        }
        if !moved {
            return;
        }
    }
}

/// Dispatches one request of `conn`.
pub fn run(sh: &mut Shard, conn: ConnId, args: &[&str]) -> Outcome {
    let owned = OwnedArgs::from_slices(args);
    sh.dispatch(conn, owned.args())
}

/// The connection's output so far; panics if replies are still missing.
pub fn output(sh: &mut Shard, conn: ConnId) -> String {
    assert!(
        sh.output_ready(conn, Waker::noop()),
        "replies still missing"
    );
    let mut out = Vec::new();
    sh.take_output(conn, &mut out);
    String::from_utf8(out).expect("UTF-8 replies")
}

/// Runs `args` for `conn` on shard `on` of `shards`, moves messages until every reply is
/// in, and returns what the connection got.
pub fn call(shards: &mut [Shard], on: usize, conn: ConnId, args: &[&str]) -> String {
    run(&mut shards[on], conn, args);
    pump(shards);
    output(&mut shards[on], conn)
}

/// One shard's keyspace and wheel, for testing keyed commands without a shard.
pub struct Keys {
    /// The store.
    pub store: crate::store::Store,
    /// The wheel its deadlines are in.
    pub timers: crate::timer::Timers,
    /// The clock commands see.
    pub now: u64,
}

impl Keys {
    /// Empty, with the clock at `now`.
    pub fn new(now: u64) -> Keys {
        Keys {
            store: crate::store::Store::new(),
            timers: crate::timer::Timers::new(now),
            now,
        }
    }

    /// The keyspace view keyed commands get.
    pub fn keyspace(&mut self) -> crate::store::Keyspace<'_> {
        crate::store::Keyspace::new(&mut self.store, &mut self.timers)
    }

    /// Runs keyed command `f` (named `name`) on `args`; returns its RESP2 reply.
    pub fn run(&mut self, f: crate::command::KeyFn, name: &'static str, args: &[&str]) -> String {
        let mut out = Vec::new();
        let owned = OwnedArgs::from_slices(args);
        let env = crate::command::Env {
            now: self.now,
            max_bulk_len: 512 * 1024 * 1024,
            coll: crate::config::CollLimits::default(),
            shared_ints: true,
            may_block: false,
            write: false,
        };
        let ks = crate::store::Keyspace::new(&mut self.store, &mut self.timers);
        crate::command::run_keyed(
            f,
            name,
            owned.args(),
            ks,
            env,
            &mut out,
            corekv_protocol::Proto::Resp2,
            None,
        );
        String::from_utf8_lossy(&out).into_owned()
    }
}
