//! Server commands: INFO (`info`), CONFIG (`config`), COMMAND, SLOWLOG and LATENCY
//! (`introspection`), TIME and SHUTDOWN.

mod config;
mod info;
mod introspection;
mod persist;

use std::time::{SystemTime, UNIX_EPOCH};

use corekv_protocol::Reply;

use super::{is, Args, Flow, Local, Registrations, Route};
use crate::shutdown::FinalSave;

/// The server family.
pub(super) const COMMANDS: Registrations = &[
    ("info", Route::Fanout(&info::INFO)),
    ("time", Route::Local(time)),
    ("shutdown", Route::Local(shutdown)),
    ("save", Route::Local(persist::save)),
    ("bgsave", Route::Local(persist::bgsave)),
    ("lastsave", Route::Local(persist::lastsave)),
    ("bgrewriteaof", Route::Fanout(&persist::BGREWRITEAOF)),
    ("config|get", Route::Local(config::config_get_command)),
    ("config|set", Route::Fanout(&config::CONFIG_SET)),
    ("config|resetstat", Route::Fanout(&config::CONFIG_RESETSTAT)),
    ("config|help", Route::Local(config::config_help)),
    ("command", Route::Local(introspection::command)),
    ("command|count", Route::Local(introspection::command_count)),
    ("command|info", Route::Local(introspection::command_info)),
    ("command|docs", Route::Local(introspection::command_docs)),
    (
        "command|list",
        Route::Local(introspection::command_list_command),
    ),
    (
        "command|getkeys",
        Route::Local(introspection::command_getkeys_command),
    ),
    ("command|help", Route::Local(introspection::command_help)),
    ("slowlog|get", Route::Fanout(&introspection::SLOWLOG_GET)),
    ("slowlog|len", Route::Fanout(&introspection::SLOWLOG_LEN)),
    (
        "slowlog|reset",
        Route::Fanout(&introspection::SLOWLOG_RESET),
    ),
    ("slowlog|help", Route::Local(introspection::slowlog_help)),
    (
        "latency|histogram",
        Route::Fanout(&introspection::LATENCY_HISTOGRAM),
    ),
    ("latency|help", Route::Local(introspection::latency_help)),
];

/// TIME: seconds and microseconds.
fn time(l: &mut Local, _: Args) -> Flow {
    time_reply(&mut l.reply());
    Flow::Continue
}

/// TIME's reply: seconds and microseconds, as two bulk strings.
pub(crate) fn time_reply(out: &mut Reply) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    out.array(2);
    out.bulk(t.as_secs().to_string().as_bytes());
    out.bulk(t.subsec_micros().to_string().as_bytes());
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`, as Redis 7.0 parses it. The shutdown
/// is requested (the server drains every shard) and this connection closes after writing
/// the replies before it, with none for SHUTDOWN. Once every connection is gone a
/// snapshot is taken with SAVE, or when `save` has a schedule, unless NOSAVE: it holds
/// every write any client was answered for. NOW changes nothing (corekv has no replicas
/// to wait for); FORCE lets the process exit cleanly even if that snapshot fails.
fn shutdown(l: &mut Local, args: Args) -> Flow {
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    let mut force = false;
    let mut bad = false;
    for a in args.iter().skip(1) {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
            other = true;
        } else if is(a, "force") {
            other = true;
            force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            bad = true;
        }
    }
    let error = if bad || (abort && (save || nosave || other)) || (save && nosave) {
        Some(super::errors::SYNTAX)
    } else if abort {
        Some("No shutdown in progress.")
    } else {
        None
    };
    if let Some(text) = error {
        l.reply().err(text);
        return Flow::Continue;
    }
    let final_save = if save {
        FinalSave::Save
    } else if nosave {
        FinalSave::NoSave
    } else {
        FinalSave::Default
    };
    tracing::info!("SHUTDOWN requested by a client");
    l.shutdown.request_with(final_save, force);
    Flow::Quit
}

#[cfg(test)]
mod tests {
    use crate::testkit::{call, key_on, shards};

    #[test]
    fn info_adds_up_every_shard() {
        let mut s = shards(2);
        let me = s[1].state_mut().connect("a".into(), "b".into(), 3);
        for shard in 0..2 {
            call(&mut s, 1, me, &["SET", &key_on(shard, 2), "v"]);
        }
        let info = call(&mut s, 1, me, &["INFO", "keyspace", "shards"]);
        assert!(info.contains("db0:keys=2,expires=0"), "{info}");
        assert!(
            info.contains("shard0:") && info.contains("shard1:"),
            "{info}"
        );
        assert!(!info.contains("# Server"), "only the sections asked");
    }

    #[test]
    fn config_set_reaches_every_shard_or_none() {
        let mut s = shards(3);
        let me = s[0].state_mut().connect("a".into(), "b".into(), 3);
        assert_eq!(
            call(&mut s, 0, me, &["CONFIG", "SET", "slowlog-max-len", "5", "maxclients", "x"]),
            "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n"
        );
        assert!(s
            .iter()
            .all(|sh| sh.state().config().slowlog_max_len == 128));
        assert_eq!(
            call(&mut s, 0, me, &["CONFIG", "SET", "slowlog-max-len", "5"]),
            "+OK\r\n"
        );
        assert!(s.iter().all(|sh| sh.state().config().slowlog_max_len == 5));
        assert_eq!(
            call(&mut s, 0, me, &["CONFIG", "GET", "slowlog-max-len"]),
            "*2\r\n$15\r\nslowlog-max-len\r\n$1\r\n5\r\n"
        );
    }

    #[test]
    fn slowlog_merges_every_shards_log_newest_first() {
        let mut s = shards(2);
        let me = s[0].state_mut().connect("a".into(), "b".into(), 3);
        call(
            &mut s,
            0,
            me,
            &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
        );
        call(&mut s, 0, me, &["SET", &key_on(1, 2), "remote"]);
        call(&mut s, 0, me, &["SET", &key_on(0, 2), "local"]);
        // CONFIG SET and the local SET logged here, the remote SET on its owner.
        assert_eq!(call(&mut s, 0, me, &["SLOWLOG", "LEN"]), ":3\r\n");
        let got = call(&mut s, 0, me, &["SLOWLOG", "GET", "2"]);
        assert!(got.starts_with("*2\r\n"), "{got}");
        assert_eq!(call(&mut s, 0, me, &["SLOWLOG", "RESET"]), "+OK\r\n");
    }

    #[test]
    fn shutdown_asks_the_server_and_closes_the_connection() {
        let mut s = shards(1);
        let me = s[0].state_mut().connect("a".into(), "b".into(), 3);
        assert_eq!(
            call(&mut s, 0, me, &["SHUTDOWN", "SAVE", "NOSAVE"]),
            "-ERR syntax error\r\n"
        );
        let waker = std::task::Waker::noop();
        assert!(!s[0].state_mut().shutdown().poll_request(waker));
        assert!(matches!(
            crate::testkit::run(&mut s[0], me, &["SHUTDOWN", "NOSAVE"]),
            crate::shard::Outcome::Quit
        ));
        assert!(s[0].state_mut().shutdown().poll_request(waker));
        assert_eq!(
            s[0].state_mut().shutdown().final_save(),
            (crate::shutdown::FinalSave::NoSave, false)
        );
        let me = s[0].state_mut().connect("a".into(), "b".into(), 4);
        crate::testkit::run(&mut s[0], me, &["SHUTDOWN", "SAVE", "FORCE"]);
        assert_eq!(
            s[0].state_mut().shutdown().final_save(),
            (crate::shutdown::FinalSave::Save, true)
        );
    }
}
