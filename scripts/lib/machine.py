"""What this machine looks like to a thread-per-core server, read from /sys and /proc.

Shared by scripts/topology (which prints it) and scripts/tune (which checks and changes
settings for corekv's shard CPUs). Every path is read under a root directory, "/" on the
real machine, a fixture tree in tests (scripts/tests/fixtures/); nothing here writes.

`read_machine(root)` returns a `Machine`: plain dataclasses of ints, strings and lists, so
tests can also build one by hand and `machine_to_json()` can dump it. `recommend(machine)`
is the pure function that picks the `--cpus` lists for corekv and for its load generator.

The parsers (`parse_cpumask`, `parse_interrupts`, ...) are small pure functions on the
text of one file; the readers around them turn a missing or unreadable file into None
("the kernel does not say"), because VMs and containers lack many of these files.
"""

import dataclasses
import os
import re
import resource
from dataclasses import dataclass, field

from cpulist import format_cpulist, parse_cpulist

#: Sysctls the scripts look at, by name; the file is /proc/sys/ + name with '/' for '.'.
SYSCTLS = (
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.core.busy_poll",
    "net.core.busy_read",
    "kernel.io_uring_disabled",
)
THP_PATH = "/sys/kernel/mm/transparent_hugepage/enabled"
CPU_DIR = "/sys/devices/system/cpu"
NODE_DIR = "/sys/devices/system/node"
NET_DIR = "/sys/class/net"
#: Locked memory one corekv shard may need (its io_uring rings, 512 KiB, and the
#: executor's registered I/O memory, 128 KiB), in KiB: server/src/runtime.rs's
#: LOCKED_PER_SHARD.
MEMLOCK_PER_SHARD_KIB = 640


# ---------------------------------------------------------------------------- data


@dataclass
class Cpu:
    """One online logical CPU (hardware thread)."""

    id: int
    package: int
    core_id: int
    siblings: list  # CPUs of the same physical core (itself included)
    l3: list = None  # CPUs sharing its L3 cache; None when no level-3 cache is described
    node: int = None  # NUMA node; None when the kernel has no node directory for it
    governor: str = None  # cpufreq scaling_governor; None when cpufreq is absent (VMs)
    governors_available: list = None  # scaling_available_governors, None if unknown

    @property
    def core(self):
        """The physical core as (package, core_id): core_id alone repeats per package."""
        return (self.package, self.core_id)


@dataclass
class Node:
    """One NUMA node: its online CPUs and memory (kB, from nodeN/meminfo)."""

    id: int
    cpus: list
    mem_total_kb: int = None
    mem_free_kb: int = None


@dataclass
class Irq:
    """One interrupt of a NIC and where it goes."""

    irq: int
    label: str = None  # name in /proc/interrupts, e.g. "eth0-TxRx-0"
    affinity: list = None  # /proc/irq/N/smp_affinity_list: the CPUs it may go to
    affinity_raw: str = None  # that file as read (what to write back)
    effective: list = None  # effective_affinity_list: where it really fires, if known
    count: int = None  # interrupts so far, all CPUs together

    @property
    def fires_on(self):
        """CPUs that take this interrupt: the effective affinity if the kernel tells,
        else the configured one (empty when neither is readable)."""
        if self.effective:
            return self.effective
        return self.affinity or []


@dataclass
class QueueMask:
    """The RPS (rx-N/rps_cpus) or XPS (tx-N/xps_cpus) mask of one NIC queue."""

    queue: str  # "rx-0", "tx-3"
    path: str  # system path of the mask file
    raw: str = None  # hex bitmap as read, e.g. "0000" or "00000000,0000ffff"
    cpus: list = None  # the CPUs it names; None when unreadable


@dataclass
class Nic:
    """A physical (or paravirtual) network interface: one with a `device` link."""

    name: str
    numa_node: int = None  # None when unknown (-1 in sysfs, usual on VMs)
    irqs: list = field(default_factory=list)  # of Irq, sorted by number
    rps: list = field(default_factory=list)  # of QueueMask
    xps: list = field(default_factory=list)  # of QueueMask


