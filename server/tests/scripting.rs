//! Scripts on the real binary beyond the byte-for-byte cases in `differential.rs`: the
//! `redis` crate's `Script` (EVALSHA, falling back to SCRIPT LOAD), the script cache
//! seen from every shard, and where a script may run when keys live on several shards.

mod common;

use common::{Server, SHARD_COUNTS};

/// redis-py's Lock release script, through the `redis` crate's `Script`.
const RELEASE: &str = "local token = redis.call('get', KEYS[1]) \
    if not token or token ~= ARGV[1] then return 0 end \
    redis.call('del', KEYS[1]) return 1";

#[test]
fn the_redis_crates_script_runs_a_lock_on_every_shard() {
    for shards in SHARD_COUNTS {
        let server = Server::corekv(shards, &[]);
        let mut con = server.redis_conn();
        let release = redis::Script::new(RELEASE);
        for i in 0..50 {
            let key = format!("lock:{i}");
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg("me")
                .arg("NX")
                .arg("PX")
                .arg(10_000)
                .query(&mut con)
                .unwrap();
            assert_eq!(set.as_deref(), Some("OK"));
            let wrong: i64 = release.key(&key).arg("other").invoke(&mut con).unwrap();
            assert_eq!(wrong, 0, "{shards} shards");
            let right: i64 = release.key(&key).arg("me").invoke(&mut con).unwrap();
            assert_eq!(right, 1, "{shards} shards");
            let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut con).unwrap();
            assert_eq!(exists, 0);
        }
    }
}

#[test]
fn a_script_evaluated_on_one_shard_is_found_by_evalsha_on_every_shard() {
    let server = Server::corekv(4, &[]);
    let mut a = server.client();
    let body = "return redis.call('incr', KEYS[1])";
    assert_eq!(a.call(&["EVAL", body, "1", "first"]), b":1\r\n");
    let sha = redis::Script::new(body).get_hash().to_string();
    // A second connection, keys all over the shards: the EVAL's compilation reaches
    // each shard right after it ran (a message of its own, so allow it a moment).
    let mut b = server.client();
    for i in 0..40 {
        let key = format!("key{i}");
        let mut tries = 0;
        let reply = loop {
            let r = b.call(&["EVALSHA", &sha, "1", &key]);
            if !r.starts_with(b"-NOSCRIPT") || tries == 100 {
                break r;
            }
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(reply, b":1\r\n", "{key}");
    }
    assert_eq!(b.call(&["SCRIPT", "EXISTS", &sha]), b"*1\r\n:1\r\n");
    assert_eq!(b.call(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    assert_eq!(b.call(&["SCRIPT", "EXISTS", &sha]), b"*1\r\n:0\r\n");
    assert_eq!(
        b.call(&["EVALSHA", &sha, "1", "key1"]),
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
}

#[test]
fn keys_on_several_shards_are_refused_as_redis_cluster_refuses_them() {
    let server = Server::corekv(4, &[]);
    let mut c = server.client();
    // "a" and "b" live on different shards of four; hash tags put keys together.
    let body = "return redis.call('mget', KEYS[1], KEYS[2])";
    assert_eq!(
        c.call(&["EVAL", body, "2", "a", "b"]),
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    c.call(&["SET", "{t}a", "1"]);
    assert_eq!(
        c.call(&["EVAL", body, "2", "{t}a", "{t}b"]),
        b"*2\r\n$1\r\n1\r\n$-1\r\n"
    );
    // An undeclared key of another shard fails inside the script, with its line.
    let reply = c.call(&["EVAL", "\nreturn redis.call('get', 'b')", "1", "a"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    assert!(
        text.starts_with(
            "-ERR Script attempted to access a non local key in a cluster node script: "
        ) && text.ends_with(", on @user_script:2.\r\n"),
        "{text}"
    );
    // The shard keeps serving.
    assert_eq!(c.call(&["GET", "{t}a"]), b"$1\r\n1\r\n");
}
