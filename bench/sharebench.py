"""Helpers of bench/share_latency.py and bench/many_clients.py (standard library only): timestamped
progress lines, a group of clients started together behind a start barrier (--ready_file/--go_file of
bench/latency_client.cu and bench/torch_share_client.py) under one of the systems compared (gem through
tools/launch-command.py, none, MPS), gem-schd stats sampling, and an MPS control daemon of our own."""

import datetime
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gemrun as G

sys.path.insert(0, str(G.TOOLS))
from gemtools import mps as M  # noqa: E402

T0 = time.monotonic()


def log(msg):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S")
    print(f"[{now}Z +{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def standin_env(build):
    """Environment for the stand-in driver: build/fake-cuda first on LD_LIBRARY_PATH."""
    fake = str(Path(build) / "fake-cuda")
    old = os.environ.get("LD_LIBRARY_PATH", "")
    return {"LD_LIBRARY_PATH": fake + (":" + old if old else "")}


class Client:
    """One process of a group: name (gem client ID and label), argv (before the barrier flags)."""

    def __init__(self, name, argv, kind):
        self.name, self.argv, self.kind = name, [str(a) for a in argv], kind
        self.proc = None
        self.rc = None
        self.result = None
        self.err_tail = ""


def _kill_group(p, sig):
    try:
        os.killpg(p.pid, sig)  # the session we started (start_new_session): the client and its children
    except (ProcessLookupError, PermissionError):
        pass


def run_group(rundir, clients, env_extra=None, backend=None, build=None, ready_timeout=120,
              run_seconds=15, run_grace=40, sample_every=0.2):
    """Start every client at once (through launch-command.py when backend is given), wait until all
    have created their ready file (or exited, or ready_timeout), write the go file with a start 0.5 s
    ahead, wait for them to finish while sampling gem-schd's stats. Returns (go_mono or None, notes).
    Each Client gets rc, result (its last JSON line), err_tail."""
    rundir = Path(rundir)
    rundir.mkdir(parents=True, exist_ok=True)
    go = rundir / "go"
    for f in [go] + [rundir / f"{c.name}.ready" for c in clients]:
        if f.exists():
            f.unlink()
    env = dict(os.environ, **(env_extra or {}))
    notes = []
    files = []
    try:
        for c in clients:
            argv = c.argv + ["--ready_file", rundir / f"{c.name}.ready", "--go_file", go, "--name", c.name]
            if backend is not None:
                argv = G.hooked(build, c.name, backend.port_of(c.name), argv)
            argv = [str(a) for a in argv]
            (rundir / f"{c.name}.cmd").write_text(" ".join(argv) + "\n")
            out = open(rundir / f"{c.name}.out", "w")
            err = open(rundir / f"{c.name}.err", "w")
            files += [out, err]
            c.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                      start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while True:
            if backend is not None:
                backend.sample()
            ready = [(rundir / f"{c.name}.ready").exists() for c in clients]
            dead = [c.name for c in clients if c.proc.poll() is not None]
            if all(ready) or dead or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if dead:
            notes.append(f"exited before the start: {', '.join(dead)}")
        elif not all(ready):
            notes.append(f"not ready after {ready_timeout:.0f} s: "
                         + ", ".join(c.name for c, r in zip(clients, ready) if not r))
        go_t = time.monotonic() + 0.5
        tmp = rundir / "go.tmp"
        tmp.write_text(f"{go_t:.6f}\n")
        os.replace(tmp, go)
        end = go_t + run_seconds + run_grace
        while any(c.proc.poll() is None for c in clients):
            if backend is not None:
                backend.sample()
            if time.monotonic() > end:
                notes.append(f"still running {run_grace:.0f} s past the end: killed")
                break
            time.sleep(sample_every)
        if backend is not None:
            backend.sample()
        return go_t, notes
    finally:
        for c in clients:
            if c.proc is not None and c.proc.poll() is None:
                _kill_group(c.proc, signal.SIGTERM)
        for c in clients:
            if c.proc is None:
                continue
            try:
                c.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(c.proc, signal.SIGKILL)
                c.proc.wait()
            c.rc = c.proc.returncode
        for f in files:
            f.close()
        for c in clients:
            c.result = G.last_json_line(G.tail(rundir / f"{c.name}.out", 20000))
            c.err_tail = G.tail(rundir / f"{c.name}.err", 600)


def shares(backend, names, t_from, t_to):
    """Per-client share of GPU time (gem-schd's used_us_total growth / span) between two
    time.monotonic() instants, from the sampled stats. ({name: share}, span_s) or ({}, 0)."""
    if backend is None:
        return {}, 0
    span, d = G.used_delta(backend.samples, names, int(t_from * 1e6), int(t_to * 1e6))
    if span <= 0:
        return {}, 0
    return {n: d[n] / span for n in d}, span / 1e6


def backend_error(e):
    """The telling lines of a gemrun.Backend start-up failure (gem-schd's own complaint first)."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    keep = [l for l in lines if ("gem-schd:" in l or "gem-pmgr:" in l or "error" in l.lower()
                                 or "exited" in l) and "starting " not in l]
    return " | ".join((keep or lines)[-3:])[-600:]


def save_samples(backend, path):
    """Every sampled gem-schd stats snapshot, one JSON object a line."""
    import json
    try:
        with open(path, "w") as f:
            for _, st in backend.samples:
                f.write(json.dumps(st) + "\n")
    except OSError:
        pass


class Mps:
    """An MPS control daemon of our own (tools/gemtools/mps.py, what `launch-backend.py --mps` uses):
    private pipe and log folders under rundir; `with` starts it and always stops it. ok False + why
    when it cannot run. probe_argv: a short client run through MPS first (the server starts on its
    first client), so that a broken MPS shows here and not as failed benchmark runs."""

    def __init__(self, rundir, probe_argv=None, env_extra=None):
        self.dir = Path(rundir)
        pipe = self.dir / "pipe"
        if len(str(pipe)) > 60:  # MPS puts Unix sockets in it: keep their paths under 108 bytes
            import tempfile
            pipe = Path(tempfile.mkdtemp(prefix="gem-mps-"))
        self.logd = self.dir / "log"
        self.probe_argv = probe_argv
        self.env_extra = env_extra or {}
        self.daemon = M.MpsDaemon(dict(os.environ, **self.env_extra, CUDA_MPS_PIPE_DIRECTORY=str(pipe),
                                       CUDA_MPS_LOG_DIRECTORY=str(self.logd)))
        self.pipe = pipe
        self.ok = False
        self.why = ""

    def env(self):
        return self.daemon.client_env()

    def _logs(self):
        return " | ".join(f"{f.name}: {G.tail(f, 400).strip()}" for f in sorted(self.logd.glob("*.log")))

    def __enter__(self):
        log(f"mps: pipe directory {self.pipe}, logs {self.logd}")
        try:
            log(self.daemon.start())
        except M.MpsError as e:
            self.why = f"{e} {self._logs()}".strip()
            return self
        if self.probe_argv:
            env = dict(os.environ, **self.env_extra, **self.env())
            try:
                p = subprocess.run([str(a) for a in self.probe_argv], env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                   timeout=45)
                if p.returncode != 0:
                    self.why = f"probe client exited {p.returncode}: {p.stdout.strip()[-400:]} {self._logs()}"
                    return self
            except subprocess.TimeoutExpired:
                self.why = f"probe client did not finish in 45 s {self._logs()}"
                return self
        self.ok = True
        return self

    def __exit__(self, *exc):
        if self.daemon.started:
            line = self.daemon.stop()
            if line:
                log("mps: " + line)
            time.sleep(1.5)  # let the server and the daemon exit before the next runs
        return False
