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
    // Only the commands that check or reset authentication need the password.
    let password = matches!(which, Conn::Auth | Conn::Hello | Conn::Reset)
        .then(|| sh.config.requirepass.clone())
        .unwrap_or_default();
    let Some(c) = sh.conns.get_mut(conn) else {
        return;
    };
    let proto = c.proto;
    let mut out_buf = std::mem::take(&mut c.replies.local);
    let start = out_buf.len();
    match which {
        Conn::Hello => hello(c, args, &password, &mut out_buf),
        Conn::Reset => {
            c.proto = Proto::Resp2;
            c.name = None;
            c.authenticated = password.is_empty();
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
                Conn::Auth => auth(c, args, &password, &mut out),
                Conn::ClientNoEvict => {
                    // corekv never evicts clients for memory; the flag is accepted as Redis
                    // accepts it, and has nothing to change.
                    if is(args.get(2), "on") || is(args.get(2), "off") {
                        out.ok();
                    } else {
                        out.err(errors::SYNTAX);
                    }
                }
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
/// The reply to a wrong user name or password.
const WRONGPASS: &[u8] = b"WRONGPASS invalid username-password pair or user is disabled.";

/// Whether `user` (the default user when `None`) with `pass` may log in. corekv has one
/// user, `default`: with no `requirepass` it takes any password (Redis's `nopass`).
fn credentials_ok(user: Option<&[u8]>, pass: &[u8], password: &[u8]) -> bool {
    user.is_none_or(|u| u == b"default") && (password.is_empty() || pass == password)
}

/// AUTH [username] password, as Redis 7 with only the default user.
fn auth(c: &mut Client, args: Args, password: &[u8], out: &mut Reply) {
    if args.len() > 3 {
        out.err(errors::SYNTAX);
        return;
    }
    let (user, pass) = if args.len() == 3 {
        (Some(args.get(1)), args.get(2))
    } else {
        (None, args.get(1))
    };
    if user.is_none() && password.is_empty() {
        out.err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
        return;
    }
    if credentials_ok(user, pass, password) {
        c.authenticated = true;
        out.ok();
    } else {
        out.error(WRONGPASS);
    }
}

fn hello(c: &mut Client, args: Args, password: &[u8], out: &mut Vec<u8>) {
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
    let mut login = None;
    let mut name = None;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        if is(opt, "auth") && more >= 2 {
            login = Some((args.get(j + 1), args.get(j + 2)));
            j += 2;
        } else if is(opt, "setname") && more >= 1 {
            name = Some(args.get(j + 1));
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
    // Redis 7.0's order: options, then credentials, then the name.
    if let Some((user, pass)) = login {
        if !credentials_ok(Some(user), pass, password) {
            Reply::new(out, c.proto).error(WRONGPASS);
            return;
        }
        c.authenticated = true;
    }
    if !c.authenticated && !password.is_empty() {
        Reply::new(out, c.proto).error(
            b"NOAUTH HELLO must be called with the client already authenticated, otherwise \
              the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
              select the RESP protocol version at the same time",
        );
        return;
    }
    if let Some(name) = name {
        if !set_name(c, name, &mut Reply::new(out, c.proto)) {
            return;
        }
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

/// Checks CLIENT KILL's arguments as Redis 7.0 does. Returns the filter every shard
/// applies (`name value` pairs, lower-case names, plus `me <id>`) and whether it is the
/// old `CLIENT KILL ip:port` form; `None` after writing the error.
pub fn client_kill_filter(out: &mut Reply, args: Args, me: u64) -> Option<(Vec<Vec<u8>>, bool)> {
    let mut filter: Vec<Vec<u8>> = vec![b"me".to_vec(), me.to_string().into_bytes()];
    if args.len() == 3 {
        // The old form: by address, and a client may kill itself.
        filter.extend([b"addr".to_vec(), args.get(2).to_vec()]);
        filter.extend([b"skipme".to_vec(), b"no".to_vec()]);
        return Some((filter, true));
    }
    if args.len() < 4 {
        out.err(errors::SYNTAX);
        return None;
    }
    let mut skipme = b"yes".to_vec();
    for i in (2..args.len()).step_by(2) {
        // Options are checked in order; one without its value is a syntax error there.
        if i + 1 >= args.len() {
            out.err(errors::SYNTAX);
            return None;
        }
        let (opt, value) = (args.get(i), args.get(i + 1));
        let text = || String::from_utf8_lossy(super::cstr(value)).into_owned();
        if is(opt, "id") {
            match parse_i64(value) {
                Some(id) if id >= 1 => filter.extend([b"id".to_vec(), id.to_string().into()]),
                _ => {
                    out.err("client-id should be greater than 0");
                    return None;
                }
            }
        } else if is(opt, "type") {
            let t = super::cstr(value).to_ascii_lowercase();
            match t.as_slice() {
                b"normal" => {}
                b"master" | b"replica" | b"slave" | b"pubsub" => {
                    filter.extend([b"type".to_vec(), t]);
                }
                _ => {
                    out.err(&format!("Unknown client type '{}'", text()));
                    return None;
                }
            }
        } else if is(opt, "addr") || is(opt, "laddr") {
            let name = super::cstr(opt).to_ascii_lowercase();
            filter.extend([name, value.to_vec()]);
        } else if is(opt, "user") {
            if super::cstr(value) != b"default" {
                out.err(&format!("No such user '{}'", text()));
                return None;
            }
        } else if is(opt, "skipme") {
            if is(value, "yes") {
                skipme = b"yes".to_vec();
            } else if is(value, "no") {
                skipme = b"no".to_vec();
            } else {
                out.err(errors::SYNTAX);
                return None;
            }
        } else {
            out.err(errors::SYNTAX);
            return None;
        }
    }
    filter.extend([b"skipme".to_vec(), skipme]);
    Some((filter, false))
}

/// One shard's part of CLIENT KILL: closes its connections that match every filter
/// (the caller itself only with `skipme no`, after its reply); replies with the count.
pub fn client_kill_part(sh: &mut Shard, filter: Args, out: &mut Reply) {
    let mut me = 0u64;
    let mut skipme = true;
    let mut tests: Vec<(&[u8], &[u8])> = Vec::new();
    for i in (0..filter.len().saturating_sub(1)).step_by(2) {
        let (name, value) = (filter.get(i), filter.get(i + 1));
        match name {
            b"me" => me = parse_i64(value).unwrap_or_default() as u64,
            b"skipme" => skipme = value == b"yes",
            _ => tests.push((name, value)),
        }
    }
    let victims: Vec<ConnId> = sh
        .conns
        .ids()
        .into_iter()
        .filter(|&id| {
            let Some(c) = sh.conns.get(id) else {
                return false;
            };
            let matches = tests.iter().all(|&(name, value)| match name {
                b"id" => parse_i64(value) == Some(c.id as i64),
                b"addr" => c.addr.as_bytes() == value,
                b"laddr" => c.laddr.as_bytes() == value,
                // Every corekv client is a normal one.
                b"type" => false,
                _ => false,
            });
            matches && !(skipme && c.id == me)
        })
        .collect();
    for &v in &victims {
        sh.kill(v);
    }
    out.int(victims.len() as i64);
}
