"""launch-backend.py --mps (issue 19 item 4): the backend uses the node's MPS control daemon or starts
its own and stops it, and refuses to start without one, against a stand-in nvidia-cuda-mps-control
and stand-in daemons (the GPU measurement is bench/share_latency.py --systems gem-mps)."""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
from pathlib import Path

import gemtest_util as U

MPS_STUB = Path(__file__).resolve().parent / "mps_control_stub.py"


class TestLaunchBackendMps(unittest.TestCase):
    clients = [("client1", 0.3, 1.0, 0), ("client2", 0.7, 1.0, 0)]

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="gem-mps-"))
        self.cfg = self.tmp / "resource-config.txt"
        U.write_config(self.cfg, self.clients)
        self.base = U.free_port_block(len(self.clients) + 1)
        bindir = self.tmp / "bin"
        bindir.mkdir()
        self.schd, self.pmgr = bindir / "gem-schd", bindir / "gem-pmgr"
        for b in (self.schd, self.pmgr):
            shutil.copy(U.STUB, b)
            b.chmod(0o755)
        self.mpsbin = self.tmp / "mpsbin"
        self.mpsbin.mkdir()
        stub = self.mpsbin / "nvidia-cuda-mps-control"
        shutil.copy(MPS_STUB, stub)
        stub.chmod(0o755)
        self.pipe = self.tmp / "pipe"
        self.pipe.mkdir()
        self.log = self.tmp / "mps.log"
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            U.stop_with_children(p)
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self, path=None, pipe=None):
        return dict(os.environ, PATH=str(path or self.mpsbin) + os.pathsep + os.environ.get("PATH", ""),
                    CUDA_MPS_PIPE_DIRECTORY=str(pipe or self.pipe), CUDA_MPS_LOG_DIRECTORY=str(self.tmp / "mpslog"),
                    MPS_STUB_LOG=str(self.log), GEMINI_NVML="/nonexistent/libnvidia-ml.so.1")

    def start(self, env):
        argv = [U.PY, str(U.BACKEND), str(self.schd), str(self.pmgr), "--config", str(self.cfg), "--mps",
                "--port", str(self.base), "--pmgr_base_port", str(self.base + 1)]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, env=env)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0, err)
        return out, err

    def records(self):
        return self.log.read_text().splitlines() if self.log.exists() else []

    def test_starts_its_own_daemon_and_stops_it(self):
        p = self.start(self.env())
        ports = [self.base + i for i in range(len(self.clients) + 1)]
        self.assertTrue(U.wait_listening(ports, 15, p), "daemons do not listen")
        self.assertEqual(self.records(), [f"start {self.pipe}"])
        self.assertTrue((self.pipe / "control").exists())
        _, err = self.stop(p)
        self.assertIn("MPS: started nvidia-cuda-mps-control -d", err)
        self.assertIn(f"CUDA_MPS_PIPE_DIRECTORY={self.pipe}", err)  # clients must be told (not the default)
        self.assertEqual(self.records(), [f"start {self.pipe}", f"quit {self.pipe}"])
        self.assertFalse((self.pipe / "control").exists(), "the daemon it started was left running")

    def test_uses_the_nodes_running_daemon_and_leaves_it(self):
        (self.pipe / "control").touch()  # the node's daemon
        p = self.start(self.env())
        ports = [self.base + i for i in range(len(self.clients) + 1)]
        self.assertTrue(U.wait_listening(ports, 15, p), "daemons do not listen")
        _, err = self.stop(p)
        self.assertIn(f"MPS: using the control daemon already running on {self.pipe}", err)
        self.assertEqual(self.records(), [], "the node's daemon was started again or quit")
        self.assertTrue((self.pipe / "control").exists())

    def test_without_mps_it_does_not_start(self):
        empty = self.tmp / "empty"
        empty.mkdir()
        env = self.env()
        env["PATH"] = str(empty)
        p = self.start(env)
        out, err = p.communicate(timeout=15)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("nvidia-cuda-mps-control not found on PATH", err)
        self.assertFalse(any(U.can_connect(self.base + i) for i in range(len(self.clients) + 1)),
                         "daemons started without MPS")

    def test_a_pipe_directory_too_long_for_its_sockets_is_refused(self):
        long_pipe = self.tmp / ("p" * 100)
        p = self.start(self.env(pipe=long_pipe))
        out, err = p.communicate(timeout=15)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("CUDA_MPS_PIPE_DIRECTORY", err)
        self.assertIn("choose a shorter one", err)
        self.assertEqual(self.records(), [])


if __name__ == "__main__":
    unittest.main()
