//! maxmemory over the wire: eviction keeps `used_memory` at the limit, noeviction refuses
//! writes with Redis's error and keeps reads working, volatile policies spare keys
//! without a deadline, and the settings speak Redis's CONFIG language.

mod common;

use common::Server;

#[test]
fn allkeys_lru_keeps_used_memory_within_5_percent_of_the_limit() {
    let limit = 8 * 1024 * 1024u64;
    let srv = Server::corekv(
        2,
        &["--maxmemory", "8mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let mut c = srv.client();
    let value = "v".repeat(1000);
    // Four times the limit.
    let n = (4 * limit / 1000) as usize;
    for i in 0..n {
        assert_eq!(c.call(&["SET", &format!("key:{i}"), &value]), b"+OK\r\n");
    }
    let used = c.info_u64("memory", "used_memory");
    assert!(
        used <= limit * 105 / 100 && used >= limit * 80 / 100,
        "used_memory {used} for a limit of {limit}"
    );
    assert_eq!(c.info_u64("memory", "maxmemory"), limit);
    let evicted = c.info_u64("stats", "evicted_keys");
    assert!(evicted as usize > n / 2, "evicted {evicted} of {n}");
    // The most recent writes are there; the server answers.
    let last = format!("key:{}", n - 1);
    assert_eq!(c.call(&["STRLEN", &last]), b":1000\r\n");
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn noeviction_refuses_writes_like_redis_and_keeps_reads() {
    let redis = Server::redis_with(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let srv = Server::corekv(2, &["--maxmemory", "2mb"]);
    let value = "n".repeat(1000);
    let mut errors = Vec::new();
    for s in [&redis, &srv] {
        let mut c = s.client();
        let mut refused = None;
        for i in 0..20_000 {
            let r = c.call(&["SET", &format!("key:{i}"), &value]);
            if r != b"+OK\r\n" {
                refused = Some((i, r));
                break;
            }
        }
        let (i, reply) = refused.expect("writes are refused at the limit");
        errors.push(reply);
        // Refused before it ran: a rejected call, not a failed one, in both servers.
        let stats = c.call_str(&["INFO", "commandstats"]);
        let set = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_set:"))
            .unwrap_or_else(|| panic!("{stats}"));
        assert!(set.ends_with(",rejected_calls=1,failed_calls=0"), "{set}");
        // Reads and deletes still work; a write that does not grow memory is allowed
        // as Redis allows it (DEL has no denyoom flag).
        assert_eq!(c.call(&["STRLEN", "key:0"]), b":1000\r\n");
        assert_eq!(c.call(&["DEL", "key:1"]), b":1\r\n");
        assert!(i > 100);
    }
    assert_eq!(
        String::from_utf8_lossy(&errors[1]),
        String::from_utf8_lossy(&errors[0])
    );
    let mut c = srv.client();
    let used = c.info_u64("memory", "used_memory");
    let limit = 2 * 1024 * 1024;
    // Over by at most one request (and the client buffers).
    assert!(used <= limit + 64 * 1024, "used_memory {used}");
    // DEL made a little room; a few writes fill it again.
    let refused = (0..50).any(|i| {
        c.call(&["SET", &format!("more:{i}"), &value])
            .starts_with(b"-OOM")
    });
    assert!(refused);
    assert_eq!(c.info_u64("stats", "evicted_keys"), 0);
}

#[test]
fn volatile_policies_spare_keys_without_a_deadline() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let srv = Server::corekv(2, &["--maxmemory", "4mb", "--maxmemory-policy", policy]);
        let mut c = srv.client();
        let value = "p".repeat(1000);
        for i in 0..1000 {
            c.call(&["SET", &format!("keep:{i}"), &value]);
        }
        let mut oom = 0;
        for i in 0..8000 {
            let r = c.call(&["SET", &format!("tmp:{i}"), &value, "EX", "1000"]);
            if r != b"+OK\r\n" {
                oom += 1;
            }
        }
        for i in 0..1000 {
            assert_eq!(
                c.call(&["STRLEN", &format!("keep:{i}")]),
                b":1000\r\n",
                "{policy} evicted keep:{i}"
            );
        }
        assert!(c.info_u64("stats", "evicted_keys") > 1000, "{policy}");
        assert_eq!(oom, 0, "{policy}: volatile keys were there to evict");
    }
}

#[test]
fn maxmemory_settings_match_redis() {
    let redis = Server::redis();
    let srv = Server::corekv(2, &[]);
    let mut r = redis.client();
    let mut k = srv.client();
    for args in [
        &["CONFIG", "GET", "maxmemory"][..],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "SET", "maxmemory-policy", "foo"],
        &["CONFIG", "SET", "maxmemory", "x"],
        &["CONFIG", "SET", "maxmemory", "-1"],
        &["CONFIG", "SET", "maxmemory", "100mb"],
        &["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LFU"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "SET", "maxmemory", "0"],
    ] {
        assert_eq!(
            String::from_utf8_lossy(&k.call(args)),
            String::from_utf8_lossy(&r.call(args)),
            "{args:?}"
        );
    }
    // CONFIG SET reaches every shard: a tiny limit now refuses writes on all of them.
    k.call(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    for i in 0..200 {
        k.call(&["SET", &format!("fill:{i}"), &"f".repeat(1000)]);
    }
    assert_eq!(k.call(&["CONFIG", "SET", "maxmemory", "1kb"]), b"+OK\r\n");
    for i in 0..20 {
        assert!(k
            .call(&["SET", &format!("new:{i}"), "x"])
            .starts_with(b"-OOM"));
    }
    assert_eq!(
        k.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]),
        b"+OK\r\n"
    );
    assert_eq!(k.call(&["SET", "after", "x"]), b"+OK\r\n");
    let info = k.call_str(&["INFO", "memory"]);
    assert!(
        info.contains("maxmemory_policy:allkeys-random\r\n"),
        "{info}"
    );
    assert!(info.contains("maxmemory_human:1.00K\r\n"), "{info}");
}

