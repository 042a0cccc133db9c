"""gemctl (tools/gemctl) against the real daemons and the stand-in NVML: status and top show each
client's configured and achieved share while two clients run under the hook, plot writes its
samples (and a PNG when matplotlib is installed, else says it is missing), check reports what the
stand-in NVML is told to show (FAKE_NVML_*) and fails on what breaks sharing."""

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import gemtest_util as U
import metrics_stub as M

GEMCTL = U.TOOLS / "gemctl"
GPU = "GPU-fa4e0000-0000-0000-0000-000000000000"


def have_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def nvml_env(**extra):
    env = dict(os.environ, LD_LIBRARY_PATH=str(U.gem_build() / "fake-cuda"))
    for k in list(env):
        if k.startswith("FAKE_NVML_") or k == "GEMINI_METRICS":
            del env[k]
    env.update(extra)
    return env


def gemctl(*args, env=None, timeout=60):
    return subprocess.run([U.PY, str(GEMCTL), *args], capture_output=True, text=True, timeout=timeout,
                          env=env or nvml_env())


class Daemons:
    """gem-schd and gem-pmgrs on Unix sockets in `tmp`, metrics on free loopback ports."""

    def __init__(self, tmp, clients, schd_env=None, unconfigured=()):
        self.tmp = tmp
        self.procs = []
        schd, pmgr = U.real_binaries()
        U.write_config(tmp / "rc.txt", [(c, r, 1.0, "1GiB") for c, r in clients])
        self.schd_port = self._start("schd", [str(schd), "--socket", str(tmp / "schd.sock"), "--config",
                                              str(tmp / "rc.txt"), "--gpu", GPU, "--base_quota", "30",
                                              "--min_quota", "10", "--window", "2000"], nvml_env(**(schd_env or {})))
        self.pmgr_ports = {}
        for c in [c for c, _ in clients] + list(unconfigured):  # unconfigured: pod managers gem-schd refuses
            self.pmgr_ports[c] = self._start(f"pmgr-{c}", [str(pmgr), "--name", c, "--socket", str(tmp / f"{c}.sock"),
                                                           "--scheduler", str(tmp / "schd.sock")], None)

    def _start(self, label, argv, env):
        log = self.tmp / f"{label}.log"
        with open(log, "w") as f:
            self.procs.append(subprocess.Popen(argv + ["--metrics_port", "auto"], stdout=f, stderr=subprocess.STDOUT,
                                               env=env, stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
            if m:
                return int(m.group(1))
            time.sleep(0.05)
        raise AssertionError(f"{label} did not log its metrics port:\n{log.read_text()}")

    def endpoints(self):
        out = ["--endpoint", f"127.0.0.1:{self.schd_port}"]
        for p in self.pmgr_ports.values():
            out += ["--endpoint", f"127.0.0.1:{p}"]
        return out

    def app(self, client, seconds):
        fake_dir, app = U.fake_cuda()
        env = dict(os.environ, LD_LIBRARY_PATH=str(fake_dir), LD_PRELOAD=str(U.hook_lib()), POD_NAME=client,
                   POD_MANAGER_SOCKET=str(self.tmp / f"{client}.sock"), GEMINI_MAX_INFLIGHT="8")
        with open(self.tmp / f"app-{client}.err", "w") as err:
            p = subprocess.Popen([str(app), "--seconds", str(seconds), "--kernel_us", "1000"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            U.stop(p)


@unittest.skipUnless(U.real_binaries() and U.hook_lib() and U.fake_cuda(),
                     "needs gem-schd, gem-pmgr, libgemhook.so.1 and the stand-in driver and NVML in $GEM_BUILD")
class TestGemctlWithDaemons(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="gem-gemctl-"))
        self.d = None

    def tearDown(self):
        if self.d:
            self.d.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def status_json(self):
        r = gemctl("status", "--json", *self.d.endpoints())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        s = json.loads(r.stdout)
        self.assertEqual(M.json_number_types(s), [], "counts are ints, ratios and seconds floats")
        return s

    def test_status_top_and_plot_during_a_shared_run(self):
        self.d = Daemons(self.tmp, [("client1", 0.3), ("client2", 0.7)])
        apps = [self.d.app("client1", 5), self.d.app("client2", 5)]
        # While both run: both connected with one process each, configured shares as in the file.
        deadline = time.monotonic() + 10
        while True:
            s = self.status_json()
            clients = s["gpus"][0]["clients"] if s["gpus"] else {}
            procs = {p["client"]: p["launch"] for p in s["pod_managers"]}
            if (all(clients.get(c, {}).get("gpu_seconds", 0) > 0 for c in ("client1", "client2"))
                    and procs == {"client1": 1, "client2": 1}) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(s["gpus"][0]["gpu"], GPU)
        self.assertEqual(procs, {"client1": 1, "client2": 1}, s)
        self.assertEqual(clients["client1"]["request"], 0.3)
        self.assertEqual(clients["client2"]["request"], 0.7)
        self.assertEqual(clients["client1"]["mem_limit"], 1 << 30)
        self.assertTrue(all(clients[c]["connected"] == 1 for c in clients), clients)

        text = gemctl("status", *self.d.endpoints())
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(f"GPU {GPU}: healthy", text.stdout)
        self.assertRegex(text.stdout, r"client1\s+0\.30\s+1\.00\s+\d\.\d{3}")
        self.assertIn("1.0 GiB", text.stdout)

        # gemctl ps (issue 20): one row per process, as nvidia-smi lists them, with the client's share.
        ps = gemctl("ps", "--json", *self.d.endpoints())
        self.assertEqual(ps.returncode, 0, ps.stdout + ps.stderr)
        rows = {r["pid"]: r for r in json.loads(ps.stdout)["processes"]}
        self.assertEqual(set(rows), {a.pid for a in apps}, ps.stdout)
        self.assertEqual({rows[a.pid]["client"] for a in apps}, {"client1", "client2"})
        for r in rows.values():
            self.assertEqual(r["gpu"], GPU)
            self.assertIsInstance(r["share"], float)
            self.assertIn(r["token"], (0, 1))
        table = gemctl("ps", *self.d.endpoints())
        self.assertRegex(table.stdout, r"PID\s+CLIENT\s+GPU\s+MEMORY\s+SHARE\s+TOKEN")
        self.assertRegex(table.stdout, rf"{apps[0].pid}\s+client1\s+{GPU}")

        top = gemctl("top", "--count", "2", "--interval", "0.2", *self.d.endpoints())
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertEqual(top.stdout.count("gemctl top"), 2, top.stdout)
        self.assertEqual(top.stdout.count(f"GPU {GPU}"), 2, top.stdout)

        out = self.tmp / "shares.png"
        plot = gemctl("plot", "--seconds", "1.5", "--interval", "0.25", "--out", str(out),
                      "--endpoint", f"127.0.0.1:{self.d.schd_port}")
        with open(self.tmp / "shares.csv") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual({r["client"] for r in rows}, {"client1", "client2"})
        self.assertGreaterEqual(len(rows), 8, rows)
        self.assertTrue(all(0 <= float(r["share"]) <= 1 for r in rows), rows)
        if have_matplotlib():
            self.assertEqual(plot.returncode, 0, plot.stderr)
            self.assertEqual(out.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
        else:
            self.assertEqual(plot.returncode, 3, plot.stderr)
            self.assertIn("matplotlib is not installed", plot.stderr)
            self.assertIn(str(self.tmp / "shares.csv"), plot.stderr)
            self.assertFalse(out.exists())

        for p in apps:
            self.assertEqual(p.wait(timeout=60), 0)
        # After the run: GPU time charged to both, split about 0.3 / 0.7 (loosely: the scheduling
        # itself is tested elsewhere), and no process left.
        s = self.status_json()
        used = {c: v["gpu_seconds"] for c, v in s["gpus"][0]["clients"].items()}
        self.assertGreater(sum(used.values()), 2.0, used)
        self.assertAlmostEqual(used["client1"] / sum(used.values()), 0.3, delta=0.08)

    def test_status_names_an_endpoint_it_cannot_read(self):
        self.d = Daemons(self.tmp, [("client1", 0.5)])
        dead = U.free_port_block(1)
        r = gemctl("status", "--endpoint", f"127.0.0.1:{self.d.schd_port}", "--endpoint", f"127.0.0.1:{dead}")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(f"cannot read http://127.0.0.1:{dead}/metrics", r.stdout)
        self.assertIn("client1", r.stdout)

    def test_status_lists_a_refused_client_under_its_gpu(self):
        # Issue 19: a client gem-schd refuses is held; the administrator sees it, with the reason.
        self.d = Daemons(self.tmp, [("client1", 0.5)], unconfigured=["stranger"])
        app = self.d.app("stranger", 30)
        deadline = time.monotonic() + 15
        while True:
            r = gemctl("status", *self.d.endpoints())
            if "REFUSED" in r.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        row = [line for line in r.stdout.splitlines() if "stranger" in line and "REFUSED" in line]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertIn("unknown_client", row[0])
        gpu_line = r.stdout.index(GPU)
        self.assertGreater(r.stdout.index(row[0]), gpu_line, "listed under its GPU")
        s = self.status_json()
        self.assertEqual(s["gpus"][0]["refused"], {"stranger": "unknown_client"}, s["gpus"][0])
        self.assertGreaterEqual(s["gpus"][0]["refusals"], 1)
        self.assertIsNone(app.poll(), "the held app is still waiting, not finished unthrottled")

    def test_check_reports_xid_errors_and_a_lost_gpu_seen_by_gem_schd(self):
        events = self.tmp / "events.txt"
        events.write_text("")
        self.d = Daemons(self.tmp, [("client1", 0.5)], schd_env={"FAKE_NVML_EVENTS": str(events)})
        ep = ["--endpoint", f"127.0.0.1:{self.d.schd_port}", "--xid_wait", "0"]
        r = gemctl("check", *ep)
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(events, "a") as f:
            f.write("xid 0 48\n")
        deadline = time.monotonic() + 10
        while "XID 48" not in r.stdout and time.monotonic() < deadline:
            time.sleep(0.2)
            r = gemctl("check", *ep)
        self.assertRegex(r.stdout, r"WARN\s+0\s+XID errors: gem-schd saw 1 critical XID event\(s\), last XID 48")
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(events, "a") as f:
            f.write("lost 0\n")
        deadline = time.monotonic() + 10
        while "lost" not in r.stdout and time.monotonic() < deadline:
            time.sleep(0.2)
            r = gemctl("check", *ep)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stdout, r"FAIL\s+0\s+health: gem-schd reports the GPU lost")
        st = gemctl("status", *self.d.endpoints())
        self.assertIn(f"GPU {GPU}: LOST", st.stdout)


@unittest.skipUnless((U.gem_build() / "fake-cuda" / "libnvidia-ml.so.1").is_file(), "needs the stand-in NVML")
class TestGemctlCheck(unittest.TestCase):
    def check(self, *args, **env):
        r = gemctl("check", "--xid_wait", "0.2", "--endpoint", "127.0.0.1:1", *args, env=nvml_env(**env))
        return r.returncode, r.stdout

    def test_a_clean_gpu_passes(self):
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("driver supports CUDA 12.8", out)
        self.assertIn(GPU, out)
        self.assertIn("Sharing will work; nothing found that hurts predictability.", out)

    def test_what_breaks_sharing_fails(self):
        for env, pattern in [({"FAKE_NVML_COMPUTE_MODE": "3"}, r"FAIL\s+0\s+compute mode: Exclusive_Process"),
                             ({"FAKE_NVML_COMPUTE_MODE": "2"}, r"FAIL\s+0\s+compute mode: Prohibited"),
                             ({"FAKE_NVML_MIG": "1"}, r"FAIL\s+0\s+MIG: on"),
                             ({"FAKE_NVML_CUDA_VERSION": "11080"}, r"FAIL\s+-\s+CUDA: driver supports CUDA 11\.8")]:
            rc, out = self.check(**env)
            self.assertEqual(rc, 1, (env, out))
            self.assertRegex(out, pattern)
            self.assertIn("will break sharing", out)

    def test_what_hurts_predictability_warns(self):
        rc, out = self.check("--json", FAKE_NVML_PERSISTENCE="0", FAKE_NVML_THROTTLE="0x40",
                             FAKE_NVML_ECC_UNCORRECTED="3", FAKE_NVML_PROCESSES=f"{os.getpid()}:1073741824")
        self.assertEqual(rc, 0, out)
        found = {(f["item"], f["level"]) for f in json.loads(out)["findings"]}
        for item in ("persistence mode", "clocks", "ECC", "other processes"):
            self.assertIn((item, "WARN"), found, out)
        self.assertIn(f"{os.getpid()} (python", out)

    def test_xid_events_while_it_listens(self):
        tmp = Path(tempfile.mkdtemp(prefix="gem-check-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        events = tmp / "events.txt"
        events.write_text("")
        env = nvml_env(FAKE_NVML_EVENTS=str(events))
        out_path = tmp / "check.out"
        with open(out_path, "w") as out_file:
            p = subprocess.Popen([U.PY, str(GEMCTL), "check", "--xid_wait", "3", "--endpoint", "127.0.0.1:1"],
                                 stdout=out_file, text=True, env=env)
            # NVML keeps no history: an event counts only once check listens, whenever that is on a
            # loaded machine, so one is written every 100 ms until it is done.
            while p.poll() is None:
                with open(events, "a") as f:
                    f.write("xid 0 79\n")
                time.sleep(0.1)
        out = out_path.read_text()
        self.assertEqual(p.returncode, 0, out)
        self.assertRegex(out, r"WARN\s+0\s+XID errors: critical XID event\(s\) 79( \(x\d+\))? within")

    def test_a_second_device_and_bad_arguments(self):
        rc, out = self.check("--gpu", "1", FAKE_CUDA_DEVICES="2")
        self.assertEqual(rc, 0, out)
        self.assertIn("GPU-fa4e0000-0000-0000-0000-000000000001", out)
        self.assertEqual(self.check("--gpu", "bogus")[0], 2)
        r = gemctl("check", "--nvml", "/nonexistent/libnvidia-ml.so.1", "--endpoint", "127.0.0.1:1")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"FAIL\s+-\s+NVML: .*no NVIDIA driver here")


class TestGemctlJson(unittest.TestCase):
    """gemctl status --json against stand-in endpoints that write what gem-schd and gem-pmgr write."""

    def setUp(self):
        self.servers = [M.metrics(M.SCHD), M.metrics(M.PMGR)]

    def tearDown(self):
        for srv in self.servers:
            srv.close()

    def test_counts_are_ints_and_ratios_floats(self):
        # Issue 20: a count read from the exposition ("gem_client_grants_total ... 34") was 34.0 in the JSON.
        r = gemctl("status", "--json", *[a for srv in self.servers for a in ("--endpoint", f"127.0.0.1:{srv.port}")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        s = json.loads(r.stdout)
        self.assertEqual(M.json_number_types(s), [])
        g, c, p = s["gpus"][0], s["gpus"][0]["clients"]["client1"], s["pod_managers"][0]
        self.assertEqual((g["refusals"], g["reloads"], g["mem_budget"]), (3, 3, 15032385536))
        self.assertEqual((c["grants"], c["revocations"], c["evictions"], c["mem_limit"]), (34, 5, 2, 1 << 30))
        self.assertEqual((c["request"], c["limit"], c["gpu_seconds"], g["window_s"]), (0.5, 1.0, 3.0, 2.0))
        self.assertEqual((p["launch"], p["memory"], p["grants"]), (2, 1, 34))
        self.assertIn('"grants": 34,', r.stdout)
        self.assertIn('"limit": 1.0,', r.stdout)
        # The GPU as dcgm-exporter names it: UUID shown, NVML index kept.
        self.assertEqual((g["gpu"], g["index"]), (M.GPU, 0))

    def test_reads_a_gem_schd_from_before_the_uuid_label(self):
        old = M.metrics(M.SCHD_BEFORE_ISSUE_20)
        try:
            r = gemctl("status", "--json", "--endpoint", f"127.0.0.1:{old.port}")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            g = json.loads(r.stdout)["gpus"][0]
            self.assertEqual((g["gpu"], g["index"]), (M.GPU, None))
        finally:
            old.close()


def gemctl_probing(ports, *args):
    """gemctl with neither --endpoint nor $GEMINI_METRICS, probing `ports` instead of 19400-19415 (which
    something else on the machine may use)."""
    code = ("import os, runpy, sys; gemctl = sys.argv[1]; sys.path.insert(0, os.path.dirname(gemctl)); "
            "from gemtools import prom; prom.DEFAULT_PORTS = [int(p) for p in sys.argv[2].split(',')]; "
            "sys.argv = [gemctl] + sys.argv[3:]; runpy.run_path(gemctl, run_name='__main__')")
    return subprocess.run([U.PY, "-c", code, str(GEMCTL), ",".join(map(str, ports)), *args], capture_output=True,
                          text=True, timeout=60, env=nvml_env())


class TestGemctlForeignEndpoints(unittest.TestCase):
    """Issue 20: on a probed port, something that answers but is not a gem daemon is skipped with one
    line on stderr; on a port the operator names it is an error (docs/operations.md)."""

    def setUp(self):
        self.schd = M.metrics(M.SCHD)
        self.foreign = {"HTML": M.metrics(M.HTML, ctype="text/html"), "other metrics": M.metrics(M.OTHER_PROMETHEUS),
                        "404": M.Server({}), "not HTTP": M.Banner()}
        self.addCleanup(lambda: [srv.close() for srv in [self.schd, *self.foreign.values()]])

    def assert_noted(self, stderr):
        lines = stderr.splitlines()
        self.assertEqual(len(lines), len(self.foreign), stderr)
        for what, srv in self.foreign.items():
            note = [line for line in lines if f"http://127.0.0.1:{srv.port}/metrics" in line]
            self.assertEqual(len(note), 1, (what, stderr))
            self.assertRegex(note[0], r"^gemctl: skipped .*, a probed port where something other than a gem "
                                      r"daemon answers: (HTTP 404|not HTTP|not Prometheus|Prometheus metrics without)")

    def test_skipped_beside_a_gem_daemon(self):
        ports = [self.schd.port] + [srv.port for srv in self.foreign.values()]
        r = gemctl_probing(ports, "status")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"GPU {M.GPU}: healthy", r.stdout)
        self.assertNotIn("cannot read", r.stdout)
        self.assert_noted(r.stderr)
        r = gemctl_probing(ports, "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = json.loads(r.stdout)
        self.assertEqual((len(s["gpus"]), s["errors"]), (1, []))
        self.assertEqual({x["url"] for x in s["skipped"]},
                         {f"http://127.0.0.1:{srv.port}/metrics" for srv in self.foreign.values()})
        top = gemctl_probing(ports, "top", "--count", "3", "--interval", "0.05")
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assert_noted(top.stderr)  # once each, not at every refresh

    def test_no_gem_daemon_among_them(self):
        r = gemctl_probing([srv.port for srv in self.foreign.values()], "status")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no gem-schd or gem-pmgr metrics found", r.stdout)
        self.assert_noted(r.stderr)

    def test_a_named_foreign_endpoint_is_an_error(self):
        for what, srv in self.foreign.items():
            r = gemctl("status", "--endpoint", f"127.0.0.1:{self.schd.port}", "--endpoint", f"127.0.0.1:{srv.port}")
            self.assertEqual(r.returncode, 1, (what, r.stdout, r.stderr))
            self.assertIn(f"cannot read http://127.0.0.1:{srv.port}/metrics: not a gem-schd or gem-pmgr metrics "
                          "endpoint: ", r.stdout, what)
            self.assertEqual(r.stderr, "", what)


class TestGemctlClosedPipe(unittest.TestCase):
    """Issue 20: a reader that goes away (`gemctl status | head -1`) ends gemctl quietly with the status
    a shell shows for a tool SIGPIPE ended (141), with nothing on stderr, however stdout is buffered."""

    UNREACHABLE = ("--endpoint", "127.0.0.1:1")  # refused at once: status and top still write a report

    def closed_stdout(self, *args, buffered):
        env = nvml_env()
        env.pop("PYTHONUNBUFFERED", None)
        if not buffered:
            env["PYTHONUNBUFFERED"] = "1"
        p = subprocess.Popen([U.PY, str(GEMCTL), *args, *self.UNREACHABLE], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        p.stdout.close()  # before gemctl writes anything: every write meets a pipe without a reader
        err = p.stderr.read().decode()
        p.stderr.close()
        return p.wait(timeout=60), err

    def test_status_and_top_end_quietly_when_stdout_is_closed(self):
        for args in (["status", "--json"], ["status"], ["top", "--count", "3", "--interval", "0.05"]):
            for buffered in (True, False):
                rc, err = self.closed_stdout(*args, buffered=buffered)
                self.assertEqual((rc, err), (141, ""), (args, buffered))

    def test_a_shell_pipeline_into_head(self):
        script = '"$@" | head -1 >/dev/null; echo "gemctl exit status ${PIPESTATUS[0]}" >&2'
        for args in (["status", "--json"], ["top", "--count", "200", "--interval", "0.01"]):
            r = subprocess.run(["bash", "-c", script, "_", U.PY, str(GEMCTL), *args, *self.UNREACHABLE],
                               capture_output=True, text=True, timeout=60, env=nvml_env())
            self.assertNotIn("Traceback", r.stderr)
            self.assertNotIn("BrokenPipeError", r.stderr)
            self.assertRegex(r.stderr, r"gemctl exit status (0|1|141)\n$", args)  # 1: all written before head left


if __name__ == "__main__":
    unittest.main()
