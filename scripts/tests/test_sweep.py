"""Unit tests of scripts/pinning-sweep and its library (scripts/lib/sweep.py, svgplot.py).

Run from the repository root:
    python3 -m unittest discover -s scripts/tests -t scripts/tests

Fast (no real servers): the plan on 1, 2 and 16 CPUs, hash slots and tags (checked
against binascii's independent CRC-CCITT/XMODEM), command lines, INFO shards parsing and
the hop check, CSV and SVG output, and the script end to end against stand-ins for corekv
and corekv-bench (small Python programs written to a temporary directory).

The end-to-end test with the real binaries (`--quick`, about 10 s) runs only with
COREKV_SWEEP_E2E=1 and both target/release/corekv and target/release/corekv-bench present
(or the paths in COREKV_SWEEP_COREKV and COREKV_SWEEP_BENCH)."""

import binascii
import csv
import importlib.machinery
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
import unittest.mock
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(ROOT, "scripts", "pinning-sweep")
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))

import svgplot  # noqa: E402
import sweep  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def ref_slot(key):
    """The Redis Cluster slot of a key, computed independently of sweep.py: binascii's
    CRC-CCITT with initial value 0 is CRC16-XMODEM; hash tag rule from the Redis docs."""
    k = key.encode() if isinstance(key, str) else key
    s = k.find(b"{")
    if s != -1:
        e = k.find(b"}", s + 1)
        if e != -1 and e != s + 1:
            k = k[s + 1:e]
    return binascii.crc_hqx(k, 0) % 16384


