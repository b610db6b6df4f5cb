//! Keys on every shard: order of pipelined replies, consistency under concurrent clients,
//! atomic cross-shard commands under contention, and the shard mesh under sustained load.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{eventually, Server, SHARD_COUNTS};
use corekv_shard::slot::SlotMap;
use redis::Commands;

/// Keys named `prefix:N`, one owned by each of `shards` shards.
fn key_per_shard(prefix: &str, shards: usize) -> Vec<String> {
    let map = SlotMap::new(shards);
    let mut found: Vec<Option<String>> = vec![None; shards];
    for i in 0.. {
        let k = format!("{prefix}:{i}");
        let s = map.shard_of(k.as_bytes());
        if found[s].is_none() {
            found[s] = Some(k);
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found.into_iter().flatten().collect()
}

#[test]
fn a_pipeline_of_1000_mixed_commands_comes_back_in_order() {
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let mut con = srv.redis_conn();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut model: HashMap<String, String> = HashMap::new();
        let mut pipe = redis::pipe();
        let mut expected: Vec<redis::Value> = Vec::new();
        for i in 0..1000 {
            let key = format!("key:{}", rng.u32(..64));
            match rng.u8(..5) {
                0 => {
                    let v = format!("v{i}");
                    pipe.cmd("SET").arg(&key).arg(&v);
                    model.insert(key, v);
                    expected.push(redis::Value::Okay);
                }
                1 => {
                    pipe.cmd("GET").arg(&key);
                    expected.push(match model.get(&key) {
                        Some(v) => redis::Value::BulkString(v.clone().into_bytes()),
                        None => redis::Value::Nil,
                    });
                }
                2 => {
                    pipe.cmd("APPEND").arg(&key).arg("x");
                    let v = model.entry(key).or_default();
                    v.push('x');
                    expected.push(redis::Value::Int(v.len() as i64));
                }
                3 => {
                    let other = format!("key:{}", rng.u32(..64));
                    pipe.cmd("MGET").arg(&key).arg(&other);
                    let get = |k: &String| match model.get(k) {
                        Some(v) => redis::Value::BulkString(v.clone().into_bytes()),
                        None => redis::Value::Nil,
                    };
                    expected.push(redis::Value::Array(vec![get(&key), get(&other)]));
                }
                _ => {
                    pipe.cmd("DEL").arg(&key);
                    expected.push(redis::Value::Int(i64::from(model.remove(&key).is_some())));
                }
            }
        }
        let got: Vec<redis::Value> = pipe.query(&mut con).expect("pipeline");
        assert_eq!(got.len(), 1000);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "reply {i} with {shards} shards");
        }
    }
}

