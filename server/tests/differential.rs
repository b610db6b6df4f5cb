//! Differential tests: the same command sequences against `redis-server` (Redis 7, from
//! the machine's packages) and corekv, replies compared byte for byte. Fixed cases cover
//! the edge cases of every supported command; seeded random sequences over a small key
//! set (with hash tags, so multi-key commands both stay on one shard and cross shards)
//! cover their interplay. corekv runs with one shard and with four.
//!
//! A failure prints the case and the command; random cases print their seed.

mod common;

use common::{Client, Server};
use corekv_protocol::frame::{self, Frame};

/// Replies whose order Redis does not define are put in a canonical order.
fn normalize(cmd: &[String], reply: Vec<u8>) -> Vec<u8> {
    let name = cmd[0].to_ascii_lowercase();
    if name == "keys" {
        if let Ok(Some((Frame::Array(mut items), _))) = frame::parse(&reply) {
            items.sort_by(|a, b| a.as_bytes().cmp(&b.as_bytes()));
            let mut out = Vec::new();
            Frame::Array(items).encode(&mut out);
            return out;
        }
    }
    if name == "config" && cmd.get(1).is_some_and(|s| s.eq_ignore_ascii_case("get")) {
        // Redis lists matches in the order of a randomly seeded dict: compare as a set.
        match frame::parse(&reply) {
            Ok(Some((Frame::Array(items), _))) => {
                let mut pairs: Vec<Vec<Frame>> = items.chunks(2).map(<[Frame]>::to_vec).collect();
                pairs.sort_by(|a, b| a[0].as_bytes().cmp(&b[0].as_bytes()));
                let mut out = Vec::new();
                Frame::Array(pairs.concat()).encode(&mut out);
                return out;
            }
            Ok(Some((Frame::Map(mut pairs), _))) => {
                pairs.sort_by(|a, b| a.0.as_bytes().cmp(&b.0.as_bytes()));
                let mut out = Vec::new();
                Frame::Map(pairs).encode(&mut out);
                return out;
            }
            _ => {}
        }
    }
    reply
}

