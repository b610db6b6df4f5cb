"""The pure logic of scripts/pinning-sweep: no processes, no sockets.

- Redis Cluster hash slots (CRC16-XMODEM, hash tags) and corekv's slot-to-shard map, and
  picking a `{tag}` that sends every key to a chosen shard;
- the sweep's plan: which cells (shard count x placement x where the load runs x
  pipeline depth, plus the cross-shard-hop experiment) are run on the allowed CPUs, which
  CPUs each side gets, which cells are impossible and why, and the exact command lines;
- reading corekv's `INFO shards` and checking where keys landed and how hops moved;
- folding rounds into medians, the CSV and the stdout summary table.

The SVG plot is in svgplot.py. Shared by scripts/pinning-sweep and scripts/tests."""

import csv
import math
import os
import re
import shlex
import statistics
from dataclasses import dataclass, field

from cpulist import format_cpulist, parse_cpulist

# ---------------------------------------------------------------------------------------
# Hash slots

SLOTS = 16384


def crc16_xmodem(data):
    """CRC16-XMODEM (polynomial 0x1021, initial value 0) of bytes, as Redis Cluster uses."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """The hash slot of a key (str or bytes): if it has a `{...}` with at least one byte
    inside (the first `{` and the first `}` after it), only that part is hashed."""
    if isinstance(key, str):
        key = key.encode()
    open_ = key.find(b"{")
    if open_ >= 0:
        close = key.find(b"}", open_ + 1)
        if close > open_ + 1:
            key = key[open_ + 1:close]
    return crc16_xmodem(key) & (SLOTS - 1)


def shard_of_slot(slot, shards):
    """The shard (of `shards`) that owns `slot`: shard i owns the slots
    [ceil(i*16384/n), ceil((i+1)*16384/n))."""
    return (slot * shards) >> 14


def slot_range(shard, shards):
    """The slots shard `shard` of `shards` owns, as a half-open (first, end) pair."""
    return -(-shard * SLOTS // shards), -(-(shard + 1) * SLOTS // shards)


def hash_tag_for_shard(shard, shards, stem="s"):
    """The first tag `stem0`, `stem1`, ... whose slot belongs to `shard` of `shards`.

    Returns (tag, slot). A key prefix `{tag}key:` then puts every key on that shard."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of {shards}")
    i = 0
    while True:
        tag = f"{stem}{i}"
        slot = crc16_xmodem(tag.encode()) & (SLOTS - 1)
        if shard_of_slot(slot, shards) == shard:
            return tag, slot
        i += 1


# ---------------------------------------------------------------------------------------
# Durations and CPUs

def parse_duration(text):
    """'2s', '500ms', '1m', '1h' or a plain number of seconds -> seconds (float), as
    corekv-bench reads them. Raises ValueError otherwise."""
    t = text.strip()
    for suffix, mul in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if t.endswith(suffix):
            t, scale = t[: -len(suffix)], mul
            break
    else:
        scale = 1.0
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (like 2s, 500ms, 1m)") from None
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{text!r}: a duration must be a non-negative number")
    return v * scale