#[test]
fn two_hundred_concurrent_clients_stay_consistent() {
    let srv = Arc::new(Server::corekv(4, &[]));
    let clients = 200;
    let rounds = 50;
    let start = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|id| {
            let srv = srv.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let mut con = srv.redis_conn();
                start.wait();
                for r in 0..rounds {
                    let key = format!("client:{id}");
                    let value = format!("{id}:{r}");
                    let _: () = con.set(&key, &value).unwrap();
                    let got: String = con.get(&key).unwrap();
                    assert_eq!(got, value);
                    let _: i64 = con.incr("shared:counter", 1).unwrap();
                    let _: i64 = con.incr(format!("counter:{}", id % 10), 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    let mut con = srv.redis_conn();
    let total: i64 = con.get("shared:counter").unwrap();
    assert_eq!(total, (clients * rounds) as i64);
    for i in 0..10 {
        let n: i64 = con.get(format!("counter:{i}")).unwrap();
        assert_eq!(n, (clients / 10 * rounds) as i64);
    }
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, (clients + 1 + 10) as i64);
}

#[test]
fn msetnx_across_shards_is_all_or_nothing_under_contention() {
    let srv = Arc::new(Server::corekv(4, &[]));
    let keys = key_per_shard("atomic", 4);
    for round in 0..30 {
        let contenders = 12;
        let start = Arc::new(Barrier::new(contenders));
        let handles: Vec<_> = (0..contenders)
            .map(|id| {
                let srv = srv.clone();
                let start = start.clone();
                // Each contender names all four keys, in a rotated order, plus one of
                // its own: the rotation makes contenders reach shards in different orders.
                let mut mine = keys.clone();
                mine.rotate_left(id % 4);
                mine.push(format!("own:{round}:{id}"));
                std::thread::spawn(move || {
                    let mut con = srv.redis_conn();
                    let mut cmd = redis::cmd("MSETNX");
                    for k in &mine {
                        cmd.arg(k).arg(id);
                    }
                    start.wait();
                    let won: i64 = cmd.query(&mut con).unwrap();
                    (id, won)
                })
            })
            .collect();
        let results: Vec<(usize, i64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<usize> = results.iter().filter(|r| r.1 == 1).map(|r| r.0).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one MSETNX wins, got {results:?}"
        );
        let mut con = srv.redis_conn();
        let values: Vec<Option<usize>> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
        assert!(
            values.iter().all(|v| *v == Some(winners[0])),
            "round {round}: all keys hold the winner's value: {values:?}"
        );
        for (id, won) in &results {
            let own: Option<usize> = con.get(format!("own:{round}:{id}")).unwrap();
            assert_eq!(
                own.is_some(),
                *won == 1,
                "round {round}: loser {id} set nothing"
            );
        }
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    }
}

#[test]
fn rename_and_copy_across_shards_under_concurrent_load() {
    let srv = Arc::new(Server::corekv(4, &[]));
    let keys = key_per_shard("mv", 4);
    let mut con = srv.redis_conn();
    let _: () = con.set(&keys[0], "payload").unwrap();
    // Background writers keep every shard busy while a key travels between shards.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let srv = srv.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut con = srv.redis_conn();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _: () = con.set(format!("noise:{w}:{}", i % 100), i).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    for hop in 0..200 {
        let (from, to) = (&keys[hop % 4], &keys[(hop + 1) % 4]);
        let _: () = con.rename(from, to).unwrap();
        let (a, b): (Option<String>, Option<String>) =
            redis::pipe().get(from).get(to).query(&mut con).unwrap();
        assert_eq!((a, b), (None, Some("payload".to_string())), "hop {hop}");
    }
    let copied: i64 = redis::cmd("COPY")
        .arg(&keys[0])
        .arg(&keys[2])
        .query(&mut con)
        .unwrap();
    assert_eq!(copied, 1);
    let v: String = con.get(&keys[2]).unwrap();
    assert_eq!(v, "payload");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn the_mesh_survives_sustained_cross_shard_pipelines() {
    // Many connections on every shard, each pipelining requests for keys on every shard:
    // the mesh carries full windows in both directions at once. Any stall fails the test
    // through the client's read timeout.
    let srv = Arc::new(Server::corekv(4, &[]));
    let handles: Vec<_> = (0..48)
        .map(|c| {
            let srv = srv.clone();
            std::thread::spawn(move || {
                let mut client = srv.client();
                for round in 0..15 {
                    let mut wire = Vec::new();
                    for i in 0..400 {
                        let key = format!("load:{}", (c * 7 + i) % 997);
                        corekv_protocol::request::encode_request(
                            &mut wire,
                            &["SET", &key, &format!("{c}:{round}:{i}")],
                        );
                        corekv_protocol::request::encode_request(&mut wire, &["GET", &key]);
                        corekv_protocol::request::encode_request(
                            &mut wire,
                            &[
                                "MGET",
                                &key,
                                &format!("load:{i}"),
                                &format!("load:{}", i + 500),
                            ],
                        );
                    }
                    client.send_raw(&wire);
                    for _ in 0..400 {
                        assert_eq!(client.read_reply(), b"+OK\r\n");
                        let get = client.read_reply();
                        assert!(get.starts_with(b"$"), "GET reply {get:?}");
                        let mget = client.read_reply();
                        assert!(mget.starts_with(b"*3\r\n"), "MGET reply {mget:?}");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("load client");
    }
    let mut c = srv.client();
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn info_client_list_and_keyspace_cover_every_shard() {
    let srv = Server::corekv(4, &[]);
    let mut held: Vec<redis::Connection> = (0..12).map(|_| srv.redis_conn()).collect();
    let mut con = srv.redis_conn();
    for k in key_per_shard("info", 4) {
        let _: () = con.set(&k, 1).unwrap();
    }
    let info: String = redis::cmd("INFO").query(&mut con).unwrap();
    assert!(info.contains("db0:keys=4,expires=0"), "{info}");
    assert!(info.contains("connected_clients:13"), "{info}");
    for s in 0..4 {
        assert!(
            info.contains(&format!("shard{s}:cpu=unpinned,listening=1,keys=1,")),
            "{info}"
        );
    }
    let only: String = redis::cmd("INFO").arg("keyspace").query(&mut con).unwrap();
    assert_eq!(only, "# Keyspace\r\ndb0:keys=4,expires=0,avg_ttl=0\r\n");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert_eq!(list.lines().count(), 13, "{list}");
    let me: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();
    let mine: String = redis::cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
    assert!(mine.starts_with(&format!("id={me} ")), "{mine}");
    assert!(mine.contains("cmd=client|info"), "{mine}");
    let ids: Vec<i64> = list
        .lines()
        .map(|l| l[3..l.find(' ').unwrap()].parse().unwrap())
        .collect();
    let picked: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("ID")
        .arg(ids[5])
        .arg(ids[1])
        .query(&mut con)
        .unwrap();
    let order: Vec<i64> = picked
        .lines()
        .map(|l| l[3..l.find(' ').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![ids[5], ids[1]],
        "CLIENT LIST ID keeps the order asked"
    );
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 4);
    let mut keys: Vec<String> = con.keys("*").unwrap();
    keys.sort();
    assert_eq!(keys.len(), 4);
    let random: String = redis::cmd("RANDOMKEY").query(&mut con).unwrap();
    assert!(keys.contains(&random));
    drop(held.drain(..));
    // Each shard sees its closes on its own schedule: wait for all of them.
    eventually(Duration::from_secs(10), || {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
        if info.contains("connected_clients:1\r\n") {
            Ok(())
        } else {
            Err(info)
        }
    });
}
