//! Connection commands: PING, ECHO, SELECT, HELLO, RESET and CLIENT, as Redis 7's
//! `networking.c` behaves (CLIENT SETINFO as Redis 7.2). They run on the connection's own
//! shard and change or report that connection's state.

use corekv_protocol::{number::parse_i64, Proto, Reply};

use super::{errors, is, Args, Conn};
use crate::conn::{Client, ConnId};
use crate::shard::Shard;

/// Runs a connection command for `conn`.
pub fn run(sh: &mut Shard, conn: ConnId, which: Conn, args: Args) {
    let now = sh.now();
    let Some(c) = sh.conns.get_mut(conn) else {
        return;
    };
    let proto = c.proto;
    let mut out_buf = std::mem::take(&mut c.replies.local);
    let start = out_buf.len();
    match which {
        Conn::Hello => hello(c, args, &mut out_buf),
        Conn::Reset => {
            c.proto = Proto::Resp2;
            c.name = None;
            Reply::new(&mut out_buf, Proto::Resp2).simple(b"RESET");
        }
        other => {
            let mut out = Reply::new(&mut out_buf, proto);
            match other {
                Conn::Ping => {
                    if args.len() > 2 {
                        super::arity_error(&mut out, "ping");
                    } else if args.len() == 2 {
                        out.bulk(args.get(1));
                    } else {
                        out.simple(b"PONG");
                    }
                }
                Conn::Echo => out.bulk(args.get(1)),
                Conn::Select => match super::int32_arg(&mut out, args.get(1)) {
                    None => {}
                    Some(0) => out.ok(),
                    Some(_) => out.err(errors::DB_RANGE),
                },
                Conn::ClientId => out.int(c.id as i64),
                Conn::ClientSetName => {
                    if set_name(c, args.get(2), &mut out) {
                        out.ok();
                    }
                }
                Conn::ClientGetName => match &c.name {
                    Some(name) => out.bulk(name),
                    None => out.null(),
                },
                Conn::ClientSetInfo => set_info(c, args, &mut out),
                Conn::ClientInfo => {
                    let mut line = Vec::new();
                    client_line(c, now, &mut line);
                    out.verbatim(b"txt", &line);
                }
                Conn::ClientHelp => help(
                    &mut out,
                    args.get(0),
                    &[
                        "GETNAME",
                        "    Return the name of the current connection.",
                        "ID",
                        "    Return the ID of the current connection.",
                        "INFO",
                        "    Return information about the current client connection.",
                        "LIST [options ...]",
                        "    Return information about client connections. Options:",
                        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                        "      Return clients of specified type.",
                        "    * ID <client-id> [<client-id> ...]",
                        "      Return clients with the given IDs.",
                        "SETINFO <option> <value>",
                        "    Set client meta attributes. Options are:",
                        "    * LIB-NAME: the client library name.",
                        "    * LIB-VER: the client library version.",
                        "SETNAME <name>",
                        "    Assign the name <name> to the current connection.",
                    ],
                ),
                _ => unreachable!("not a connection command"),
            }
        }
    }
    let failed = out_buf.get(start) == Some(&b'-');
    let c = sh.conns.get_mut(conn).expect("still connected");
    c.replies.local = out_buf;
    if failed {
        sh.stats.error_replies += 1;
    }
}

