"""Tests of tools/launch-command.py and tools/launch-backend.py (no GPU needed).

launch-backend is tested twice: against stub daemons (tests/tools/stub_daemon.py, always) and against
the real gem-schd / gem-pmgr from $GEM_BUILD/bin (skipped when they are not built)."""

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


def run(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("timeout", 60)
    kw.setdefault("universal_newlines", True)
    return subprocess.run(argv, **kw)


class TestHelp(unittest.TestCase):
    def test_backend_help(self):
        r = run([U.PY, str(U.BACKEND), "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("--base_quota", "--min_quota", "--window", "--config", "--pmgr_base_port", "--stats",
                     "SCHEDULER_IP", "SCHEDULER_PORT", "POD_MANAGER_PORT", "50052"):
            self.assertIn(word, r.stdout)

    def test_command_help(self):
        r = run([U.PY, str(U.COMMAND), "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("--name", "--port", "--ip", "--timeout", "--hook", "POD_NAME", "POD_MANAGER_IP",
                     "POD_MANAGER_PORT", "LD_PRELOAD", "SCHEDULER_IP", "124"):
            self.assertIn(word, r.stdout)


ENV_DUMP = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in "
            "('POD_NAME', 'POD_MANAGER_IP', 'POD_MANAGER_PORT', 'LD_PRELOAD')}))")


class TestLaunchCommand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="gem-lc-"))
        real = U.hook_lib()
        if real:
            cls.hook = str(real)
        else:
            # A loadable stand-in for the hook (an empty shared object), so ld.so stays quiet.
            cls.hook = str(cls.tmp / "libgemhook.so.1")
            src = cls.tmp / "empty.c"
            src.write_text("int gem_dummy_hook;\n")
            cc = shutil.which("cc") or shutil.which("gcc")
            if cc:
                subprocess.run([cc, "-shared", "-fPIC", "-o", cls.hook, str(src)], check=True)
            else:
                Path(cls.hook).write_bytes(b"")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def lc(self, *args, env=None, **kw):
        return run([U.PY, str(U.COMMAND), "--hook", self.hook] + list(args), env=env, **kw)

    def test_sets_environment(self):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        r = self.lc("--name", "clientA", "--ip", "127.0.0.1", "--port", "51234", "--", U.PY, "-c", ENV_DUMP, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(got["POD_NAME"], "clientA")
        self.assertEqual(got["POD_MANAGER_IP"], "127.0.0.1")
        self.assertEqual(got["POD_MANAGER_PORT"], "51234")
        self.assertEqual(got["LD_PRELOAD"], str(Path(self.hook).resolve()))
        self.assertIn("warning", r.stderr)  # nothing listens on 51234

    def test_prepends_to_existing_preload(self):
        other = str(self.tmp / "other.so")
        shutil.copy(self.hook, other)
        env = dict(os.environ, LD_PRELOAD=other)
        r = self.lc("--name", "c", "--", U.PY, "-c", ENV_DUMP, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(got["LD_PRELOAD"].split(":"), [str(Path(self.hook).resolve()), other])

    def test_default_port_and_hook_discovery(self):
        if not U.hook_lib():
            self.skipTest("no $GEM_BUILD/lib/libgemhook.so.1 built")
        env = dict(os.environ, GEM_BUILD=str(U.gem_build()))
        env.pop("LD_PRELOAD", None)
        r = run([U.PY, str(U.COMMAND), "--name", "c", "--", U.PY, "-c", ENV_DUMP], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(got["POD_MANAGER_PORT"], "50052")
        self.assertEqual(Path(got["LD_PRELOAD"]).resolve(), U.hook_lib().resolve())

    def test_no_warning_when_pod_manager_listens(self):
        port = U.free_port_block(1)
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.listen(4)
        try:
            r = self.lc("--name", "c", "--port", str(port), "--", U.PY, "-c", "pass")
        finally:
            s.close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)

    def test_exit_status_passes_through(self):
        self.assertEqual(self.lc("--name", "c", "--", U.PY, "-c", "import sys; sys.exit(7)").returncode, 7)
        r = self.lc("--name", "c", "--", "sh", "-c", "kill -KILL $$")
        self.assertEqual(r.returncode, 128 + signal.SIGKILL)

    def test_missing_command(self):
        r = self.lc("--name", "c")
        self.assertEqual(r.returncode, 2)
        r = self.lc("--name", "c", "--", str(self.tmp / "no-such-program"))
        self.assertEqual(r.returncode, 127)

    def test_timeout_kills_and_returns_124(self):
        pidfile = self.tmp / "timeout.pids"
        child = ("import os, subprocess, sys, time;"
                 "g = subprocess.Popen(['sleep', '60']);"
                 f"open({str(pidfile)!r}, 'w').write('%d %d' % (os.getpid(), g.pid));"
                 "time.sleep(60)")
        t0 = time.monotonic()
        r = self.lc("--name", "c", "--timeout", "1", "--", U.PY, "-c", child)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 124, r.stderr)
        self.assertLess(took, 5)
        pids = [int(x) for x in pidfile.read_text().split()]
        time.sleep(0.2)
        for p in pids:
            self.assertFalse(U.pid_alive(p), f"pid {p} survived the timeout")

    def test_timeout_escalates_to_sigkill(self):
        pidfile = self.tmp / "stubborn.pid"
        child = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                 f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)")
        t0 = time.monotonic()
        r = self.lc("--name", "c", "--timeout", "0.5", "--", U.PY, "-c", child)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 124)
        self.assertGreater(took, 5)
        self.assertLess(took, 10)
        self.assertFalse(U.pid_alive(int(pidfile.read_text())))

    def test_sigint_forwarded(self):
        mark = self.tmp / "sigint.mark"
        child = ("import signal, sys, time\n"
                 "def h(s, f):\n"
                 f"    open({str(mark)!r}, 'w').write('INT'); sys.exit(5)\n"
                 "signal.signal(signal.SIGINT, h)\n"
                 f"open({str(mark)!r}, 'w').write('ready')\n"
                 "time.sleep(30)\n")
        p = subprocess.Popen([U.PY, str(U.COMMAND), "--hook", self.hook, "--name", "c", "--", U.PY, "-c", child],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while not (mark.exists() and mark.read_text() == "ready") and time.monotonic() < deadline:
                time.sleep(0.05)
            p.send_signal(signal.SIGINT)
            rc = p.wait(timeout=10)
        finally:
            U.stop(p, signal.SIGKILL)
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(rc, 5)
        self.assertEqual(mark.read_text(), "INT")


class BackendTests:
    """Shared by the stub and the real-binary variants. Subclasses set self.schd, self.pmgr."""

    clients = [("client1", 0.3, 1.0, 0), ("client2", 0.7, 1.0, "1GiB"), ("client3", 0, 0.5, 0)]

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="gem-lb-"))
        self.cfg = self.tmp / "resource-config.txt"
        U.write_config(self.cfg, self.clients)
        self.base = U.free_port_block(len(self.clients) + 1)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            U.stop_with_children(p)
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_backend(self, *extra, env=None):
        argv = [U.PY, str(U.BACKEND), str(self.schd), str(self.pmgr), "--config", str(self.cfg),
                "--port", str(self.base), "--pmgr_base_port", str(self.base + 1)] + list(extra)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, env=env)
        self.procs.append(p)
        return p

    def ports(self):
        return [self.base + i for i in range(len(self.clients) + 1)]

    def test_starts_listens_and_stops_on_sigint(self):
        p = self.start_backend("--stats", str(self.tmp / "stats.json"))
        self.assertTrue(U.wait_listening(self.ports(), 15, p), "daemons do not listen")
        time.sleep(0.3)
        kids = U.descendants(p.pid)
        self.assertEqual(len(kids), len(self.clients) + 1, kids)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, err)
        self.assertLess(took, 5.5, err)
        for k in kids:
            self.assertFalse(U.pid_alive(k), f"daemon pid {k} left running\n{err}")
        self.assertIn(f"127.0.0.1:{self.base}", out)
        for i, c in enumerate(self.clients):
            self.assertIn(f"{c[0]} listening on 127.0.0.1:{self.base + 1 + i}", out)

    def test_sigterm_stops_all(self):
        p = self.start_backend()
        self.assertTrue(U.wait_listening(self.ports(), 15, p))
        kids = U.descendants(p.pid)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)
        for k in kids:
            self.assertFalse(U.pid_alive(k))

    def test_bad_config_path(self):
        self.cfg = self.tmp / "no-such-config.txt"
        p = self.start_backend()
        out, err = p.communicate(timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-config.txt", err)
        self.assertIn("cannot read config", err)

    def test_malformed_config(self):
        self.cfg.write_text("3\nclient1 0.5 1.0 0\n")
        p = self.start_backend()
        out, err = p.communicate(timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("3 clients but 1", err)

    def test_missing_binary(self):
        self.schd = self.tmp / "no-such-gem-schd"
        p = self.start_backend()
        out, err = p.communicate(timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-gem-schd", err)


class TestLaunchBackendStub(BackendTests, unittest.TestCase):
    """Against stub daemons: checks the exact command lines and the failure handling."""

    def setUp(self):
        super().setUp()
        bindir = self.tmp / "bin"
        bindir.mkdir()
        self.schd, self.pmgr = bindir / "gem-schd", bindir / "gem-pmgr"
        for b in (self.schd, self.pmgr):
            shutil.copy(U.STUB, b)
            b.chmod(0o755)
        self.stub_log = self.tmp / "stub.log"

    def env(self, **kw):
        # No NVML: the command lines are Gemini's whatever GPU the test machine has (discovery is
        # tested in test_discovery.py).
        return dict(os.environ, STUB_LOG=str(self.stub_log), GEMINI_NVML="/nonexistent/libnvidia-ml.so.1", **kw)

    def test_command_lines(self):
        p = self.start_backend("--base_quota", "30", "--min_quota", "10", "--window", "2000",
                               "--log_level", "debug", "--stats", str(self.tmp / "s.json"), "--gang_window", "1000",
                               "--swing", "20", env=self.env())
        self.assertTrue(U.wait_listening(self.ports(), 15, p))
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
        recs = [json.loads(l) for l in self.stub_log.read_text().splitlines()]
        schd = [r for r in recs if r["prog"] == "gem-schd"]
        pmgrs = [r for r in recs if r["prog"] == "gem-pmgr"]
        self.assertEqual(len(schd), 1)
        self.assertEqual(schd[0]["argv"], ["--ip", "127.0.0.1", "--port", str(self.base), "--config", str(self.cfg),
                                           "--base_quota", "30", "--min_quota", "10", "--window", "2000",
                                           "--stats", str(self.tmp / "s.json"), "--swing", "20", "--log_level", "debug"])
        self.assertEqual(len(pmgrs), len(self.clients))
        by_name = {r["argv"][1]: r for r in pmgrs}
        for i, c in enumerate(self.clients):
            r = by_name[c[0]]
            self.assertEqual(r["argv"], ["--name", c[0], "--ip", "127.0.0.1", "--port", str(self.base + 1 + i),
                                         "--scheduler", f"127.0.0.1:{self.base}", "--log_level", "debug",
                                         "--gang_window", "1000"])
            self.assertEqual(r["env"], {"SCHEDULER_IP": "127.0.0.1", "SCHEDULER_PORT": str(self.base),
                                        "POD_NAME": c[0], "POD_MANAGER_PORT": str(self.base + 1 + i)})

    def test_default_flags(self):
        p = self.start_backend(env=self.env())
        self.assertTrue(U.wait_listening(self.ports(), 15, p))
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
        recs = [json.loads(l) for l in self.stub_log.read_text().splitlines()]
        schd = [r for r in recs if r["prog"] == "gem-schd"][0]["argv"]
        self.assertEqual(schd[schd.index("--base_quota") + 1], "250")
        self.assertEqual(schd[schd.index("--min_quota") + 1], "100")
        self.assertEqual(schd[schd.index("--window") + 1], "10000")
        self.assertNotIn("--swing", schd)  # gem-schd's own default (kDefaultSwing)

    def test_daemon_dies_unexpectedly(self):
        p = self.start_backend(env=self.env(STUB_EXIT_AFTER="1.5", STUB_EXIT_PROG="gem-pmgr"))
        self.assertTrue(U.wait_listening(self.ports(), 15, p))
        kids = U.descendants(p.pid)
        out, err = p.communicate(timeout=15)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("exited unexpectedly", err)
        for k in kids:
            self.assertFalse(U.pid_alive(k))

    def test_sigkill_after_grace(self):
        p = self.start_backend(env=self.env(STUB_IGNORE_TERM="1"))
        self.assertTrue(U.wait_listening(self.ports(), 15, p))
        kids = U.descendants(p.pid)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
        took = time.monotonic() - t0
        self.assertGreater(took, 4.5)
        self.assertLess(took, 8)
        self.assertIn("SIGKILL", err)
        for k in kids:
            self.assertFalse(U.pid_alive(k))

    def test_daemons_die_with_killed_launcher(self):
        p = self.start_backend(env=self.env())
        self.assertTrue(U.wait_listening(self.ports(), 15, p))
        kids = U.descendants(p.pid)
        p.kill()
        p.wait()
        deadline = time.monotonic() + 5
        while any(U.pid_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(any(U.pid_alive(k) for k in kids), "daemons outlived a SIGKILLed launcher")

    def test_port_collision(self):
        argv = [U.PY, str(U.BACKEND), str(self.schd), str(self.pmgr), "--config", str(self.cfg),
                "--port", "50053"]
        r = run(argv)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("collides", r.stderr)


@unittest.skipUnless(U.real_binaries(), "gem-schd/gem-pmgr not built in $GEM_BUILD/bin")
class TestLaunchBackendReal(BackendTests, unittest.TestCase):
    """Against the real daemons."""

    def setUp(self):
        super().setUp()
        self.schd, self.pmgr = U.real_binaries()

    def test_binaries_found_without_positional_paths(self):
        argv = [U.PY, str(U.BACKEND), "--config", str(self.cfg), "--port", str(self.base),
                "--pmgr_base_port", str(self.base + 1)]
        env = dict(os.environ, GEM_BUILD=str(U.gem_build()))
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, env=env)
        self.procs.append(p)
        self.assertTrue(U.wait_listening(self.ports(), 15, p))
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main()
