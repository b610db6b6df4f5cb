"""Tests of scripts/tune: the pure plan on the 2-socket SMT fixture, and --apply /
--revert / --dry-run on throwaway copies of it (never on the real machine).

Run from the repo root: python3 -m unittest discover -s scripts/tests -t scripts/tests
"""

import contextlib
import copy
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
from unittest import mock

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


tune = load_script("tune")

GOV = "/sys/devices/system/cpu/cpu{}/cpufreq/scaling_governor"
SYN = "/proc/sys/net/ipv4/tcp_max_syn_backlog"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"
STATE = "var/lib/corekv/tune-state.json"


def scratch_dir(test):
    """A temporary directory removed after the test; in /dev/shm when there is one,
    since creating the fixture's ~500 files is slow on some disks."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="corekv-scripts-test-", dir=base)
    test.addCleanup(shutil.rmtree, tmp)
    return tmp


def run_main(argv):
    """Runs tune's main(argv); returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = tune.main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def triples(changes):
    """Changes as (path, old, new), the part the tests pin down."""
    return [(c.path, c.old, c.new) for c in changes]


def snapshot(root):
    """{relative path: bytes} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def read(root, path):
    """A fixture copy's file, as text."""
    with open(mach.under(root, path)) as f:
        return f.read()


class PlanTests(unittest.TestCase):
    """tune.plan() and tune.assess(), pure, on the fixture as read."""

    @classmethod
    def setUpClass(cls):
        cls.m = mach.read_machine(FIXTURE)

    def machine(self):
        """A private copy of the fixture machine to modify."""
        return copy.deepcopy(self.m)

    def test_recommended_shards(self):
        """corekv on 1-3 (the recommendation): IRQs (CPU 0) and RPS (off) are already
        right; governors, the SYN backlog and THP change."""
        shards = mach.recommend(self.m).corekv
        self.assertEqual(shards, [1, 2, 3])
        self.assertEqual(triples(tune.plan(self.m, shards, tune.Options())), [
            (GOV.format(1), "powersave", "performance"),
            (GOV.format(2), "powersave", "performance"),
            (GOV.format(3), "powersave", "performance"),
            (SYN, "512", "4096"),
            (THP, "always", "madvise"),
        ])

    def test_shards_on_irq_core(self):
        """corekv on 0-3: the IRQs on CPU 0 go to node 0's other CPUs, which are the
        shards' SMT siblings (node 1 is farther from the NIC)."""
        self.assertEqual(triples(tune.plan(self.m, [0, 1, 2, 3], tune.Options())), [
            ("/proc/irq/120/smp_affinity_list", "0", "8"),
            ("/proc/irq/121/smp_affinity_list", "0", "9"),
            ("/proc/irq/122/smp_affinity_list", "0", "10"),
            ("/proc/irq/123/smp_affinity_list", "0", "11"),
            (GOV.format(0), "powersave", "performance"),
            (GOV.format(1), "powersave", "performance"),
            (GOV.format(2), "powersave", "performance"),
            (GOV.format(3), "powersave", "performance"),
            (SYN, "512", "4096"),
            (THP, "always", "madvise"),
        ])

    def test_irq_targets(self):
        self.assertEqual(tune.irq_targets(self.m, [1, 2, 3], 0), [0, 8])
        self.assertEqual(tune.irq_targets(self.m, [0, 1, 2, 3], 0), [8, 9, 10, 11])
        self.assertEqual(tune.irq_targets(self.m, [0, 1, 2, 3, 8, 9, 10, 11], 0),
                         [4, 5, 6, 7, 12, 13, 14, 15])
        self.assertEqual(tune.irq_targets(self.m, list(range(15)), None), [15])
        self.assertEqual(tune.irq_targets(self.m, list(range(16)), 0), [])

    def test_every_cpu_a_shard(self):
        items = tune.assess(self.m, list(range(16)), tune.Options())
        irq = next(i for i in items if i.name == "eth0 IRQ affinity")
        self.assertEqual((irq.status, irq.changes), ("check", []))
        self.assertIn("left where they are", irq.note)

    def test_rps_policy(self):
        m = self.machine()
        rps = m.nics[0].rps
        rps[0].raw, rps[0].cpus = "0002", [1]  # includes shard CPU 1: turned off
        rps[1].raw, rps[1].cpus = "0001", [0]  # avoids the shards: kept
        got = [c for c in triples(tune.plan(m, [1, 2, 3], tune.Options())) if "rps" in c[0]]
        self.assertEqual(got, [("/sys/class/net/eth0/queues/rx-0/rps_cpus", "0002", "0")])

    def test_xps_reported_only(self):
        m = self.machine()
        m.nics[0].xps[0].raw, m.nics[0].xps[0].cpus = "0002", [1]
        self.assertFalse([c for c in tune.plan(m, [1], tune.Options()) if "xps" in c.path])

    def test_busy_poll(self):
        m = self.machine()
        m.sysctls["net.core.busy_poll"] = "50"
        items = {i.name: i for i in tune.assess(m, [1], tune.Options())}
        self.assertEqual(items["net.core.busy_poll"].status, "check")  # reported, not set
        self.assertEqual(items["net.core.busy_read"].status, "ok")
        changes = triples(tune.plan(m, [1], tune.Options(busy_poll=50)))
        self.assertIn(("/proc/sys/net/core/busy_read", "0", "50"), changes)
        self.assertNotIn("/proc/sys/net/core/busy_poll", [c[0] for c in changes])

    def test_thp_kept_unless_always(self):
        m = self.machine()
        for value in ("always [madvise] never", "always madvise [never]"):
            m.thp = value
            self.assertNotIn(THP, [c.path for c in tune.plan(m, [1], tune.Options())])

    def test_no_cpufreq(self):
        m = self.machine()
        for c in m.cpus:
            c.governor = c.governors_available = None
        items = {i.name: i for i in tune.assess(m, [1, 2], tune.Options())}
        gov = items["CPU governor (shards)"]
        self.assertEqual((gov.status, gov.changes), ("ok", []))
        self.assertIn("no cpufreq", gov.note)

    def test_no_performance_governor(self):
        m = self.machine()
        m.cpu(2).governors_available = ["powersave"]
        items = {i.name: i for i in tune.assess(m, [1, 2], tune.Options())}
        gov = items["CPU governor (shards)"]
        self.assertEqual(triples(gov.changes), [(GOV.format(1), "powersave", "performance")])
        self.assertEqual(gov.status, "change")
        self.assertIn("CPUs 2", gov.note)

    def test_memlock_and_io_uring_report_only(self):
        m = self.machine()
        m.memlock_soft, m.sysctls["kernel.io_uring_disabled"] = 1024 * 1024, "2"
        items = {i.name: i for i in tune.assess(m, [0, 1, 2, 3], tune.Options())}
        mem = items["locked memory (ulimit -l)"]
        self.assertEqual((mem.status, mem.changes), ("check", []))
        self.assertIn(">= 2560 KiB", mem.wanted)  # 4 shards x 640 KiB
        self.assertIn("unlimited", mem.note)
        m.memlock_soft = None  # unlimited
        self.assertEqual({i.name: i for i in tune.assess(m, [0], tune.Options())}
                         ["locked memory (ulimit -l)"].status, "ok")
        self.assertEqual(items["kernel.io_uring_disabled"].status, "check")

    def test_rendered(self):
        self.assertEqual(tune.rendered("[always] madvise never\n", "madvise"),
                         "always [madvise] never\n")
        self.assertEqual(tune.rendered("0000\n", "0"), "0\n")
        self.assertEqual(tune.rendered(None, "4096"), "4096\n")

    def test_merged_entries_keep_first_original(self):
        prev = {"entries": [{"path": "/a", "old": "1", "new": "2"}]}
        entries = tune.merged_entries(prev, [tune.Change("/a", "2", "3", ""),
                                             tune.Change("/b", "x", "y", "")])
        self.assertEqual(entries, [{"path": "/a", "old": "1", "new": "3"},
                                   {"path": "/b", "old": "x", "new": "y"}])