def load_script():
    """scripts/pinning-sweep as a module (it has no .py name)."""
    loader = importlib.machinery.SourceFileLoader("pinning_sweep", SCRIPT)
    spec = importlib.util.spec_from_loader("pinning_sweep", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Slots(unittest.TestCase):
    def test_crc16_known_vectors(self):
        self.assertEqual(sweep.crc16_xmodem(b"123456789"), 0x31C3)
        self.assertEqual(binascii.crc_hqx(b"123456789", 0), 0x31C3)
        for data in (b"", b"foo", b"user1000", bytes(range(256))):
            self.assertEqual(sweep.crc16_xmodem(data), binascii.crc_hqx(data, 0))

    def test_redis_slots(self):
        self.assertEqual(sweep.key_slot("foo"), 12182)
        self.assertEqual(sweep.key_slot("bar"), 5061)
        self.assertEqual(sweep.key_slot("{user1000}.following"), sweep.key_slot("user1000"))
        self.assertEqual(sweep.key_slot("{user1000}.followers"), sweep.key_slot("user1000"))
        self.assertEqual(sweep.key_slot("foo{}{bar}"), ref_slot("foo{}{bar}"))
        self.assertNotEqual(sweep.key_slot("foo{}{bar}"), sweep.key_slot("bar"))
        self.assertEqual(sweep.key_slot("foo{{bar}}zap"), sweep.key_slot("{bar"))
        self.assertEqual(sweep.key_slot("foo{bar}{zap}"), sweep.key_slot("bar"))

    def test_slot_ranges_match_shard_of_slot(self):
        for n in (1, 2, 3, 4, 5, 7, 16):
            ranges = [sweep.slot_range(i, n) for i in range(n)]
            self.assertEqual(ranges[0][0], 0)
            self.assertEqual(ranges[-1][1], 16384)
            for i, (first, end) in enumerate(ranges):
                if i:
                    self.assertEqual(first, ranges[i - 1][1])
                for slot in (first, end - 1):
                    self.assertEqual(sweep.shard_of_slot(slot, n), i, (n, i, slot))
        self.assertEqual(sweep.slot_range(1, 2), (8192, 16384))
        self.assertEqual(sweep.slot_range(1, 3), (5462, 10923))

    def test_hash_tag_lands_on_wanted_shard(self):
        for n in (2, 3, 4, 8):
            for shard in range(n):
                tag, slot = sweep.hash_tag_for_shard(shard, n)
                first, end = sweep.slot_range(shard, n)
                for key in (f"{{{tag}}}key:0", f"{{{tag}}}key:9999"):
                    self.assertEqual(ref_slot(key), slot)
                    self.assertTrue(first <= ref_slot(key) < end, (n, shard, key))
        with self.assertRaises(ValueError):
            sweep.hash_tag_for_shard(2, 2)


class Cpus(unittest.TestCase):
    def test_parse_duration(self):
        self.assertEqual(sweep.parse_duration("2s"), 2)
        self.assertAlmostEqual(sweep.parse_duration("500ms"), 0.5)
        self.assertEqual(sweep.parse_duration("1m"), 60)
        self.assertEqual(sweep.parse_duration("3"), 3)
        with self.assertRaises(ValueError):
            sweep.parse_duration("soon")

    def test_smt_siblings_from_sysfs(self):
        with tempfile.TemporaryDirectory() as d:
            for cpu, sib in ((0, "0,2"), (1, "1,3"), (2, "0,2")):
                p = os.path.join(d, f"devices/system/cpu/cpu{cpu}/topology")
                os.makedirs(p)
                with open(os.path.join(p, "thread_siblings_list"), "w") as f:
                    f.write(sib + "\n")
            got = sweep.smt_siblings([0, 1, 2, 3], sysfs=d)
        self.assertEqual(got, {0: {2}, 1: {3}, 2: {0}, 3: set()})

    def test_assign_separate_and_shared_on_two_cpus(self):
        a = sweep.assign_cpus
        self.assertEqual(a(1, "fixed", "separate", [0, 1], 1), ([1], [0]))
        self.assertEqual(a(1, "spread", "separate", [0, 1], 1), ([1], [0]))
        self.assertEqual(a(2, "fixed", "shared", [0, 1], 1), ([0, 1], [0]))
        self.assertEqual(a(1, "fixed", "shared", [0, 1], 1), ([0], [0]))
        # spread/pack choose at start: the shared load follows shard 0 at run time.
        self.assertEqual(a(2, "pack", "shared", [0, 1], 1), ([0, 1], None))
        # Unpinned shards float over the non-load CPUs, even more shards than CPUs.
        self.assertEqual(a(2, "unpinned", "separate", [0, 1], 1), ([1], [0]))
        self.assertEqual(a(2, "unpinned", "shared", [0, 1], 1), ([0, 1], [0]))
        with self.assertRaisesRegex(sweep.Impossible, "need 3 CPUs; 2 allowed"):
            a(2, "fixed", "separate", [0, 1], 1)
        with self.assertRaisesRegex(sweep.Impossible, "cannot pin 3 shards"):
            a(3, "fixed", "shared", [0, 1], 2)
        with self.assertRaisesRegex(sweep.Impossible, "no CPU left"):
            a(1, "unpinned", "separate", [0], 1)

    def test_assign_keeps_smt_siblings_of_the_load_off_the_shards(self):
        sib = {c: {(c + 8) % 16} for c in range(16)}
        shards, load = sweep.assign_cpus(4, "fixed", "separate", list(range(16)), 2, sib)
        self.assertEqual(load, [0, 1])
        self.assertEqual(shards, [2, 3, 4, 5])
        shards, _ = sweep.assign_cpus(8, "spread", "separate", list(range(16)), 4, sib)
        self.assertEqual(shards, [4, 5, 6, 7, 12, 13, 14, 15])
        with self.assertRaisesRegex(sweep.Impossible, "SMT siblings"):
            sweep.assign_cpus(9, "fixed", "separate", list(range(16)), 4, sib)


class Plans(unittest.TestCase):
    def plan(self, mode, cpus=(0, 1), siblings=None):
        return sweep.make_plan(sweep.mode_spec(mode, len(cpus)), list(cpus), siblings)

    def test_default_on_two_cpus(self):
        p = self.plan("default")
        self.assertEqual(len(p.cells), 32)
        self.assertEqual([c.id for c in p.cells], [f"c{i:02d}" for i in range(1, 33)])
        matrix = [c for c in p.cells if c.part == "matrix"]
        hops = [c for c in p.cells if c.part == "hops"]
        self.assertEqual(len(matrix), 26)
        self.assertEqual(len(hops), 6)
        got = {(c.shards, c.placement, c.load) for c in matrix}
        want = {(1, pl, ld) for pl in sweep.PLACEMENTS for ld in sweep.LOADS}
        want |= {(2, pl, "shared") for pl in sweep.PLACEMENTS} | {(2, "unpinned", "separate")}
        self.assertEqual(got, want)
        for c in matrix:
            self.assertIn(c.pipeline, (1, 16))
            self.assertEqual(c.load_threads, 1)
        skipped = {(s.shards, s.placement, s.load): s for s in p.skipped}
        self.assertEqual(set(skipped), {(2, pl, "separate") for pl in ("fixed", "spread", "pack")})
        for s in skipped.values():
            self.assertIn("need 3 CPUs; 2 allowed (0-1)", s.reason)
            self.assertEqual(s.pipelines, [1, 16])

        def cell(**kw):
            return next(c for c in p.cells if all(getattr(c, k) == v for k, v in kw.items()))
        sep = cell(shards=1, placement="fixed", load="separate", pipeline=1)
        self.assertEqual((sep.shard_cpus, sep.load_cpus), ([1], [0]))
        shared = cell(shards=2, placement="fixed", load="shared", pipeline=16)
        self.assertEqual((shared.shard_cpus, shared.load_cpus), ([0, 1], [0]))
        self.assertIsNone(cell(shards=2, placement="spread", load="shared").load_cpus)

    def test_default_hop_cells(self):
        hops = [c for c in self.plan("default").cells if c.part == "hops"]
        self.assertEqual([(c.hop_case, c.shards, c.pipeline) for c in hops],
                         [("1-shard", 1, 1), ("1-shard", 1, 16), ("local", 2, 1),
                          ("local", 2, 16), ("remote", 2, 1), ("remote", 2, 16)])
        for c in hops:
            self.assertEqual(c.placement, "fixed")
            self.assertEqual(c.load, "shared")  # 2 shards + 1 load CPU do not fit 2 CPUs
            self.assertEqual(c.listen_shards, "0")
            slot = ref_slot(c.key_prefix + "42")
            self.assertEqual(slot, c.key_slot)
            self.assertEqual(sweep.shard_of_slot(slot, 2), c.key_shard)
            self.assertEqual(c.key_shard, 1 if c.hop_case == "remote" else 0)

    def test_quick_on_two_cpus(self):
        p = self.plan("quick")
        self.assertEqual([(c.part, c.shards, c.placement, c.load, c.pipeline, c.hop_case)
                          for c in p.cells],
                         [("matrix", 1, "fixed", "separate", 1, ""),
                          ("hops", 2, "fixed", "shared", 1, "remote")])
        self.assertEqual(p.skipped, [])

    def test_full_on_two_cpus(self):
        p = self.plan("full")
        self.assertEqual(sweep.mode_spec("full", 2).shard_counts, [1, 2])
        self.assertEqual(len(p.cells), 48)  # default's 16 configurations x 3 pipelines
        self.assertEqual(sorted({c.pipeline for c in p.cells}), [1, 16, 64])
        self.assertEqual(len(p.skipped), 3)

    def test_full_on_sixteen_smt_cpus(self):
        sib = {c: {(c + 8) % 16} for c in range(16)}
        p = self.plan("full", range(16), sib)
        self.assertEqual(sweep.mode_spec("full", 16).shard_counts, [1, 2, 4, 8, 16])
        self.assertEqual(sweep.full_shard_counts(6), [1, 2, 4, 6])
        hop = next(c for c in p.cells if c.part == "hops")
        self.assertEqual((hop.load, hop.load_cpus), ("separate", [0]))
        eight = next(c for c in p.cells
                     if (c.shards, c.placement, c.load) == (8, "fixed", "separate"))
        self.assertEqual((eight.shard_cpus, eight.load_cpus, eight.load_threads),
                         ([4, 5, 6, 7, 12, 13, 14, 15], [0, 1, 2, 3], 4))
        skipped = {(s.shards, s.placement, s.load) for s in p.skipped}
        # 16 shards take 8 load threads on 0-7, whose SMT siblings 8-15 are kept free too.
        self.assertEqual(skipped, {(16, pl, "separate") for pl in sweep.PLACEMENTS})

    def test_one_cpu(self):
        p = self.plan("default", [3])
        self.assertTrue(all(c.load == "shared" for c in p.cells))
        self.assertTrue(any("no CPU left for the shards" in s.reason for s in p.skipped))
        self.assertEqual({c.shards for c in p.cells if c.placement != "unpinned"}, {1})
        self.assertEqual({c.shards for c in p.cells if c.placement == "unpinned"}, {1, 2})
        reasons = [s.reason for s in p.skipped if s.part == "hops"]
        self.assertEqual(len(reasons), 3)
        self.assertIn("needs 2 pinned shards", reasons[0])
        self.assertEqual(self.plan("quick", [3]).cells[0].load, "shared")


class Commands(unittest.TestCase):
    def setUp(self):
        self.plan = sweep.make_plan(sweep.mode_spec("default", 2), [0, 1])
        self.work = sweep.Workload()

    def find(self, **kw):
        return next(c for c in self.plan.cells if all(getattr(c, k) == v for k, v in kw.items()))

    def test_corekv_commands(self):
        c = self.find(shards=1, placement="fixed", load="separate")
        self.assertEqual(sweep.corekv_command(c, "ck"),
                         ["ck", "--port", "0", "--shards", "1", "--save", "", "--cpus", "1",
                          "--placement", "fixed"])
        c = self.find(shards=2, placement="unpinned", load="separate")
        self.assertEqual(sweep.corekv_command(c, "ck"),
                         ["taskset", "-c", "1", "ck", "--port", "0", "--shards", "2", "--save", "",
                          "--no-pin"])
        c = self.find(hop_case="remote")
        self.assertEqual(sweep.corekv_command(c, "ck", ["--maxclients", "9"])[-4:],
                         ["--listen-shards", "0", "--maxclients", "9"])

    def test_bench_commands(self):
        c = self.find(hop_case="remote", pipeline=16)
        cmd = sweep.bench_command(c, "kb", self.work, "out.json", 7000)
        self.assertEqual(cmd[:5], ["kb", "--port", "7000", "--cpus", "0"])
        for flag, val in (("--pipeline", "16"), ("--ratio", "1:1"), ("--keys", "10000"),
                          ("--value-size", "32"), ("--key-prefix", c.key_prefix),
                          ("--duration", "2s"), ("--warmup", "500ms"), ("--json", "out.json"),
                          ("--connections", "50"), ("--threads", "1")):
            self.assertEqual(cmd[cmd.index(flag) + 1], val, flag)
        self.assertIn("--prefill", cmd)
        self.assertIn("--quiet", cmd)
        spread = self.find(placement="spread", load="shared", shards=2)
        planned = sweep.shell_join(sweep.bench_command(spread, "kb", self.work, "o.json"))
        self.assertIn("--port $PORT --cpus $SHARD_CPUS ", planned)
        self.assertIn("--cpus 1 ", sweep.shell_join(
            sweep.bench_command(spread, "kb", self.work, "o.json", 1, [1])))
        self.assertEqual(sweep.shell_join(["a", "{s0}key:"], {"RUST_LOG": "info"}),
                         "RUST_LOG=info a '{s0}key:'")

    def test_load_cpus_from_map(self):
        infos = sweep.parse_info_shards("shard0:cpu=1,keys=0\r\nshard1:cpu=0,keys=0\r\n")
        self.assertEqual(sweep.load_cpus_from_map(infos, 1), [1])
        with self.assertRaises(ValueError):
            sweep.load_cpus_from_map(sweep.parse_info_shards("shard0:cpu=unpinned\n"), 1)


MAP = "0:cpu=1/socket=0/core=1/node=0 1:cpu=0/socket=0/core=0/node=0"
INFO = ("# Shards\r\nplacement:fixed\r\nnuma_node:any\r\n"
        "shard0:cpu=1,socket=0,core=1,node=0,listening=1,keys=0,expires=0,expired_keys=0,"
        "connections=1,commands=7,hops_out=120,hops_in=0,batches_out=3,batches_in=0\r\n"
        "shard1:cpu=0,socket=0,core=0,node=0,listening=0,keys=10000,expires=0,expired_keys=0,"
        "connections=0,commands=0,hops_out=0,hops_in=120,batches_out=0,batches_in=3\r\n")


class Info(unittest.TestCase):
    def test_parse(self):
        s = sweep.parse_info_shards(INFO)
        self.assertEqual(len(s), 2)
        self.assertEqual(s[0]["cpu"], 1)
        self.assertEqual(s[1]["keys"], 10000)
        self.assertEqual(s[1]["hops_in"], 120)
        self.assertEqual(sweep.format_shard_map(s), MAP)
        un = sweep.parse_info_shards(
            "# Shards\nshard1:cpu=unpinned,keys=3\nshard0:cpu=unpinned,keys=5\n")
        self.assertEqual([x["shard"] for x in un], [0, 1])
        self.assertEqual(un[0]["cpu"], "unpinned")
        self.assertEqual(sweep.format_shard_map(un), "0:cpu=unpinned 1:cpu=unpinned")
        self.assertEqual(sweep.per_shard(s, "keys"), "0 10000")
        before = [{"hops_out": 20}, {"hops_out": 0}]
        self.assertEqual(sweep.per_shard(s, "hops_out", before), "100 0")

    def test_resp_replies(self):
        body = INFO.encode()
        bulk = b"$%d\r\n%s\r\n" % (len(body), body)
        self.assertEqual(sweep.resp_bulk_payload(bulk), INFO)
        self.assertIsNone(sweep.resp_bulk_payload(bulk[:-1]))
        self.assertIsNone(sweep.resp_bulk_payload(b"$12"))
        verbatim = b"=%d\r\ntxt:%s\r\n" % (len(body) + 4, body)
        self.assertEqual(sweep.resp_bulk_payload(verbatim), INFO)
        with self.assertRaisesRegex(ValueError, "unknown command"):
            sweep.resp_bulk_payload(b"-ERR unknown command\r\n")
        self.assertEqual(sweep.INFO_SHARDS_REQUEST, b"*2\r\n$4\r\nINFO\r\n$6\r\nshards\r\n")

    def test_ready_line(self):
        self.assertEqual(sweep.ready_port(
            "\x1b[2m2026-01-01T00:00:00Z\x1b[0m \x1b[32m INFO\x1b[0m ready to accept "
            "connections on 127.0.0.1:41234"), 41234)
        self.assertEqual(sweep.ready_port(
            "INFO ready to accept connections on 127.0.0.1:7000 (echo on 127.0.0.1:7001)"), 7000)
        self.assertIsNone(sweep.ready_port("INFO shard map: 0→cpu1"))

    def test_check_placement(self):
        plan = sweep.make_plan(sweep.mode_spec("default", 2), [0, 1])
        fixed = next(c for c in plan.cells
                     if (c.shards, c.placement, c.load) == (2, "fixed", "shared"))
        spread = next(c for c in plan.cells if (c.shards, c.placement) == (2, "spread"))
        unpinned = next(c for c in plan.cells if (c.shards, c.placement) == (2, "unpinned"))
        swapped = sweep.parse_info_shards(INFO)  # shard0 on cpu 1, shard1 on cpu 0
        inorder = sweep.parse_info_shards("shard0:cpu=0\nshard1:cpu=1\n")
        self.assertEqual(sweep.check_placement(fixed, inorder), "")
        self.assertIn("INFO shows 1,0", sweep.check_placement(fixed, swapped))
        self.assertEqual(sweep.check_placement(spread, swapped), "")
        self.assertIn("expected 2", sweep.check_placement(spread, swapped[:1]))
        self.assertIn("--no-pin, yet", sweep.check_placement(unpinned, swapped))
        self.assertEqual(sweep.check_placement(
            unpinned, sweep.parse_info_shards("shard0:cpu=unpinned\nshard1:cpu=unpinned\n")), "")


class HopCheck(unittest.TestCase):
    def setUp(self):
        plan = sweep.make_plan(sweep.mode_spec("default", 2), [0, 1])
        self.cells = {c.hop_case: c for c in plan.cells if c.part == "hops"}

    @staticmethod
    def infos(keys, out, in_):
        return [{"shard": i, "cpu": i, "keys": k, "hops_out": o, "hops_in": n}
                for i, (k, o, n) in enumerate(zip(keys, out, in_))]

    def test_remote(self):
        before = self.infos([0, 0], [0, 0], [0, 0])
        ok, text = sweep.verify_hops(self.cells["remote"], before,
                                     self.infos([0, 10000], [50000, 0], [0, 50000]),
                                     10000, 40000)
        self.assertTrue(ok, text)
        self.assertTrue(text.startswith("ok: keys 0/10000"))
        ok, text = sweep.verify_hops(self.cells["remote"], before,
                                     self.infos([0, 10000], [10, 0], [0, 10]), 10000, 40000)
        self.assertFalse(ok)
        self.assertIn("shard 0 sent 10 hops", text)

    def test_local_and_baseline(self):
        ok, text = sweep.verify_hops(self.cells["local"], None,
                                     self.infos([10000, 0], [2, 0], [0, 2]), 10000, 40000)
        self.assertTrue(ok, text)
        ok, text = sweep.verify_hops(self.cells["local"], None,
                                     self.infos([5000, 5000], [40000, 0], [0, 40000]), 10000, 40000)
        self.assertFalse(ok)
        self.assertIn("shard 0 holds 5000 keys, expected 10000", text)
        self.assertIn("shard 1 holds 5000 keys, expected 0", text)
        self.assertIn("expected ~0", text)
        ok, text = sweep.verify_hops(self.cells["1-shard"], None,
                                     self.infos([10000], [0], [0]), 10000, 40000)
        self.assertTrue(ok, text)
        ok, text = sweep.verify_hops(self.cells["local"], None,
                                     [dict(x, listening=1) for x in
                                      self.infos([10000, 0], [0, 0], [0, 0])], 10000, 40000)
        self.assertFalse(ok)
        self.assertIn("listening=1/1, expected only shard 0", text)
        ok, text = sweep.verify_hops(self.cells["1-shard"], None,
                                     [{"shard": 0, "cpu": 0, "keys": 10000}], 10000, 40000)
        self.assertFalse(ok)
        self.assertIn("no hops_out", text)


def bench_doc(rps, p99, errors=0, requests=1000):
    return {"tool": "corekv-bench", "results": {
        "throughput_rps": rps, "requests": requests, "clean": errors == 0,
        "latency_us": {"samples": requests, "min": 1.0, "mean": 2.0, "stdev": 1.0,
                       "p50": p99 / 4, "p90": p99 / 2, "p99": p99, "p99.9": p99 * 2,
                       "p99.99": p99 * 3, "max": p99 * 5},
        "errors": {"total": errors}}}


def sample_rows():
    """Result rows for 2 configurations x 2 pipelines plus a failed cell and a skipped one."""
    plan = sweep.make_plan(sweep.mode_spec("default", 2), [0, 1])
    work = sweep.Workload()
    rows = []
    for i, c in enumerate(plan.cells[:4]):
        runs = [{"ok": True, "figures": sweep.bench_figures(bench_doc(1e5 * (i + 1) * r, 50 + i)),
                 "load_cpus": [0], "after": sweep.parse_info_shards(INFO), "before": None,
                 "corekv_command": "ck", "bench_command": "kb"} for r in (1, 2, 3)]
        rows.append(sweep.summarize_cell(c, work, 3, runs))
    failed = plan.cells[4]
    rows.append(sweep.summarize_cell(failed, work, 1, [
        {"ok": False, "error": "corekv exited at start (status 2): bad flag", "figures": None}]))
    rows += sweep.skipped_rows(plan, work, 1)
    return plan, rows


class Csv(unittest.TestCase):
    def test_columns_and_values(self):
        plan, rows = sample_rows()
        for col in ("cell", "shards", "placement", "load", "pipeline", "hop_case", "shard_cpus",
                    "load_cpus", "throughput_rps", "p50_us", "p99_us", "p999_us", "errors",
                    "shard_map", "keys_per_shard", "hops_out_per_shard", "hops_in_per_shard",
                    "verification", "status", "error"):
            self.assertIn(col, sweep.CSV_COLUMNS)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "results.csv")
            sweep.write_csv(path, rows)
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.assertEqual(reader.fieldnames, sweep.CSV_COLUMNS)
                got = list(reader)
        self.assertEqual(len(got), 5 + 6)  # 4 ok, 1 failed, 3 configurations x 2 skipped
        first = got[0]
        self.assertEqual(first["status"], "ok")
        self.assertEqual(float(first["throughput_rps"]), 2e5)  # median of 1e5, 2e5, 3e5
        self.assertEqual(float(first["p99_us"]), 50)
        self.assertEqual(float(first["p999_us"]), 100)
        self.assertEqual(first["rounds_ok"], "3")
        self.assertEqual(first["shard_map"], MAP)
        self.assertEqual(first["keys_per_shard"], "0 10000")
        self.assertEqual(first["load_cpus"], "0")
        self.assertEqual(first["shard_cpus"], "1")
        self.assertEqual(got[4]["status"], "failed")
        self.assertIn("round 1: corekv exited at start", got[4]["error"])
        self.assertEqual(got[4]["throughput_rps"], "")
        skipped = [r for r in got if r["status"] == "skipped"]
        self.assertEqual(len(skipped), 6)
        self.assertIn("need 3 CPUs", skipped[0]["error"])

    def test_failed_run_keeps_the_start_map(self):
        plan = sweep.make_plan(sweep.mode_spec("quick", 2), [0, 1])
        row = sweep.summarize_cell(plan.cells[1], sweep.Workload(), 1, [
            {"ok": False, "error": "shard map: fixed placement on CPUs 0,1, INFO shows 1,0",
             "before": sweep.parse_info_shards(INFO), "after": None, "figures": None}])
        self.assertEqual(row["status"], "failed")
        self.assertEqual(row["shard_map"], MAP)
        self.assertEqual(row["keys_per_shard"], "")

    def test_bench_figures_and_errors(self):
        f = sweep.bench_figures(bench_doc(1000.0, 80.0, errors=3))
        self.assertEqual((f["throughput_rps"], f["p50_us"], f["p99_us"], f["p999_us"]),
                         (1000.0, 20.0, 80.0, 160.0))
        self.assertEqual((f["errors"], f["clean"]), (3, False))

    def test_summary_table(self):
        _, rows = sample_rows()
        table = sweep.summary_table(rows).splitlines()
        self.assertIn("req/s", table[0])
        self.assertIn("p99 µs", table[0])
        self.assertEqual(len(table), 1 + len(rows))
        self.assertIn("200,000", table[1])
        self.assertIn("0:1 1:0", table[1])  # shard map, shard:cpu
        self.assertIn("failed: round 1", table[5])
        self.assertIn("skipped: ", table[-1])


