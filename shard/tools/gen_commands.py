#!/usr/bin/env python3
"""Generates shard/src/command/table.rs: the metadata of every command corekv supports.

The metadata (arity, flags, key positions, ACL categories, tips, key specs, docs) is read
from a running redis-server with COMMAND INFO and COMMAND DOCS over RESP3, so that corekv's
COMMAND replies and its arity checks agree with Redis 7 by construction. Subcommands corekv
does not implement are filtered out. CLIENT SETINFO (Redis 7.2, absent from 7.0) comes from
the overlay below, transcribed from Redis 7.2's client-setinfo.json.

Usage: redis-server --port 7379 --save '' & python3 shard/tools/gen_commands.py 7379
"""
import socket
import sys

# Commands corekv implements: top-level name -> supported subcommands (None for plain ones).
SUPPORTED = {
    # connection
    "ping": None, "echo": None, "quit": None, "select": None, "hello": None, "reset": None,
    "client": ["id", "setname", "getname", "setinfo", "info", "list", "kill", "no-evict",
               "help"],
    "auth": None,
    "command": ["count", "info", "docs", "list", "getkeys", "help"],
    # strings
    "get": None, "set": None, "setnx": None, "getset": None, "getdel": None, "mget": None,
    "mset": None, "msetnx": None, "append": None, "strlen": None, "incr": None,
    "decr": None, "incrby": None, "decrby": None, "incrbyfloat": None, "getrange": None,
    "substr": None, "setrange": None, "setex": None, "psetex": None, "getex": None,
    # expiry
    "expire": None, "pexpire": None, "expireat": None, "pexpireat": None, "ttl": None,
    "pttl": None, "expiretime": None, "pexpiretime": None, "persist": None,
    # keyspace
    "del": None, "unlink": None, "exists": None, "type": None, "rename": None,
    "renamenx": None, "copy": None, "touch": None, "keys": None, "scan": None,
    "dbsize": None, "flushdb": None, "flushall": None, "randomkey": None,
    # server
    "info": None, "time": None, "config": ["get", "set", "resetstat", "help"],
    "shutdown": None, "slowlog": ["get", "len", "reset", "help"],
    "latency": ["histogram", "help"],
}

SETINFO_INFO = ["client|setinfo", 4, {"set": ["noscript", "loading", "stale"]}, 0, 0, 0,
                {"set": ["@slow", "@connection"]},
                {"set": [b"request_policy:all_nodes", b"response_policy:all_succeeded"]},
                {"set": []}, []]
SETINFO_DOCS = {b"summary": b"Sets information specific to the client or connection.",
                b"since": b"7.2.0", b"group": b"connection", b"complexity": b"O(1)",
                b"arguments": [{b"name": b"attr", b"type": b"oneof", b"arguments": [
                    {b"name": b"libname", b"type": b"string", b"token": b"LIB-NAME"},
                    {b"name": b"libver", b"type": b"string", b"token": b"LIB-VER"}]}]}


class Simple(str):
    """A RESP simple string (as opposed to a bulk string, kept as bytes)."""


def read_line(f):
    line = f.readline()
    assert line.endswith(b"\r\n"), line
    return line[:-2]


def read(f):
    line = read_line(f)
    tag, rest = line[:1], line[1:]
    if tag == b"+":
        return Simple(rest.decode())
    if tag == b"-":
        raise RuntimeError(rest.decode())
    if tag == b":":
        return int(rest)
    if tag == b"$":
        n = int(rest)
        data = f.read(n + 2)
        return data[:-2]
    if tag == b"_":
        return None
    if tag in (b"*", b"~"):
        items = [read(f) for _ in range(int(rest))]
        return items if tag == b"*" else {"set": items}
    if tag == b"%":
        pairs = {}
        for _ in range(int(rest)):
            k = read(f)
            pairs[k] = read(f)
        return pairs
    raise RuntimeError(f"unexpected reply {line!r}")


