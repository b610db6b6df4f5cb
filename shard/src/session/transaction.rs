//! The driver of an EXEC over several shards (one that needs only one shard's keys runs
//! without it: see `shard/transaction.rs`): waits for the connection's earlier replies,
//! pauses the shards the transaction touches in ascending order (none when the server has
//! one shard), takes the watched keys' verdict from their owners, dispatches the queued
//! commands in exec mode, waits for all their replies, and resumes the shards. While
//! paused, those shards run nothing else, so no other client sees the transaction half
//! done. Plain `std` futures over the shard.

use std::cell::RefCell;

use super::coordinate::{
    private_reply, release, run_steps, take_pauses, wait_ready, wait_unpaused,
};
use crate::conn::ConnId;
use crate::message::{Control, StepOp};
use crate::shard::{ExecPlan, Outcome, Shard};

/// Runs the EXEC `plan` of `conn`; the reply joins its output.
pub async fn exec(shard: &RefCell<Shard>, conn: ConnId, plan: ExecPlan) {
    // Earlier replies first, and with them the WATCH registrations on other shards.
    wait_ready(shard, conn).await;
    let me = shard.borrow().id();
    let tx = &plan.tx;
    let alone = plan.shards.iter().all(|&s| s == me);
    let mut paused = Vec::new();
    // The last shard's pause is asked for with the commands right behind it (that shard
    // runs them once it grants the pause): a round trip less while the others are held.
    // Not with watched keys, whose verdict must come before any command runs.
    let mut last_ack = None;
    let token = if alone {
        // Only this shard: nothing runs between here and the end but this task, once no
        // coordinated command of another connection holds the shard.
        wait_unpaused(shard).await;
        None
    } else {
        let token = shard.borrow_mut().new_token();
        let mut first = &plan.shards[..];
        let last = match plan.shards.split_last() {
            Some((&last, rest)) if last != me && plan.watched.is_empty() => {
                first = rest;
                Some(last)
            }
            _ => None,
        };
        if !take_pauses(shard, conn, first, me, token, &mut paused).await {
            release(&mut shard.borrow_mut(), conn, token, &paused);
            return;
        }
        if let Some(last) = last {
            match shard
                .borrow_mut()
                .send_control(conn, last, Control::Pause(token))
            {
                Some(hole) => {
                    paused.push(last);
                    last_ack = Some(hole);
                }
                None => {
                    release(&mut shard.borrow_mut(), conn, token, &paused);
                    return;
                }
            }
        }
        Some(token)
    };

    // The watched keys' verdict, from their owners.
    let mut dirty = false;
    let mut pending = Vec::new();
    for (s, keys) in &plan.watched {
        let mut sh = shard.borrow_mut();
        if *s == me {
            sh.refresh_now();
            dirty |= sh.exec_unwatch_here(conn, keys);
        } else if let Some(token) = token {
            let step = Control::Step(token, StepOp::Unwatch(keys.clone()));
            if let Some(hole) = sh.send_control(conn, *s, step) {
                pending.push(hole);
            }
        }
    }
    for hole in pending {
        dirty |= private_reply(shard, conn, hole).await.as_slice() == b":1\r\n";
    }

    if dirty {
        shard.borrow_mut().exec_refused(conn);
    } else {
        shard.borrow_mut().exec_begin(conn, token, tx.cmds.len());
        for i in 0..tx.cmds.len() {
            loop {
                let outcome = {
                    let mut sh = shard.borrow_mut();
                    sh.refresh_now();
                    sh.dispatch(conn, tx.cmd(i))
                };
                match outcome {
                    Outcome::Blocked => wait_unpaused(shard).await,
                    Outcome::Coordinate(mut cplan) => {
                        wait_ready(shard, conn).await;
                        let reply = match token {
                            Some(token) => run_steps(shard, conn, &mut cplan, me, token).await,
                            None => b"-ERR internal error: a cross-shard command in a \
                                      one-shard transaction\r\n"
                                .to_vec(),
                        };
                        shard.borrow_mut().push_reply(conn, &reply);
                        break;
                    }
                    _ => break,
                }
            }
        }
        shard.borrow_mut().exec_end();
    }
    // Every reply is in before the shards are let go: the writes appear together.
    if let Some(hole) = last_ack {
        private_reply(shard, conn, hole).await;
    }
    wait_ready(shard, conn).await;
    if let Some(token) = token {
        release(&mut shard.borrow_mut(), conn, token, &paused);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::message::Msg;
    use crate::testkit::{call, key_on, output, pump as pump_shards, run, shards};

    /// Moves every queued message between the shards until none is left.
    fn pump(cells: &[RefCell<Shard>]) {
        let mut moved = true;
        while moved {
            moved = false;
            for from in 0..cells.len() {
                for to in 0..cells.len() {
                    if from != to {
                        let mut out = Vec::new();
                        cells[from]
                            .borrow_mut()
                            .take_outgoing(to, Waker::noop(), &mut out);
                        for msg in out {
                            moved = true;
                            cells[to].borrow_mut().on_message(msg);
                        }
                    }
                }
            }
        }
    }

    /// Polls `fut` (which borrows the shards only while polled), moving messages between
    /// the shards whenever it waits, and after it finished; `None` if it never does.
    fn drive<F: Future>(cells: &[RefCell<Shard>], fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        for _ in 0..100 {
            let polled = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            pump(cells);
            if let Poll::Ready(v) = polled {
                return Some(v);
            }
        }
        None
    }

    fn queue(cells: &[RefCell<Shard>], conn: ConnId, cmds: &[&[&str]]) -> ExecPlan {
        let mut sh = cells[0].borrow_mut();
        for cmd in cmds {
            assert!(matches!(run(&mut sh, conn, cmd), Outcome::Done));
        }
        match run(&mut sh, conn, &["EXEC"]) {
            Outcome::Exec(plan) => *plan,
            _ => panic!("EXEC did not start a transaction"),
        }
    }

    #[test]
    fn steps_sent_behind_a_queued_pause_wait_for_it() {
        let cells: Vec<RefCell<Shard>> = shards(2).into_iter().map(RefCell::new).collect();
        let conn = cells[0]
            .borrow_mut()
            .state_mut()
            .connect("a".into(), "b".into(), 3);
        // Another coordinator holds shard 1.
        let other = cells[1].borrow_mut().new_token();
        assert!(cells[1].borrow_mut().pause_local(other, Waker::noop()));
        let (k0, k1) = (key_on(0, 2), key_on(1, 2));
        let plan = queue(
            &cells,
            conn,
            &[
                &["MULTI"],
                &["SET", &k0, "x"],
                &["SET", &k1, "x"],
                &["GET", &k1],
            ],
        );
        let mut fut = pin!(exec(&cells[0], conn, plan));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..5 {
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            pump(&cells);
        }
        // Nothing of the transaction ran on shard 1 while the other held it.
        assert_eq!(cells[1].borrow().state().store.len(), 0);
        cells[1].borrow_mut().resume(other);
        assert!(drive(&cells, fut).is_some(), "EXEC never finished");
        assert_eq!(
            output(&mut cells[0].borrow_mut(), conn),
            "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n+OK\r\n$1\r\nx\r\n"
        );
    }

    #[test]
    fn a_one_shard_exec_runs_inside_its_request_without_any_message() {
        let mut s = shards(2);
        let conn = s[0].state_mut().connect("a".into(), "b".into(), 3);
        let k = key_on(0, 2);
        for cmd in [
            &["WATCH", &k][..],
            &["MULTI"],
            &["SET", &k, "1"],
            &["INCR", &k],
            &["PING"],
        ] {
            run(&mut s[0], conn, cmd);
        }
        assert!(matches!(run(&mut s[0], conn, &["EXEC"]), Outcome::Done));
        let mut out = Vec::new();
        s[0].take_outgoing(1, Waker::noop(), &mut out);
        assert!(out.is_empty(), "sent {} message(s)", out.len());
        assert_eq!(
            output(&mut s[0], conn),
            "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:2\r\n+PONG\r\n"
        );
    }

    #[test]
    fn a_transaction_on_another_shards_keys_goes_there_whole() {
        let mut s = shards(2);
        let conn = s[0].state_mut().connect("a".into(), "b".into(), 3);
        let other = s[1].state_mut().connect("c".into(), "d".into(), 4);
        let k1 = key_on(1, 2);
        run(&mut s[0], conn, &["WATCH", &k1]);
        pump_shards(&mut s);
        for cmd in [&["MULTI"][..], &["SET", &k1, "x"], &["GET", &k1]] {
            run(&mut s[0], conn, cmd);
        }
        assert!(matches!(run(&mut s[0], conn, &["EXEC"]), Outcome::Done));
        let mut out = Vec::new();
        s[0].take_outgoing(1, Waker::noop(), &mut out);
        assert!(
            matches!(out.as_slice(), [Msg::Requests(b)] if b.len() == 1),
            "one request, no pause"
        );
        for msg in out {
            s[1].on_message(msg);
        }
        pump_shards(&mut s);
        assert_eq!(
            output(&mut s[0], conn),
            "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\nx\r\n"
        );
        // A write between WATCH and EXEC, by a client of the owner: nothing runs.
        run(&mut s[0], conn, &["WATCH", &k1]);
        pump_shards(&mut s);
        run(&mut s[1], other, &["SET", &k1, "theirs"]);
        for cmd in [&["MULTI"][..], &["SET", &k1, "mine"]] {
            run(&mut s[0], conn, cmd);
        }
        run(&mut s[0], conn, &["EXEC"]);
        pump_shards(&mut s);
        assert_eq!(output(&mut s[0], conn), "+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n");
        assert_eq!(s[1].state().store.watches.keys(), 0);
        assert_eq!(call(&mut s, 0, conn, &["GET", &k1]), "$6\r\ntheirs\r\n");
    }

    #[test]
    fn a_cross_shard_exec_holds_other_requests_until_its_writes_are_all_in() {
        let cells: Vec<RefCell<Shard>> = shards(2).into_iter().map(RefCell::new).collect();
        let conn = cells[0]
            .borrow_mut()
            .state_mut()
            .connect("a".into(), "b".into(), 3);
        let other = cells[1]
            .borrow_mut()
            .state_mut()
            .connect("c".into(), "d".into(), 4);
        let (k0, k1) = (key_on(0, 2), key_on(1, 2));
        let tx = queue(
            &cells,
            conn,
            &[
                &["MULTI"],
                &["SET", &k0, "x"],
                &["SET", &k1, "x"],
                &["MGET", &k0, &k1],
            ],
        );
        let mut fut = pin!(exec(&cells[0], conn, tx));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        // Shard 1 now gets the pause; a request of its own client waits behind it.
        let mut out = Vec::new();
        cells[0]
            .borrow_mut()
            .take_outgoing(1, Waker::noop(), &mut out);
        for msg in out {
            cells[1].borrow_mut().on_message(msg);
        }
        assert!(matches!(
            run(&mut cells[1].borrow_mut(), other, &["GET", &k1]),
            Outcome::Blocked
        ));
        assert!(drive(&cells, fut).is_some(), "EXEC never finished");
        assert_eq!(
            output(&mut cells[0].borrow_mut(), conn),
            "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n+OK\r\n*2\r\n$1\r\nx\r\n$1\r\nx\r\n"
        );
        assert!(matches!(
            run(&mut cells[1].borrow_mut(), other, &["GET", &k1]),
            Outcome::Done
        ));
        assert_eq!(output(&mut cells[1].borrow_mut(), other), "$1\r\nx\r\n");
    }
}