@dataclass
class Machine:
    """Everything the scripts use, as read under `root`."""

    root: str = "/"
    online: list = field(default_factory=list)
    allowed: list = field(default_factory=list)  # CPUs this process may run on
    allowed_source: str = "affinity mask"
    cpus: list = field(default_factory=list)  # of Cpu, by id
    nodes: list = field(default_factory=list)  # of Node, by id
    nics: list = field(default_factory=list)  # of Nic, by name
    isolated: list = field(default_factory=list)  # sys/devices/system/cpu/isolated
    nohz_full: list = field(default_factory=list)  # sys/devices/system/cpu/nohz_full
    cmdline_isolcpus: str = None  # isolcpus= on the kernel command line, as written
    cmdline_nohz_full: str = None  # nohz_full= on the kernel command line, as written
    memlock_soft: int = None  # RLIMIT_MEMLOCK in bytes; None means unlimited
    memlock_hard: int = None
    sysctls: dict = field(default_factory=dict)  # name -> value string, None if absent
    thp: str = None  # transparent_hugepage/enabled as read ("always [madvise] never")
    irqbalance: bool = False  # an irqbalance process is running (it moves IRQs back)

    def cpu(self, cpu_id):
        """The Cpu with this id, or None when it is not online."""
        for c in self.cpus:
            if c.id == cpu_id:
                return c
        return None

    @property
    def io_uring_disabled(self):
        """kernel.io_uring_disabled as an int (0, 1, 2), None when the sysctl is absent."""
        return to_int(self.sysctls.get("kernel.io_uring_disabled"))


# ---------------------------------------------------------------------------- parsers


def to_int(text):
    """int(text), or None when text is None or not an integer."""
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def safe_cpulist(text):
    """parse_cpulist() that returns None instead of raising (and for None)."""
    if text is None:
        return None
    try:
        return parse_cpulist(text)
    except ValueError:
        return None


def parse_cpumask(text):
    """Hex CPU bitmap as in rps_cpus/smp_affinity ("00000000,0000ffff") -> sorted CPUs.

    Raises ValueError when it is not a bitmap."""
    digits = text.strip().replace(",", "")
    if not digits:
        return []
    value = int(digits, 16)
    return [bit for bit in range(value.bit_length()) if value >> bit & 1]


def parse_selected(text):
    """The chosen value of a sysfs selection file: "always [madvise] never" -> "madvise".
    Text without brackets is returned stripped (a fixture or an already simple file)."""
    m = re.search(r"\[([^\]]*)\]", text)
    return m.group(1) if m else text.strip()


