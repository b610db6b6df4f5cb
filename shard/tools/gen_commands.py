#!/usr/bin/env python3
"""Captures shard/src/command/commands.resp: Redis 7.0's metadata of every command.

The metadata (arity, flags, key positions, ACL categories, tips, key specs, docs) is read
from a running redis-server with COMMAND INFO and COMMAND DOCS over RESP3 and written back
as RESP3: one array of [version, COMMAND INFO of every command, COMMAND DOCS of every
command]. corekv parses it once at start (shard/src/command/meta.rs) and keeps the
commands its families register, so COMMAND replies and arity checks agree with Redis by
construction, and a new command needs only its family's registration. CLIENT SETINFO
(Redis 7.2, absent from 7.0) comes from the overlay below, transcribed from Redis 7.2's
client-setinfo.json.

Usage: redis-server --port 7379 --save '' & python3 shard/tools/gen_commands.py 7379
"""
import socket
import sys

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


def encode(v):
    """RESP3 bytes of a value read by read(): Simple -> +, bytes -> $, int -> :, list ->
    *, {"set": [...]} -> ~, dict -> %, None -> _."""
    if isinstance(v, Simple) or isinstance(v, str):
        return b"+" + v.encode() + b"\r\n"
    if isinstance(v, bytes):
        return b"$%d\r\n%s\r\n" % (len(v), v)
    if isinstance(v, bool):
        raise RuntimeError("bool")
    if isinstance(v, int):
        return b":%d\r\n" % v
    if v is None:
        return b"_\r\n"
    if isinstance(v, list):
        return b"*%d\r\n" % len(v) + b"".join(encode(x) for x in v)
    if isinstance(v, dict) and set(v.keys()) == {"set"}:
        return b"~%d\r\n" % len(v["set"]) + b"".join(encode(x) for x in v["set"])
    if isinstance(v, dict):
        return b"%%%d\r\n" % len(v) + b"".join(encode(k) + encode(x) for k, x in v.items())
    raise RuntimeError(f"cannot encode {v!r}")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    sock = socket.create_connection(("127.0.0.1", port))
    f = sock.makefile("rb")
    hello = command(sock, f, "HELLO", "3")
    version = hello[b"version"]
    infos = sorted(command(sock, f, "COMMAND", "INFO"), key=lambda i: i[0])
    docs = command(sock, f, "COMMAND", "DOCS")
    for info in infos:
        if info[0] == b"client":
            info[9].append(SETINFO_INFO)
            info[9].sort(key=lambda s: s[0] if isinstance(s[0], bytes) else s[0].encode())
    docs[b"client"][b"subcommands"][b"client|setinfo"] = SETINFO_DOCS
    docs[b"client"][b"subcommands"] = dict(sorted(docs[b"client"][b"subcommands"].items()))
    docs = dict(sorted(docs.items()))
    path = "shard/src/command/commands.resp"
    with open(path, "wb") as fh:
        fh.write(encode([version, infos, docs]))
    print(f"wrote {path}: {len(infos)} commands from redis {version.decode()}")


if __name__ == "__main__":
    main()
