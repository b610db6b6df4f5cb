"""Tests of scripts/lib/machine.py (reading, parsing, the recommendation) and of
scripts/topology, on the fixture tree of a 2-socket SMT machine
(scripts/tests/fixtures/2socket-smt, made by fixtures/make-2socket-smt).

Run from the repo root: python3 -m unittest discover -s scripts/tests -t scripts/tests
"""

import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
FIXTURE = os.path.join(HERE, "fixtures", "2socket-smt")
sys.path.insert(0, os.path.join(SCRIPTS, "lib"))
import machine as mach  # noqa: E402


def load_script(name):
    """Imports the extension-less script scripts/<name> as a module."""
    loader = importlib.machinery.SourceFileLoader(f"script_{name}", os.path.join(SCRIPTS, name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


topology = load_script("topology")


def scratch_dir(test):
    """A temporary directory removed after the test; in /dev/shm when there is one,
    since creating the fixture's ~500 files is slow on some disks."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="corekv-scripts-test-", dir=base)
    test.addCleanup(shutil.rmtree, tmp)
    return tmp


def run_main(main, argv):
    """Runs a script's main(argv); returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def fixture_copy(test):
    """A throwaway copy of the fixture (removed after the test); returns its path."""
    root = os.path.join(scratch_dir(test), "root")
    shutil.copytree(FIXTURE, root)
    return root


def write_file(root, path, text):
    """Overwrites a file of a fixture copy."""
    with open(mach.under(root, path), "w") as f:
        f.write(text)


def synthetic(ncpu, threads=1, irq_cpus=(), nic_node=None):
    """A one-node Machine built by hand: `ncpu` CPUs, `threads` per core (siblings
    numbered like the fixture: cpu N and N + ncpu/threads), NIC IRQs on `irq_cpus`."""
    ncores = ncpu // threads
    cpus = []
    for c in range(ncpu):
        core = c % ncores
        sib = [core + t * ncores for t in range(threads)]
        cpus.append(mach.Cpu(c, 0, core, sib, list(range(ncpu)), 0))
    nics = []
    if irq_cpus or nic_node is not None:
        nics = [mach.Nic("eth0", nic_node, [mach.Irq(100, "eth0-0", list(irq_cpus), "x")])]
    return mach.Machine(online=list(range(ncpu)), allowed=list(range(ncpu)), cpus=cpus,
                        nodes=[mach.Node(0, list(range(ncpu)))], nics=nics)


class ParserTests(unittest.TestCase):
    """The pure parsers of machine.py."""

    def test_cpumask(self):
        self.assertEqual(mach.parse_cpumask("0000"), [])
        self.assertEqual(mach.parse_cpumask("00000000,0000ff01"), [0, 8, 9, 10, 11, 12, 13, 14, 15])
        self.assertEqual(mach.parse_cpumask("1,00000000"), [32])
        with self.assertRaises(ValueError):
            mach.parse_cpumask("xyz")

    def test_selected(self):
        self.assertEqual(mach.parse_selected("always [madvise] never"), "madvise")
        self.assertEqual(mach.parse_selected("[always] madvise never"), "always")
        self.assertEqual(mach.parse_selected("never\n"), "never")

    def test_node_meminfo(self):
        text = "Node 1 MemTotal:  100 kB\nNode 1 MemFree:    40 kB\nNode 1 MemUsed: 60 kB"
        self.assertEqual(mach.parse_node_meminfo(text),
                         {"MemTotal": 100, "MemFree": 40, "MemUsed": 60})

    def test_interrupts(self):
        text = ("           CPU0       CPU1\n"
                " 38:          0       7289 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n"
                " 24:          1          0  IO-APIC   5-edge      ACPI:Ged\n"
                "  9:          0          0  IO-APIC   9-fasteoi   acpi, i8042\n"
                "NMI:          0          0   Non-maskable interrupts\n"
                "ERR:          0\n")
        self.assertEqual(mach.parse_interrupts(text), {
            38: ("virtio2-input.0", 7289), 24: ("ACPI:Ged", 1), 9: ("acpi, i8042", 0)})

    def test_cmdline(self):
        line = "ro isolcpus=1 quiet isolcpus=domain,managed_irq,2-5 nohz_full=2-5 -- isolcpus=7"
        self.assertEqual(mach.cmdline_param(line, "isolcpus"), "domain,managed_irq,2-5")
        self.assertEqual(mach.cmdline_param(line, "nohz_full"), "2-5")
        self.assertIsNone(mach.cmdline_param("ro quiet", "isolcpus"))
        self.assertEqual(mach.isolcpus_cpus("domain,managed_irq,2-5"), [2, 3, 4, 5])
        self.assertEqual(mach.isolcpus_cpus("3,5"), [3, 5])


class FixtureReadTests(unittest.TestCase):
    """read_machine() on the 2-socket SMT fixture."""

    @classmethod
    def setUpClass(cls):
        cls.m = mach.read_machine(FIXTURE)

    def test_cpus(self):
        m = self.m
        self.assertEqual(m.online, list(range(16)))
        self.assertEqual(m.allowed, list(range(16)))
        self.assertEqual(m.allowed_source, "fixture online CPUs")
        self.assertEqual(len(mach.cores(m)), 8)
        for c in m.cpus:
            first = c.id % 8
            self.assertEqual(c.siblings, [first, first + 8], c)
            self.assertEqual(c.package, 0 if first < 4 else 1)
            self.assertEqual(c.core_id, first % 4)
            self.assertEqual(c.node, c.package)
            self.assertEqual(c.governor, "powersave")
            self.assertEqual(c.governors_available, ["performance", "powersave"])

    def test_l3_domains(self):
        self.assertEqual(mach.l3_domains(self.m),
                         [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]])
        self.assertEqual(self.m.cpu(5).l3, [4, 5, 6, 7, 12, 13, 14, 15])

    def test_nodes(self):
        got = [(n.id, n.cpus, n.mem_total_kb, n.mem_free_kb) for n in self.m.nodes]
        self.assertEqual(got, [
            (0, [0, 1, 2, 3, 8, 9, 10, 11], 65_842_168, 60_112_004),
            (1, [4, 5, 6, 7, 12, 13, 14, 15], 65_843_192, 60_107_908),
        ])

    def test_nic(self):
        self.assertEqual([n.name for n in self.m.nics], ["eth0"])  # lo has no device
        nic = self.m.nics[0]
        self.assertEqual(nic.numa_node, 0)
        self.assertEqual([i.irq for i in nic.irqs], [120, 121, 122, 123])
        for q, irq in enumerate(nic.irqs):
            self.assertEqual((irq.label, irq.affinity, irq.affinity_raw, irq.count),
                             (f"eth0-TxRx-{q}", [0], "0", 1000 * (q + 1)))
            self.assertEqual(irq.fires_on, [0])
        self.assertEqual([(m.queue, m.raw, m.cpus) for m in nic.rps],
                         [(f"rx-{q}", "0000", []) for q in range(4)])
        self.assertEqual([m.path for m in nic.xps],
                         [f"/sys/class/net/eth0/queues/tx-{q}/xps_cpus" for q in range(4)])
        self.assertEqual(mach.nic_irq_cpus(self.m), [0])

    def test_kernel_settings(self):
        m = self.m
        self.assertEqual((m.isolated, m.nohz_full), ([], []))
        self.assertEqual((m.cmdline_isolcpus, m.cmdline_nohz_full), (None, None))
        self.assertEqual(m.io_uring_disabled, 0)
        self.assertEqual(m.thp, "[always] madvise never")
        self.assertEqual(m.sysctls["net.ipv4.tcp_max_syn_backlog"], "512")
        self.assertFalse(m.irqbalance)

    def test_allowed_option_and_isolated(self):
        self.assertEqual(mach.read_machine(FIXTURE, [1, 2, 99]).allowed, [1, 2])
        root = fixture_copy(self)
        write_file(root, "/sys/devices/system/cpu/isolated", "2-3\n")
        write_file(root, "/proc/cmdline", "ro isolcpus=managed_irq,2-3 nohz_full=2-3\n")
        m = mach.read_machine(root)
        self.assertEqual(m.isolated, [2, 3])
        self.assertEqual(m.allowed, [0, 1] + list(range(4, 16)))
        self.assertEqual((m.cmdline_isolcpus, m.cmdline_nohz_full), ("managed_irq,2-3", "2-3"))
        self.assertEqual(m.nohz_full, [])  # the fixture's sysfs file says "(null)"
        # Without the sysfs files (older kernels) the command line is used.
        os.remove(mach.under(root, "/sys/devices/system/cpu/isolated"))
        os.remove(mach.under(root, "/sys/devices/system/cpu/nohz_full"))
        m = mach.read_machine(root)
        self.assertEqual((m.isolated, m.nohz_full), ([2, 3], [2, 3]))

    def test_vm_like_tree(self):
        """No cpufreq, no NUMA directory, no caches, no NIC: still reads cleanly."""
        root = fixture_copy(self)
        for c in range(16):
            shutil.rmtree(mach.under(root, f"/sys/devices/system/cpu/cpu{c}/cpufreq"))
            shutil.rmtree(mach.under(root, f"/sys/devices/system/cpu/cpu{c}/cache"))
        shutil.rmtree(mach.under(root, "/sys/devices/system/node"))
        shutil.rmtree(mach.under(root, "/sys/class/net/eth0/device"))
        m = mach.read_machine(root)
        self.assertTrue(all(c.governor is None and c.l3 is None for c in m.cpus))
        self.assertEqual([(n.id, n.cpus) for n in m.nodes], [(0, list(range(16)))])
        self.assertEqual(m.nics, [])
        code, out, _ = run_main(topology.main, ["--root", root])
        self.assertEqual(code, 0)
        self.assertIn("CPU governor: unavailable", out)
        self.assertIn("none with a device", out)


class RecommendTests(unittest.TestCase):
    """machine.recommend(), the pure placement logic."""

    def test_fixture(self):
        rec = mach.recommend(mach.read_machine(FIXTURE))
        self.assertEqual(rec.node, 0)
        self.assertEqual(rec.corekv, [1, 2, 3])  # one thread per core of node 0, not core 0
        self.assertEqual(rec.load, [0, 4, 5, 6, 7, 8, 12, 13, 14, 15])
        self.assertEqual(rec.to_json()["corekv_cpus"], "1-3")
        self.assertEqual(rec.to_json()["load_cpus"], "0,4-8,12-15")
        self.assertEqual(len(rec.reasons), 2)
        self.assertIn("where NIC eth0 is", rec.reasons[0])

    def test_nic_node_not_allowed(self):
        """Only node 1 allowed: corekv on its 4 cores, the load on their siblings."""
        m = mach.read_machine(FIXTURE, [4, 5, 6, 7, 12, 13, 14, 15])
        rec = mach.recommend(m)
        self.assertEqual((rec.node, rec.corekv, rec.load), (1, [4, 5, 6, 7], [12, 13, 14, 15]))
        self.assertIn("SMT siblings", rec.reasons[1])

    def test_unknown_nic_node_picks_largest_node(self):
        m = mach.read_machine(FIXTURE, [0, 4, 5, 6, 7, 12])
        m.nics[0].numa_node = None
        rec = mach.recommend(m)
        self.assertEqual((rec.node, rec.corekv, rec.load), (1, [4, 5, 6, 7], [0]))

    def test_irq_cores_kept_when_too_many(self):
        m = mach.read_machine(FIXTURE)
        for irq in m.nics[0].irqs:
            irq.affinity = [0, 1, 2]  # 3 of node 0's 4 cores take IRQs: keep them all
        self.assertEqual(mach.recommend(m).corekv, [0, 1, 2, 3])
        for irq in m.nics[0].irqs:
            irq.affinity = [0, 9]  # 2 of 4: the other half is enough
        self.assertEqual(mach.recommend(m).corekv, [2, 3])

    def test_effective_affinity_wins(self):
        m = mach.read_machine(FIXTURE)
        for irq in m.nics[0].irqs:
            irq.affinity, irq.effective = list(range(16)), [3]
        self.assertEqual(mach.recommend(m).corekv, [0, 1, 2])

    def test_one_or_two_cpus(self):
        rec = mach.recommend(synthetic(2))
        self.assertEqual((rec.corekv, rec.load), ([1], [0]))
        rec = mach.recommend(synthetic(2, irq_cpus=[1]))
        self.assertEqual((rec.corekv, rec.load), ([1], [0]))
        self.assertIn("scripts/tune", rec.reasons[-1])
        rec = mach.recommend(synthetic(1))
        self.assertEqual((rec.corekv, rec.load), ([0], [0]))
        m = synthetic(4)
        m.allowed = [2, 3]  # taskset -c 2,3
        rec = mach.recommend(m)
        self.assertEqual((rec.corekv, rec.load), ([3], [2]))

    def test_no_smt_split(self):
        """Every CPU its own core and no other node: split, corekv on the upper half."""
        rec = mach.recommend(synthetic(4))
        self.assertEqual((rec.corekv, rec.load), ([2, 3], [0, 1]))
        rec = mach.recommend(synthetic(3))
        self.assertEqual((rec.corekv, rec.load), ([1, 2], [0]))

    def test_no_smt_with_irq_core(self):
        rec = mach.recommend(synthetic(4, irq_cpus=[0], nic_node=0))
        self.assertEqual((rec.corekv, rec.load), ([1, 2, 3], [0]))

    def test_smt_one_node(self):
        rec = mach.recommend(synthetic(8, threads=2))
        self.assertEqual((rec.corekv, rec.load), ([0, 1, 2, 3], [4, 5, 6, 7]))

    def test_nothing_allowed(self):
        m = synthetic(2)
        m.allowed = []
        self.assertEqual(mach.recommend(m).corekv, [])


class TopologyOutputTests(unittest.TestCase):
    """scripts/topology's text and JSON output."""

    def test_text(self):
        code, out, err = run_main(topology.main, ["--root", FIXTURE])
        self.assertEqual((code, err), (0, ""))
        for line in [
            "CPUs: 16 online (0-15); this process may use 16 (0-15, fixture online CPUs)",
            "Layout: 2 packages, 8 physical cores, 2 threads per core, 2 L3 domains, "
            "2 NUMA nodes",
            "  node 0: CPUs 0-3,8-11, memory 62.8 GiB total, 57.3 GiB free",
            "  eth0: NUMA node 0, 4 IRQs",
            "    IRQ 120   eth0-TxRx-0 -> CPU 0, 1000 interrupts",
            "    RPS (rps_cpus): 4 queues, all 0000 (off)",
            "CPU governor: powersave on 0-15",
            "io_uring: kernel.io_uring_disabled = 0 (enabled)",
            "  corekv --cpus 1-3",
            "  corekv-bench --cpus 0,4-8,12-15",
        ]:
            self.assertIn(line + "\n", out)

    def test_json(self):
        code, out, _ = run_main(topology.main, ["--root", FIXTURE, "--json"])
        self.assertEqual(code, 0)
        doc = json.loads(out)
        self.assertEqual(len(doc["cpus"]), 16)
        self.assertEqual(len(doc["cores"]), 8)
        self.assertEqual(doc["cpus"][9]["siblings"], [1, 9])
        self.assertEqual(len(doc["l3_domains"]), 2)
        self.assertEqual([n["mem_total_kb"] for n in doc["nodes"]], [65_842_168, 65_843_192])
        self.assertEqual(doc["nics"][0]["name"], "eth0")
        self.assertEqual([i["irq"] for i in doc["nics"][0]["irqs"]], [120, 121, 122, 123])
        self.assertEqual(doc["nic_irq_cpus"], [0])
        self.assertEqual(doc["io_uring"]["disabled"], 0)
        self.assertEqual(doc["recommendation"]["corekv_cpus"], "1-3")
        self.assertEqual(doc["recommendation"]["load_cpus"], "0,4-8,12-15")

    def test_io_uring_notes(self):
        root = fixture_copy(self)
        for value, word in (("1", "RESTRICTED"), ("2", "DISABLED")):
            write_file(root, "/proc/sys/kernel/io_uring_disabled", value + "\n")
            code, out, _ = run_main(topology.main, ["--root", root])
            self.assertEqual(code, 0)
            self.assertIn(f"kernel.io_uring_disabled = {value} ({word}", out)

    def test_bad_usage(self):
        code, _, err = run_main(topology.main, ["--allowed", "3-1"])
        self.assertEqual(code, 2)
        self.assertIn("bad CPU range", err)
        code, _, _ = run_main(topology.main, ["--root", "/nonexistent/dir"])
        self.assertEqual(code, 2)


class TopologySubprocessTests(unittest.TestCase):
    """scripts/topology run as a program."""

    def run_script(self, *args):
        return subprocess.run([sys.executable, os.path.join(SCRIPTS, "topology"), *args],
                              capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    def test_fixture(self):
        p = self.run_script("--root", FIXTURE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Recommendation:\n  corekv --cpus 1-3\n  corekv-bench --cpus 0,4-8,12-15\n",
                      p.stdout)
        p = self.run_script("--root", FIXTURE, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["recommendation"]["corekv"], [1, 2, 3])

    def test_help(self):
        p = self.run_script("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--root DIR", p.stdout)
        self.assertIn("/proc/interrupts", p.stdout)

    @unittest.skipUnless(sys.platform.startswith("linux"), "reads Linux /sys and /proc")
    def test_this_machine(self):
        """Whatever this machine is (VM, container), it reports and recommends."""
        p = self.run_script()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Recommendation:\n  corekv --cpus ", p.stdout)
        p = self.run_script("--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(json.loads(p.stdout)["recommendation"]["corekv"])


if __name__ == "__main__":
    unittest.main()
