//! Protocol edge cases over raw sockets, asserting exact bytes: inline commands, pipelines,
//! malformed frames (Redis's error, then the connection closes, nothing else affected),
//! size limits, binary-safe data, RESP3.

mod common;

use common::{eventually, Client, Server, SHARD_COUNTS};
use corekv_protocol::frame::Frame;

#[test]
fn inline_and_multibulk_commands() {
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let mut c = srv.client();
        c.send_raw(b"PING\r\n");
        assert_eq!(c.read_reply(), b"+PONG\r\n");
        c.send_raw(b"SET \"a key\" 'a value'\r\n");
        assert_eq!(c.read_reply(), b"+OK\r\n");
        c.send_raw(b"*2\r\n$3\r\nGET\r\n$5\r\na key\r\n");
        assert_eq!(c.read_reply(), b"$7\r\na value\r\n");
        c.send_raw(b"ECHO \"\\x41\\n\"\n");
        assert_eq!(c.read_reply(), b"$2\r\nA\n\r\n");
        // Empty requests are skipped without a reply.
        c.send_raw(b"*0\r\n*-1\r\n\r\nPING\r\n");
        assert_eq!(c.read_reply(), b"+PONG\r\n");
    }
}

#[test]
fn pipelines_answer_in_order_in_pieces() {
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let mut c = srv.client();
        let mut wire = Vec::new();
        for i in 0..200 {
            corekv_protocol::request::encode_request(
                &mut wire,
                &["SET", &format!("key:{i}"), &format!("value:{i}")],
            );
            corekv_protocol::request::encode_request(&mut wire, &["GET", &format!("key:{i}")]);
        }
        // Send in awkward pieces so requests straddle reads.
        for chunk in wire.chunks(7) {
            c.send_raw(chunk);
        }
        for i in 0..200 {
            assert_eq!(c.read_reply(), b"+OK\r\n");
            let v = format!("value:{i}");
            assert_eq!(
                c.read_reply(),
                format!("${}\r\n{v}\r\n", v.len()).as_bytes()
            );
        }
    }
}