class Svg(unittest.TestCase):
    def test_plot(self):
        plan, rows = sample_rows()
        svg = svgplot.render(rows, "corekv pinning sweep", "subtitle here", "a note")
        root = ET.fromstring(svg.encode())
        texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
        self.assertIn("corekv pinning sweep", texts)
        self.assertTrue(any("requests/s" in t for t in texts), texts)
        self.assertTrue(any("µs" in t for t in texts), texts)
        self.assertIn("pipeline 1", texts)
        self.assertIn("pipeline 16", texts)
        legend = root.findall(f".//{SVG}g[@class='legend-entry']")
        self.assertEqual(len(legend), 2)
        ran = [r for r in rows if r["status"] != "skipped"]
        for metric in ("throughput_rps", "p99_us"):
            bars = [b for b in root.iter(SVG + "rect")
                    if b.get("class") == "bar" and b.get("data-metric") == metric]
            self.assertEqual(len(bars), len(ran), metric)
            self.assertEqual(sorted(b.get("data-cell") for b in bars),
                             sorted(r["cell"] for r in ran))
        for r in ran:
            self.assertIn(r["config"], texts)
        self.assertTrue(any(t == "failed" for t in texts))
        # The biggest throughput bar is the longest, and widths are in proportion.
        bars = {b.get("data-cell"): float(b.get("width")) for b in root.iter(SVG + "rect")
                if b.get("data-metric") == "throughput_rps"}
        self.assertAlmostEqual(bars["c04"] / bars["c01"], 4.0, places=3)
        self.assertEqual(bars["c05"], 0.0)

    def test_empty_and_axis(self):
        root = ET.fromstring(svgplot.render([], "t").encode())
        self.assertTrue(any("no cell" in "".join(t.itertext()) for t in root.iter(SVG + "text")))
        top, step = svgplot.nice_axis(97000)
        self.assertGreater(top, 97000)
        self.assertIn(step, (20000, 25000, 50000))
        self.assertEqual(svgplot.si(1234567), "1.23M")
        self.assertEqual(svgplot.si(250000), "250k")


