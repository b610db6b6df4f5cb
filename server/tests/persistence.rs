//! Snapshots over the wire: SAVE, BGSAVE, the `save` schedule and shutdowns write an RDB
//! file that the next start loads (after a real `kill -9` too), that redis-server loads,
//! and corekv loads what redis-server writes, every type and encoding; a snapshot taken
//! under writes holds one instant across shards; a damaged file stops the start.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{eventually, temp_dir, Server};
use redis::Connection;

/// Every key, sorted, with its type, whether it has a TTL, and its contents in an order
/// that does not depend on the server (sets and hashes sorted).
fn contents(c: &mut Connection) -> Vec<String> {
    let mut keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let ty: String = redis::cmd("TYPE").arg(&k).query(c).unwrap();
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            let value = match ty.as_str() {
                "string" => {
                    let v: Vec<u8> = redis::cmd("GET").arg(&k).query(c).unwrap();
                    format!("{:?}", String::from_utf8_lossy(&v))
                }
                "list" => {
                    let v: Vec<Vec<u8>> = redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query(c)
                        .unwrap();
                    format!("{v:?}")
                }
                "set" => {
                    let mut v: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&k).query(c).unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "hash" => {
                    let mut v: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&k).query(c).unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "zset" => {
                    let v: Vec<(Vec<u8>, String)> = redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query(c)
                        .unwrap();
                    format!("{v:?}")
                }
                other => panic!("unexpected type {other}"),
            };
            format!(
                "{} {ty} ttl={} {value}",
                String::from_utf8_lossy(&k),
                ttl > 0
            )
        })
        .collect()
}

/// Writes keys of every type, small and large (every encoding), with and without TTLs,
/// and a function library.
fn populate(c: &mut Connection) {
    let q = |c: &mut Connection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query::<redis::Value>(c).unwrap();
    };
    q(c, &["SET", "str", "hello"]);
    q(c, &["SET", "int", "-12345"]);
    q(c, &["SET", "bigint", "9223372036854775807"]);
    q(c, &["SET", "long", &"abc".repeat(500)]);
    q(c, &["SET", "bin", "a\u{0}b\r\nc"]);
    q(c, &["SET", "ttl", "v", "PX", "3600000"]);
    q(c, &["RPUSH", "list", "a", "1", "b", "-7"]);
    q(c, &["SADD", "intset", "1", "-5", "300000", "70000000000"]);
    q(c, &["SADD", "set", "x", "y", "z"]);
    q(c, &["HSET", "hash", "f", "v", "n", "12"]);
    q(
        c,
        &[
            "ZADD", "zset", "1", "a", "2.5", "b", "-inf", "c", "1e300", "d",
        ],
    );
    q(c, &["EXPIRE", "zset", "7200"]);
    for i in 0..700 {
        let (m, f) = (format!("m{i}"), format!("f{i}"));
        q(c, &["RPUSH", "biglist", &m]);
        q(c, &["SADD", "bigset", &m]);
        q(c, &["SADD", "bigintset", &i.to_string()]);
        q(c, &["HSET", "bighash", &f, &m]);
        q(c, &["ZADD", "bigzset", &format!("{}.25", i), &m]);
        q(c, &["SET", &format!("key:{i}"), &m]);
    }
    q(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('hi', function() return 'hi' end)",
        ],
    );
}

fn restart_same_dir(shards: usize, dir: &Path) -> Server {
    Server::corekv(shards, &["--dir", &dir.display().to_string()])
}

