//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, RESET, AUTH and CLIENT, as Redis
//! 7's `networking.c` behaves (CLIENT SETINFO as Redis 7.2). Most run on the connection's
//! own shard and change or report that connection's state; CLIENT LIST and CLIENT KILL
//! cover every shard's connections.

use corekv_protocol::{number::parse_i64, Proto, Reply};

use super::merge::{int_of, sum};
use super::{errors, is, Args, Check, Fanout, Flow, Local, OwnedArgs, Plan, Registrations, Route};
use crate::assembly::{MergeCtx, MergeData};
use crate::conn::{Client, ConnId};
use crate::state::State;

/// The connection family.
pub(super) const COMMANDS: Registrations = &[
    ("ping", Route::Local(ping)),
    ("echo", Route::Local(echo)),
    ("quit", Route::Local(quit)),
    ("select", Route::Local(select)),
    ("hello", Route::Local(hello_command)),
    ("reset", Route::Local(reset)),
    ("auth", Route::Local(auth_command)),
    ("client|id", Route::Local(client_id)),
    ("client|setname", Route::Local(client_setname)),
    ("client|getname", Route::Local(client_getname)),
    ("client|setinfo", Route::Local(client_setinfo)),
    ("client|info", Route::Local(client_info)),
    ("client|no-evict", Route::Local(client_no_evict)),
    ("client|help", Route::Local(client_help)),
    ("client|list", Route::Fanout(&CLIENT_LIST)),
    ("client|kill", Route::Fanout(&CLIENT_KILL)),
    ("client|unblock", Route::Fanout(&CLIENT_UNBLOCK)),
];

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]: the shard of the client ends its blocked
/// command, wherever it waits (see [`crate::blocking`]); 1 if it was blocked.
const CLIENT_UNBLOCK: Fanout = Fanout {
    check: |ck, args| {
        if args.len() > 4 {
            ck.out.err(
                "unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.",
            );
            return None;
        }
        let Some(id) = parse_i64(args.get(2)) else {
            ck.out.err(super::errors::NOT_INTEGER);
            return None;
        };
        let how: &[u8] = match args.len() {
            3 => b"timeout",
            _ if is(args.get(3), "timeout") => b"timeout",
            _ if is(args.get(3), "error") => b"error",
            _ => {
                ck.out
                    .err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
                return None;
            }
        };
        Some(Plan {
            args: OwnedArgs::from_slices(&[id.to_string().as_bytes(), how]),
            ..Plan::all()
        })
    },
    part: |sh, args, out| {
        let id = parse_i64(args.get(0)).unwrap_or(-1);
        let how = crate::blocking::Unblock::parse(args.get(1));
        let conn = sh.conns.ids().into_iter().find(|&c| {
            sh.conns
                .get(c)
                .is_some_and(|c| c.id as i64 == id && c.blocked.is_some())
        });
        let unblocked = conn.is_some_and(|c| sh.unblock_client(c, how));
        out.int(i64::from(unblocked));
    },
    merge: sum,
};

/// PING [message]
fn ping(l: &mut Local, args: Args) -> Flow {
    let subscribed = l.client.proto == Proto::Resp2 && l.client.is_subscriber();
    let mut out = l.reply();
    if args.len() > 2 {
        super::arity_error(&mut out, "ping");
    } else if subscribed {
        // A subscriber's PING is answered as a message would be.
        out.array(2);
        out.bulk(b"pong");
        out.bulk(if args.len() == 2 { args.get(1) } else { b"" });
    } else if args.len() == 2 {
        out.bulk(args.get(1));
    } else {
        out.simple(b"PONG");
    }
    Flow::Continue
}

/// ECHO message
fn echo(l: &mut Local, args: Args) -> Flow {
    l.reply().bulk(args.get(1));
    Flow::Continue
}

/// QUIT: `+OK`, then the connection closes.
fn quit(l: &mut Local, _: Args) -> Flow {
    l.reply().ok();
    Flow::Quit
}

/// SELECT index: only database 0 exists (Redis with `databases 1`).
fn select(l: &mut Local, args: Args) -> Flow {
    let mut out = l.reply();
    match super::int32_arg(&mut out, args.get(1)) {
        None => {}
        Some(0) => out.ok(),
        Some(_) => out.err(errors::DB_RANGE),
    }
    Flow::Continue
}

/// RESET: back to RESP2, no name, and authenticated only if no password is set.
fn reset(l: &mut Local, _: Args) -> Flow {
    super::pubsub::unsubscribe_all(l);
    l.client.proto = Proto::Resp2;
    l.client.name = None;
    l.client.authenticated = l.config.requirepass.is_empty();
    l.reply().simple(b"RESET");
    Flow::Continue
}

fn hello_command(l: &mut Local, args: Args) -> Flow {
    hello(l.client, args, &l.config.requirepass, l.out);
    Flow::Continue
}