FAKE_COREKV = r'''
import os, socket, sys
args = sys.argv[1:]
def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default
if os.environ.get("FAKE_COREKV_FAIL"):
    print("error: unexpected argument '--placement' found", file=sys.stderr)
    sys.exit(2)
shards = int(opt("--shards", "1"))
cpus = []
for part in (opt("--cpus") or "").split(","):
    if part:
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
keys = int(os.environ.get("FAKE_KEYS", "1000"))
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print("\x1b[32m INFO\x1b[0m ready to accept connections on 127.0.0.1:%d" % srv.getsockname()[1],
      file=sys.stderr, flush=True)
calls = 0
while True:
    c, _ = srv.accept()
    data = b""
    while not data.endswith(b"shards\r\n"):
        data += c.recv(1024)
    calls += 1
    key_shard = shards - 1  # every key on the last shard: "remote" with 2 shards
    body = "# Shards\r\n"
    for i in range(shards):
        cpu = "unpinned" if "--no-pin" in args else cpus[i]
        ran = calls > 1
        k = keys if ran and i == key_shard else 0
        hops = 10 ** 6 if ran and shards > 1 else 0
        listen = opt("--listen-shards")
        listening = 1 if listen is None or str(i) in listen.split(",") else 0
        body += ("shard%d:cpu=%s,socket=0,core=%s,node=0,listening=%d,keys=%d,expires=0,"
                 "hops_out=%d,hops_in=%d\r\n"
                 % (i, cpu, cpu, listening, k, hops if i == 0 else 0,
                    hops if i == key_shard else 0))
    c.sendall(b"$%d\r\n%s\r\n" % (len(body), body.encode()))
    c.close()
'''

