//! Server commands: COMMAND (what clients and redis-cli ask at connect), CONFIG GET, TIME,
//! and INFO, whose numbers are each shard's, summed by the connection's shard.

use std::time::{SystemTime, UNIX_EPOCH};

use corekv_protocol::{frame, Reply};

use super::connection::help;
use super::{is, Args, Conn, Spec};
use crate::config::Config;
use crate::conn::ConnId;
use crate::glob;
use crate::shard::Shard;

/// Runs a server command for `conn`.
pub fn run(sh: &mut Shard, conn: ConnId, which: Conn, args: Args) {
    let commands = sh.commands;
    let Some(c) = sh.conns.get_mut(conn) else {
        return;
    };
    let proto = c.proto;
    let buf = &mut c.replies.local;
    let start = buf.len();
    let mut out = Reply::new(buf, proto);
    match which {
        Conn::Command => {
            out.array(commands.all().len());
            commands.all().iter().for_each(|s| s.info.encode(&mut out));
        }
        Conn::CommandCount => out.int(commands.all().len() as i64),
        Conn::CommandInfo => {
            if args.len() == 2 {
                out.array(commands.all().len());
                commands.all().iter().for_each(|s| s.info.encode(&mut out));
            } else {
                out.array(args.len() - 2);
                for name in args.iter().skip(2) {
                    match commands.by_full_name(name) {
                        Some(spec) => spec.info.encode(&mut out),
                        None => out.null(),
                    }
                }
            }
        }
        Conn::CommandDocs => {
            let found: Vec<&Spec> = if args.len() == 2 {
                commands.all().iter().collect()
            } else {
                args.iter()
                    .skip(2)
                    .filter_map(|n| commands.by_full_name(n))
                    .collect()
            };
            out.map(found.len());
            for spec in found {
                out.bulk(spec.name.as_bytes());
                spec.docs.encode(&mut out);
            }
        }
        Conn::CommandList => command_list(commands.all(), args, &mut out),
        Conn::CommandGetKeys => command_getkeys(commands, args, &mut out),
        Conn::CommandHelp => help(
            &mut out,
            args.get(0),
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
            ],
        ),
        Conn::Time => {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            out.array(2);
            out.bulk(t.as_secs().to_string().as_bytes());
            out.bulk(t.subsec_micros().to_string().as_bytes());
        }
        Conn::ConfigGet => config_get(&sh.config, args, &mut out),
        Conn::ConfigHelp => help(
            &mut out,
            args.get(0),
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
            ],
        ),
        _ => unreachable!("not a server command"),
    }
    if c.replies.local.get(start) == Some(&b'-') {
        sh.stats.error_replies += 1;
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]
fn command_list(all: &[Spec], args: Args, out: &mut Reply) {
    let mut filter: Option<(u8, &[u8])> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(args.get(i), "filterby") && more == 2 {
            let kind = args.get(i + 1);
            let value = args.get(i + 2);
            filter = Some(if is(kind, "module") {
                (b'm', value)
            } else if is(kind, "aclcat") {
                (b'a', value)
            } else if is(kind, "pattern") {
                (b'p', value)
            } else {
                out.err(super::errors::SYNTAX);
                return;
            });
            i += 3;
        } else {
            out.err(super::errors::SYNTAX);
            return;
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for spec in all {
        for s in std::iter::once(spec).chain(spec.subcommands.iter()) {
            let keep = match filter {
                None => true,
                Some((b'm', _)) => false,
                Some((b'a', cat)) => s.info.at(6).items().iter().any(|c| {
                    c.str()
                        .trim_start_matches('@')
                        .eq_ignore_ascii_case(&String::from_utf8_lossy(cat))
                }),
                Some((_, pat)) => glob::matches(pat, s.name.as_bytes(), true),
            };
            if keep {
                names.push(s.name);
            }
        }
    }
    out.array(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
}

/// COMMAND GETKEYS command [arg ...]
fn command_getkeys(commands: &super::Commands, args: Args, out: &mut Reply) {
    let sub: Vec<&[u8]> = args.iter().skip(2).collect();
    let owned = super::OwnedArgs::from_slices(&sub);
    let view = owned.args();
    let spec = match commands.lookup(view) {
        super::Lookup::Found(spec) => spec,
        _ => {
            out.err("Invalid command specified");
            return;
        }
    };
    if spec.first_key <= 0 {
        out.err("The command has no key arguments");
        return;
    }
    if !spec.arity_ok(view.len()) {
        out.err("Invalid number of arguments specified for command");
        return;
    }
    let keys: Vec<&[u8]> = spec
        .key_positions(view.len())
        .map(|p| view.get(p))
        .collect();
    out.array(keys.len());
    for k in keys {
        out.bulk(k);
    }
}

/// CONFIG GET parameter [parameter ...]: glob patterns match case-insensitively; an exact
/// name is echoed as given, as Redis does.
fn config_get(config: &Config, args: Args, out: &mut Reply) {
    let entries = config.entries();
    let mut found: Vec<(Vec<u8>, &str)> = Vec::new();
    for pat in args.iter().skip(2) {
        let pat = super::cstr(pat);
        let is_glob = pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?'));
        for (name, value) in &entries {
            let hit = if is_glob {
                glob::matches(pat, name.as_bytes(), true)
            } else {
                pat.eq_ignore_ascii_case(name.as_bytes())
            };
            if hit
                && !found
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            {
                let shown = if is_glob { name.as_bytes() } else { pat };
                found.push((shown.to_vec(), value));
            }
        }
    }
    out.map(found.len());
    for (name, value) in found {
        out.bulk(&name);
        out.bulk(value.as_bytes());
    }
}

/// Checks CONFIG SET's arguments as Redis does, all of them before any is applied (the
/// command is atomic): pairs only, known names, no immutable or repeated name, then every
/// value. `Err` is the message after `-ERR `.
pub fn config_set_plan(args: Args) -> Result<Vec<crate::config::Setting>, String> {
    use crate::config::parse_setting;
    if args.len() % 2 == 1 {
        return Err(super::errors::SYNTAX.to_string());
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    // Names first: the first unknown, immutable or repeated name is the error.
    let mut seen: Vec<String> = Vec::new();
    for (name, _) in &pairs {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        let known = config_names().contains(&lower.as_str());
        if !known || ["bind", "port", "databases", "save", "appendonly"].contains(&lower.as_str()) {
            // parse_setting words both errors exactly as Redis.
            parse_setting(name, b"0")?;
        }
        if seen.contains(&lower) {
            return Err(format!(
                "CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                String::from_utf8_lossy(name)
            ));
        }
        seen.push(lower);
    }
    pairs
        .iter()
        .map(|(name, value)| parse_setting(name, value))
        .collect()
}

/// Every setting name CONFIG knows.
fn config_names() -> Vec<&'static str> {
    Config::default()
        .entries()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// The sections INFO was asked for, lower-cased and `\n`-separated (`default` when none).
pub fn info_sections(args: Args) -> Vec<u8> {
    if args.len() == 1 {
        return b"default".to_vec();
    }
    let mut s = Vec::new();
    for a in args.iter().skip(1) {
        if !s.is_empty() {
            s.push(b'\n');
        }
        s.extend(super::cstr(a).iter().map(u8::to_ascii_lowercase));
    }
    s
}

/// The numbers one shard contributes to INFO, in this order.
const INFO_FIELDS: usize = 17;

/// One shard's part of INFO: its counters as an array of integers.
pub fn info_part(sh: &Shard, out: &mut Reply) {
    let st = &sh.stats;
    let ks = &sh.store.stats;
    let cpu = sh.cpu.map_or(-1, |c| c as i64);
    let fields: [i64; INFO_FIELDS] = [
        sh.store.len() as i64,
        sh.store.volatile() as i64,
        sh.conns.len() as i64,
        st.commands as i64,
        st.connections_received as i64,
        st.rejected_connections as i64,
        st.net_input_bytes as i64,
        st.net_output_bytes as i64,
        ks.hits as i64,
        ks.misses as i64,
        ks.expired as i64,
        st.error_replies as i64,
        st.hops_out as i64,
        st.hops_in as i64,
        st.batches_out as i64,
        st.batches_in as i64,
        cpu,
    ];
    out.array(fields.len());
    for f in fields {
        out.int(f);
    }
}

/// Formats INFO from every shard's numbers (`parts`, in shard order).
pub fn format_info(config: &Config, sections: &[u8], parts: &[&[u8]], out: &mut Reply) {
    let shards: Vec<[i64; INFO_FIELDS]> = parts
        .iter()
        .map(|p| {
            let mut f = [0i64; INFO_FIELDS];
            if let Ok(Some((frame::Frame::Array(items), _))) = frame::parse(p) {
                for (slot, item) in f.iter_mut().zip(items) {
                    if let frame::Frame::Integer(n) = item {
                        *slot = n;
                    }
                }
            }
            f
        })
        .collect();
    let sum = |i: usize| shards.iter().map(|f| f[i]).sum::<i64>();
    let wanted: Vec<&[u8]> = sections.split(|&b| b == b'\n').collect();
    let all = wanted
        .iter()
        .any(|s| matches!(*s, b"default" | b"all" | b"everything"));
    let want = |name: &str| all || wanted.contains(&name.as_bytes());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let uptime = (now.as_millis() as u64).saturating_sub(config.started_ms) / 1000;

    let mut text = String::new();
    let section = |text: &mut String, title: &str, body: String| {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str("# ");
        text.push_str(title);
        text.push_str("\r\n");
        text.push_str(&body);
    };
    if want("server") {
        section(
            &mut text,
            "Server",
            format!(
                "redis_version:{redis}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n\
                 redis_build_id:0\r\nredis_mode:standalone\r\nos:{os}\r\narch_bits:64\r\n\
                 monotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\n\
                 process_id:{pid}\r\nprocess_supervised:no\r\nrun_id:{run_id}\r\n\
                 tcp_port:{port}\r\nserver_time_usec:{usec}\r\nuptime_in_seconds:{uptime}\r\n\
                 uptime_in_days:{days}\r\nexecutable:{exe}\r\nconfig_file:\r\n\
                 io_threads_active:0\r\ncorekv_version:{version}\r\nshards:{shards}\r\n",
                redis = super::table::REDIS_VERSION,
                os = config.os,
                pid = std::process::id(),
                run_id = config.run_id,
                port = config.port,
                usec = now.as_micros(),
                days = uptime / 86400,
                exe = config.executable,
                version = env!("CARGO_PKG_VERSION"),
                shards = shards.len(),
            ),
        );
    }
    if want("clients") {
        section(
            &mut text,
            "Clients",
            format!(
                "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\n\
                 client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\n\
                 blocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                sum(2),
                config.maxclients
            ),
        );
    }
    if want("stats") {
        section(
            &mut text,
            "Stats",
            format!(
                "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\
                 rejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\n\
                 keyspace_hits:{}\r\nkeyspace_misses:{}\r\ntotal_error_replies:{}\r\n\
                 cross_shard_requests:{}\r\ncross_shard_batches:{}\r\n",
                sum(4),
                sum(3),
                sum(6),
                sum(7),
                sum(5),
                sum(10),
                sum(8),
                sum(9),
                sum(11),
                sum(12),
                sum(14),
            ),
        );
    }
    if want("keyspace") {
        let (keys, expires) = (sum(0), sum(1));
        let body = if keys > 0 || expires > 0 {
            format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n")
        } else {
            String::new()
        };
        section(&mut text, "Keyspace", body);
    }
    if want("shards") {
        let mut body = format!(
            "placement:{}\r\nnuma_node:{}\r\n",
            config.placement,
            config
                .numa_node
                .map_or("any".to_string(), |n| n.to_string())
        );
        for (i, f) in shards.iter().enumerate() {
            let planned = config.cpus.iter().flatten();
            let place = match planned.into_iter().find(|p| p.cpu as i64 == f[16]) {
                Some(p) => format!(
                    "cpu={},socket={},core={},node={}",
                    f[16], p.socket, p.core, p.node
                ),
                _ => "cpu=unpinned".to_string(),
            };
            let listening = config.listening.get(i).copied().unwrap_or(true);
            body.push_str(&format!(
                "shard{i}:{place},listening={},keys={},expires={},expired_keys={},\
                 connections={},commands={},hops_out={},hops_in={},batches_out={},\
                 batches_in={}\r\n",
                u8::from(listening),
                f[0],
                f[1],
                f[10],
                f[2],
                f[3],
                f[12],
                f[13],
                f[14],
                f[15]
            ));
        }
        section(&mut text, "Shards", body);
    }
    out.verbatim(b"txt", text.as_bytes());
}