#[test]
fn collections_count_toward_maxmemory_under_both_kinds_of_policy() {
    // noeviction: a hash that keeps growing is refused with Redis's error, reads go on.
    let srv = Server::corekv(1, &["--maxmemory", "4mb"]);
    let mut c = srv.client();
    let value = "h".repeat(100);
    let mut refused = None;
    for i in 0..200_000 {
        let r = c.call(&["HSET", "big", &format!("field:{i}"), &value]);
        if r != b":1\r\n" {
            refused = Some((i, r));
            break;
        }
    }
    let (fields, reply) = refused.expect("HSET is refused at the limit");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    assert!(fields > 10_000, "refused after only {fields} fields");
    let used = c.info_u64("memory", "used_memory");
    assert!(
        used >= 4 * 1024 * 1024,
        "used_memory {used} does not count the hash"
    );
    assert_eq!(
        c.call(&["HLEN", "big"]),
        format!(":{fields}\r\n").into_bytes()
    );
    assert_eq!(
        c.call(&["SADD", "s", "1"])[0],
        b'-',
        "SADD grows memory too"
    );
    assert_eq!(c.call(&["SCARD", "big"])[0], b'-', "WRONGTYPE, not OOM");
    // Deleting the hash gives the memory back to the accounting.
    assert_eq!(c.call(&["DEL", "big"]), b":1\r\n");
    let after = c.info_u64("memory", "used_memory");
    assert!(
        after < used / 4,
        "used_memory {after} after deleting the hash"
    );
    assert_eq!(c.call(&["SADD", "s", "1"]), b":1\r\n");

    // allkeys-lru: sets and hashes are evicted like strings.
    let srv = Server::corekv(
        2,
        &["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let mut c = srv.client();
    let members: Vec<String> = (0..50).map(|m| format!("member-{m:04}")).collect();
    for i in 0..20_000 {
        let mut args = vec!["SADD".to_string(), format!("set:{i}")];
        args.extend(members.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.call(&args), b":50\r\n");
    }
    let used = c.info_u64("memory", "used_memory");
    assert!(
        used <= 4 * 1024 * 1024 * 105 / 100,
        "used_memory {used} over the limit"
    );
    assert!(c.info_u64("stats", "evicted_keys") > 10_000);
    assert_eq!(c.call(&["SCARD", "set:19999"]), b":50\r\n");
}