def parse_node_meminfo(text):
    """nodeN/meminfo ("Node 0 MemTotal:  65842168 kB" lines) -> {"MemTotal": kB, ...}."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\s*Node\s+\d+\s+(\w+):\s+(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def parse_interrupts(text):
    """/proc/interrupts -> {irq number: (label, total count)} for the numbered lines.

    The label is what follows the chip name and the "N-edge"/"N-level" trigger column
    (usually the device's name for that vector, e.g. "eth0-TxRx-0"), or the last word."""
    lines = text.splitlines()
    if not lines:
        return {}
    ncpu = len(lines[0].split())
    out = {}
    for line in lines[1:]:
        head, sep, rest = line.partition(":")
        if not sep or not head.strip().isdigit():
            continue
        words = rest.split()
        counts = [int(w) for w in words[:ncpu] if w.isdigit()]
        tail = words[len(counts) :]
        label = None
        for i, w in enumerate(tail):
            if re.search(r"-(edge|level|fasteoi)$", w, re.IGNORECASE) and i + 1 < len(tail):
                label = " ".join(tail[i + 1 :])
                break
        if label is None and tail:
            label = tail[-1]
        out[int(head)] = (label, sum(counts))
    return out


def cmdline_param(cmdline, key):
    """Value of `key=` on a kernel command line (the last one wins, as in the kernel),
    or None when absent. Stops at a bare "--" (what follows goes to init)."""
    value = None
    for word in cmdline.split():
        if word == "--":
            break
        name, sep, val = word.partition("=")
        if sep and name == key:
            value = val
    return value


def isolcpus_cpus(value):
    """CPUs named by an isolcpus= value, dropping its flags ("domain,managed_irq,2-5"
    -> [2, 3, 4, 5]). None when the value cannot be parsed."""
    parts = [p for p in value.split(",") if p and not re.fullmatch(r"[A-Za-z_]+", p)]
    return safe_cpulist(",".join(parts))


# ---------------------------------------------------------------------------- readers


def under(root, path):
    """Where the system path `path` ("/proc/cmdline") lives under `root`."""
    return os.path.join(root, path.lstrip("/"))


def read_text(root, path):
    """Contents of the system path `path` under `root`, stripped; None when the file is
    missing or unreadable (sysfs refuses some reads even to root)."""
    try:
        with open(under(root, path), errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def list_dir(root, path):
    """Entries of a directory under `root`, sorted; [] when it is missing."""
    try:
        return sorted(os.listdir(under(root, path)))
    except OSError:
        return []


def numbered(names, prefix):
    """Numbers N of the names "prefixN" (e.g. "cpu12" -> 12), sorted."""
    out = []
    for n in names:
        if n.startswith(prefix) and n[len(prefix) :].isdigit():
            out.append(int(n[len(prefix) :]))
    return sorted(out)


def is_fixture_root(root):
    """True when `root` is not the real "/" (a fixture tree or a copy of one)."""
    return os.path.realpath(root) != "/"


def read_online(root):
    """Online CPUs: cpu/online, else every cpuN directory, else this process's mask."""
    cpus = safe_cpulist(read_text(root, f"{CPU_DIR}/online"))
    if cpus:
        return sorted(cpus)
    cpus = numbered(list_dir(root, CPU_DIR), "cpu")
    return cpus or sorted(os.sched_getaffinity(0))


def read_l3(root, cpu):
    """CPUs sharing this CPU's L3 (the cache/indexN whose level is 3), or None."""
    base = f"{CPU_DIR}/cpu{cpu}/cache"
    for idx in numbered(list_dir(root, base), "index"):
        if read_text(root, f"{base}/index{idx}/level") == "3":
            return safe_cpulist(read_text(root, f"{base}/index{idx}/shared_cpu_list"))
    return None


def read_nodes(root, online):
    """NUMA nodes with their online CPUs and memory. A kernel without NUMA support has
    no node directory: then one node 0 holds every CPU (memory from /proc/meminfo)."""
    nodes = []
    for n in numbered(list_dir(root, NODE_DIR), "node"):
        cpus = safe_cpulist(read_text(root, f"{NODE_DIR}/node{n}/cpulist")) or []
        mem = parse_node_meminfo(read_text(root, f"{NODE_DIR}/node{n}/meminfo") or "")
        cpus = sorted(c for c in cpus if c in online)
        nodes.append(Node(n, cpus, mem.get("MemTotal"), mem.get("MemFree")))
    if not nodes:
        mem = {}
        for line in (read_text(root, "/proc/meminfo") or "").splitlines():
            m = re.match(r"(\w+):\s+(\d+)", line)
            if m:
                mem[m.group(1)] = int(m.group(2))
        nodes.append(Node(0, list(online), mem.get("MemTotal"), mem.get("MemFree")))
    return nodes


def read_cpu(root, cpu, node_of):
    """One CPU's place (package, core, siblings, L3, node) and governor. Missing topology
    files (some VMs) make it a core of its own in package 0."""
    base = f"{CPU_DIR}/cpu{cpu}"
    package = to_int(read_text(root, f"{base}/topology/physical_package_id"))
    core_id = to_int(read_text(root, f"{base}/topology/core_id"))
    siblings = safe_cpulist(read_text(root, f"{base}/topology/thread_siblings_list"))
    if not siblings:
        siblings = safe_cpulist(read_text(root, f"{base}/topology/core_cpus_list"))
    avail = read_text(root, f"{base}/cpufreq/scaling_available_governors")
    return Cpu(
        id=cpu,
        package=package if package is not None and package >= 0 else 0,
        core_id=core_id if core_id is not None else cpu,
        siblings=sorted(siblings) if siblings else [cpu],
        l3=read_l3(root, cpu),
        node=node_of.get(cpu),
        governor=read_text(root, f"{base}/cpufreq/scaling_governor"),
        governors_available=avail.split() if avail is not None else None,
    )


def nic_irq_numbers(root, name, device_dir, interrupts):
    """IRQ numbers of a NIC: device/msi_irqs; else the parent device's msi_irqs (virtio
    NICs: the virtioN device sits under the PCI function that owns the vectors); else the
    legacy device/irq; else the /proc/interrupts lines labelled "<name>-..."."""
    real = os.path.realpath(under(root, device_dir))
    dirs = [real]
    if os.path.basename(real).startswith("virtio"):
        dirs.append(os.path.dirname(real))  # not for others: the parent may be a bridge
    for d in dirs:
        try:
            names = os.listdir(os.path.join(d, "msi_irqs"))
        except OSError:
            continue
        irqs = sorted(int(n) for n in names if n.isdigit())
        if irqs:
            return irqs
    legacy = to_int(read_text(root, f"{device_dir}/irq"))
    if legacy:
        return [legacy]
    return sorted(n for n, (label, _) in interrupts.items()
                  if label and label.split()[0].startswith(name + "-"))


def read_irq(root, irq, interrupts):
    """One IRQ: label and count from /proc/interrupts, affinity from /proc/irq/N."""
    raw = read_text(root, f"/proc/irq/{irq}/smp_affinity_list")
    label, count = interrupts.get(irq, (None, None))
    return Irq(
        irq=irq,
        label=label,
        affinity=safe_cpulist(raw),
        affinity_raw=raw,
        effective=safe_cpulist(read_text(root, f"/proc/irq/{irq}/effective_affinity_list")),
        count=count,
    )


def read_queue_masks(root, name, kind, filename):
    """The RPS or XPS masks of a NIC's rx-N or tx-N queues, by queue number."""
    qdir = f"{NET_DIR}/{name}/queues"
    out = []
    for q in numbered(list_dir(root, qdir), kind + "-"):
        path = f"{qdir}/{kind}-{q}/{filename}"
        raw = read_text(root, path)
        if raw is None:
            continue  # e.g. no xps_cpus on a single-queue virtio NIC
        try:
            cpus = parse_cpumask(raw)
        except ValueError:
            cpus = None
        out.append(QueueMask(f"{kind}-{q}", path, raw, cpus))
    return out


def read_nics(root, interrupts):
    """Interfaces with a `device` link (so not lo, bridges, veth, ifb...), by name."""
    nics = []
    for name in list_dir(root, NET_DIR):
        device = f"{NET_DIR}/{name}/device"
        if name == "lo" or not os.path.exists(under(root, device)):
            continue
        node = to_int(read_text(root, f"{device}/numa_node"))
        real = os.path.realpath(under(root, device))
        if node is None and os.path.basename(real).startswith("virtio"):
            node = to_int(read_text("/", os.path.join(os.path.dirname(real), "numa_node")))
        irqs = [read_irq(root, n, interrupts)
                for n in nic_irq_numbers(root, name, device, interrupts)]
        nics.append(Nic(
            name=name,
            numa_node=node if node is not None and node >= 0 else None,
            irqs=irqs,
            rps=read_queue_masks(root, name, "rx", "rps_cpus"),
            xps=read_queue_masks(root, name, "tx", "xps_cpus"),
        ))
    return nics


def irqbalance_running(root):
    """True when a process named irqbalance shows in /proc (it rewrites IRQ affinity)."""
    for pid in list_dir(root, "/proc"):
        if pid.isdigit() and read_text(root, f"/proc/{pid}/comm") == "irqbalance":
            return True
    return False


def read_memlock():
    """(soft, hard) RLIMIT_MEMLOCK of this process in bytes, None meaning unlimited.
    This is the real process's limit even under a fixture root."""
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    inf = resource.RLIM_INFINITY
    return (None if soft == inf else soft, None if hard == inf else hard)


def read_machine(root="/", allowed=None):
    """Reads the machine under `root`.

    `allowed`: CPUs this process may run on. None means os.sched_getaffinity(0) on the
    real machine (so a cgroup cpuset or taskset counts), and under a fixture root the
    fixture's online CPUs minus its isolated ones (the default mask Linux gives
    processes when isolcpus= is set)."""
    online = read_online(root)
    nodes = read_nodes(root, online)
    node_of = {c: n.id for n in nodes for c in n.cpus}
    cmdline = read_text(root, "/proc/cmdline") or ""
    isolcpus, nohz = cmdline_param(cmdline, "isolcpus"), cmdline_param(cmdline, "nohz_full")
    # The sysfs files say what the kernel applied; older kernels lack them, and then
    # the command line is the best guess.
    isolated = safe_cpulist(read_text(root, f"{CPU_DIR}/isolated"))
    if isolated is None:
        isolated = (isolcpus_cpus(isolcpus) if isolcpus else None) or []
    nohz_full = safe_cpulist(read_text(root, f"{CPU_DIR}/nohz_full"))
    if nohz_full is None:
        nohz_full = (safe_cpulist(nohz) if nohz else None) or []
    if allowed is not None:
        source = "--allowed"
    elif is_fixture_root(root):
        allowed, source = [c for c in online if c not in isolated], "fixture online CPUs"
    else:
        allowed, source = sorted(os.sched_getaffinity(0)), "affinity mask"
    interrupts = parse_interrupts(read_text(root, "/proc/interrupts") or "")
    soft, hard = read_memlock()
    return Machine(
        root=root,
        online=online,
        allowed=sorted(c for c in allowed if c in online),
        allowed_source=source,
        cpus=[read_cpu(root, c, node_of) for c in online],
        nodes=nodes,
        nics=read_nics(root, interrupts),
        isolated=isolated,
        nohz_full=nohz_full,
        cmdline_isolcpus=isolcpus,
        cmdline_nohz_full=nohz,
        memlock_soft=soft,
        memlock_hard=hard,
        sysctls={name: read_text(root, sysctl_path(name)) for name in SYSCTLS},
        thp=read_text(root, THP_PATH),
        irqbalance=irqbalance_running(root),
    )


def sysctl_path(name):
    """"net.core.somaxconn" -> "/proc/sys/net/core/somaxconn"."""
    return "/proc/sys/" + name.replace(".", "/")


def machine_to_json(machine):
    """The Machine as JSON-ready dicts and lists (CPU lists stay lists of ints)."""
    return dataclasses.asdict(machine)


# ---------------------------------------------------------------------------- derived


def cores(machine, cpus=None):
    """Physical cores as an ordered {(package, core_id): [CPUs]} over `cpus` (default:
    every online CPU), ordered by their lowest CPU."""
    pick = set(machine.online if cpus is None else cpus)
    out = {}
    for c in sorted(machine.cpus, key=lambda c: c.id):
        if c.id in pick:
            out.setdefault(c.core, []).append(c.id)
    return out


def l3_domains(machine):
    """Distinct L3 domains (lists of CPUs), by lowest CPU; [] when no L3 is described."""
    seen = []
    for c in machine.cpus:
        if c.l3 and c.l3 not in seen:
            seen.append(c.l3)
    return sorted(seen)


def nic_irq_cpus(machine):
    """CPUs that take NIC interrupts (where each NIC IRQ really fires when known)."""
    return sorted({c for nic in machine.nics for irq in nic.irqs for c in irq.fires_on})


def memlock_needed_kib(shards):
    """Locked memory corekv needs for `shards` shards, in KiB."""
    return MEMLOCK_PER_SHARD_KIB * max(1, shards)


@dataclass
class Recommendation:
    """CPU lists for corekv (`--cpus`) and for the load generator (corekv-bench
    `--cpus`), the NUMA node chosen (None when not chosen by node) and why."""

    corekv: list
    load: list
    node: int = None
    reasons: list = field(default_factory=list)

    def to_json(self):
        """As a dict with both the lists and their "0-3,8" spelling."""
        return {
            "corekv_cpus": format_cpulist(self.corekv),
            "load_cpus": format_cpulist(self.load),
            "corekv": list(self.corekv),
            "load": list(self.load),
            "node": self.node,
            "reasons": list(self.reasons),
        }


def choose_node(machine, allowed):
    """(node id, reason): the first NIC's node (by name) that has allowed CPUs, else the
    node with the most allowed CPUs (the lowest id on a tie)."""
    per_node = {}
    for c in machine.cpus:
        if c.id in allowed:
            per_node.setdefault(c.node, []).append(c.id)
    for nic in sorted(machine.nics, key=lambda n: n.name):
        if nic.numa_node is not None and per_node.get(nic.numa_node):
            return nic.numa_node, f"NUMA node {nic.numa_node}, where NIC {nic.name} is"
    node = min(per_node, key=lambda n: (-len(per_node[n]), n if n is not None else -1))
    if len(per_node) == 1:
        why = "the only NUMA node" if node is not None else "no NUMA information"
        return node, f"NUMA node {node} ({why})" if node is not None else why
    return node, f"NUMA node {node}, the one with the most allowed CPUs ({len(per_node[node])})"


def recommend(machine):
    """Pure: CPUs for corekv and for the load generator on this machine.

    - One or two allowed CPUs: corekv on the last, the load generator on the first (the
      same CPU when there is only one).
    - Otherwise one NUMA node (see choose_node); corekv gets the first allowed thread of
      each physical core of that node, leaving out the cores any of whose threads take
      NIC interrupts as long as at least half of the node's cores remain (past that,
      moving the IRQs with scripts/tune beats losing cores).
    - The load generator gets every other allowed CPU that shares no core with corekv;
      if there is none, the SMT siblings of corekv's CPUs; if there are none either
      (one thread per core, all given to corekv), corekv keeps the upper half of the
      cores and the load generator takes the lower half.
    """
    allowed = sorted(set(machine.allowed) & set(machine.online))
    if not allowed:
        return Recommendation([], [], None, ["no CPU is both online and allowed"])
    if len(allowed) <= 2:
        n = len(allowed)
        reasons = [f"only {n} allowed CPU{'s' if n > 1 else ''}: corekv on the last, "
                   f"the load generator on the first" + (" (they share it)" if n == 1 else "")]
        hit = [c for c in nic_irq_cpus(machine) if c == allowed[-1]]
        if hit and n > 1:
            reasons.append(f"NIC IRQs also fire on CPU {hit[0]}: scripts/tune moves "
                           "them off it")
        return Recommendation([allowed[-1]], [allowed[0]], None, reasons)
    node, node_why = choose_node(machine, allowed)
    node_cpus = [c.id for c in machine.cpus if c.id in allowed and c.node == node]
    node_cores = cores(machine, node_cpus)
    irq_cpus = set(nic_irq_cpus(machine))
    by_id = {c.id: c for c in machine.cpus}
    irq_cores = [k for k, cs in node_cores.items() if irq_cpus & set(by_id[cs[0]].siblings)]
    free = [k for k in node_cores if k not in irq_cores]
    if irq_cores and free and len(free) * 2 >= len(node_cores):
        chosen = free
        skipped = sorted(c for k in irq_cores for c in by_id[node_cores[k][0]].siblings)
        irq_why = f", skipping the cores that take NIC IRQs (CPUs {format_cpulist(skipped)})"
    elif irq_cores:
        chosen = list(node_cores)
        irq_why = (f"; NIC IRQs hit {len(irq_cores)} of its {len(node_cores)} cores, kept"
                   " (scripts/tune moves the IRQs off them)")
    else:
        chosen, irq_why = list(node_cores), ""
    corekv = [node_cores[k][0] for k in chosen]
    taken = {c for k in chosen for c in by_id[node_cores[k][0]].siblings}
    load = [c for c in allowed if c not in taken]
    server_why = f"corekv: {node_why}, one thread per physical core{irq_why}"
    if load:
        load_why = "load generator: the other allowed CPUs (none shares a core with corekv)"
    else:
        load = [c for c in allowed if c not in corekv]
        load_why = "load generator: the SMT siblings of corekv's CPUs (no other core is free)"
    if not load:
        half = len(corekv) // 2
        corekv, load = corekv[half:], corekv[:half]
        load_why = ("load generator: no CPU was left, so the cores are split, "
                    "corekv on the upper half")
    return Recommendation(sorted(corekv), sorted(load), node, [server_why, load_why])


def io_uring_note(value):
    """What a kernel.io_uring_disabled value means for corekv (which needs io_uring)."""
    if value is None:
        return "sysctl absent (kernel before 6.6): io_uring is on unless compiled out"
    if value == 0:
        return "enabled"
    if value == 1:
        return ("RESTRICTED: only root and members of kernel.io_uring_group may create rings;"
                " run corekv as such a user or set kernel.io_uring_disabled=0")
    return "DISABLED: corekv cannot start; set kernel.io_uring_disabled=0"


def format_kib(value_bytes):
    """RLIMIT_MEMLOCK bytes -> "8192 KiB", None -> "unlimited" (as `ulimit -l` says)."""
    return "unlimited" if value_bytes is None else f"{value_bytes // 1024} KiB"
