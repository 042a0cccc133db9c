"""Helpers shared by bench/run_bench.py and tests/gpu/gpu_checks.py (standard library only):
start a backend through tools/launch-backend.py, run commands through tools/launch-command.py,
read gem-schd's --stats file and the hook's counters."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tools"
PY = sys.executable or "python3"


def log(msg):
    print(msg, flush=True)


def have_gpu():
    try:
        r = subprocess.run(["nvidia-smi", "-L"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    gpus = [l for l in r.stdout.splitlines() if l.startswith("GPU ")]
    return gpus[0] if r.returncode == 0 and gpus else None


def _bindable(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_block(n):
    """A base port such that base..base+n-1 are free now (best effort). Drawn below Linux's ephemeral
    range (32768-60999), so the client side of some other connection cannot take one before the
    daemon binds it."""
    for _ in range(500):
        base = random.randint(20000, 32000 - n)
        if all(_bindable(base + i) for i in range(n)):
            return base
    raise RuntimeError("no block of free ports")


def can_connect(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def last_json_line(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


class Backend:
    """gem-schd + one gem-pmgr per client via tools/launch-backend.py, on free ports."""

    def __init__(self, build, workdir, clients, quotas=None, log_level=None, mps_env=None):
        """clients: [(id, request, limit[, gpu_mem])]; quotas: dict of gem-schd flags in ms
        (base_quota/min_quota/window/swing, passed through launch-backend.py);
        mps_env: CUDA_MPS_* variables for launch-backend.py --mps (None: no MPS)."""
        self.build = Path(build)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clients = clients
        self.quotas = quotas or {}
        self.log_level = log_level
        self.mps_env = mps_env
        self.proc = None
        self.base = None
        self.stats = self.dir / "schd-stats.json"
        self.samples = []  # (monotonic s, stats dict)

    def port_of(self, name):
        return self.base + 1 + [c[0] for c in self.clients].index(name)

    def __enter__(self):
        cfg = self.dir / "resource-config.txt"
        cfg.write_text(f"{len(self.clients)}\n" + "".join(f"{c[0]} {c[1]} {c[2]} {c[3] if len(c) > 3 else 0}\n" for c in self.clients))
        self.base = free_port_block(len(self.clients) + 1)
        argv = [PY, str(TOOLS / "launch-backend.py"), str(self.build / "bin" / "gem-schd"),
                str(self.build / "bin" / "gem-pmgr"), "--config", str(cfg), "--port", str(self.base),
                "--pmgr_base_port", str(self.base + 1), "--stats", str(self.stats)]
        for k, v in self.quotas.items():
            argv += [f"--{k}", str(v)]
        if self.log_level:
            argv += ["--log_level", self.log_level]
        env = None
        if self.mps_env is not None:
            argv.append("--mps")
            env = dict(os.environ, **self.mps_env)
        self.logf = open(self.dir / "backend.log", "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env)
        ports = [self.base + i for i in range(len(self.clients) + 1)]
        deadline = time.monotonic() + 20
        while not all(can_connect(p) for p in ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("backend did not come up: " + (self.dir / "backend.log").read_text()[-3000:])
            time.sleep(0.05)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def sample(self):
        st = read_json(self.stats)
        if st and (not self.samples or st.get("time_us") != self.samples[-1][1].get("time_us")):
            self.samples.append((time.monotonic(), st))
        return st

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return False


def used_delta(samples, names, t_from_us, t_to_us):
    """From gem-schd stats samples: per-client used_us_total growth between the first sample at or
    after t_from_us and the last at or before t_to_us (CLOCK_MONOTONIC µs). Returns (span_us, {name: us})
    or (0, {}) if there are not two such samples."""
    inside = [s for _, s in samples if t_from_us <= s.get("time_us", 0) <= t_to_us]
    if len(inside) < 2:
        return 0, {}
    a, b = inside[0], inside[-1]
    d = {}
    for n in names:
        if n in a.get("clients", {}) and n in b.get("clients", {}):
            d[n] = b["clients"][n]["used_us_total"] - a["clients"][n]["used_us_total"]
    return b["time_us"] - a["time_us"], d


def hooked(build, name, port, cmd, stats_file=None, timeout=None):
    """argv of cmd run through launch-command.py as client `name` on pod manager `port`."""
    argv = [PY, str(TOOLS / "launch-command.py"), "--hook", str(Path(build) / "lib" / "libgemhook.so.1"),
            "--name", name, "--port", str(port)]
    if timeout:
        argv += ["--timeout", str(timeout)]
    return argv + ["--"] + [str(c) for c in cmd]


def hook_launches(counters):
    """Total launches in the hook's counters JSON, and the _ptsz part."""
    if not counters:
        return None, None
    l = counters.get("launches", {})
    return sum(l.values()), sum(v for k, v in l.items() if k.endswith("_ptsz") or k.endswith("_ptds"))


def median(v):
    v = sorted(v)
    n = len(v)
    if not n:
        return None
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def run_logged(argv, logdir, tag, env=None, timeout=600):
    """Run argv, stdout to logdir/tag.out, stderr to logdir/tag.err. Returns (rc, stdout text)."""
    argv = [str(a) for a in argv]
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    with open(logdir / f"{tag}.out", "w") as out, open(logdir / f"{tag}.err", "w") as err:
        try:
            rc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, (logdir / f"{tag}.out").read_text()


def tail(path, n=1500):
    try:
        return Path(path).read_text()[-n:]
    except OSError:
        return ""