/// `got` for comparison with `want`: an absolute deadline that a relative TTL produced
/// (`SETEX k 100`, then `EXPIRETIME k`) depends on when each server ran the command, so
/// it may differ by the rounding step when a boundary falls between the two runs. Such a
/// reply counts as `want`; any other difference stays.
fn same_deadline(cmd: &[String], got: Vec<u8>, want: &[u8]) -> Vec<u8> {
    let step = match cmd[0].to_ascii_lowercase().as_str() {
        "expiretime" => 1,
        "pexpiretime" => 1000,
        _ => return got,
    };
    let int = |b: &[u8]| match frame::parse(b) {
        Ok(Some((Frame::Integer(v), _))) if v > 0 => Some(v),
        _ => None,
    };
    match (int(&got), int(want)) {
        (Some(g), Some(w)) if (g - w).abs() <= step => want.to_vec(),
        _ => got,
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n")
}

/// Runs every case against both servers; each case starts from an empty database on a
/// fresh connection.
fn compare(cases: &[Vec<Vec<String>>], label: &dyn Fn(usize) -> String) {
    let redis = Server::redis();
    for shards in common::SHARD_COUNTS {
        let corekv = Server::corekv(shards, &[]);
        for (i, case) in cases.iter().enumerate() {
            let mut r = redis.client();
            let mut k = corekv.client();
            r.call(&["FLUSHALL"]);
            k.call(&["FLUSHALL"]);
            run_case(&mut r, &mut k, case, &|| {
                format!("{} ({shards} shards)", label(i))
            });
        }
    }
}

fn run_case(r: &mut Client, k: &mut Client, case: &[Vec<String>], label: &dyn Fn() -> String) {
    for cmd in case {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let want = normalize(cmd, r.call(&args));
        let got = same_deadline(cmd, normalize(cmd, k.call(&args)), &want);
        if cmd[0].eq_ignore_ascii_case("hello") && matches!(want.first(), Some(b'%' | b'*')) {
            // A successful HELLO carries the connection id, which differs by design.
            assert_eq!(got.first(), want.first(), "HELLO reply type, {}", label());
            continue;
        }
        assert_eq!(
            show(&got),
            show(&want),
            "\n{}\ncommand: {:?}\nwhole case: {:?}",
            label(),
            cmd,
            case
        );
    }
}

/// Builds a case from lines of space-separated words (no quoting needed in these cases).
fn case(lines: &[&str]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

fn fixed_cases() -> Vec<Vec<Vec<String>>> {
    vec![
        // SET and its options
        case(&["SET a 1", "GET a", "SET a 2 NX", "SET a 3 XX", "GET a", "SET b 1 XX", "GET b"]),
        case(&["SET a 1 GET", "SET a 2 GET", "SET a 3 NX GET", "SET b 3 XX GET", "GET b"]),
        case(&["SET a 1 NX XX", "SET a 1 XX NX", "SET a 1 EX", "SET a 1 EX 1 PX 1", "SET a 1 FOO"]),
        case(&["SET a 1 EX 0", "SET a 1 EX -1", "SET a 1 EX abc", "SET a 1 PX 0", "SET a 1 EXAT 0"]),
        case(&["SET a 1 EX 9223372036854775", "SET a 1 EX 9223372036854776"]),
        case(&["SET a 1 EX 100", "SET a 1 EX 100 EX 200", "SET a 1 KEEPTTL", "SET a 1 KEEPTTL EX 1"]),
        case(&["SET a 1 EXAT 1", "GET a", "EXISTS a", "SET a 1 PXAT 1000", "GET a"]),
        case(&["SET a 1 ex 100 nx", "SET a 2 nx", "set a 3 xx get", "get a"]),
        case(&["SET", "SET a", "GET", "GET a b"]),
        // SETNX, GETSET, GETDEL
        case(&["SETNX a 1", "SETNX a 2", "GET a", "GETSET a 3", "GETSET b 4", "GET b"]),
        case(&["GETDEL a", "SET a 1", "GETDEL a", "GET a", "GETDEL a"]),
        // MSET, MGET, MSETNX
        case(&["MSET a 1 b 2 c 3", "MGET a b c d", "MSET a", "MSET a 1 b", "MGET"]),
        case(&["MSETNX a 1 b 2", "MSETNX b 3 c 4", "MGET a b c", "MSETNX a", "MSETNX a 1 b"]),
        case(&["MSETNX {t}a 1 {t}b 2", "MSETNX {t}b 3 {t}c 4", "MGET {t}a {t}b {t}c"]),
        case(&["MSET a 1 a 2", "GET a", "MSETNX x 1 x 2", "GET x"]),
        // APPEND, STRLEN
        case(&["APPEND a hello", "APPEND a world", "GET a", "STRLEN a", "STRLEN nope"]),
        case(&["SET n 12", "APPEND n 3", "GET n", "STRLEN n", "INCR n"]),
        // counters
        case(&["INCR c", "INCR c", "DECR c", "INCRBY c 10", "DECRBY c 3", "GET c"]),
        case(&["SET c 9223372036854775807", "INCR c", "SET c -9223372036854775808", "DECR c"]),
        case(&["INCRBY c abc", "INCRBY c 1.5", "DECRBY c -9223372036854775808", "INCRBY c 9223372036854775808"]),
        case(&["SET c abc", "INCR c", "SET c 010", "INCR c", "SET c -0", "INCR c", "SET c +1", "INCR c"]),
        case(&["SET c 1.0", "INCR c", "SET c 10", "DECRBY c 20", "GET c"]),
        // INCRBYFLOAT in long double, as Redis
        case(&["SET f 10.50", "INCRBYFLOAT f 0.1", "INCRBYFLOAT f -5", "GET f"]),
        case(&["SET f 5.0e3", "INCRBYFLOAT f 2.0e2", "INCRBYFLOAT g 3", "INCRBYFLOAT g 1.5e1"]),
        case(&["INCRBYFLOAT f abc", "INCRBYFLOAT f inf", "INCRBYFLOAT f nan", "INCRBYFLOAT f 1e5000"]),
        case(&["SET f abc", "INCRBYFLOAT f 1", "SET f 1", "INCRBYFLOAT f 0.3333333333333333333"]),
        case(&["INCRBYFLOAT f 0x10", "INCRBYFLOAT f 1e308", "INCRBYFLOAT f 1e308", "GET f"]),
        case(&["INCRBYFLOAT f -0.0", "INCRBYFLOAT f 0.1", "INCRBYFLOAT f -0.1", "GET f"]),
        // GETRANGE / SUBSTR / SETRANGE
        case(&[
            "SET s HelloWorld",
            "GETRANGE s 0 4",
            "GETRANGE s -5 -1",
            "GETRANGE s 5 1",
            "GETRANGE s -1 -5",
            "GETRANGE s 0 100",
            "GETRANGE s 100 200",
            "SUBSTR s 1 3",
            "GETRANGE nope 0 1",
            "GETRANGE s a 1",
        ]),
        case(&["SET i 12345", "GETRANGE i 1 2", "SETRANGE i 1 x", "GET i"]),
        case(&[
            "SETRANGE s 5 abc",
            "GET s",
            "SETRANGE s 0 X",
            "SETRANGE s -1 X",
            "SETRANGE t 3",
            "SETRANGE new 0 ",
            "EXISTS new",
            "SETRANGE s 536870911 ab",
        ]),
        // keyspace
        case(&["SET a 1", "SET b 2", "DEL a b c", "DEL a", "EXISTS a b", "UNLINK b", "DEL"]),
        case(&["SET a 1", "EXISTS a a a nope", "TOUCH a nope a", "TYPE a", "TYPE nope"]),
        case(&["RENAME nope x", "SET a 1", "RENAME a a", "RENAME a b", "GET a", "GET b"]),
        case(&["SET a 1", "SET b 2", "RENAMENX a b", "RENAMENX a c", "MGET a b c", "RENAMENX c c"]),
        case(&["SET a 1", "SET b 2", "RENAME a b", "MGET a b"]),
        case(&["SET {t}a 1", "RENAME {t}a {t}b", "GET {t}b", "RENAMENX {t}b {t}a", "GET {t}a"]),
        case(&[
            "COPY nope x",
            "SET a 1",
            "COPY a b",
            "COPY a b",
            "COPY a b REPLACE",
            "COPY a a",
            "COPY a c DB 0",
            "COPY a c DB 1",
            "COPY a c DB x",
            "COPY a c FOO",
            "MGET a b c",
        ]),
        case(&["SET a 1", "SET b 2", "COPY a b replace", "GET b", "COPY a z db", "COPY {t}x {t}y"]),
        case(&["MSET a 1 b 2 c 3", "DBSIZE", "FLUSHDB", "DBSIZE", "FLUSHDB ASYNC", "FLUSHALL SYNC"]),
        case(&["FLUSHDB x", "FLUSHALL x y", "RANDOMKEY", "DBSIZE"]),
        case(&[
            "MSET hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5 h*llo 6",
            "KEYS h?llo",
            "KEYS h*llo",
            "KEYS h[ae]llo",
            "KEYS h[^e]llo",
            "KEYS h[a-b]llo",
            "KEYS h\\*llo",
            "KEYS *",
            "KEYS nope*",
        ]),
        case(&["SET k 1", "RANDOMKEY", "DEL k", "RANDOMKEY"]),
        // connection
        case(&["PING", "PING hello", "PING a b", "ECHO hi", "ECHO", "ECHO a b"]),
        case(&["SELECT 0", "SELECT 1", "SELECT -1", "SELECT abc", "SELECT 99999999999"]),
        case(&["CLIENT GETNAME", "CLIENT SETNAME x", "CLIENT GETNAME", "CLIENT SETNAME", "CLIENT GETNAME"]),
        case(&["CLIENT SETNAME a\nb", "CLIENT SETNAME é", "CLIENT NOPE", "CLIENT", "CLIENT ID x"]),
        case(&["HELLO abc", "HELLO 1", "HELLO 4", "HELLO 3 FOO", "HELLO 3 AUTH default", "HELLO 2 SETNAME"]),
        case(&["HELLO 3 AUTH nobody pw", "HELLO 3 SETNAME a\tb"]),
        // server
        case(&["CONFIG GET save", "CONFIG GET appendonly", "CONFIG GET SAVE", "CONFIG GET databases"]),
        case(&["CONFIG GET nosuch", "CONFIG GET", "CONFIG NOPE", "CONFIG GET save appendonly"]),
        case(&[
            "COMMAND INFO get",
            "COMMAND INFO set mget",
            "COMMAND INFO nosuch",
            "COMMAND INFO client|list",
            "COMMAND DOCS get",
            "COMMAND DOCS set",
            "COMMAND DOCS nosuch",
        ]),
        case(&[
            "COMMAND GETKEYS mset a 1 b 2",
            "COMMAND GETKEYS get",
            "COMMAND GETKEYS ping",
            "COMMAND GETKEYS nosuch",
            "COMMAND GETKEYS copy a b",
            "COMMAND GETKEYS",
        ]),
        case(&["TIME a"]),
        // unknown commands, with long arguments
        case(&[
            "NOSUCH",
            "NOSUCH a b c",
            "nosuch aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbb",
            "GeT",
            "gEt a",
        ]),
        // expiry: options, replies, and what each write does to a deadline
        case(&[
            "SET k v",
            "TTL k",
            "PTTL k",
            "EXPIRETIME k",
            "TTL nope",
            "PEXPIRETIME nope",
            "EXPIRE k 100",
            "TTL k",
            "EXPIRE k 100 NX",
            "EXPIRE k 200 XX",
            "EXPIRE k 50 GT",
            "EXPIRE k 50 LT",
            "TTL k",
            "EXPIRE k 10 NX XX",
            "EXPIRE k 10 GT LT",
            "EXPIRE k 10 FOO",
            "EXPIRE k abc",
            "EXPIRE k 9223372036854776",
            "PEXPIRE k 9223372036854775807",
            "EXPIRE nope 10",
            "PERSIST k",
            "PERSIST k",
            "TTL k",
            "PERSIST nope",
        ]),
        case(&[
            "SET k v",
            "EXPIREAT k 4102444800",
            "EXPIRETIME k",
            "PEXPIRETIME k",
            "PEXPIREAT k 4102444800123",
            "PEXPIRETIME k",
            "EXPIRETIME k",
            "EXPIREAT k 4102444800 GT",
            "EXPIREAT k 1",
            "EXISTS k",
            "SET k v",
            "EXPIRE k 0",
            "EXISTS k",
            "SET k v",
            "PEXPIRE k -5",
            "EXISTS k",
        ]),
        case(&[
            "SET k 10 EX 100",
            "APPEND k 1",
            "TTL k",
            "INCR k",
            "TTL k",
            "SETRANGE k 0 9",
            "TTL k",
            "INCRBYFLOAT k 1.5",
            "TTL k",
            "SET k v KEEPTTL",
            "TTL k",
            "SET k v",
            "TTL k",
            "SET k v EX 100",
            "GETSET k w",
            "TTL k",
            "SET k v PX 100000",
            "MSET k x",
            "TTL k",
        ]),
        // An entry is one block: values that grow past it, deadlines added and removed
        // (the block's header changes size), integers turning into text.
        case(&[
            "SET {g}k aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa EX 100",
            "APPEND {g}k bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "TTL {g}k",
            "PERSIST {g}k",
            "GET {g}k",
            "EXPIRE {g}k 100",
            "SETRANGE {g}k 600 z",
            "GET {g}k",
            "STRLEN {g}k",
            "RENAME {g}k {g}j",
            "TTL {g}j",
            "COPY {g}j {g}c",
            "TTL {g}c",
            "GETRANGE {g}c 495 510",
            "SET {g}n 1234567890123 EX 100",
            "PERSIST {g}n",
            "INCRBY {g}n -1234567890124",
            "APPEND {g}n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "EXPIRE {g}n 100",
            "SET {g}n 7 KEEPTTL",
            "TTL {g}n",
            "GET {g}n",
        ]),
        case(&[
            "SET {t}a v EXAT 4102444800",
            "RENAME {t}a {t}b",
            "EXPIRETIME {t}b",
            "COPY {t}b {t}c",
            "EXPIRETIME {t}c",
            "SET a v EXAT 4102444800",
            "RENAME a b",
            "EXPIRETIME b",
            "COPY b c",
            "EXPIRETIME c",
            "RENAMENX c d",
            "EXPIRETIME d",
        ]),
        case(&[
            "SETEX k 100 v",
            "TTL k",
            "GET k",
            "PSETEX k 100000 w",
            "TTL k",
            "SETEX k 0 v",
            "SETEX k -1 v",
            "SETEX k abc v",
            "PSETEX k 0 v",
            "SETEX k 100",
            "GET k",
        ]),
        case(&[
            "SET k v",
            "GETEX k",
            "TTL k",
            "GETEX k EX 100",
            "TTL k",
            "GETEX k PERSIST",
            "TTL k",
            "GETEX k EXAT 4102444800",
            "EXPIRETIME k",
            "GETEX k PX 0",
            "GETEX k EX abc",
            "GETEX k EX 10 PX 10",
            "GETEX k PERSIST EX 10",
            "GETEX k NX",
            "GETEX k KEEPTTL",
            "GETEX nope EX abc",
            "GETEX k PXAT 1",
            "EXISTS k",
        ]),
        case(&[
            "CONFIG GET timeout",
            "CONFIG SET timeout 300",
            "CONFIG GET timeout",
            "CONFIG SET TIMEOUT 0",
            "CONFIG SET timeout x",
            "CONFIG SET timeout -1",
            "CONFIG SET timeout 2147483648",
            "CONFIG SET nosuch 1",
            "CONFIG SET timeout 1 nosuch 2",
            "CONFIG SET timeout",
            "CONFIG SET timeout 1 timeout 2",
            "CONFIG SET timeout 0 maxclients 0",
            "CONFIG GET timeout",
            "CONFIG SET proto-max-bulk-len 1k",
            "CONFIG SET proto-max-bulk-len abc",
            "CONFIG SET maxclients 10000",
            "CONFIG GET maxclients",
        ]),
        // RESP3
        case(&[
            "HELLO 3 SETNAME x",
            "GET nope",
            "MGET a b",
            "SET a 1",
            "MGET a b",
            "CONFIG GET save",
            "COMMAND INFO get",
            "COMMAND DOCS get",
            "CLIENT GETNAME",
            "EXISTS a",
            "RANDOMKEY",
        ]),
    ]
}

#[test]
fn fixed_cases_match_redis() {
    compare(&fixed_cases(), &|i| format!("fixed case {i}"));
}

#[test]
fn resp3_cases_match_redis() {
    // The RESP3 case above without its HELLO: switch both, then compare.
    let redis = Server::redis();
    for shards in common::SHARD_COUNTS {
        let corekv = Server::corekv(shards, &[]);
        let mut r = redis.client();
        let mut k = corekv.client();
        r.call(&["FLUSHALL"]);
        k.call(&["FLUSHALL"]);
        r.call(&["HELLO", "3", "SETNAME", "x"]);
        k.call(&["HELLO", "3", "SETNAME", "x"]);
        let cmds = case(&[
            "GET nope",
            "MGET a b c d",
            "MSET a 1 c 3",
            "MGET a b c d",
            "CONFIG GET save",
            "COMMAND INFO get mset",
            "COMMAND DOCS get",
            "CLIENT GETNAME",
            "EXISTS a",
            "SET a 1 GET",
            "SET z 1 NX GET",
            "GETDEL nope",
            "KEYS *",
        ]);
        run_case(&mut r, &mut k, &cmds, &|| {
            format!("RESP3 ({shards} shards)")
        });
    }
}

/// A small deterministic generator of command sequences.
struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn key(&mut self) -> String {
        const KEYS: &[&str] = &[
            "a", "b", "c", "d", "k1", "k2", "k3", "{t}x", "{t}y", "{t}z", "{u}1", "{u}2",
        ];
        KEYS[self.rng.usize(..KEYS.len())].to_string()
    }

    fn value(&mut self) -> String {
        match self.rng.u8(..6) {
            0 => self.rng.i64(-20..20).to_string(),
            1 => "9223372036854775806".into(),
            2 => "1.5".into(),
            3 => String::new(),
            4 => "abc".into(),
            _ => format!("v{}", self.rng.u16(..100)),
        }
    }

    fn keys(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.key()).collect()
    }

    fn command(&mut self) -> Vec<String> {
        let k = self.key();
        let words: Vec<String> = match self.rng.u8(..38) {
            0 => vec!["SET".into(), k, self.value()],
            1 => {
                let opt =
                    ["NX", "XX", "GET", "KEEPTTL", "EX", "NX GET", "XX GET"][self.rng.usize(..7)];
                let mut w = vec!["SET".into(), k, self.value()];
                w.extend(opt.split(' ').map(String::from));
                if opt == "EX" {
                    w.push(["100", "0", "x"][self.rng.usize(..3)].into());
                }
                w
            }
            2 | 3 => vec!["GET".into(), k],
            4 => vec!["INCR".into(), k],
            5 => vec!["DECRBY".into(), k, self.rng.i64(-5..5).to_string()],
            6 => vec![
                "INCRBYFLOAT".into(),
                k,
                ["0.1", "-2.5", "1e3", "x"][self.rng.usize(..4)].into(),
            ],
            7 => vec!["APPEND".into(), k, self.value()],
            8 => vec!["STRLEN".into(), k],
            9 => vec![
                "GETRANGE".into(),
                k,
                self.rng.i64(-4..4).to_string(),
                self.rng.i64(-4..4).to_string(),
            ],
            10 => vec![
                "SETRANGE".into(),
                k,
                self.rng.i64(-1..6).to_string(),
                self.value(),
            ],
            11 => vec!["GETSET".into(), k, self.value()],
            12 => vec!["GETDEL".into(), k],
            13 => vec!["SETNX".into(), k, self.value()],
            14 | 15 => {
                let mut w = vec!["MGET".into()];
                let n = self.rng.usize(1..5);
                w.extend(self.keys(n));
                w
            }
            16 | 17 => {
                let mut w = vec!["MSET".into()];
                for _ in 0..self.rng.usize(1..4) {
                    w.push(self.key());
                    w.push(self.value());
                }
                w
            }
            18 => {
                let mut w = vec!["MSETNX".into()];
                for _ in 0..self.rng.usize(1..4) {
                    w.push(self.key());
                    w.push(self.value());
                }
                w
            }
            19 | 20 => {
                let mut w = vec![["DEL", "UNLINK", "EXISTS", "TOUCH"][self.rng.usize(..4)].into()];
                let n = self.rng.usize(1..4);
                w.extend(self.keys(n));
                w
            }
            21 => vec!["TYPE".into(), k],
            22 => vec!["RENAME".into(), k, self.key()],
            23 => vec!["RENAMENX".into(), k, self.key()],
            24 => {
                let mut w = vec!["COPY".into(), k, self.key()];
                if self.rng.bool() {
                    w.push("REPLACE".into());
                }
                w
            }
            25 => vec!["DBSIZE".into()],
            26 => vec![
                "KEYS".into(),
                ["*", "k*", "{t}*", "?"][self.rng.usize(..4)].into(),
            ],
            27 => vec!["EXISTS".into(), k],
            28 => vec![
                "INCRBY".into(),
                k,
                ["1", "-1", "9223372036854775807", "x"][self.rng.usize(..4)].into(),
            ],
            29 => vec!["DECR".into(), k],
            30 => vec!["SUBSTR".into(), k, "0".into(), "-1".into()],
            32 => {
                let mut w = vec![
                    "EXPIRE".into(),
                    k,
                    ["100", "1000", "0", "-1"][self.rng.usize(..4)].into(),
                ];
                if self.rng.bool() {
                    w.push(["NX", "XX", "GT", "LT"][self.rng.usize(..4)].into());
                }
                w
            }
            33 => vec![
                ["TTL", "PERSIST", "EXPIRETIME"][self.rng.usize(..3)].into(),
                k,
            ],
            34 => vec![
                "SETEX".into(),
                k,
                ["100", "0"][self.rng.usize(..2)].into(),
                self.value(),
            ],
            35 => {
                let opt: &[&str] =
                    [&["EX", "100"][..], &["PERSIST"], &["PXAT", "1"], &[]][self.rng.usize(..4)];
                let mut w = vec!["GETEX".into(), k];
                w.extend(opt.iter().map(|s| s.to_string()));
                w
            }
            36 => vec!["EXPIREAT".into(), k, "4102444800".into()],
            _ => vec!["FLUSHDB".into()],
        };
        words
    }
}