fn auth_command(l: &mut Local, args: Args) -> Flow {
    let mut out = Reply::new(&mut *l.out, l.client.proto);
    auth(l.client, args, &l.config.requirepass, &mut out);
    Flow::Continue
}

/// CLIENT ID
fn client_id(l: &mut Local, _: Args) -> Flow {
    let id = l.client.id as i64;
    l.reply().int(id);
    Flow::Continue
}

/// CLIENT SETNAME name
fn client_setname(l: &mut Local, args: Args) -> Flow {
    let mut out = Reply::new(&mut *l.out, l.client.proto);
    if set_name(l.client, args.get(2), &mut out) {
        out.ok();
    }
    Flow::Continue
}

/// CLIENT GETNAME
fn client_getname(l: &mut Local, _: Args) -> Flow {
    let mut out = Reply::new(&mut *l.out, l.client.proto);
    match &l.client.name {
        Some(name) => out.bulk(name),
        None => out.null(),
    }
    Flow::Continue
}

fn client_setinfo(l: &mut Local, args: Args) -> Flow {
    let mut out = Reply::new(&mut *l.out, l.client.proto);
    set_info(l.client, args, &mut out);
    Flow::Continue
}

/// CLIENT INFO: this connection's CLIENT LIST line.
fn client_info(l: &mut Local, _: Args) -> Flow {
    let mut line = Vec::new();
    client_line(l.client, l.now, &mut line);
    l.reply().verbatim(b"txt", &line);
    Flow::Continue
}

/// CLIENT NO-EVICT on|off: corekv never evicts clients for memory; the flag is accepted
/// as Redis accepts it, and has nothing to change.
fn client_no_evict(l: &mut Local, args: Args) -> Flow {
    let mut out = l.reply();
    if is(args.get(2), "on") || is(args.get(2), "off") {
        out.ok();
    } else {
        out.err(errors::SYNTAX);
    }
    Flow::Continue
}

fn client_help(l: &mut Local, args: Args) -> Flow {
    help(
        &mut l.reply(),
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
    );
    Flow::Continue
}

/// CLIENT LIST [TYPE t] [ID id ...]: every shard's connections; with IDs, in the order
/// asked (repeats included), as Redis does.
const CLIENT_LIST: Fanout = Fanout {
    check: client_list_check,
    part: client_list_part,
    merge: client_list_merge,
};

fn client_list_check(ck: &mut Check, args: Args) -> Option<Plan> {
    let filter = client_list_filter(&mut ck.out, args)?;
    let data = if filter[0] == b"id" {
        MergeData::Ints(filter[1..].iter().filter_map(|id| parse_i64(id)).collect())
    } else {
        MergeData::None
    };
    Some(Plan {
        args: OwnedArgs::from_slices(&filter),
        data,
        ..Plan::all()
    })
}

fn client_list_merge(_: &mut MergeCtx, data: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    let mut text = Vec::new();
    for p in parts {
        if let Ok(Some((frame, _))) = corekv_protocol::frame::parse(p) {
            if let Some(b) = frame.as_bytes() {
                text.extend_from_slice(b);
            }
        }
    }
    if let MergeData::Ints(ids) = data {
        let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
        let id_of = |line: &[u8]| -> Option<i64> {
            let rest = line.strip_prefix(b"id=")?;
            let end = rest.iter().position(|&b| b == b' ')?;
            std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
        };
        let mut ordered = Vec::new();
        for id in ids {
            if let Some(line) = lines.iter().find(|l| id_of(l) == Some(*id)) {
                ordered.extend_from_slice(line);
            }
        }
        text = ordered;
    }
    out.verbatim(b"txt", &text);
}

/// CLIENT KILL ip:port | CLIENT KILL filter value [...]: every shard closes its matching
/// connections. The new form replies with the count; the old one `+OK`, or an error
/// when nothing matched.
const CLIENT_KILL: Fanout = Fanout {
    check: client_kill_check,
    part: client_kill_part,
    merge: client_kill_merge,
};

fn client_kill_check(ck: &mut Check, args: Args) -> Option<Plan> {
    let (filter, old_style) = client_kill_filter(&mut ck.out, args, ck.client_id)?;
    Some(Plan {
        args: OwnedArgs::from_slices(&filter),
        data: MergeData::Ints(vec![i64::from(old_style)]),
        ..Plan::all()
    })
}

