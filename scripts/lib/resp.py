"""What the measuring scripts (hit-ratio, memory-bench, soak) share: a minimal RESP
client, INFO as a dict, starting corekv or redis-server pinned to a CPU and waiting
until it answers, and the process figures they sample. Standard library only."""
import socket
import sys
import time


def free_port():
    """A TCP port that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    """Resident memory of process `pid`, KiB (0 if /proc does not say)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Conn:
    """One RESP connection: pipelined sends, one reply at a time."""

    def __init__(self, port, timeout=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.s.close()

    def send(self, cmds):
        """Sends every command of `cmds` (each a sequence of str/bytes/int arguments)."""
        out = bytearray()
        for args in cmds:
            out += b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def _recv(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._recv()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        """The next reply: a bulk string's bytes (None for null), or the line of a
        simple reply with its type byte (b"+OK", b":3"). An error reply raises."""
        line = self._line()
        if line[:1] == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._recv()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if line[:1] == b"-":
            raise RuntimeError(line.decode())
        return line

    def call(self, *args):
        self.send([args])
        return self.reply()

    def info(self, section):
        """INFO `section` as a dict of its fields."""
        text = self.call("INFO", section).decode()
        return dict(line.split(":", 1) for line in text.splitlines()
                    if ":" in line and not line.startswith("#"))


def info(port, section):
    """INFO `section` over a fresh connection."""
    c = Conn(port, timeout=10)
    try:
        return c.info(section)
    finally:
        c.close()


def keys_in_db0(fields):
    """The key count of INFO keyspace's `db0` line (0 when there is none)."""
    return int(fields.get("db0", "keys=0").split(",")[0][len("keys="):])


def server_command(kind, port, cpu, corekv):
    """The command line of a `kind` ("redis" or "corekv") server on `port`, pinned to
    `cpu`, keeping nothing on disk."""
    if kind == "redis":
        return ["taskset", "-c", str(cpu), "redis-server", "--port", str(port),
                "--save", "", "--appendonly", "no"]
    return ["taskset", "-c", str(cpu), corekv, "--port", str(port), "--cpus", str(cpu),
            "--save", ""]


def wait_ready(port, proc, timeout=30):
    """A connection to the server `proc` started on `port`, once it answers PING; exits
    the script if the server dies or does not answer in `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            c = Conn(port)
            if c.call("PING") == b"+PONG":
                return c
            c.close()
        except OSError:
            time.sleep(0.05)
    sys.exit("server did not start")