/// Sends `input` and expects exactly `expected` back, then the connection closed; a second
/// client still works and the data is intact.
fn assert_protocol_error(srv: &Server, input: &[u8], expected: &[u8]) {
    let mut other = srv.client();
    assert_eq!(other.call(&["SET", "survivor", "yes"]), b"+OK\r\n");
    let mut c = srv.client();
    c.send_raw(input);
    let got = c.read_to_close();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(other.call(&["GET", "survivor"]), b"$3\r\nyes\r\n");
    assert_eq!(other.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn malformed_frames_get_redis_errors_and_close() {
    let srv = Server::corekv(4, &["--proto-max-bulk-len", "1kb"]);
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*x\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1048577\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$x\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        // 1kb is 1024 bytes, as in Redis.
        (
            b"*1\r\n$1025\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"SET \"unbalanced\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"PING\r\n*2\r\n$3\r\nGET\r\n:1\r\n",
            b"+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n",
        ),
    ];
    for (input, expected) in cases {
        assert_protocol_error(&srv, input, expected);
    }
}

#[test]
fn oversized_lines_are_refused() {
    let srv = Server::corekv(1, &[]);
    let mut long_inline = vec![b'a'; 64 * 1024 + 10];
    long_inline.insert(0, b' ');
    assert_protocol_error(
        &srv,
        &long_inline,
        b"-ERR Protocol error: too big inline request\r\n",
    );
    let mut long_count = b"*".to_vec();
    long_count.extend(std::iter::repeat_n(b'1', 64 * 1024 + 10));
    assert_protocol_error(
        &srv,
        &long_count,
        b"-ERR Protocol error: too big mbulk count string\r\n",
    );
}

#[test]
fn declared_lengths_do_not_allocate() {
    // Clients that announce huge bulks but send little must not make the server reserve
    // what they announced.
    let srv = Server::corekv(1, &[]);
    let mut clients = Vec::new();
    for _ in 0..40 {
        let mut c = srv.client();
        c.send_raw(b"*2\r\n$3\r\nGET\r\n$500000000\r\nabcdefgh");
        clients.push(c);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut probe = srv.client();
    assert_eq!(probe.call(&["PING"]), b"+PONG\r\n");
    let rss_kb = srv.rss_kb();
    assert!(
        rss_kb < 150 * 1024,
        "RSS {rss_kb} KiB after 40 clients declared 500 MB each"
    );
}

#[test]
fn query_buffer_limit_disconnects() {
    let srv = Server::corekv(1, &["--client-query-buffer-limit", "64kb"]);
    let mut c = srv.client();
    // A bulk larger than the query buffer limit, sent for real.
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n");
    c.send_raw(&vec![b'x'; 100_000]);
    let got = c.read_to_close();
    assert!(got.is_empty(), "Redis closes without a reply; got {got:?}");
    assert_eq!(srv.client().call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn binary_safe_keys_and_values() {
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let mut c = srv.client();
        let key: &[u8] = b"k\0\r\n\xff";
        let value: &[u8] = b"\0\x01\r\n\xfe";
        c.send_bytes(&[b"SET", key, value]);
        assert_eq!(c.read_reply(), b"+OK\r\n");
        c.send_bytes(&[b"GET", key]);
        assert_eq!(c.read_reply(), b"$5\r\n\0\x01\r\n\xfe\r\n");
        let big = vec![b'z'; 3 * 1024 * 1024 + 7];
        c.send_bytes(&[b"SET", b"big", &big]);
        assert_eq!(c.read_reply(), b"+OK\r\n");
        c.send_bytes(&[b"STRLEN", b"big"]);
        assert_eq!(c.read_reply(), b":3145735\r\n");
        c.send_bytes(&[b"GET", b"big"]);
        let reply = c.read_reply();
        assert_eq!(&reply[..11], b"$3145735\r\nz");
        assert_eq!(reply.len(), 10 + big.len() + 2);
    }
}

#[test]
fn command_errors_match_redis_texts() {
    let srv = Server::corekv(4, &[]);
    let mut c = srv.client();
    assert_eq!(
        c.call_str(&["NOSUCH", "a", "b"]),
        "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        c.call_str(&["get"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        c.call_str(&["CLIENT", "nope"]),
        "-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        c.call_str(&["client"]),
        "-ERR wrong number of arguments for 'client' command\r\n"
    );
    assert_eq!(
        c.call_str(&["config", "get"]),
        "-ERR wrong number of arguments for 'config|get' command\r\n"
    );
    assert_eq!(
        c.call_str(&["sElEcT", "1"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(c.call_str(&["select", "0"]), "+OK\r\n");
    assert_eq!(
        c.call_str(&["PING", "a", "b"]),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
}

#[test]
fn command_alone_lists_every_command() {
    let srv = Server::corekv(2, &[]);
    let mut c = srv.client();
    let count = c.call_str(&["COMMAND", "COUNT"]);
    let Frame::Array(all) = c.read_frame_after(&["COMMAND"]) else {
        panic!("COMMAND replies with an array");
    };
    assert_eq!(format!(":{}\r\n", all.len()), count);
    assert!(all.len() > 40);
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n", "the server is still up");
}

#[test]
fn gathered_replies_keep_the_protocol_of_their_request() {
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let mut c = srv.client();
        // RESP2 requests pipelined before a HELLO 3 still get RESP2 replies.
        c.send_raw(b"RANDOMKEY\r\nINFO keyspace\r\nHELLO 3\r\nRANDOMKEY\r\n");
        assert_eq!(c.read_reply(), b"$-1\r\n");
        assert_eq!(c.read_reply(), b"$12\r\n# Keyspace\r\n\r\n");
        let hello = c.read_reply();
        assert_eq!(hello[0], b'%');
        assert_eq!(c.read_reply(), b"_\r\n");
    }
}

#[test]
fn memory_from_a_large_value_is_released() {
    // A value owned by another shard travels through request and reply batches and the
    // connection's reply assembly; none of them may keep its size afterwards.
    let srv = Server::corekv(2, &[]);
    let map = corekv_shard::slot::SlotMap::new(2);
    let keys: Vec<String> = (0..).map(|i| format!("big{i}")).take(64).collect();
    let k0 = keys
        .iter()
        .find(|k| map.shard_of(k.as_bytes()) == 0)
        .unwrap()
        .clone();
    let k1 = keys
        .iter()
        .find(|k| map.shard_of(k.as_bytes()) == 1)
        .unwrap()
        .clone();
    let mut c = srv.client();
    c.call(&["PING"]);
    let baseline = srv.rss_kb();
    let value = vec![b'x'; 64 * 1024 * 1024];
    for key in [&k0, &k1] {
        for _ in 0..3 {
            c.send_bytes(&[b"SET", key.as_bytes(), &value]);
            assert_eq!(c.read_reply(), b"+OK\r\n");
            c.send_bytes(&[b"GET", key.as_bytes()]);
            assert_eq!(c.read_reply().len(), value.len() + 13);
            assert_eq!(c.call(&["DEL", key]), b":1\r\n");
        }
    }
    // Housekeeping returns memory once a second; frees on another shard's thread and
    // the allocator's purge delay can take a few rounds on a loaded machine.
    eventually(std::time::Duration::from_secs(15), || {
        c.call(&["PING"]);
        let rss = srv.rss_kb();
        if rss < baseline + 48 * 1024 {
            Ok(())
        } else {
            Err(format!(
                "RSS {rss} KiB after 64 MiB values came and went (baseline {baseline} KiB)"
            ))
        }
    });
}

#[test]
fn quit_replies_then_closes() {
    let srv = Server::corekv(1, &[]);
    let mut c = srv.client();
    c.send_raw(b"PING\r\nQUIT\r\nPING\r\n");
    assert_eq!(c.read_to_close(), b"+PONG\r\n+OK\r\n");
}

#[test]
fn http_requests_are_dropped() {
    let srv = Server::corekv(1, &[]);
    let mut c = srv.client();
    c.send_raw(b"POST / HTTP/1.1\r\nHost: example\r\n\r\n");
    assert_eq!(c.read_to_close(), b"");
}

#[test]
fn resp3_after_hello_3() {
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        let mut c = srv.client();
        let Frame::Map(hello) = c.read_frame_after(&["HELLO", "3"]) else {
            panic!("HELLO 3 replies with a map");
        };
        let field = |name: &str| {
            hello
                .iter()
                .find(|(k, _)| k.as_bytes() == Some(name.as_bytes()))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(field("proto"), Some(Frame::Integer(3)));
        assert_eq!(field("server"), Some(Frame::Bulk(b"redis".to_vec())));
        assert_eq!(field("mode"), Some(Frame::Bulk(b"standalone".to_vec())));
        // Nulls and maps in RESP3, from this shard and from others.
        for k in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(c.call(&["GET", k]), b"_\r\n");
        }
        assert_eq!(c.call(&["MGET", "a", "b", "c"]), b"*3\r\n_\r\n_\r\n_\r\n");
        assert_eq!(
            c.call(&["CONFIG", "GET", "appendonly"]),
            b"%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
        );
        c.call(&["HELLO", "2"]);
        assert_eq!(c.call(&["GET", "a"]), b"$-1\r\n");
        assert_eq!(
            c.call_str(&["HELLO", "4"]),
            "-NOPROTO unsupported protocol version\r\n"
        );
        c.call(&["HELLO", "3"]);
        assert_eq!(c.call(&["RESET"]), b"+RESET\r\n");
        assert_eq!(c.call(&["GET", "a"]), b"$-1\r\n", "RESET returns to RESP2");
    }
}

trait FrameAfter {
    fn read_frame_after(&mut self, args: &[&str]) -> Frame;
}

impl FrameAfter for Client {
    fn read_frame_after(&mut self, args: &[&str]) -> Frame {
        self.send(args);
        self.read_frame()
    }
}

#[test]
fn echo_listener_echoes() {
    let srv = Server::corekv(2, &["--echo-port", "0"]);
    let port = srv.echo_port.expect("echo port reported");
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut got = Vec::new();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    s.write_all(&payload).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, payload);
}
