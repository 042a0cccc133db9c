"""launch-backend.py finds the GPUs through NVML (the stand-in: FAKE_CUDA_DEVICES GPUs) and starts
one real gem-schd per GPU by UUID: one GPU on IP:PORT as in Gemini, several on Unix sockets with
the pod managers routing each process to its GPU's scheduler; --gpus names them or turns discovery
off; no NVML falls back to one gem-schd. Checked through the daemons' metrics (gemctl status)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import gemtest_util as U

GEMCTL = U.TOOLS / "gemctl"


def uuid(i):
    return f"GPU-fa4e0000-0000-0000-0000-{i:012x}"


@unittest.skipUnless(U.real_binaries() and U.hook_lib() and U.fake_cuda(),
                     "needs gem-schd, gem-pmgr, libgemhook.so.1 and the stand-in driver and NVML in $GEM_BUILD")
class TestDiscovery(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="gem-disc-"))
        self.procs = []
        U.write_config(self.tmp / "rc.txt", [("client1", 0.3, 1.0, 0), ("client2", 0.7, 1.0, 0)])
        self.base = U.free_port_block(3)
        self.mport = U.free_port_block(4)

    def tearDown(self):
        for p in self.procs:
            U.stop_with_children(p)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def backend(self, *extra, devices=1, nvml=True):
        schd, pmgr = U.real_binaries()
        env = dict(os.environ, FAKE_CUDA_DEVICES=str(devices))
        if nvml:
            env["LD_LIBRARY_PATH"] = str(U.gem_build() / "fake-cuda")
            env.pop("GEMINI_NVML", None)
        else:
            env["GEMINI_NVML"] = "/nonexistent/libnvidia-ml.so.1"
        self.out = open(self.tmp / "backend.out", "w")
        self.addCleanup(self.out.close)
        p = subprocess.Popen([U.PY, str(U.BACKEND), str(schd), str(pmgr), "--config", str(self.tmp / "rc.txt"),
                              "--port", str(self.base), "--pmgr_base_port", str(self.base + 1),
                              "--socket_dir", str(self.tmp / "gpus"), "--metrics_port", str(self.mport),
                              "--base_quota", "30", "--min_quota", "10", "--window", "2000", *extra],
                             stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        deadline = time.monotonic() + 20
        while "backend ready" not in self.output() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("backend ready", self.output())
        return p

    def output(self):
        return (self.tmp / "backend.out").read_text()

    def status(self, ports):
        eps = []
        for port in ports:
            eps += ["--endpoint", f"127.0.0.1:{port}"]
        r = subprocess.run([U.PY, str(GEMCTL), "status", "--json", *eps], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def status_until(self, ports, pred, seconds=10):
        """gemctl status until pred(status) holds (charges arrive with releases) or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while True:
            s = self.status(ports)
            if pred(s) or time.monotonic() > deadline:
                return s
            time.sleep(0.1)

    def run_app(self, client, port, device):
        fake_dir, app = U.fake_cuda()
        env = dict(os.environ, FAKE_CUDA_DEVICES="2", LD_LIBRARY_PATH=str(fake_dir), GEMINI_MAX_INFLIGHT="8")
        r = subprocess.run([U.PY, str(U.COMMAND), "--hook", str(U.hook_lib()), "--name", client, "--port", str(port),
                            "--", str(app), "--seconds", "1", "--device", str(device)],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_one_gem_schd_per_gpu_by_uuid(self):
        p = self.backend(devices=2)
        out = self.output()
        self.assertIn(f"NVML found 2 GPU(s): {uuid(0)}, {uuid(1)}", out)
        for i in range(2):
            sock = self.tmp / "gpus" / f"{uuid(i)}.sock"
            self.assertRegex(out, rf"gem-schd\[{uuid(i)}\] listening on {re.escape(str(sock))}")
        s = self.status([self.mport, self.mport + 1])
        self.assertEqual(sorted(g["gpu"] for g in s["gpus"]), [uuid(0), uuid(1)])
        # A process on device 1 is scheduled by GPU 1's gem-schd only.
        self.run_app("client2", self.base + 2, 1)
        def used_of(s):
            return {g["gpu"]: g["clients"]["client2"]["gpu_seconds"] for g in s["gpus"]}
        s = self.status_until([self.mport, self.mport + 1], lambda s: used_of(s)[uuid(1)] > 0)
        used = used_of(s)
        self.assertGreater(used[uuid(1)], 0.0, s)
        self.assertEqual(used[uuid(0)], 0.0, s)
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(timeout=20), 0, self.output())

    def test_one_gpu_keeps_geminis_address(self):
        self.backend(devices=1)
        self.assertIn(f"gem-schd[{uuid(0)}] listening on 127.0.0.1:{self.base}", self.output())
        s = self.status([self.mport])
        self.assertEqual([g["gpu"] for g in s["gpus"]], [uuid(0)])
        self.run_app("client1", self.base + 1, 0)
        s = self.status_until([self.mport], lambda s: s["gpus"][0]["clients"]["client1"]["gpu_seconds"] > 0)
        self.assertGreater(s["gpus"][0]["clients"]["client1"]["gpu_seconds"], 0.0, s)

    def test_told_otherwise(self):
        self.backend("--gpus", uuid(1), devices=2)
        self.assertIn(f"GPUs named with --gpus: {uuid(1)}", self.output())
        self.assertEqual([g["gpu"] for g in self.status([self.mport])["gpus"]], [uuid(1)])

    def test_discovery_off_or_no_nvml_starts_one_gem_schd(self):
        self.backend("--gpus", "none", devices=2)
        self.assertIn(f"gem-schd listening on 127.0.0.1:{self.base}", self.output())
        self.assertEqual([g["gpu"] for g in self.status([self.mport])["gpus"]], ["(no --gpu)"])
        for p in self.procs:
            U.stop_with_children(p)
        self.procs = []
        self.backend(devices=2, nvml=False)
        self.assertIn("no GPU discovered", self.output())
        self.assertIn(f"gem-schd listening on 127.0.0.1:{self.base}", self.output())

    def test_a_malformed_uuid_is_refused(self):
        r = subprocess.run([U.PY, str(U.BACKEND), "--config", str(self.tmp / "rc.txt"), "--gpus", "GPU-123"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("'GPU-123' is not a GPU UUID", r.stderr)


if __name__ == "__main__":
    unittest.main()