def command(sock, f, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return read(f)


def lit(s):
    if isinstance(s, bytes):
        s = s.decode()
    out = '"'
    for ch in s:
        if ch in '"\\':
            out += "\\" + ch
        elif 32 <= ord(ch) < 127:
            out += ch
        else:
            out += "\\u{%x}" % ord(ch)
    return out + '"'


def emit(v, indent):
    pad = " " * indent
    if isinstance(v, Simple):
        return f"Simple({lit(v)})"
    if isinstance(v, str):  # overlay entries written as plain str are simple strings
        return f"Simple({lit(v)})"
    if isinstance(v, bytes):
        return f"Bulk({lit(v)})"
    if isinstance(v, bool):
        raise RuntimeError("bool")
    if isinstance(v, int):
        return f"Int({v})"
    if isinstance(v, list):
        return "Array(&[" + "".join(f"\n{pad}    {emit(x, indent + 4)}," for x in v) + f"\n{pad}])" if v else "Array(&[])"
    if isinstance(v, dict) and set(v.keys()) == {"set"}:
        items = v["set"]
        return "Set(&[" + "".join(f"\n{pad}    {emit(x, indent + 4)}," for x in items) + f"\n{pad}])" if items else "Set(&[])"
    if isinstance(v, dict):
        body = ""
        for k, x in v.items():
            body += f"\n{pad}    {emit(k, indent + 4)},\n{pad}    {emit(x, indent + 4)},"
        return "Map(&[" + body + f"\n{pad}])" if v else "Map(&[])"
    raise RuntimeError(f"cannot emit {v!r}")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    sock = socket.create_connection(("127.0.0.1", port))
    f = sock.makefile("rb")
    hello = command(sock, f, "HELLO", "3")
    version = hello[b"version"].decode()
    entries = []
    for name in sorted(SUPPORTED):
        subs = SUPPORTED[name]
        [info] = command(sock, f, "COMMAND", "INFO", name)
        docs = command(sock, f, "COMMAND", "DOCS", name)[name.encode()]
        if subs is not None:
            wanted = {f"{name}|{s}".encode() for s in subs}
            info[9] = [s for s in info[9] if s[0] in wanted]
            docs[b"subcommands"] = {k: v for k, v in docs[b"subcommands"].items() if k in wanted}
            if name == "client":
                info[9].append(SETINFO_INFO)
                info[9].sort(key=lambda s: s[0] if isinstance(s[0], bytes) else s[0].encode())
                docs[b"subcommands"][b"client|setinfo"] = SETINFO_DOCS
                docs[b"subcommands"] = dict(sorted(docs[b"subcommands"].items()))
            got = {s[0] if isinstance(s[0], bytes) else s[0].encode() for s in info[9]}
            missing = wanted - got
            assert not missing, missing
        entries.append((name, info, docs))

    out = [
        "//! The metadata of every command corekv supports, as Redis "
        f"{version} reports it.",
        "//!",
        "//! Generated by `shard/tools/gen_commands.py` from a running redis-server (COMMAND INFO",
        "//! and COMMAND DOCS); do not edit by hand. CLIENT SETINFO comes from Redis 7.2.",
        "",
        "use super::meta::Meta::{self, *};",
        "",
        "/// One command: its COMMAND INFO entry and its COMMAND DOCS map.",
        "pub struct CommandMeta {",
        "    /// Lower-case name.",
        "    pub name: &'static str,",
        "    /// The COMMAND INFO array.",
        "    pub info: Meta,",
        "    /// The COMMAND DOCS map.",
        "    pub docs: Meta,",
        "}",
        "",
        f"/// Redis version the metadata was taken from.",
        f"pub const REDIS_VERSION: &str = {lit(version)};",
        "",
        "/// Every supported command, sorted by name.",
        "pub static COMMANDS: &[CommandMeta] = &[",
    ]
    for name, info, docs in entries:
        out.append("    CommandMeta {")
        out.append(f"        name: {lit(name)},")
        out.append(f"        info: {emit(info, 8)},")
        out.append(f"        docs: {emit(docs, 8)},")
        out.append("    },")
    out.append("];")
    path = "shard/src/command/table.rs"
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    print(f"wrote {path}: {len(entries)} commands from redis {version}")


if __name__ == "__main__":
    main()