class ApplyRevertTests(unittest.TestCase):
    """--apply, --revert and --dry-run on a copy of the fixture."""

    def setUp(self):
        self.root = os.path.join(scratch_dir(self), "root")
        shutil.copytree(FIXTURE, self.root)
        self.before = snapshot(self.root)
        self.state = os.path.join(self.root, STATE)

    def test_dry_run_changes_nothing(self):
        for flags in ([], ["--dry-run"]):
            code, out, _ = run_main(["--root", self.root, "--cpus", "0-3", *flags])
            self.assertEqual(code, 0)
            self.assertIn("10 change(s) would be made", out)
            self.assertIn("[would change] eth0 IRQ affinity", out)
            self.assertEqual(snapshot(self.root), self.before)
            self.assertFalse(os.path.exists(self.state))

    def test_apply_then_revert_restores_every_byte(self):
        code, out, err = run_main(["--root", self.root, "--cpus", "0-3", "--busy-poll", "50",
                                   "--apply"])
        self.assertEqual(code, 0, err)
        self.assertIn("changed /proc/irq/120/smp_affinity_list: 0 -> 8", out)
        self.assertIn(f"changed {THP}: always -> madvise", out)
        self.assertEqual(read(self.root, THP), "always [madvise] never\n")
        self.assertEqual(read(self.root, "/proc/irq/123/smp_affinity_list"), "11\n")
        self.assertEqual(read(self.root, GOV.format(3)), "performance\n")
        self.assertEqual(read(self.root, SYN), "4096\n")
        self.assertEqual(read(self.root, "/proc/sys/net/core/busy_poll"), "50\n")
        self.assertEqual(read(self.root, GOV.format(4)), "powersave\n")  # not a shard
        with open(self.state) as f:
            state = json.load(f)
        self.assertEqual(state["shard_cpus"], "0-3")
        self.assertEqual(len(state["entries"]), 12)
        self.assertIn({"path": SYN, "old": "512", "new": "4096"}, state["entries"])
        # Applied: a fresh plan finds nothing left to do.
        machine = mach.read_machine(self.root)
        self.assertEqual(tune.plan(machine, [0, 1, 2, 3], tune.Options(busy_poll=50)), [])

        code, out, err = run_main(["--root", self.root, "--revert"])
        self.assertEqual(code, 0, err)
        self.assertIn(f"restored {THP}: madvise -> always", out)
        self.assertFalse(os.path.exists(self.state))
        after = snapshot(self.root)
        self.assertEqual(after, self.before)

    def test_refuses_double_apply(self):
        self.assertEqual(run_main(["--root", self.root, "--cpus", "0-3", "--apply"])[0], 0)
        applied = snapshot(self.root)
        code, _, err = run_main(["--root", self.root, "--cpus", "4-7", "--apply"])
        self.assertEqual(code, 1)
        self.assertIn("exists", err)
        self.assertEqual(snapshot(self.root), applied)
        # --force applies, keeping the first saved value of a file changed twice.
        code, out, err = run_main(["--root", self.root, "--cpus", "8-11", "--apply",
                                   "--force"])
        self.assertEqual(code, 0, err)
        self.assertIn("changed /proc/irq/120/smp_affinity_list: 8 -> 0", out)
        self.assertEqual(run_main(["--root", self.root, "--revert"])[0], 0)
        self.assertEqual(snapshot(self.root), self.before)

    def test_nothing_to_change(self):
        """A second --apply --force of the same plan has nothing to do and leaves the
        state file (with the originals) as it was."""
        self.assertEqual(run_main(["--root", self.root, "--cpus", "12", "--apply"])[0], 0)
        with open(self.state) as f:
            saved = f.read()
        code, out, _ = run_main(["--root", self.root, "--cpus", "12", "--apply", "--force"])
        self.assertEqual(code, 0)
        self.assertIn("nothing to change", out)
        with open(self.state) as f:
            self.assertEqual(f.read(), saved)

    def test_explicit_state_file(self):
        state = os.path.join(os.path.dirname(self.root), "state.json")
        self.assertEqual(run_main(["--root", self.root, "--state", state, "--apply"])[0], 0)
        self.assertTrue(os.path.exists(state))
        self.assertFalse(os.path.exists(self.state))
        self.assertEqual(run_main(["--root", self.root, "--state", state, "--revert"])[0], 0)
        self.assertEqual(snapshot(self.root), self.before)

    def test_failed_write_exits_1_and_keeps_state(self):
        """A write the kernel refuses (EIO, as for a managed IRQ): the other changes are
        made, exit 1, and the state file stays so that --revert undoes them."""
        real_write = tune.write_value

        def refusing(root, path, value):
            if path == GOV.format(2):
                raise OSError(5, "Input/output error")
            real_write(root, path, value)

        with mock.patch.object(tune, "write_value", refusing):
            code, out, err = run_main(["--root", self.root, "--apply"])
        self.assertEqual(code, 1)
        self.assertIn(f"FAILED {GOV.format(2)}: powersave -> performance: Input/output error",
                      out)
        self.assertIn("1 of 5 change(s) failed", err)
        self.assertEqual(read(self.root, GOV.format(3)), "performance\n")
        self.assertTrue(os.path.exists(self.state))
        self.assertEqual(run_main(["--root", self.root, "--revert"])[0], 0)
        self.assertEqual(snapshot(self.root), self.before)

    def test_revert_without_state(self):
        code, _, err = run_main(["--root", self.root, "--revert"])
        self.assertEqual(code, 1)
        self.assertIn("nothing to revert", err)

    def test_bad_usage(self):
        for argv in (["--apply", "--revert"], ["--apply", "--dry-run"], ["--force"],
                     ["--cpus", "99"], ["--cpus", "3-1"], ["--busy-poll", "-1"],
                     ["--revert", "--cpus", "1"]):
            code, _, err = run_main(["--root", self.root, *argv])
            self.assertEqual(code, 2, argv)
            self.assertIn("usage:", err)
        self.assertEqual(snapshot(self.root), self.before)


class TuneSubprocessTests(unittest.TestCase):
    """scripts/tune run as a program."""

    def run_script(self, *args):
        return subprocess.run([sys.executable, os.path.join(SCRIPTS, "tune"), *args],
                              capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    def test_fixture_dry_run(self):
        p = self.run_script("--root", FIXTURE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("shard CPUs 1-3 (scripts/topology's recommendation)", p.stdout)
        self.assertIn("[ok] eth0 IRQ affinity\n", p.stdout)
        self.assertIn("[would change] transparent hugepages\n", p.stdout)
        self.assertIn(f"    {SYN}: 512 -> 4096\n", p.stdout)
        self.assertIn("5 change(s) would be made", p.stdout)

    def test_help(self):
        p = self.run_script("--help")
        self.assertEqual(p.returncode, 0)
        for text in ("--apply", "--revert", "--dry-run", "--state FILE", "rps_cpus",
                     "Policy:"):
            self.assertIn(text, p.stdout)

    def test_usage_error(self):
        p = self.run_script("--root", FIXTURE, "--apply", "--revert")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