#[test]
fn random_sequences_match_redis() {
    let seeds: Vec<u64> = (1..=150).collect();
    let cases: Vec<Vec<Vec<String>>> = seeds
        .iter()
        .map(|&seed| {
            let mut g = Gen {
                rng: fastrand::Rng::with_seed(seed),
            };
            (0..40).map(|_| g.command()).collect()
        })
        .collect();
    compare(&cases, &|i| format!("random case, seed {}", seeds[i]));
}

#[test]
fn pipelined_random_sequences_match_redis() {
    // The same commands sent as one pipeline: replies must come back identical and in
    // order whichever shards served them.
    let redis = Server::redis();
    let corekv = Server::corekv(4, &[]);
    for seed in 1000..1020u64 {
        let mut g = Gen {
            rng: fastrand::Rng::with_seed(seed),
        };
        let cmds: Vec<Vec<String>> = (0..300).map(|_| g.command()).collect();
        let mut wire = Vec::new();
        for c in &cmds {
            corekv_protocol::request::encode_request(&mut wire, c);
        }
        let mut r = redis.client();
        let mut k = corekv.client();
        r.call(&["FLUSHALL"]);
        k.call(&["FLUSHALL"]);
        r.send_raw(&wire);
        k.send_raw(&wire);
        for c in &cmds {
            let want = normalize(c, r.read_reply());
            let got = same_deadline(c, normalize(c, k.read_reply()), &want);
            assert_eq!(show(&got), show(&want), "seed {seed}, command {c:?}");
        }
    }
}

