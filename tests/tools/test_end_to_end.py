"""End to end through the launchers: launch-backend.py (real gem-schd + 2 gem-pmgr) and two
launch-command.py runs of the stand-in's fake-cuda-app under libgemhook.so.1 at shares 0.3 / 0.7.

Each client's share of the kernel time logged by the stand-in driver, over the period where both
ran, must be within 5 points of its REQUEST (the C++ integration tests hold the scheduler to 2 points;
this test checks that the launchers wire everything up). GEMINI_MAX_INFLIGHT=8 keeps at most ~8
kernels (16 ms) queued, under the quota: with the hook's default (128 in flight, 256 ms of 2 ms
kernels) each grant overshoots its quota. Quotas of 100 ms (not 30): since issue 6 every hand-off is
charged to its holder, and the larger client renews without a hand-off whenever the other is not
waiting, so on a loaded 2-core machine (right after the integration suite) hand-offs of a few ms
against 30 ms quotas tilted 0.3/0.7 to 0.25/0.75 in two CI runs. The run lasts 6 s (5 s measured)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import gemtest_util as U

TOLERANCE = 0.05
SKIP_US = 1_000_000


def read_fake_log(path):
    """[(pid, start_us, end_us)] from a FAKE_CUDA_LOG file."""
    out = []
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) >= 4:
            out.append((int(f[0]), int(f[2]), int(f[3])))
    return out


def overlap_shares(intervals_by_client, skip_us=0):
    """intervals_by_client: {name: [(start, end)]}. Returns (t0, t1, {name: busy_us in [t0, t1]})
    where [t0, t1] is the period in which every client had kernels running (first start .. last end),
    less its first skip_us."""
    t0 = max(min(s for s, e in iv) for iv in intervals_by_client.values()) + skip_us
    t1 = min(max(e for s, e in iv) for iv in intervals_by_client.values())
    busy = {}
    for name, iv in intervals_by_client.items():
        busy[name] = sum(max(0, min(e, t1) - max(s, t0)) for s, e in iv)
    return t0, t1, busy


@unittest.skipUnless(U.real_binaries() and U.hook_lib() and U.fake_cuda(),
                     "needs gem-schd, gem-pmgr, libgemhook.so.1 and the stand-in driver in $GEM_BUILD")
class TestEndToEnd(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="gem-e2e-"))
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            U.stop_with_children(p)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_two_clients_share_03_07(self):
        schd, pmgr = U.real_binaries()
        fake_dir, app = U.fake_cuda()
        clients = [("client1", 0.3), ("client2", 0.7)]
        cfg = self.tmp / "resource-config.txt"
        U.write_config(cfg, [(c, r, 1.0, 0) for c, r in clients])
        base = U.free_port_block(3)
        stats = self.tmp / "stats.json"
        backend_log = open(self.tmp / "backend.log", "w")
        self.addCleanup(backend_log.close)
        backend = subprocess.Popen(
            [U.PY, str(U.BACKEND), str(schd), str(pmgr), "--config", str(cfg), "--port", str(base),
             "--pmgr_base_port", str(base + 1), "--base_quota", "100", "--min_quota", "50", "--window", "2000",
             "--stats", str(stats)],
            stdin=subprocess.DEVNULL, stdout=backend_log, stderr=subprocess.STDOUT)
        self.procs.append(backend)
        self.assertTrue(U.wait_listening([base, base + 1, base + 2], 15, backend),
                        (self.tmp / "backend.log").read_text())

        runs = {}
        for i, (name, _) in enumerate(clients):
            env = dict(os.environ, LD_LIBRARY_PATH=str(fake_dir), FAKE_CUDA_LOG=str(self.tmp / f"{name}.log"),
                       GEMINI_MAX_INFLIGHT="8",
                       GEMINI_STATS_FILE=str(self.tmp / f"{name}.hook.json"))
            out = open(self.tmp / f"{name}.out", "w")
            err = open(self.tmp / f"{name}.err", "w")
            p = subprocess.Popen(
                [U.PY, str(U.COMMAND), "--hook", str(U.hook_lib()), "--name", name, "--port", str(base + 1 + i),
                 "--timeout", "60", "--", str(app), "--seconds", "6", "--kernel_us", "2000"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
            self.procs.append(p)
            runs[name] = (p, out, err)
        for name, (p, out, err) in runs.items():
            rc = p.wait(timeout=90)
            out.close()
            err.close()
            self.assertEqual(rc, 0, f"{name}: exit {rc}\n" + (self.tmp / f"{name}.err").read_text())

        results = {}
        for name, _ in clients:
            lines = [l for l in (self.tmp / f"{name}.out").read_text().splitlines() if l.startswith("{")]
            self.assertTrue(lines, f"{name}: no JSON line from fake-cuda-app")
            results[name] = json.loads(lines[-1])
            self.assertGreater(results[name]["launches"], 0)

        intervals = {}
        for name, _ in clients:
            recs = read_fake_log(self.tmp / f"{name}.log")
            mine = [(s, e) for pid, s, e in recs if pid == results[name]["pid"]]
            self.assertTrue(mine, f"{name}: no kernels in its FAKE_CUDA_LOG")
            intervals[name] = mine
        # The first second is the scheduler's warm-up (its window starts empty): not counted.
        t0, t1, busy = overlap_shares(intervals, skip_us=SKIP_US)
        self.assertGreater(t1 - t0, 4_000_000, "the two clients overlapped less than 4 s after the warm-up")
        total = sum(busy.values())
        report = {n: round(busy[n] / total, 3) for n in busy}
        for name, req in clients:
            share = busy[name] / total
            self.assertLess(abs(share - req), TOLERANCE,
                            f"{name}: share {share:.3f} vs request {req} over {(t1 - t0) / 1e6:.1f} s; all: {report}")

        backend.send_signal(signal.SIGINT)
        backend.wait(timeout=10)
        self.assertEqual(backend.returncode, 0, (self.tmp / "backend.log").read_text())


if __name__ == "__main__":
    unittest.main()