#[test]
fn snapshots_survive_kill_9_on_one_and_four_shards() {
    for shards in [1, 4] {
        let dir = temp_dir("persist");
        let before = {
            let s = restart_same_dir(shards, &dir);
            let mut c = s.redis_conn();
            populate(&mut c);
            let ok: String = redis::cmd("SAVE").query(&mut c).unwrap();
            assert_eq!(ok, "OK");
            let before = contents(&mut c);
            // Written after the snapshot: lost with kill -9, as in Redis.
            redis::cmd("SET")
                .arg("late")
                .arg("1")
                .query::<()>(&mut c)
                .unwrap();
            before
            // Dropping the server kills it with SIGKILL.
        };
        assert!(dir.join("dump.rdb").exists());
        let s = restart_same_dir(shards, &dir);
        let mut c = s.redis_conn();
        assert_eq!(contents(&mut c), before, "{shards} shards");
        let hi: String = redis::cmd("FCALL").arg("hi").arg(0).query(&mut c).unwrap();
        assert_eq!(hi, "hi");
        let mut raw = s.client();
        assert_eq!(
            raw.info_u64("persistence", "rdb_last_load_keys_loaded"),
            before.len() as u64
        );
        assert_eq!(
            raw.call(&["OBJECT", "ENCODING", "intset"]),
            b"$6\r\nintset\r\n"
        );
        assert_eq!(
            raw.call(&["OBJECT", "ENCODING", "bighash"]),
            b"$9\r\nhashtable\r\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn redis_server_loads_corekv_snapshots_and_corekv_loads_redis_server_files() {
    // corekv -> redis-server (and redis-check-rdb).
    let dir = temp_dir("to-redis");
    let ours = {
        let s = restart_same_dir(4, &dir);
        let mut c = s.redis_conn();
        populate(&mut c);
        let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
        contents(&mut c)
    };
    let file = dir.join("dump.rdb");
    let check = std::process::Command::new("redis-check-rdb")
        .arg(&file)
        .output()
        .expect("redis-check-rdb must be on PATH (apt-get install redis-tools)");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("RDB looks OK"), "{report}");
    let d = dir.display().to_string();
    let r = Server::redis_with(&["--dir", &d, "--dbfilename", "dump.rdb"]);
    let mut rc = r.redis_conn();
    assert_eq!(contents(&mut rc), ours);
    let hi: String = redis::cmd("FCALL").arg("hi").arg(0).query(&mut rc).unwrap();
    assert_eq!(hi, "hi");

    // redis-server -> corekv: Redis's own encodings (listpacks, intsets, quicklists,
    // skiplists, hash tables; LZF-compressed strings).
    let dir2 = temp_dir("from-redis");
    let d2 = dir2.display().to_string();
    let theirs = {
        let r = Server::redis_with(&["--dir", &d2, "--dbfilename", "dump.rdb"]);
        let mut rc = r.redis_conn();
        populate(&mut rc);
        let _: String = redis::cmd("SAVE").query(&mut rc).unwrap();
        contents(&mut rc)
    };
    for shards in [1, 4] {
        let s = restart_same_dir(shards, &dir2);
        let mut c = s.redis_conn();
        assert_eq!(contents(&mut c), theirs, "{shards} shards");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn a_background_snapshot_holds_one_instant_across_shards() {
    let dir = temp_dir("instant");
    let s = restart_same_dir(4, &dir);
    // Counters on different shards, incremented in a fixed order: at any one instant
    // c0 >= c1 >= c2 >= c3 >= c0 - 1.
    let keys = ["c:{a}", "c:{b}", "c:{c}", "c:{d}"];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut c = s.redis_conn();
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for k in keys {
                    redis::cmd("INCR").arg(k).query::<i64>(&mut c).unwrap();
                }
                rounds += 1;
            }
            rounds
        })
    };
    let mut c = s.redis_conn();
    // Plenty of other keys so a snapshot takes a while, and is taken under writes.
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.cmd("SET")
            .arg(format!("filler:{i}"))
            .arg("x".repeat(100))
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    for _ in 0..5 {
        let reply: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
        assert_eq!(reply, "Background saving started");
        eventually(Duration::from_secs(30), || {
            let mut raw = s.client();
            match raw.info_u64("persistence", "rdb_bgsave_in_progress") {
                0 => Ok(()),
                _ => Err("still saving".to_string()),
            }
        });
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 0);
    let mut raw = s.client();
    assert_eq!(
        raw.info_field("persistence", "rdb_last_bgsave_status")
            .as_deref(),
        Some("ok")
    );
    drop(raw);
    drop(c);
    drop(s); // kill -9
    let s = restart_same_dir(4, &dir);
    let mut c = s.redis_conn();
    let v: Vec<i64> = keys
        .iter()
        .map(|k| {
            redis::cmd("GET")
                .arg(*k)
                .query::<Option<i64>>(&mut c)
                .unwrap()
                .unwrap_or(0)
        })
        .collect();
    assert!(
        v[0] >= v[1] && v[1] >= v[2] && v[2] >= v[3] && v[3] >= v[0] - 1,
        "not one instant: {v:?}"
    );
    let n: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 20_004);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdowns_save_as_redis_does_and_the_schedule_saves_on_its_own() {
    let dir = temp_dir("shutdown");
    let d = dir.display().to_string();
    let file = dir.join("dump.rdb");
    // SIGTERM with the default schedule saves, after the last client is gone.
    let mut s = Server::corekv(2, &["--dir", &d]);
    let mut c = s.client();
    c.call(&["SET", "a", "1"]);
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    assert!(s.wait_exit(Duration::from_secs(20)).unwrap().success());
    assert!(file.exists());
    // SHUTDOWN NOSAVE does not.
    let mut s = Server::corekv(2, &["--dir", &d]);
    let mut c = s.client();
    assert_eq!(c.call(&["GET", "a"]), b"$1\r\n1\r\n");
    c.call(&["SET", "a", "2"]);
    c.send(&["SHUTDOWN", "NOSAVE"]);
    s.wait_exit(Duration::from_secs(20)).unwrap();
    // SHUTDOWN SAVE does, with no schedule.
    let mut s = Server::corekv(2, &["--dir", &d, "--save", ""]);
    let mut c = s.client();
    assert_eq!(c.call(&["GET", "a"]), b"$1\r\n1\r\n");
    c.call(&["SET", "a", "3"]);
    c.send(&["SHUTDOWN", "SAVE"]);
    s.wait_exit(Duration::from_secs(20)).unwrap();
    // The schedule: one change, one second.
    let s = Server::corekv(2, &["--dir", &d, "--save", "1 1"]);
    let mut c = s.client();
    assert_eq!(c.call(&["GET", "a"]), b"$1\r\n3\r\n");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    c.call(&["SET", "a", "4"]);
    eventually(Duration::from_secs(10), || {
        let now = std::fs::metadata(&file).unwrap().modified().unwrap();
        if now > before && c.info_u64("persistence", "rdb_changes_since_last_save") == 0 {
            Ok(())
        } else {
            Err("no scheduled snapshot yet".to_string())
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn commands_and_settings_answer_as_redis_does() {
    let k = Server::corekv(2, &[]);
    let r = Server::redis();
    for server in [&k, &r] {
        let mut c = server.client();
        assert_eq!(c.call(&["BGSAVE", "NOW"]), b"-ERR syntax error\r\n");
        assert_eq!(
            c.call(&["CONFIG", "SET", "save", "1"]),
            b"-ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters\r\n"
        );
        for name in ["dir", "dbfilename"] {
            assert_eq!(
                c.call(&["CONFIG", "SET", name, "x"]),
                format!(
                    "-ERR CONFIG SET failed (possibly related to argument '{name}') - can't \
                     set protected config\r\n"
                )
                .into_bytes()
            );
        }
        assert_eq!(
            c.call(&["CONFIG", "SET", "save", "100 10 20 5"]),
            b"+OK\r\n"
        );
        assert_eq!(
            c.call(&["CONFIG", "GET", "save"]),
            b"*2\r\n$4\r\nsave\r\n$11\r\n100 10 20 5\r\n"
        );
        assert_eq!(
            c.call(&["CONFIG", "SET", "rdbcompression", "maybe"]),
            b"-ERR CONFIG SET failed (possibly related to argument 'rdbcompression') - argument must be 'yes' or 'no'\r\n"
        );
        assert_eq!(
            c.call(&["CONFIG", "SET", "rdbchecksum", "no"]),
            b"-ERR CONFIG SET failed (possibly related to argument 'rdbchecksum') - can't set immutable config\r\n"
        );
        let last = c.call(&["LASTSAVE"]);
        assert!(last.starts_with(b":"), "{last:?}");
    }
    drop(k);
    // A save goes where --dir and --dbfilename say, and CONFIG GET shows them.
    let dir = temp_dir("cfg");
    let d = dir.display().to_string();
    let k = Server::corekv(2, &["--dir", &d, "--dbfilename", "other.rdb"]);
    let mut c = k.client();
    let canonical = std::fs::canonicalize(&dir).unwrap().display().to_string();
    assert_eq!(
        c.call(&["CONFIG", "GET", "dir"]),
        format!("*2\r\n$3\r\ndir\r\n${}\r\n{canonical}\r\n", canonical.len()).into_bytes()
    );
    c.call(&["SET", "x", "y"]);
    assert_eq!(c.info_u64("persistence", "rdb_changes_since_last_save"), 1);
    assert_eq!(c.call(&["SAVE"]), b"+OK\r\n");
    assert!(dir.join("other.rdb").exists());
    assert_eq!(c.info_u64("persistence", "rdb_changes_since_last_save"), 0);
    assert_eq!(c.info_u64("persistence", "rdb_saves"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_or_foreign_file_stops_the_start_with_a_reason() {
    let dir = temp_dir("damaged");
    let d = dir.display().to_string();
    let file = dir.join("dump.rdb");
    {
        let s = Server::corekv(1, &["--dir", &d]);
        let mut c = s.client();
        for i in 0..100 {
            c.call(&["SET", &format!("k{i}"), &"v".repeat(50)]);
        }
        assert_eq!(c.call(&["SAVE"]), b"+OK\r\n");
    }
    let good = std::fs::read(&file).unwrap();
    let start = |bytes: &[u8]| -> String {
        std::fs::write(&file, bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_corekv"))
            .args(["--port", "0", "--shards", "1", "--no-pin", "--dir", &d])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = start(&good[..good.len() - 100]);
    assert!(err.contains("Short read"), "{err}");
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 20] ^= 0x20;
    let err = start(&flipped);
    assert!(err.contains("Wrong RDB checksum"), "{err}");
    let err = start(b"NOTREDIS0010");
    assert!(err.contains("Wrong signature"), "{err}");
    // A stream (a type corekv lacks), written by redis-server.
    let r = Server::redis_with(&["--dir", &d, "--dbfilename", "stream.rdb"]);
    let mut rc = r.client();
    rc.call(&["XADD", "events", "*", "a", "1"]);
    assert_eq!(rc.call(&["SAVE"]), b"+OK\r\n");
    let stream = std::fs::read(dir.join("stream.rdb")).unwrap();
    let err = start(&stream);
    assert!(
        err.contains("key 'events'") && err.contains("RDB type"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until INFO says the last BGSAVE ended with `status` (`ok`, `err`).
fn wait_status(c: &mut common::Client, status: &str) {
    eventually(Duration::from_secs(10), || {
        match c
            .info_field("persistence", "rdb_last_bgsave_status")
            .as_deref()
        {
            Some(s) if s == status => Ok(()),
            other => Err(format!("status {other:?}")),
        }
    });
}

#[test]
fn a_failed_snapshot_stops_writes_until_one_succeeds_as_in_redis() {
    let run = |redis: bool| -> Vec<Vec<u8>> {
        let dir = temp_dir("misconf");
        let d = dir.display().to_string();
        let s = if redis {
            Server::redis_with(&["--dir", &d, "--save", "3600 1"])
        } else {
            Server::corekv(2, &["--dir", &d, "--save", "3600 1"])
        };
        let mut c = s.client();
        let mut replies = vec![c.call(&["SET", "a", "1"])];
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.call(&["BGSAVE"]), b"+Background saving started\r\n");
        wait_status(&mut c, "err");
        for cmd in [
            &["SET", "a", "2"][..],
            &["GET", "a"],
            &["PING"],
            &["DEL", "a"],
            &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"],
            &["SET", "a", "3"],
            &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"],
            &["INCR", "n"],
        ] {
            replies.push(c.call(cmd));
        }
        if redis {
            // Redis works inside its directory (chdir): one removed stays removed for it.
            return replies;
        }
        std::fs::create_dir_all(&dir).unwrap();
        c.call(&["BGSAVE"]);
        wait_status(&mut c, "ok");
        replies.push(c.call(&["SET", "a", "4"]));
        replies.push(c.call(&["GET", "a"]));
        let _ = std::fs::remove_dir_all(&dir);
        replies
    };
    let ours = run(false);
    assert!(
        ours[1].starts_with(b"-MISCONF "),
        "{:?}",
        String::from_utf8_lossy(&ours[1])
    );
    // Once a snapshot succeeds again, writes are accepted.
    assert_eq!(
        ours[ours.len() - 2..],
        [b"+OK\r\n".to_vec(), b"$1\r\n4\r\n".to_vec()]
    );
    assert_eq!(ours[..ours.len() - 2], run(true)[..]);
}