#[test]
fn scan_visits_every_key_like_keys() {
    let corekv = Server::corekv(4, &[]);
    let mut k = corekv.client();
    for i in 0..500 {
        k.call(&["SET", &format!("key:{i}"), "v"]);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let Frame::Array(parts) = ({
            k.send(&["SCAN", &cursor, "COUNT", "17", "MATCH", "key:*"]);
            k.read_frame()
        }) else {
            panic!("SCAN replies with an array")
        };
        cursor = String::from_utf8(parts[0].as_bytes().unwrap().to_vec()).unwrap();
        let Frame::Array(keys) = &parts[1] else {
            panic!()
        };
        for key in keys {
            seen.insert(key.as_bytes().unwrap().to_vec());
        }
        calls += 1;
        if cursor == "0" {
            break;
        }
        assert!(calls < 1000, "SCAN does not terminate");
    }
    assert_eq!(seen.len(), 500);
    assert_eq!(k.call_str(&["SCAN", "x"]), "-ERR invalid cursor\r\n");
    assert_eq!(
        k.call_str(&["SCAN", "0", "COUNT", "0"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(k.call_str(&["SCAN", "0", "TYPE"]), "-ERR syntax error\r\n");
    assert_eq!(
        k.call_str(&["SCAN", "0", "COUNT", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    // TYPE filters: every key is a string.
    k.send(&["SCAN", "0", "COUNT", "1000", "TYPE", "list"]);
    let Frame::Array(parts) = k.read_frame() else {
        panic!()
    };
    assert_eq!(parts[1], Frame::Array(vec![]));
}