/// Writes Redis's help reply: a header naming the command, the lines, then HELP.
pub fn help(out: &mut Reply, command: &[u8], lines: &[&str]) {
    out.array(lines.len() + 3);
    let mut header = command.to_ascii_uppercase();
    header.extend_from_slice(b" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    out.simple(&header);
    for line in lines {
        out.simple(line.as_bytes());
    }
    out.simple(b"HELP");
    out.simple(b"    Print this help.");
}

/// CLIENT SETNAME's rule: printable ASCII without spaces; empty clears the name. Writes
/// the error and returns false when the name is refused.
fn set_name(c: &mut Client, name: &[u8], out: &mut Reply) -> bool {
    if name.is_empty() {
        c.name = None;
        return true;
    }
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        out.err("Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    c.name = Some(name.to_vec());
    true
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2).
fn set_info(c: &mut Client, args: Args, out: &mut Reply) {
    let (attr, value) = (args.get(2), args.get(3));
    let lib_name = is(attr, "lib-name");
    if !lib_name && !is(attr, "lib-ver") {
        out.err(&format!(
            "Unrecognized option '{}'",
            String::from_utf8_lossy(super::cstr(attr))
        ));
        return;
    }
    if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        let which = if lib_name { "lib-name" } else { "lib-ver" };
        out.err(&format!(
            "{which} cannot contain spaces, newlines or special characters."
        ));
        return;
    }
    let value = (!value.is_empty()).then(|| value.to_vec());
    if lib_name {
        c.lib_name = value;
    } else {
        c.lib_ver = value;
    }
    out.ok();
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(c: &mut Client, args: Args, out: &mut Vec<u8>) {
    let mut version = None;
    let mut next = 1;
    if args.len() >= 2 {
        let Some(v) = parse_i64(args.get(1)) else {
            Reply::new(out, c.proto).err("Protocol version is not an integer or out of range");
            return;
        };
        if !(2..=3).contains(&v) {
            Reply::new(out, c.proto).error(b"NOPROTO unsupported protocol version");
            return;
        }
        version = Some(v);
        next = 2;
    }
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        if is(opt, "auth") && more >= 2 {
            // No requirepass yet: the default user takes any password, as Redis's
            // `nopass` default user does; other users do not exist.
            if args.get(j + 1) != b"default" {
                Reply::new(out, c.proto)
                    .error(b"WRONGPASS invalid username-password pair or user is disabled.");
                return;
            }
            j += 2;
        } else if is(opt, "setname") && more >= 1 {
            if !set_name(c, args.get(j + 1), &mut Reply::new(out, c.proto)) {
                return;
            }
            j += 1;
        } else {
            Reply::new(out, c.proto).err(&format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(super::cstr(opt))
            ));
            return;
        }
        j += 1;
    }
    if let Some(v) = version {
        c.proto = if v == 3 { Proto::Resp3 } else { Proto::Resp2 };
    }
    let mut r = Reply::new(out, c.proto);
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(super::table::REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(c.proto.version());
    r.bulk(b"id");
    r.int(c.id as i64);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
}

/// One CLIENT LIST / CLIENT INFO line, newline included, in Redis 7.2's field order.
pub fn client_line(c: &Client, now: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    let name = c.name.as_deref().unwrap_or_default();
    let _ = write!(
        out,
        "id={} addr={} laddr={} fd={} name=",
        c.id, c.addr, c.laddr, c.fd
    );
    out.extend_from_slice(name);
    let _ = write!(
        out,
        " age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free={} \
         argv-mem=0 multi-mem=0 rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events=r cmd={} \
         user=default redir=-1 resp={} lib-name=",
        now.saturating_sub(c.created_ms) / 1000,
        now.saturating_sub(c.last_ms) / 1000,
        c.qbuf,
        c.qbuf_free,
        c.replies.local.capacity(),
        c.replies.local.capacity(),
        c.omem,
        c.qbuf + c.qbuf_free + c.replies.local.capacity() + c.omem,
        c.last_cmd,
        c.proto.version(),
    );
    out.extend_from_slice(c.lib_name.as_deref().unwrap_or_default());
    out.extend_from_slice(b" lib-ver=");
    out.extend_from_slice(c.lib_ver.as_deref().unwrap_or_default());
    out.push(b'\n');
}

/// Parses CLIENT LIST's options into the filter each shard applies: `["all"]`,
/// `["none"]`, or `["id", ids…]`. Writes Redis's error and returns `None` when wrong.
pub fn client_list_filter(out: &mut Reply, args: Args) -> Option<Vec<Vec<u8>>> {
    if args.len() == 4 && is(args.get(2), "type") {
        let t = super::cstr(args.get(3)).to_ascii_lowercase();
        return match t.as_slice() {
            b"normal" => Some(vec![b"all".to_vec()]),
            b"master" | b"replica" | b"slave" | b"pubsub" => Some(vec![b"none".to_vec()]),
            _ => {
                out.err(&format!(
                    "Unknown client type '{}'",
                    String::from_utf8_lossy(super::cstr(args.get(3)))
                ));
                None
            }
        };
    }
    if args.len() > 3 && is(args.get(2), "id") {
        let mut filter = vec![b"id".to_vec()];
        for id in args.iter().skip(3) {
            if parse_i64(id).is_none() {
                out.err("Invalid client ID");
                return None;
            }
            filter.push(id.to_vec());
        }
        return Some(filter);
    }
    if args.len() != 2 {
        out.err(errors::SYNTAX);
        return None;
    }
    Some(vec![b"all".to_vec()])
}

/// One shard's part of CLIENT LIST: its connections' lines, as a bulk string.
pub fn client_list_part(sh: &Shard, filter: Args, out: &mut Reply) {
    let now = sh.now();
    let mut text = Vec::new();
    let ids: Vec<i64> = filter.iter().skip(1).filter_map(parse_i64).collect();
    match filter.get(0) {
        b"none" => {}
        b"id" => {
            // Each match once; the connection's shard orders them as asked.
            sh.conns
                .iter()
                .filter(|c| ids.contains(&(c.id as i64)))
                .for_each(|c| client_line(c, now, &mut text));
        }
        _ => sh.conns.iter().for_each(|c| client_line(c, now, &mut text)),
    }
    out.bulk(&text);
}