FAKE_BENCH = r'''
import json, sys
args = sys.argv[1:]
pipeline = int(args[args.index("--pipeline") + 1])
doc = {"tool": "corekv-bench", "results": {
    "throughput_rps": 50000.0 * pipeline, "requests": 1000, "clean": True,
    "latency_us": {"p50": 10.0, "p90": 20.0, "p99": 40.0, "p99.9": 80.0, "p99.99": 90.0,
                   "max": 100.0},
    "errors": {"total": 0}}}
with open(args[args.index("--json") + 1], "w") as f:
    json.dump(doc, f)
'''


class Script(unittest.TestCase):
    """scripts/pinning-sweep itself, against stand-ins for the binaries."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.fake = {}
        for name, src in (("corekv", FAKE_COREKV), ("corekv-bench", FAKE_BENCH)):
            path = os.path.join(self.tmp.name, name)
            with open(path, "w") as f:
                f.write(f"#!{sys.executable}\n" + textwrap.dedent(src))
            os.chmod(path, 0o755)
            self.fake[name] = path
        allowed = sorted(os.sched_getaffinity(0))
        self.cpus = ",".join(map(str, allowed[:2]))

    def sweep(self, *extra, env=None):
        out = os.path.join(self.tmp.name, "out")
        cmd = [sys.executable, SCRIPT, "--out", out, "--corekv", self.fake["corekv"],
               "--corekv-bench", self.fake["corekv-bench"], "--cpus", self.cpus, *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, **(env or {})))
        return r, out

    def test_help_explains_matrix_and_outputs(self):
        r = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for word in ("results.csv", "plot.svg", "spread", "pack", "unpinned", "separate",
                     "shared", "--listen-shards", "--quick", "--full", "--rounds", "--dry-run"):
            self.assertIn(word, r.stdout)

    def test_dry_run(self):
        r, out = self.sweep("--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("c01  1 shard fixed, load", r.stdout)
        self.assertIn("RUST_LOG=info " + self.fake["corekv"] + " --port 0", r.stdout)
        self.assertIn("--port $PORT", r.stdout)
        self.assertIn("--listen-shards 0", r.stdout)
        self.assertFalse(os.path.exists(out))
        r, _ = self.sweep("--dry-run", "--quick")
        self.assertEqual(r.stdout.count("\nc0"), 2 if len(self.cpus.split(",")) > 1 else 1)

    def test_flags_override_the_mode(self):
        mod = load_script()
        args = mod.parse_args(["--quick", "--pipelines", "4,8", "--keys", "77",
                               "--cpus", self.cpus])
        self.assertEqual((args.mode, args.pipelines, args.keys, args.duration),
                         ("quick", [4, 8], 77, "1s"))
        plan = mod.build_plan(args)
        self.assertEqual(sorted({c.pipeline for c in plan.cells}), [4, 8])
        args = mod.parse_args(["--hops", "none", "--placements", "fixed", "--loads", "shared",
                               "--shards", "1", "--only", "c02", "--cpus", self.cpus])
        plan = mod.build_plan(args)
        self.assertEqual([(c.id, c.pipeline) for c in plan.cells], [("c02", 16)])
        with self.assertRaises(SystemExit), \
                unittest.mock.patch("sys.stderr", io.StringIO()):
            mod.parse_args(["--placements", "everywhere"])

    @unittest.skipUnless(len(os.sched_getaffinity(0)) >= 2, "needs 2 CPUs")
    def test_quick_run_with_stand_ins(self):
        r, out = self.sweep("--quick")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(out, "results.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([x["status"] for x in rows], ["ok", "ok"], rows)
        self.assertEqual(float(rows[0]["throughput_rps"]), 50000)
        self.assertEqual(rows[1]["hop_case"], "remote")
        self.assertTrue(rows[1]["verification"].startswith("ok: keys 0/1000"), rows[1])
        self.assertEqual(rows[1]["hops_out_per_shard"], "1000000 0")
        self.assertIn("--listen-shards 0", rows[1]["corekv_command"])
        self.assertIn("--key-prefix", rows[1]["bench_command"])
        ET.parse(os.path.join(out, "plot.svg"))
        self.assertTrue(os.path.exists(os.path.join(out, "runs", "c02-r1.json")))
        self.assertTrue(os.path.exists(os.path.join(out, "runs", "c02-r1.info.txt")))
        self.assertIn("ok, verified", r.stdout)
        self.assertIn("p99 µs", r.stdout)

    def test_failing_cells_are_recorded_and_exit_1(self):
        r, out = self.sweep("--quick", "--rounds", "2", env={"FAKE_COREKV_FAIL": "1"})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        with open(os.path.join(out, "results.csv"), newline="") as f:
            rows = [x for x in csv.DictReader(f) if x["status"] != "skipped"]
        self.assertTrue(rows)
        for x in rows:
            self.assertEqual(x["status"], "failed")
            self.assertIn("round 1: corekv exited at start (status 2)", x["error"])
            self.assertIn("round 2:", x["error"])
            self.assertIn("unexpected argument", x["error"])
        root = ET.parse(os.path.join(out, "plot.svg")).getroot()
        self.assertTrue(any("".join(t.itertext()) == "failed" for t in root.iter(SVG + "text")))
        self.assertIn("failed", r.stderr)


def _real_binaries():
    ck = os.environ.get("COREKV_SWEEP_COREKV", os.path.join(ROOT, "target/release/corekv"))
    kb = os.environ.get("COREKV_SWEEP_BENCH", os.path.join(ROOT, "target/release/corekv-bench"))
    return ck, kb


@unittest.skipUnless(os.environ.get("COREKV_SWEEP_E2E") == "1"
                     and all(os.access(p, os.X_OK) for p in _real_binaries()),
                     "set COREKV_SWEEP_E2E=1 and build corekv and corekv-bench (release)")
class EndToEnd(unittest.TestCase):
    """`pinning-sweep --quick` against the real corekv and corekv-bench."""

    def test_quick(self):
        ck, kb = _real_binaries()
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([sys.executable, SCRIPT, "--quick", "--out", d, "--corekv", ck,
                                "--corekv-bench", kb], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(os.path.join(d, "results.csv"), newline="") as f:
                rows = list(csv.DictReader(f))
            ran = [x for x in rows if x["status"] != "skipped"]
            self.assertTrue(ran)
            for x in ran:
                self.assertEqual(x["status"], "ok", x)
                self.assertGreater(float(x["throughput_rps"]), 0)
                self.assertTrue(x["shard_map"])
            for x in ran:
                if x["hop_case"]:
                    self.assertTrue(x["verification"].startswith("ok"), x)
            ET.parse(os.path.join(d, "plot.svg"))


if __name__ == "__main__":
    unittest.main()