def smt_siblings(cpus, sysfs="/sys"):
    """{cpu: set of its other hardware threads} from sysfs thread_siblings_list; CPUs whose
    file cannot be read get an empty set (no SMT assumed)."""
    out = {}
    for cpu in cpus:
        path = os.path.join(sysfs, f"devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            with open(path) as f:
                out[cpu] = set(parse_cpulist(f.read())) - {cpu}
        except (OSError, ValueError):
            out[cpu] = set()
    return out


# ---------------------------------------------------------------------------------------
# The plan

PLACEMENTS = ("fixed", "spread", "pack", "unpinned")
LOADS = ("separate", "shared")
HOP_CASES = ("1-shard", "local", "remote")
MODES = ("default", "quick", "full")


class Impossible(Exception):
    """A cell that cannot run on the allowed CPUs; the message says why."""


@dataclass
class Spec:
    """The matrix to run: every shard count x placement x load x pipeline, and the
    cross-shard-hop cases (each at every pipeline)."""
    shard_counts: list
    placements: list
    loads: list
    pipelines: list
    hop_cases: list
    load_threads: object = "auto"  # "auto" (ceil(shards/2)) or an int


def full_shard_counts(ncpus):
    """1, 2, 4, ... up to ncpus, and ncpus itself when it is not a power of two."""
    out, n = [], 1
    while n <= ncpus:
        out.append(n)
        n *= 2
    if ncpus >= 1 and out[-1] != ncpus:
        out.append(ncpus)
    return out


def mode_spec(mode, ncpus):
    """The Spec of a mode on a machine with `ncpus` allowed CPUs.

    default: shards 1,2; all four placements; load separate and shared; pipelines 1,16;
             the hop experiment (1 shard, 2 shards local, 2 shards remote).
    quick:   a CI smoke test: 1 shard fixed with separate load (shared if only 1 CPU), and
             2 shards with every key on the remote shard; pipeline 1.
    full:    shards 1,2,4,... up to the allowed CPUs; pipelines 1,16,64; the rest as default.
    """
    if mode == "default":
        return Spec([1, 2], list(PLACEMENTS), list(LOADS), [1, 16], list(HOP_CASES))
    if mode == "quick":
        return Spec([1], ["fixed"], ["separate" if ncpus >= 2 else "shared"], [1], ["remote"])
    if mode == "full":
        return Spec(full_shard_counts(ncpus), list(PLACEMENTS), list(LOADS), [1, 16, 64],
                    list(HOP_CASES))
    raise ValueError(f"unknown mode {mode!r}")


@dataclass
class Cell:
    """One configuration to measure (one row of results.csv)."""
    id: str
    part: str                 # "matrix" or "hops"
    shards: int
    placement: str            # fixed | spread | pack | unpinned
    load: str                 # separate | shared
    pipeline: int
    shard_cpus: list          # --cpus given to corekv (taskset -c for unpinned)
    load_cpus: object         # list, or None: the CPUs of shards 0..L-1 read from INFO
    load_threads: int
    hop_case: str = ""        # "" (matrix), or one of HOP_CASES
    listen_shards: str = ""   # --listen-shards, "" for all
    key_prefix: str = ""      # --key-prefix, "" for corekv-bench's default
    key_shard: object = None  # the shard every key must land on (hops part)
    key_slot: object = None   # the slot of the hash tag

    @property
    def config(self):
        """The configuration without the pipeline depth (a bar group in the plot)."""
        s = "shard" if self.shards == 1 else "shards"
        if self.part == "hops":
            where = {"1-shard": "baseline", "local": "keys local on shard 0",
                     "remote": f"keys remote on shard {self.key_shard}"}[self.hop_case]
            return f"hops: {self.shards} {s} {self.placement}, {where}, load {self.load}"
        return f"{self.shards} {s} {self.placement}, load {self.load}"

    @property
    def label(self):
        """The configuration with its pipeline depth."""
        return f"{self.config}, pipeline {self.pipeline}"


@dataclass
class Skipped:
    """A configuration the allowed CPUs cannot run, at these pipeline depths."""
    part: str
    config: str
    pipelines: list
    reason: str
    shards: int = 0
    placement: str = ""
    load: str = ""
    hop_case: str = ""


@dataclass
class Plan:
    """Cells to run, in order, and configurations skipped with their reasons."""
    allowed: list
    cells: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def load_threads_for(shards, setting):
    """corekv-bench threads for `shards` shards: ceil(shards/2) for "auto", else setting."""
    if setting == "auto":
        return max(1, -(-shards // 2))
    return int(setting)


def assign_cpus(shards, placement, load, allowed, load_threads, siblings=None):
    """CPUs for one configuration: (shard_cpus, load_cpus).

    The load generator takes the first `load_threads` allowed CPUs.
      separate: the shards get the other allowed CPUs, minus the SMT siblings of the load's
                CPUs (from `siblings`, {cpu: set}); fixed takes the first `shards` of them,
                spread and pack choose among all of them; unpinned shards float over them
                (taskset), so more shards than CPUs is allowed.
      shared:   the shards may use every allowed CPU; the load runs on the CPUs of shards
                0..L-1: fixed puts the shards on the first `shards` allowed CPUs, so those
                are known now; spread and pack choose at start, so load_cpus is None and the
                CPUs are read from INFO shards at run time; unpinned shards float over all
                allowed CPUs, the load on the first L.
    Raises Impossible with the reason when the CPUs do not suffice."""
    allowed = sorted(allowed)
    siblings = siblings or {}
    n_load = load_threads
    if n_load < 1:
        raise Impossible("the load generator needs at least 1 thread")
    if n_load > len(allowed):
        raise Impossible(f"{n_load} load thread(s) need {n_load} CPUs; "
                         f"{len(allowed)} allowed ({format_cpulist(allowed)})")
    load_cpus = allowed[:n_load]
    pinned = placement != "unpinned"
    if load == "separate":
        blocked = set(load_cpus)
        for c in load_cpus:
            blocked |= set(siblings.get(c, ()))
        rest = [c for c in allowed if c not in blocked]
        smt = (f" ({len(blocked) - n_load} more kept free as SMT siblings of the load's CPUs)"
               if len(blocked) > n_load else "")
        if not rest:
            raise Impossible(f"no CPU left for the shards: {len(allowed)} allowed "
                             f"({format_cpulist(allowed)}), the load takes "
                             f"{format_cpulist(load_cpus)}{smt}")
        if pinned and shards > len(rest):
            raise Impossible(f"{shards} pinned shards + {n_load} load CPU(s) need "
                             f"{shards + n_load} CPUs; {len(allowed)} allowed "
                             f"({format_cpulist(allowed)}){smt}")
        shard_cpus = rest[:shards] if placement == "fixed" else rest
        return shard_cpus, load_cpus
    if load != "shared":
        raise ValueError(f"unknown load mode {load!r}")
    if not pinned:
        return allowed, load_cpus
    if shards > len(allowed):
        raise Impossible(f"cannot pin {shards} shards to {len(allowed)} allowed CPU(s) "
                         f"({format_cpulist(allowed)})")
    if n_load > shards:
        raise Impossible(f"a shared load of {n_load} threads needs at least {n_load} shards "
                         f"to share CPUs with")
    if placement == "fixed":
        return allowed[:shards], load_cpus
    return allowed, None


def make_plan(spec, allowed, siblings=None, connections=50):
    """Expands a Spec on the allowed CPUs into a Plan.

    Matrix cells come first (shard count, placement, load, pipeline nested in that order),
    then the hop experiment: placement fixed, load separate if 2 pinned shards and their
    load fit, else shared, the same for its three cases so they compare; every key carries
    a hash tag of shard 0 of 2 (1-shard, local) or shard 1 of 2 (remote), and only shard
    0 accepts connections (--listen-shards 0)."""
    allowed = sorted(allowed)
    plan = Plan(allowed=allowed)
    pipes = list(spec.pipelines)

    def add(part, shards, placement, load, hop_case="", extra=None):
        n_load = load_threads_for(shards, spec.load_threads)
        proto = Cell("", part, shards, placement, load, 0, [], None, n_load, hop_case)
        if extra:
            for k, v in extra.items():
                setattr(proto, k, v)
        try:
            if n_load > connections:
                raise Impossible(f"{n_load} load threads need at least {n_load} connections "
                                 f"(--connections {connections})")
            shard_cpus, load_cpus = assign_cpus(shards, placement, load, allowed, n_load,
                                                siblings)
        except Impossible as e:
            plan.skipped.append(Skipped(part, proto.config, pipes, str(e), shards, placement,
                                        load, hop_case))
            return
        for p in pipes:
            c = Cell(**{**proto.__dict__, "pipeline": p, "shard_cpus": list(shard_cpus),
                        "load_cpus": None if load_cpus is None else list(load_cpus)})
            c.id = f"c{len(plan.cells) + 1:02d}"
            plan.cells.append(c)

    for n in spec.shard_counts:
        for placement in spec.placements:
            for load in spec.loads:
                add("matrix", n, placement, load)

    if spec.hop_cases:
        hop_load = None
        why = []
        for load in ("separate", "shared"):
            try:
                assign_cpus(2, "fixed", load, allowed, load_threads_for(2, spec.load_threads),
                            siblings)
                hop_load = load
                break
            except Impossible as e:
                why.append(f"{load}: {e}")
        local_tag, local_slot = hash_tag_for_shard(0, 2)
        remote_tag, remote_slot = hash_tag_for_shard(1, 2)
        for case in spec.hop_cases:
            shards = 1 if case == "1-shard" else 2
            tag, slot, shard = ((remote_tag, remote_slot, 1) if case == "remote"
                                else (local_tag, local_slot, 0))
            extra = {"listen_shards": "0", "key_prefix": f"{{{tag}}}key:", "key_shard": shard,
                     "key_slot": slot}
            if hop_load is None:
                proto = Cell("", "hops", shards, "fixed", "shared", 0, [], None, 1, case, **extra)
                plan.skipped.append(Skipped("hops", proto.config, pipes,
                                            "the hop experiment needs 2 pinned shards and a "
                                            "load generator: " + "; ".join(why),
                                            shards, "fixed", "shared", case))
                continue
            add("hops", shards, "fixed", hop_load, case, extra)
    return plan


# ---------------------------------------------------------------------------------------
# Command lines

PORT_PLACEHOLDER = "$PORT"
LOAD_CPUS_PLACEHOLDER = "$SHARD_CPUS"


@dataclass
class Workload:
    """What corekv-bench runs in every cell."""
    connections: int = 50
    ratio: str = "1:1"
    keys: int = 10000
    value_size: int = 32
    duration: str = "2s"
    warmup: str = "500ms"


def corekv_command(cell, corekv, extra_args=()):
    """corekv's argv for a cell (run it with RUST_LOG=info). Unpinned shards run under
    `taskset -c` so they float over the cell's shard CPUs only."""
    cmd = [corekv, "--port", "0", "--shards", str(cell.shards), "--save", ""]
    if cell.placement == "unpinned":
        cmd = ["taskset", "-c", format_cpulist(cell.shard_cpus)] + cmd + ["--no-pin"]
    else:
        cmd += ["--cpus", format_cpulist(cell.shard_cpus), "--placement", cell.placement]
    if cell.listen_shards:
        cmd += ["--listen-shards", cell.listen_shards]
    return cmd + list(extra_args)


def bench_command(cell, bench, work, json_path, port=None, load_cpus=None):
    """corekv-bench's argv for a cell. `port` and `load_cpus` default to the cell's known
    values, or to placeholders ($PORT, $SHARD_CPUS) for a plan printed before running."""
    cpus = load_cpus if load_cpus is not None else cell.load_cpus
    cmd = [bench, "--port", PORT_PLACEHOLDER if port is None else str(port),
           "--cpus", LOAD_CPUS_PLACEHOLDER if cpus is None else format_cpulist(cpus),
           "--threads", str(cell.load_threads), "--connections", str(work.connections),
           "--pipeline", str(cell.pipeline), "--ratio", work.ratio, "--keys", str(work.keys),
           "--value-size", str(work.value_size)]
    if cell.key_prefix:
        cmd += ["--key-prefix", cell.key_prefix]
    return cmd + ["--duration", work.duration, "--warmup", work.warmup, "--prefill",
                  "--quiet", "--json", json_path]


def shell_join(cmd, env=None):
    """A command line as a shell would take it, with an optional env prefix. The
    placeholders ($PORT, $SHARD_CPUS) stay unquoted, to be filled in as shell variables."""
    pre = "".join(f"{k}={shlex.quote(v)} " for k, v in (env or {}).items())
    keep = (PORT_PLACEHOLDER, LOAD_CPUS_PLACEHOLDER)
    return pre + " ".join(a if a in keep else shlex.quote(a) for a in cmd)


def load_cpus_from_map(shard_infos, load_threads):
    """The CPUs of shards 0..L-1 from parsed INFO shards (a shared load on spread or pack
    shards). Raises ValueError if they are not pinned."""
    cpus = []
    for s in shard_infos[:load_threads]:
        cpu = s.get("cpu")
        if not isinstance(cpu, int):
            raise ValueError(f"shard {s.get('shard')} is not pinned (cpu={cpu})")
        cpus.append(cpu)
    if len(cpus) < load_threads:
        raise ValueError(f"INFO shards lists {len(shard_infos)} shards, the load needs "
                         f"{load_threads}")
    return cpus


# ---------------------------------------------------------------------------------------
# INFO shards

INFO_SHARDS_REQUEST = b"*2\r\n$4\r\nINFO\r\n$6\r\nshards\r\n"
READY_RE = re.compile(r"ready to accept connections on (\S+):(\d+)")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def ready_port(line):
    """The port in corekv's `ready to accept connections on HOST:PORT` log line, or None."""
    m = READY_RE.search(ANSI_RE.sub("", line))
    return int(m.group(2)) if m else None


def resp_bulk_payload(buf):
    """The payload of one complete RESP bulk (`$`) or verbatim (`=`) string reply at the
    start of `buf`, or None if more bytes are needed. A verbatim string loses its `txt:`.
    Raises ValueError on an error reply or anything else."""
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    head = buf[:end]
    if head[:1] == b"-":
        raise ValueError(f"server replied {head[1:].decode(errors='replace')}")
    if head[:1] not in (b"$", b"="):
        raise ValueError(f"expected a bulk string, got {head[:60]!r}")
    n = int(head[1:])
    if n < 0:
        raise ValueError("server replied with a null string")
    if len(buf) < end + 2 + n + 2:
        return None
    body = buf[end + 2:end + 2 + n]
    if head[:1] == b"=":
        body = body[4:]
    return body.decode(errors="replace")


def parse_info_shards(text):
    """The `# Shards` lines of INFO (`shard0:cpu=1,core=1,keys=12,...`) as a list of dicts
    in shard order, each with "shard" and its fields; numbers become ints (so `cpu` is an
    int when pinned and the string "unpinned" when not)."""
    shards = {}
    for line in text.splitlines():
        m = re.match(r"shard(\d+):(.*)$", line.strip())
        if not m:
            continue
        d = {"shard": int(m.group(1))}
        for item in m.group(2).split(","):
            k, sep, v = item.partition("=")
            if sep:
                d[k.strip()] = int(v) if re.fullmatch(r"-?\d+", v.strip()) else v.strip()
        shards[d["shard"]] = d
    return [shards[i] for i in sorted(shards)]


def format_shard_map(shard_infos):
    """'0:cpu=1/socket=0/core=1/node=0 1:cpu=0/...' from parsed INFO shards (cpu, socket,
    core and node, those the server reports)."""
    out = []
    for s in shard_infos:
        parts = [f"{k}={s[k]}" for k in ("cpu", "socket", "core", "node") if k in s]
        out.append(f"{s['shard']}:{'/'.join(parts)}")
    return " ".join(out)


def per_shard(shard_infos, key, before=None):
    """'a b c': one field per shard, or its growth since `before` (same layout)."""
    vals = []
    for i, s in enumerate(shard_infos):
        v = s.get(key)
        if before is not None and isinstance(v, int) and i < len(before) \
                and isinstance(before[i].get(key), int):
            v -= before[i][key]
        vals.append("?" if v is None else str(v))
    return " ".join(vals)


def verify_hops(cell, before, after, keys, requests):
    """Checks a hop-experiment cell from INFO shards before and after its run: only shard 0
    listening (when INFO says); every one of
    the `keys` keys on cell.key_shard and none elsewhere; hops: none for the 1-shard and
    local cases (at most 1% of the measured `requests`, for INFO's own fan-out), and for
    remote at least `requests` hops out of shard 0 and into the key's shard.
    Returns (ok, text)."""
    problems = []
    if not after:
        return False, "INFO shards listed no shards"
    want = cell.key_shard
    counts = [s.get("keys") for s in after]
    if len(after) != cell.shards:
        problems.append(f"INFO lists {len(after)} shards, expected {cell.shards}")
    for s, n in enumerate(counts):
        expected = keys if s == want else 0
        if n != expected:
            problems.append(f"shard {s} holds {n} keys, expected {expected}")

    def delta(i, key):
        a = after[i].get(key) if i < len(after) else None
        b = before[i].get(key, 0) if before and i < len(before) else 0
        return None if not isinstance(a, int) else a - (b if isinstance(b, int) else 0)

    listening = [s.get("listening") for s in after]
    if any(v is not None for v in listening):
        want_listen = [1 if i == 0 else 0 for i in range(len(after))]
        if listening != want_listen:
            problems.append(f"listening={'/'.join(map(str, listening))}, expected only shard 0")
    outs = [delta(i, "hops_out") for i in range(len(after))]
    ins = [delta(i, "hops_in") for i in range(len(after))]
    if None in outs or None in ins:
        problems.append("INFO shards has no hops_out/hops_in")
    elif cell.hop_case == "remote":
        if outs[0] < requests:
            problems.append(f"shard 0 sent {outs[0]} hops, expected >= {requests} "
                            f"(every measured request)")
        if want < len(ins) and ins[want] < requests:
            problems.append(f"shard {want} ran {ins[want]} hops, expected >= {requests}")
    else:
        limit = max(100, requests // 100)
        if sum(outs) > limit or sum(ins) > limit:
            problems.append(f"{sum(outs)} hops out / {sum(ins)} in, expected ~0 (<= {limit})")
    summary = (f"keys {'/'.join(str(c) for c in counts)}, hops_out +{'/+'.join(map(str, outs))}, "
               f"hops_in +{'/+'.join(map(str, ins))}")
    if problems:
        return False, "failed: " + "; ".join(problems) + f" ({summary})"
    return True, "ok: " + summary


# ---------------------------------------------------------------------------------------
# Results

CSV_COLUMNS = [
    "cell", "part", "config", "shards", "placement", "load", "pipeline", "hop_case",
    "listen_shards", "key_prefix", "key_slot", "key_shard", "shard_cpus", "load_cpus",
    "load_threads", "connections", "ratio", "keys", "value_size", "duration", "warmup",
    "rounds", "rounds_ok", "status", "error",
    "throughput_rps", "p50_us", "p99_us", "p999_us", "errors",
    "shard_map", "keys_per_shard", "hops_out_per_shard", "hops_in_per_shard", "verification",
    "corekv_command", "bench_command",
]


def bench_figures(doc):
    """(throughput_rps, p50, p99, p99.9 in µs, errors total, clean, requests) from a
    corekv-bench --json document (see bench/src/report.rs: Results, Latency, Errors)."""
    r = doc["results"]
    lat = r["latency_us"]
    return {"throughput_rps": float(r["throughput_rps"]), "p50_us": float(lat["p50"]),
            "p99_us": float(lat["p99"]), "p999_us": float(lat["p99.9"]),
            "errors": int(r["errors"]["total"]), "clean": bool(r.get("clean", True)),
            "requests": int(r.get("requests", 0))}


def summarize_cell(cell, work, rounds, runs):
    """One CSV row (a dict over CSV_COLUMNS) from a cell's runs, one per round. Each run is
    a dict: ok (bool), error, figures (bench_figures or None), load_cpus, after (parsed
    INFO shards), before, verification, corekv_command, bench_command. Figures are medians
    over the runs that produced them, errors their sum; the cell is "ok" only if every
    round was."""
    row = {k: "" for k in CSV_COLUMNS}
    row.update(cell=cell.id, part=cell.part, config=cell.config, shards=cell.shards,
               placement=cell.placement, load=cell.load, pipeline=cell.pipeline,
               hop_case=cell.hop_case, listen_shards=cell.listen_shards,
               key_prefix=cell.key_prefix,
               key_slot="" if cell.key_slot is None else cell.key_slot,
               key_shard="" if cell.key_shard is None else cell.key_shard,
               shard_cpus=format_cpulist(cell.shard_cpus), load_threads=cell.load_threads,
               connections=work.connections, ratio=work.ratio, keys=work.keys,
               value_size=work.value_size, duration=work.duration, warmup=work.warmup,
               rounds=rounds, rounds_ok=sum(1 for r in runs if r.get("ok")))
    figs = [r["figures"] for r in runs if r.get("figures")]
    for k in ("throughput_rps", "p50_us", "p99_us", "p999_us"):
        if figs:
            row[k] = round(statistics.median(f[k] for f in figs), 1)
    if figs:
        row["errors"] = sum(f["errors"] for f in figs)
    errors = []
    for i, r in enumerate(runs):
        if not r.get("ok"):
            errors.append(f"round {i + 1}: {r.get('error') or 'failed'}")
    row["status"] = "ok" if runs and not errors else "failed"
    row["error"] = " | ".join(errors)
    last = next((r for r in reversed(runs) if r.get("after")), None)
    if last:
        row["shard_map"] = format_shard_map(last["after"])
        row["keys_per_shard"] = per_shard(last["after"], "keys")
        row["hops_out_per_shard"] = per_shard(last["after"], "hops_out", last.get("before"))
        row["hops_in_per_shard"] = per_shard(last["after"], "hops_in", last.get("before"))
    else:
        # No INFO after a run (it failed before or during the run): the map at start.
        first = next((r for r in reversed(runs) if r.get("before")), None)
        if first:
            row["shard_map"] = format_shard_map(first["before"])
    lc = next((r["load_cpus"] for r in reversed(runs) if r.get("load_cpus") is not None), None)
    row["load_cpus"] = format_cpulist(lc if lc is not None else (cell.load_cpus or []))
    ver = [r.get("verification", "") for r in runs if r.get("verification")]
    if ver:
        bad = [v for v in ver if not v.startswith("ok")]
        row["verification"] = bad[0] if bad else ver[-1]
    if runs:
        row["corekv_command"] = runs[-1].get("corekv_command", "")
        row["bench_command"] = runs[-1].get("bench_command", "")
    return row


def skipped_rows(plan, work, rounds):
    """CSV rows (status "skipped", the reason in "error") for the plan's skipped cells."""
    rows = []
    for s in plan.skipped:
        for p in s.pipelines:
            row = {k: "" for k in CSV_COLUMNS}
            row.update(part=s.part, config=s.config, shards=s.shards, placement=s.placement,
                       load=s.load, pipeline=p, hop_case=s.hop_case,
                       connections=work.connections, ratio=work.ratio, keys=work.keys,
                       value_size=work.value_size, duration=work.duration,
                       warmup=work.warmup, rounds=rounds, rounds_ok=0, status="skipped",
                       error=s.reason)
            rows.append(row)
    return rows


def write_csv(path, rows):
    """Writes rows (dicts over CSV_COLUMNS) with a header line; atomically (via a .tmp)."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    os.replace(tmp, path)


def _num(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) else "-"


def summary_table(rows):
    """The stdout table: one line per row (ran or skipped), aligned columns."""
    head = ("cell", "configuration", "P", "shard map", "load CPUs", "req/s", "p50 µs",
            "p99 µs", "p99.9 µs", "errors", "status")
    lines = []
    for r in rows:
        status = r["status"]
        if status == "ok" and r.get("verification"):
            status = "ok, verified"
        elif status != "ok":
            status = f"{status}: {r.get('error', '')}"
        smap = " ".join(p.split("/")[0].replace("cpu=", "") for p in r.get("shard_map", "").split())
        lines.append((r.get("cell", "") or "-", r["config"], str(r["pipeline"]), smap or "-",
                      r.get("load_cpus") or "-", _num(r.get("throughput_rps"), ",.0f"),
                      _num(r.get("p50_us"), ".0f"), _num(r.get("p99_us"), ".0f"),
                      _num(r.get("p999_us"), ".0f"), _num(r.get("errors"), "d"), status))
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head) - 1)]
    right = {2, 5, 6, 7, 8, 9}
    out = []
    for x in [head] + lines:
        cols = [x[i].rjust(widths[i]) if i in right else x[i].ljust(widths[i])
                for i in range(len(head) - 1)]
        out.append("  ".join(cols + [x[-1]]).rstrip())
    return "\n".join(out)


def check_placement(cell, shard_infos):
    """What is wrong with the shard map INFO reports for a cell ("" if nothing): the shard
    count; fixed shards on exactly the cell's CPUs in order; spread and pack shards on
    distinct CPUs among the cell's; unpinned shards unpinned."""
    if len(shard_infos) != cell.shards:
        return f"INFO shards lists {len(shard_infos)} shards, expected {cell.shards}"
    cpus = [s.get("cpu") for s in shard_infos]
    if cell.placement == "unpinned":
        pinned = [f"shard {i} on cpu {c}" for i, c in enumerate(cpus) if c != "unpinned"]
        return f"--no-pin, yet {', '.join(pinned)}" if pinned else ""
    if not all(isinstance(c, int) for c in cpus):
        return f"placement {cell.placement}, yet INFO shows cpu={'/'.join(map(str, cpus))}"
    if cell.placement == "fixed":
        want = list(cell.shard_cpus[:cell.shards])
        if cpus != want:
            return (f"fixed placement on CPUs {','.join(map(str, want))}, INFO shows "
                    f"{','.join(map(str, cpus))}")
        return ""
    if len(set(cpus)) != len(cpus) or not set(cpus) <= set(cell.shard_cpus):
        return (f"{cell.placement} placement among CPUs {format_cpulist(cell.shard_cpus)}, "
                f"INFO shows {','.join(map(str, cpus))}")
    return ""