fn client_kill_merge(ctx: &mut MergeCtx, data: &MergeData, parts: &[&[u8]], out: &mut Reply) {
    if data.ints() != [1] {
        return sum(ctx, data, parts, out);
    }
    if parts.iter().filter_map(|p| int_of(p)).sum::<i64>() > 0 {
        out.ok();
    } else {
        out.err("No such client");
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
    r.bulk(super::meta::REDIS_VERSION.as_bytes());
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
    use crate::pubsub::Kind;
    use std::io::Write;
    let count = |kind| c.subs.as_ref().map_or(0, |s| s.count(kind));
    let name = c.name.as_deref().unwrap_or_default();
    let _ = write!(
        out,
        "id={} addr={} laddr={} fd={} name=",
        c.id, c.addr, c.laddr, c.fd
    );
    out.extend_from_slice(name);
    let _ = write!(
        out,
        " age={} idle={} flags={} db=0 sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} \
         argv-mem=0 multi-mem={} rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events=r cmd={} \
         user=default redir=-1 resp={} lib-name=",
        now.saturating_sub(c.created_ms) / 1000,
        now.saturating_sub(c.last_ms) / 1000,
        match (c.tx.is_some(), c.is_subscriber(), c.blocked.is_some()) {
            (_, _, true) => "b",
            (true, true, _) => "xP",
            (true, false, _) => "x",
            (false, true, _) => "P",
            (false, false, _) => "N",
        },
        count(Kind::Channel),
        count(Kind::Pattern),
        count(Kind::Shard),
        c.tx.as_ref().map_or(-1, |t| t.cmds.len() as i64),
        c.qbuf,
        c.qbuf_free,
        c.tx.as_ref().map_or(0, |t| t.bytes()),
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
fn client_list_filter(out: &mut Reply, args: Args) -> Option<Vec<Vec<u8>>> {
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
fn client_list_part(sh: &mut State, filter: Args, out: &mut Reply) {
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
fn client_kill_filter(out: &mut Reply, args: Args, me: u64) -> Option<(Vec<Vec<u8>>, bool)> {
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
fn client_kill_part(sh: &mut State, filter: Args, out: &mut Reply) {
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

#[cfg(test)]
mod tests {
    use crate::testkit::{call, shards};

    #[test]
    fn hello_reset_and_names_change_only_this_client() {
        let mut s = shards(1);
        let a = s[0].state_mut().connect("10.0.0.1:1".into(), "l".into(), 5);
        let b = s[0].state_mut().connect("10.0.0.2:2".into(), "l".into(), 6);
        assert_eq!(call(&mut s, 0, a, &["CLIENT", "SETNAME", "app"]), "+OK\r\n");
        assert_eq!(call(&mut s, 0, b, &["CLIENT", "GETNAME"]), "$-1\r\n");
        let hello = call(&mut s, 0, a, &["HELLO", "3"]);
        assert!(hello.starts_with("%7\r\n"), "{hello}");
        assert_eq!(call(&mut s, 0, a, &["CLIENT", "GETNAME"]), "$3\r\napp\r\n");
        assert_eq!(call(&mut s, 0, a, &["RESET"]), "+RESET\r\n");
        assert_eq!(call(&mut s, 0, a, &["CLIENT", "GETNAME"]), "$-1\r\n");
        assert_eq!(
            call(&mut s, 0, a, &["CLIENT", "SETNAME", "a b"]),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(call(&mut s, 0, a, &["QUIT"]), "+OK\r\n");
    }

    #[test]
    fn client_list_and_kill_cover_every_shard() {
        let mut s = shards(3);
        let conns: Vec<_> = (0..3)
            .map(|i| {
                let addr = format!("10.0.0.{i}:{i}");
                (i, s[i].state_mut().connect(addr, "l".into(), 10 + i as i32))
            })
            .collect();
        let (on, me) = conns[1];
        let list = call(&mut s, on, me, &["CLIENT", "LIST"]);
        assert_eq!(list.matches("addr=10.0.0.").count(), 3, "{list}");
        // With IDs, in the order asked, repeats included.
        let ids: Vec<String> = conns
            .iter()
            .map(|&(i, c)| s[i].state().conns.get(c).unwrap().id.to_string())
            .collect();
        let ordered = call(
            &mut s,
            on,
            me,
            &["CLIENT", "LIST", "ID", &ids[2], &ids[0], &ids[2]],
        );
        let addrs: Vec<&str> = ordered
            .split(" addr=")
            .skip(1)
            .map(|rest| &rest[..10])
            .collect();
        assert_eq!(addrs, ["10.0.0.2:2", "10.0.0.0:0", "10.0.0.2:2"]);
        // The old form: +OK when a shard killed it, an error when none did.
        assert_eq!(
            call(&mut s, on, me, &["CLIENT", "KILL", "10.0.0.2:2"]),
            "+OK\r\n"
        );
        assert!(s[2].state().is_killed(conns[2].1));
        assert_eq!(
            call(&mut s, on, me, &["CLIENT", "KILL", "10.9.9.9:1"]),
            "-ERR No such client\r\n"
        );
        // The new form counts, and skips the caller unless told not to.
        assert_eq!(
            call(&mut s, on, me, &["CLIENT", "KILL", "LADDR", "l"]),
            ":2\r\n"
        );
        assert!(!s[on].state().is_killed(me));
    }
}
