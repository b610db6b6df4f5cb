//! The append-only log over the wire: with `appendfsync always` no acknowledged write is
//! lost to a real `kill -9` at random moments (rewrites included); a restart rebuilds
//! every type, deadline and cross-shard result; a torn tail is dropped or refused as
//! `aof-load-truncated` says; the files of another shard count are refused.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{temp_dir, Server};
use redis::{Connection, Value};

fn start(dir: &Path, shards: usize, extra: &[&str]) -> Server {
    let d = dir.display().to_string();
    let mut args = vec!["--save", "", "--appendonly", "yes", "--dir", d.as_str()];
    args.extend_from_slice(extra);
    Server::corekv(shards, &args)
}

/// Starts corekv on `dir` with the log on and `extra` flags, expecting it to refuse to
/// start; returns what it said.
fn refused_start(dir: &Path, shards: usize, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_corekv"))
        .args([
            "--port",
            "0",
            "--no-pin",
            "--save",
            "",
            "--appendonly",
            "yes",
        ])
        .args(["--shards", &shards.to_string()])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success(), "corekv started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn q(c: &mut Connection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<Value>(c)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Every key, sorted, with its type, whether it has a TTL, and its contents.
fn contents(c: &mut Connection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let ty: String = redis::cmd("TYPE").arg(&k).query(c).unwrap();
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            let mut v: Vec<String> = match ty.as_str() {
                "string" => vec![redis::cmd("GET").arg(&k).query(c).unwrap()],
                "list" => redis::cmd("LRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query(c)
                    .unwrap(),
                "set" => redis::cmd("SMEMBERS").arg(&k).query(c).unwrap(),
                "hash" => redis::cmd("HGETALL").arg(&k).query(c).unwrap(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(c)
                    .unwrap(),
                other => panic!("unexpected type {other}"),
            };
            if ty == "set" {
                v.sort();
            }
            format!("{k} {ty} ttl={} {v:?}", ttl > 0)
        })
        .collect()
}

/// A small deterministic generator (xorshift), seeded from the clock and printed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the writer had acknowledged when the server died.
#[derive(Default)]
struct Acked {
    /// `k<i>` = `v<i>`, some with a deadline an hour away.
    strings: Vec<(String, String, bool)>,
    /// Keys deleted after being set.
    deleted: Vec<String>,
    /// INCRs of `{c}counter` acknowledged.
    incrs: u64,
    /// `h<j>` field `f<i>` = `i`.
    fields: Vec<(String, String, String)>,
    /// RPUSHes of `list` acknowledged.
    pushes: u64,
}

/// Writes until the connection breaks (the server was killed), recording every write
/// it was answered for; now and then asks for a rewrite.
fn write_until_killed(port: u16, round: u64, mut rng: Rng) -> Acked {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let mut acked = Acked::default();
    for i in 0u64.. {
        let id = format!("{round}-{i}");
        let ok = match rng.below(7) {
            0 | 1 => {
                let (k, v) = (format!("k{id}"), format!("v{id}"));
                let ttl = rng.below(2) == 0;
                let mut cmd = redis::cmd("SET");
                cmd.arg(&k).arg(&v);
                if ttl {
                    cmd.arg("PX").arg(3_600_000);
                }
                let r = cmd.query::<Value>(&mut c);
                if r.is_ok() {
                    acked.strings.push((k, v, ttl));
                }
                r.is_ok()
            }
            2 => {
                let r = redis::cmd("INCR").arg("{c}counter").query::<i64>(&mut c);
                if r.is_ok() {
                    acked.incrs += 1;
                }
                r.is_ok()
            }
            3 => {
                let (h, f) = (format!("h{}", rng.below(7)), format!("f{id}"));
                let r = redis::cmd("HSET")
                    .arg(&h)
                    .arg(&f)
                    .arg(&id)
                    .query::<Value>(&mut c);
                if r.is_ok() {
                    acked.fields.push((h, f, id.clone()));
                }
                r.is_ok()
            }
            4 => {
                let r = redis::cmd("RPUSH")
                    .arg("list")
                    .arg(&id)
                    .query::<Value>(&mut c);
                if r.is_ok() {
                    acked.pushes += 1;
                }
                r.is_ok()
            }
            5 => {
                let k = format!("d{id}");
                let r = redis::pipe()
                    .cmd("SET")
                    .arg(&k)
                    .arg("x")
                    .cmd("EXPIRE")
                    .arg(&k)
                    .arg(100)
                    .cmd("DEL")
                    .arg(&k)
                    .query::<Value>(&mut c);
                if r.is_ok() {
                    acked.deleted.push(k);
                }
                r.is_ok()
            }
            _ => {
                if rng.below(40) == 0 {
                    redis::cmd("BGREWRITEAOF").query::<Value>(&mut c).is_ok()
                } else {
                    // A script's writes, logged as their effects.
                    let k = format!("k{id}");
                    let r = redis::cmd("EVAL")
                        .arg("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
                        .arg(1)
                        .arg(&k)
                        .arg(format!("v{id}"))
                        .query::<Value>(&mut c);
                    if r.is_ok() {
                        acked.strings.push((k, format!("v{id}"), false));
                    }
                    r.is_ok()
                }
            }
        };
        if !ok {
            return acked;
        }
    }
    unreachable!()
}

#[test]
fn no_acknowledged_write_is_lost_to_kill_9_with_appendfsync_always() {
    let dir = temp_dir("aof-kill");
    let mut rng = Rng::new();
    let mut all = Acked::default();
    let mut counter = 0i64;
    let rounds = 22;
    for round in 0..rounds {
        let s = start(&dir, 4, &["--appendfsync", "always"]);
        let mut c = s.redis_conn();
        // Everything acknowledged in earlier rounds is there.
        for (k, v, ttl) in &all.strings {
            let got: Option<String> = redis::cmd("GET").arg(k).query(&mut c).unwrap();
            assert_eq!(got.as_deref(), Some(v.as_str()), "round {round}: {k}");
            let pttl: i64 = redis::cmd("PTTL").arg(k).query(&mut c).unwrap();
            assert_eq!(pttl > 0, *ttl, "round {round}: TTL of {k} ({pttl})");
        }
        for k in &all.deleted {
            let n: i64 = redis::cmd("EXISTS").arg(k).query(&mut c).unwrap();
            assert_eq!(n, 0, "round {round}: {k} was deleted");
        }
        for (h, f, v) in &all.fields {
            let got: Option<String> = redis::cmd("HGET").arg(h).arg(f).query(&mut c).unwrap();
            assert_eq!(got.as_deref(), Some(v.as_str()), "round {round}: {h} {f}");
        }
        let now: i64 = redis::cmd("GET")
            .arg("{c}counter")
            .query::<Option<i64>>(&mut c)
            .unwrap()
            .unwrap_or(0);
        let floor = counter + all.incrs as i64;
        // The last INCR may have been logged without its reply arriving.
        assert!(
            now == floor || now == floor + 1,
            "round {round}: counter {now}, acknowledged {floor}"
        );
        counter = now;
        all.incrs = 0;
        let len: u64 = redis::cmd("LLEN").arg("list").query(&mut c).unwrap();
        assert!(
            len == all.pushes || len == all.pushes + 1,
            "round {round}: list has {len}, acknowledged {}",
            all.pushes
        );
        all.pushes = len;
        if round == rounds - 1 {
            break;
        }
        let port = s.port;
        let seed = Rng(rng.below(u64::MAX) | 1);
        let writer = std::thread::spawn(move || write_until_killed(port, round, seed));
        std::thread::sleep(Duration::from_millis(60 + rng.below(250)));
        drop(s); // kill -9
        let acked = writer.join().unwrap();
        all.strings.extend(acked.strings);
        all.deleted.extend(acked.deleted);
        all.fields.extend(acked.fields);
        all.incrs += acked.incrs;
        all.pushes += acked.pushes;
    }
    assert!(all.strings.len() > 100, "too few writes to mean anything");
}

/// Writes of every kind whose log form is not the command as sent: relative deadlines,
/// expiry, SPOP, scripts, cross-shard RENAME/COPY/SMOVE/MSETNX and scripts, FLUSHALL,
/// functions.
fn write_mix(c: &mut Connection) {
    for args in [
        &["SET", "plain", "1"][..],
        &["SET", "ex", "v", "EX", "1000"],
        &["SETEX", "setex", "1000", "v"],
        &["PSETEX", "psetex", "1000000", "v"],
        &["SET", "soon", "v", "PX", "30"],
        &["SET", "gone", "v"],
        &["EXPIRE", "gone", "0"],
        &["SET", "persisted", "v", "EX", "100"],
        &["PERSIST", "persisted"],
        &["SET", "getex", "v"],
        &["GETEX", "getex", "PX", "500000"],
        &["SADD", "set", "a", "b", "c", "d", "e"],
        &["SPOP", "set"],
        &["SPOP", "set", "2"],
        &["SADD", "s1", "x", "y", "z"],
        &["SADD", "s2", "y", "z"],
        &["SINTERSTORE", "inter", "s1", "s2"],
        &["INCRBYFLOAT", "float", "1.1"],
        &["HSET", "hash", "f", "1", "g", "2"],
        &["HINCRBYFLOAT", "hash", "f", "0.25"],
        &["ZADD", "zset", "1", "a", "2.5", "b", "-3", "c"],
        &["ZINCRBY", "zset", "10", "c"],
        &["RPUSH", "list", "1", "2", "3", "4"],
        &["LMOVE", "list", "other-list", "LEFT", "RIGHT"],
        &["SET", "from", "moved"],
        &["RENAME", "from", "to"],
        &["SET", "src", "copied", "EX", "5000"],
        &["COPY", "src", "dst"],
        &["SMOVE", "s1", "s3", "x"],
        &["MSETNX", "m1", "1", "m2", "2", "m3", "3"],
        &["FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\nredis.register_function('f', function(k, a) return redis.call('SET', k[1], a[1]) end)"],
        &["FCALL", "f", "1", "fk", "fv"],
        &["EVAL", "redis.call('SET', KEYS[1], 'a'); redis.call('SET', KEYS[2], 'b'); return 1", "2", "sa", "sb"],
        &["MULTI"],
        &["INCR", "tx1"],
        &["INCR", "tx2"],
        &["EXEC"],
    ] {
        q(c, args);
    }
    // Let `soon` expire, then write over it: the log's DEL keeps the replay honest.
    std::thread::sleep(Duration::from_millis(60));
    q(c, &["APPEND", "soon", "new"]);
    q(c, &["SET", "tmp1", "v"]);
    q(c, &["SET", "tmp2", "v"]);
    q(c, &["DEL", "tmp1", "tmp2"]);
}

#[test]
fn a_restart_rebuilds_every_write_on_1_and_4_shards() {
    for shards in [1, 4] {
        let dir = temp_dir("aof-mix");
        let s = start(&dir, shards, &[]);
        let mut c = s.redis_conn();
        write_mix(&mut c);
        let before = contents(&mut c);
        assert!(before
            .iter()
            .any(|l| l.starts_with("soon string ttl=false")));
        // everysec: give the writer its moment, then a real kill -9.
        std::thread::sleep(Duration::from_millis(1500));
        drop(s);
        let s = start(&dir, shards, &[]);
        let mut c = s.redis_conn();
        assert_eq!(contents(&mut c), before, "{shards} shards, after kill -9");
        let f: String = redis::cmd("FCALL")
            .arg("f")
            .arg(1)
            .arg("fk2")
            .arg("x")
            .query(&mut c)
            .unwrap();
        assert_eq!(f, "OK");
        // A rewrite, more writes, a clean shutdown (the log is synced first).
        let started: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
        assert_eq!(started, "Background append only file rewriting started");
        common::eventually(Duration::from_secs(10), || {
            let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
            if info.contains("aof_rewrites:1") && info.contains("aof_rewrite_in_progress:0") {
                Ok(())
            } else {
                Err(info)
            }
        });
        q(&mut c, &["FLUSHALL"]);
        write_mix(&mut c);
        q(&mut c, &["SET", "after", "rewrite"]);
        let before = contents(&mut c);
        let mut s = s;
        let _ = redis::cmd("SHUTDOWN").query::<Value>(&mut c);
        s.wait_exit(Duration::from_secs(10)).expect("shut down");
        let files: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            files.iter().any(|f| f == "appendonly.aof.2.base.rdb"),
            "{files:?}"
        );
        assert!(
            !files.iter().any(|f| f.starts_with("appendonly.aof.1.")),
            "old files left: {files:?}"
        );
        let s = start(&dir, shards, &[]);
        let mut c = s.redis_conn();
        assert_eq!(
            contents(&mut c),
            before,
            "{shards} shards, after the rewrite"
        );
    }
}

#[test]
fn a_torn_tail_is_dropped_or_refused_as_aof_load_truncated_says() {
    let dir = temp_dir("aof-torn");
    let s = start(&dir, 1, &["--appendfsync", "always"]);
    let mut c = s.redis_conn();
    q(&mut c, &["SET", "kept", "1"]);
    drop(s);
    let incr = dir.join("appendonlydir/appendonly.aof.1.0.incr.aof");
    let whole = std::fs::read(&incr).unwrap();
    let mut torn = whole.clone();
    // A MULTI whose EXEC never came, then a record cut short.
    torn.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\nz");
    std::fs::write(&incr, &torn).unwrap();
    // aof-load-truncated no: the server refuses to start, and says why.
    let err = refused_start(&dir, 1, &["--aof-load-truncated", "no"]);
    assert!(err.contains("Unexpected end of file"), "{err}");
    assert_eq!(
        std::fs::read(&incr).unwrap(),
        torn,
        "the refused file is untouched"
    );
    // yes (the default): the tail is dropped, the file truncated to what was whole.
    let s = start(&dir, 1, &["--appendfsync", "always"]);
    assert!(s.logged("short read while loading the AOF file"));
    let mut c = s.redis_conn();
    assert_eq!(
        contents(&mut c),
        vec!["kept string ttl=false [\"1\"]".to_string()]
    );
    assert_eq!(std::fs::read(&incr).unwrap(), whole);
    q(&mut c, &["SET", "next", "2"]);
    drop(s);
    let s = start(&dir, 1, &[]);
    let mut c = s.redis_conn();
    assert_eq!(contents(&mut c).len(), 2);
    // Garbage in the middle is no torn tail: refused whatever the setting.
    drop(s);
    let mut bad = std::fs::read(&incr).unwrap();
    bad.splice(0..0, b"*1\r\n+PING\r\n".iter().copied());
    std::fs::write(&incr, &bad).unwrap();
    let err = refused_start(&dir, 1, &[]);
    assert!(err.contains("Bad file format"), "{err}");
}

#[test]
fn the_first_start_keeps_the_snapshot_and_another_shard_count_is_refused() {
    let dir = temp_dir("aof-first");
    let d = dir.display().to_string();
    // A snapshot from before the log existed.
    let s = Server::corekv(2, &["--save", "", "--dir", &d]);
    let mut c = s.redis_conn();
    q(&mut c, &["SET", "old", "data"]);
    q(&mut c, &["SAVE"]);
    drop(s);
    let s = start(&dir, 2, &[]);
    let mut c = s.redis_conn();
    assert_eq!(
        contents(&mut c),
        vec!["old string ttl=false [\"data\"]".to_string()]
    );
    q(&mut c, &["SET", "new", "write"]);
    std::thread::sleep(Duration::from_millis(1200));
    drop(s);
    // Increments of 2 shards cannot be replayed by 3.
    let err = refused_start(&dir, 3, &[]);
    assert!(err.contains("written by 2 shards"), "{err}");
    // After a rewrite the increments are empty: any count loads.
    let s = start(&dir, 2, &[]);
    let mut c = s.redis_conn();
    q(&mut c, &["BGREWRITEAOF"]);
    let t = Instant::now();
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        if info.contains("aof_rewrites:1") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no rewrite: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    let s = start(&dir, 3, &[]);
    let mut c = s.redis_conn();
    assert_eq!(contents(&mut c).len(), 2);
}
