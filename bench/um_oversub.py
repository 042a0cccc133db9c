#!/usr/bin/env python3
"""Oversubscription with unified memory (issue 8): the Gemini paper's experiment, rebuilt on one H200.

Seed (paper, 11 GB GPU): five detectron2 Faster R-CNN inference jobs with a sleep between
iterations, started 2 s apart: 0.454 it/s aggregate without the optimisation, 0.962 it/s with it
(x2.12); average GPU memory 23 GB -> 7.65 GB.

Here: five torchvision detection jobs (bench/um_worker.py; random weights, no download), each an
inference loop with --sleep between iterations, started --stagger s apart, each timing --seconds.
Oversubscription is emulated: gem-schd gets a device-memory budget (--mem_budget) of about half of
what the five need together, far below what the card has free, so the driver is never asked for more
managed memory than there is.

  phase 0  probe: the five jobs natively (no hook), warm-up iterations only: each job's memory need
           (torch max_memory_reserved); the budget = --budget_fraction x their sum.
  (c)      native: no hook, no budget.
  (b)      hook, every client UM (resource-config "ID REQ LIMIT GPU_MEM um=on"), cache emptying and
           residency on (gem-schd --residency on), --mem_budget BUDGET.
  (a)      the same without the optimisation: GEMINI_EMPTY_CACHE=0 and gem-schd --residency demand
           (memory evicted to the same budget, faulted back page by page: plain unified memory).
Run in the order c, b, a (the configuration most likely to crawl last). For each: the aggregate it/s
over the period all five jobs run together (iteration ends of all jobs inside
[latest first timed iteration start, earliest last iteration end] / its length), GPU memory from
`nvidia-smi --query-gpu=memory.used` every 0.5 s (average over that period, and peak), each job's
it/s and torch peak memory. Targets: b >= 2.1 x a, b >= 0.8 x c (PASS/FAIL lines; exit 0 either way).

  um_oversub.py [--build BUILD] [--out DIR] [--seconds 40] [--batch 8] [--height 800 --width 1216]
  um_oversub.py --dry_run [--quick]         no GPU: mock workers, mock nvidia-smi, no daemons
  um_oversub.py --dry_run --real_backend    mock workers, but the real gem-schd/gem-pmgr/hook from --build
About 4-5 minutes on an H200 with the defaults (--max_total_s caps it). Writes DIR/um_oversub.json
(rewritten after each phase) and DIR/<config>/ (worker logs, hook stats, gem-schd stats and log)."""
import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gemrun as G  # noqa: E402

# ---- names the lead may still adjust (gem-schd flags, resource-config option, hook env) ---------
SCHD_MEM_BUDGET_FLAG = "--mem_budget"    # gem-schd: device-memory budget, SIZE
SCHD_RESIDENCY_FLAG = "--residency"      # gem-schd: residency on/off
RESIDENCY_ON = "on"                      # value passed in (b); None = pass no flag (the default)
RESIDENCY_OFF = "demand"                 # value passed in (a): evict to the same budget, pages fault back (no bulk prefetch)
CONFIG_UM_OPTION = "um=on"               # fifth field of a resource-config.txt line
ENV_EMPTY_CACHE = "GEMINI_EMPTY_CACHE"   # hook: cache emptying (follows UM mode by default)
EMPTY_CACHE_OFF = "0"                    # set in (a)
EMPTY_CACHE_ON = None                    # set in (b); None = leave unset (follows UM mode)
HOOK_SWITCH_FIELD = "prefetch_us_max"  # hook stats (GEMINI_STATS_FILE): longest grant -> open gate spent prefetching, µs


def budget_size(nbytes):
    """How a byte count is written for SCHD_MEM_BUDGET_FLAG (whole MiB, as GPU_MEM accepts)."""
    return f"{max(int(nbytes) >> 20, 1)}MiB"


SEED = {"a_it_s": 0.454, "b_it_s": 0.962, "b_over_a": 2.12, "a_mem_gb": 23.0, "b_mem_gb": 7.65,
        "gpu": "11 GB GPU, five detectron2 Faster R-CNN inference jobs"}
TARGET_B_OVER_A = 2.1
TARGET_B_OVER_C = 0.8

CONFIGS = {
    "c": {"title": "native, no hook, no budget", "hooked": False},
    "b": {"title": "UM + cache emptying + residency", "hooked": True, "residency": RESIDENCY_ON,
          "env": {ENV_EMPTY_CACHE: EMPTY_CACHE_ON}, "mock_infer": 1.1, "mock_mem": 0.4},
    "a": {"title": "UM, no cache emptying, no residency", "hooked": True, "residency": RESIDENCY_OFF,
          "env": {ENV_EMPTY_CACHE: EMPTY_CACHE_OFF}, "mock_infer": 4.0, "mock_mem": 1.0},
}
ORDER = ["c", "b", "a"]

HERE = Path(__file__).resolve()
WORKER = HERE.parent / "um_worker.py"
GIB = float(1 << 30)
MIB = 1 << 20
MOCK_SMI_BASE_MIB = 600
MOCK_SMI_TOTAL_MIB = 143771


def log(msg=""):
    print(msg, flush=True)


def gib(nbytes):
    return None if nbytes is None else round(nbytes / GIB, 2)


# ---- nvidia-smi sampling -------------------------------------------------------------------------

class Smi:
    """memory.used / memory.total of one GPU through nvidia-smi (or the mock of --dry_run), in MiB."""

    def __init__(self, gpu_index=0, mock_dir=None):
        self.mock_dir = mock_dir
        sel = ["-i", str(gpu_index)]
        if mock_dir:
            self.used_cmd = [G.PY, str(HERE), "--mock_smi", str(mock_dir)]
            self.total_cmd = self.used_cmd + ["--mock_smi_total"]
        else:
            self.used_cmd = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"] + sel
            self.total_cmd = ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"] + sel

    @staticmethod
    def _query(cmd):
        try:
            env = dict(os.environ)
            env.pop("LD_PRELOAD", None)
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               universal_newlines=True, timeout=10, env=env)
            return float(r.stdout.strip().splitlines()[0]) if r.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
            return None

    def used(self):
        return self._query(self.used_cmd)

    def total(self):
        return self._query(self.total_cmd)

    def idle(self, n=3):
        v = [x for x in (self.used() for _ in range(n)) if x is not None]
        return G.median(v)


class Sampler(threading.Thread):
    """memory.used every `period` s into self.samples [(monotonic, MiB)] until stop()."""

    def __init__(self, smi, period=0.5):
        super().__init__(daemon=True)
        self.smi, self.period, self.samples = smi, period, []
        self._stop_ev = threading.Event()

    def run(self):
        while not self._stop_ev.is_set():
            t = time.monotonic()
            v = self.smi.used()
            if v is not None:
                self.samples.append((t, v))
            self._stop_ev.wait(max(0.0, self.period - (time.monotonic() - t)))

    def stop(self):
        self._stop_ev.set()
        self.join(timeout=15)

    def summary(self, w0=None, w1=None, base=None):
        inside = [v for t, v in self.samples if (w0 is None or t >= w0) and (w1 is None or t <= w1)]
        allv = [v for _, v in self.samples]
        avg = sum(inside) / len(inside) if inside else None
        peak = max(allv) if allv else None
        r = {"samples": len(self.samples), "samples_in_window": len(inside),
             "avg_used_mib": round(avg, 1) if avg is not None else None,
             "peak_used_mib": peak, "idle_mib": base}
        if base is not None:
            r["avg_net_mib"] = round(avg - base, 1) if avg is not None else None
            r["peak_net_mib"] = peak - base if peak is not None else None
        return r


# ---- gem-schd + gem-pmgr, started directly (a fifth config field and new gem-schd flags) ----------

class BackendError(RuntimeError):
    pass


def _daemon_setup():
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Daemons:
    """gem-schd with `schd_args` and one gem-pmgr per client, like tools/launch-backend.py does it
    (started here because launch-backend.py takes 4-field config lines and no extra gem-schd flags).
    clients: [(id, request, limit, gpu_mem, option or "")]. mock=True: writes the config and prints the
    command lines, starts nothing."""

    def __init__(self, build, workdir, clients, schd_args=(), mock=False, log_level=None):
        self.build, self.dir = Path(build), Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clients, self.schd_args, self.mock, self.log_level = clients, list(schd_args), mock, log_level
        self.procs, self.base = [], None
        self.cfg = self.dir / "resource-config.txt"
        self.stats = self.dir / "schd-stats.json"
        self.logpath = self.dir / "backend.log"
        self.commands = []

    def port_of(self, name):
        return self.base + 1 + [c[0] for c in self.clients].index(name)

    def _start(self, argv, env=None):
        self.commands.append(" ".join(shlex.quote(str(a)) for a in argv))
        if self.mock:
            return None
        p = subprocess.Popen([str(a) for a in argv], env=env, stdin=subprocess.DEVNULL, stdout=self.logf,
                             stderr=subprocess.STDOUT, preexec_fn=_daemon_setup)
        self.procs.append(p)
        return p

    def _wait_ports(self, ports, what):
        deadline = time.monotonic() + 15
        while not all(G.can_connect(p) for p in ports):
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise BackendError(f"{what} did not come up ({'exited' if dead else 'timeout'}): "
                                   + G.tail(self.logpath, 2500))
            time.sleep(0.05)

    def __enter__(self):
        lines = "".join(" ".join(str(f) for f in c if str(f) != "") + "\n" for c in self.clients)
        self.cfg.write_text(f"{len(self.clients)}\n{lines}")
        self.base = G.free_port_block(len(self.clients) + 1)
        self.logf = open(self.logpath, "w")
        try:
            schd, pmgr = self.build / "bin" / "gem-schd", self.build / "bin" / "gem-pmgr"
            ll = ["--log_level", self.log_level] if self.log_level else []
            self._start([schd, "--ip", "127.0.0.1", "--port", self.base, "--config", self.cfg,
                         "--stats", self.stats] + ll + self.schd_args)
            if not self.mock:
                self._wait_ports([self.base], "gem-schd")
            for i, c in enumerate(self.clients):
                port = self.base + 1 + i
                env = dict(os.environ, SCHEDULER_IP="127.0.0.1", SCHEDULER_PORT=str(self.base),
                           POD_MANAGER_IP="127.0.0.1", POD_MANAGER_PORT=str(port), POD_NAME=c[0])
                self._start([pmgr, "--name", c[0], "--ip", "127.0.0.1", "--port", port,
                             "--scheduler", f"127.0.0.1:{self.base}"] + ll, env=env)
            if not self.mock:
                self._wait_ports([self.base + 1 + i for i in range(len(self.clients))], "gem-pmgr")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def __exit__(self, *exc):
        for p in reversed(self.procs):  # pod managers first, the scheduler last
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        self.logf.close()
        return False


def schd_help(build):
    try:
        r = subprocess.run([str(Path(build) / "bin" / "gem-schd"), "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=10, stdin=subprocess.DEVNULL)
        return r.stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


# ---- the jobs ------------------------------------------------------------------------------------

def kill_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass


def read_ends(path):
    try:
        return [float(x) for x in Path(path).read_text().split()]
    except (OSError, ValueError):
        return []


def run_jobs(jobs, workdir, *, stagger, timeout, backend=None, build=None, env_extra=None, tag=""):
    """Start jobs [(name, worker argv)] `stagger` s apart, hooked through launch-command.py as client
    `name` when backend is given. Each is stopped after `timeout` s. Returns [result dict or None]
    (a job killed before printing its JSON line gets a partial result from its --ends_file)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    procs = []
    t0 = time.monotonic()
    for k, (name, argv) in enumerate(jobs):
        time.sleep(max(0.0, t0 + k * stagger - time.monotonic()))
        ends = workdir / f"{name}.ends"
        ends.write_text("")
        argv = [str(a) for a in argv] + ["--ends_file", str(ends)]
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        for k2, v in (env_extra or {}).items():
            if v is None:
                env.pop(k2, None)
            else:
                env[k2] = str(v)
        env["GEMINI_STATS_FILE"] = str(workdir / f"{name}.hook.json")  # the hook's counters at exit
        if backend is not None:
            argv = G.hooked(build, name, backend.port_of(name), argv, timeout=timeout)
        (workdir / f"{name}.cmd").write_text(" ".join(shlex.quote(a) for a in argv) + "\n")
        out, err = open(workdir / f"{name}.out", "w"), open(workdir / f"{name}.err", "w")
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        procs.append((name, p, out, err, time.monotonic()))
        log(f"  {tag} started {name} (pid {p.pid})")
    for name, p, out, err, started in procs:
        hard = started + timeout + (15 if backend is not None else 0)  # hooked: launch-command's --timeout first
        while p.poll() is None and time.monotonic() < hard:
            time.sleep(0.1)
        if p.poll() is None:
            log(f"  {tag} {name} still running after {timeout:.0f} s: stopping it")
            kill_group(p, signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_group(p, signal.SIGKILL)
                p.wait()
        out.close()
        err.close()
    results = []
    for name, p, _, _, started in procs:
        r = G.last_json_line((workdir / f"{name}.out").read_text())
        if r is None:
            ends = read_ends(workdir / f"{name}.ends")
            r = {"job": name, "partial": True, "iterations": len(ends), "ends": ends,
                 "t_start": None, "t_end": ends[-1] if ends else None}
            log(f"  {tag} {name}: no JSON line (rc {p.returncode}); {len(ends)} iteration ends recorded; "
                f"stderr tail: {G.tail(workdir / f'{name}.err', 600).strip()[-600:]}")
        r["rc"] = p.returncode
        r["launched"] = started
        hk = G.read_json(workdir / f"{name}.hook.json")
        if hk is not None:
            r["hook"] = hk
        results.append(r)
    return results


def window_of(results):
    """The period all jobs ran together: [latest start of a job's timed part, earliest last iteration
    end]. A job that printed no result counts from its first recorded iteration end, else from its
    launch; a job with no iteration at all does not end the window (it ran throughout, without
    finishing one). None when shorter than 1 s."""
    if not results:
        return None
    starts = []
    for r in results:
        s = r.get("t_start")
        if s is None:
            s = r["ends"][0] if r.get("ends") else r.get("launched")
        if s is None:
            return None
        starts.append(s)
    lasts = [r["ends"][-1] for r in results if r.get("ends")]
    if not lasts:
        return None
    w0, w1 = max(starts), min(lasts)
    return (w0, w1) if w1 - w0 >= 1.0 else None


def aggregate(results):
    w = window_of(results)
    if w is None:
        return None, None
    n = sum(1 for r in results for t in r["ends"] if w[0] < t <= w[1])
    return n / (w[1] - w[0]), w


def first_kernel_stats(results):
    """The hook's HOOK_SWITCH_FIELD from each job's stats file: whatever form it has (number, list,
    dict), kept as is per job; None when no job's stats carry it."""
    got = {r["job"]: r["hook"][HOOK_SWITCH_FIELD] for r in results
           if isinstance(r.get("hook"), dict) and HOOK_SWITCH_FIELD in r["hook"]}
    return got or None


# ---- main ----------------------------------------------------------------------------------------

def worker_argv(args, k, seconds, warmup, mock_infer=1.0, mock_mem=1.0, mock_dir=None):
    models = [m for m in args.models.split(",") if m]
    name = f"job{k + 1}"
    argv = [G.PY, WORKER, "--job", name, "--kind", "detect", "--model", models[k % len(models)],
            "--batch", args.batch, "--height", args.height, "--width", args.width,
            "--sleep", args.sleep, "--warmup", warmup, "--seconds", seconds]
    if args.dry_run:
        argv += ["--mock", "--mock_infer_s", round(args.mock_infer_s * mock_infer, 4)]
        if mock_dir:
            argv += ["--mock_mem_file", Path(mock_dir) / f"{name}.mem"]
        # the mock's memory is ~40 x the input; scale the batch so (a) and (b) differ in the mock too
        if mock_mem != 1.0:
            i = argv.index("--batch")
            argv[i + 1] = max(1, int(args.batch * mock_mem))
    return name, argv


def fmt(v, nd=3):
    if v is None:
        return "-"
    if v == float("inf"):
        return "inf"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(G.REPO / "build"))
    ap.add_argument("--out", help="results folder (default $OUT/um_oversub, else BUILD/bench/um_oversub)")
    ap.add_argument("--jobs", type=int, default=5)
    ap.add_argument("--models", default="fasterrcnn_resnet50_fpn",
                    help="comma list of torchvision detection builders, cycled over the jobs")
    ap.add_argument("--batch", type=int, default=16, help="images per iteration (sets the memory need)")
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1216)
    ap.add_argument("--sleep", type=float, default=0.5, help="seconds between a job's iterations")
    ap.add_argument("--stagger", type=float, default=2.0, help="seconds between job starts")
    ap.add_argument("--seconds", type=float, default=40, help="timed seconds of each job per configuration")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations of each job first")
    ap.add_argument("--probe_warmup", type=int, default=3, help="iterations of the native memory probe")
    ap.add_argument("--startup_allow", type=float, default=60,
                    help="seconds a job may take beyond --seconds (import, model, warm-up) before it is stopped")
    ap.add_argument("--configs", default="c,b,a", help="which configurations, in this order")
    ap.add_argument("--budget_fraction", type=float, default=0.5,
                    help="mem budget = this x the jobs' summed need (probe)")
    ap.add_argument("--mem_budget", help="budget as gem-schd takes it (e.g. 30GiB), instead of the probe's")
    ap.add_argument("--reserve_gib", type=float, default=8.0,
                    help="GPU memory left free beyond the jobs' need and 1 GiB of context per job; "
                         "(a) and (b) are skipped if the card has less free")
    ap.add_argument("--gpu_index", type=int, default=0)
    ap.add_argument("--max_total_s", type=float, default=480, help="skip configurations that would end later")
    ap.add_argument("--schd_extra", default="", help="more gem-schd flags for (a) and (b), one string")
    ap.add_argument("--budget_flag", default=SCHD_MEM_BUDGET_FLAG, help="'' = do not pass a budget")
    ap.add_argument("--residency_flag", default=SCHD_RESIDENCY_FLAG, help="'' = do not pass residency")
    ap.add_argument("--um_option", default=CONFIG_UM_OPTION, help="'' = 4-field config lines")
    ap.add_argument("--log_level", choices=["error", "warn", "info", "debug"])
    ap.add_argument("--dry_run", action="store_true", help="no GPU: mock workers and nvidia-smi, no daemons")
    ap.add_argument("--real_backend", action="store_true", help="with --dry_run: start the real daemons and hook")
    ap.add_argument("--quick", action="store_true", help="short run: --seconds 8, --stagger 0.5, 1 warm-up")
    ap.add_argument("--mock_infer_s", type=float, default=0.05, help=argparse.SUPPRESS)
    ap.add_argument("--mock_smi", help=argparse.SUPPRESS)
    ap.add_argument("--mock_smi_total", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.quick:
        a.seconds, a.stagger, a.warmup, a.probe_warmup = min(a.seconds, 8), min(a.stagger, 0.5), 1, 1
    if a.dry_run:
        a.sleep = min(a.sleep, 0.05)
        if not a.quick:
            a.seconds, a.stagger = min(a.seconds, 10), min(a.stagger, 1.0)
    return a


def mock_smi(d, total):
    """--dry_run's nvidia-smi: a fixed base + the MiB the mock workers say they hold."""
    if total:
        print(MOCK_SMI_TOTAL_MIB)
        return 0
    s = MOCK_SMI_BASE_MIB
    for f in Path(d).glob("*.mem"):
        try:
            s += int(f.read_text().strip() or 0)
        except (OSError, ValueError):
            pass
    print(s)
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.mock_smi:
        return mock_smi(args.mock_smi, args.mock_smi_total)
    t_begin = time.monotonic()
    build = Path(args.build).resolve()
    default_out = Path(os.environ["OUT"]) / "um_oversub" if os.environ.get("OUT") else build / "bench" / "um_oversub"
    out = Path(args.out or default_out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS]
    if bad:
        raise SystemExit(f"um_oversub: unknown configuration(s) {bad}; known: {list(CONFIGS)}")

    mock_dir = None
    if args.dry_run:
        mock_dir = out / "mock-smi"
        mock_dir.mkdir(exist_ok=True)
        for f in mock_dir.glob("*.mem"):
            f.unlink()
        gpu = "mock (dry run)"
    else:
        gpu = G.have_gpu()
        if not gpu:
            log("um_oversub: no GPU (nvidia-smi -L lists none); use --dry_run to exercise the script without one")
            return 2
    smi = Smi(args.gpu_index, mock_dir)
    mock_backend = args.dry_run and not args.real_backend

    res = {"what": "five detection inference jobs under unified-memory oversubscription (issue 8)",
           "device": gpu, "dry_run": args.dry_run, "seed": SEED,
           "targets": {"b_over_a": TARGET_B_OVER_A, "b_over_c": TARGET_B_OVER_C},
           "settings": {k: v for k, v in vars(args).items() if not k.startswith("mock_")},
           "names": {"schd_mem_budget_flag": args.budget_flag, "schd_residency_flag": args.residency_flag,
                     "residency_on": RESIDENCY_ON, "residency_off": RESIDENCY_OFF, "config_um_option": args.um_option,
                     "env_empty_cache": ENV_EMPTY_CACHE, "empty_cache_off": EMPTY_CACHE_OFF,
                     "empty_cache_on": EMPTY_CACHE_ON, "hook_switch_field": HOOK_SWITCH_FIELD},
           "configs": {}, "verdicts": []}
    jpath = out / "um_oversub.json"

    def save():
        jpath.write_text(json.dumps(res, indent=1) + "\n")

    log(f"um_oversub: {gpu}; {args.jobs} jobs of {args.models}, batch {args.batch}, {args.height}x{args.width}, "
        f"sleep {args.sleep} s, stagger {args.stagger} s, {args.seconds:g} s each; results in {out}")

    # Preconditions of (a) and (b).
    hooked_ok, why_not = True, ""
    if not mock_backend:
        missing = [p for p in (build / "bin" / "gem-schd", build / "bin" / "gem-pmgr", build / "lib" / "libgemhook.so.1")
                   if not p.is_file()]
        if missing:
            hooked_ok, why_not = False, "not built: " + ", ".join(map(str, missing))
        else:
            h = schd_help(build)
            for flag in (args.budget_flag, args.residency_flag):
                if flag and flag not in h:
                    log(f"WARNING: gem-schd --help does not mention {flag}; (a) and (b) may fail to start")
    total_mib = smi.total()
    res["gpu_total_mib"] = total_mib

    # Phase 0: the jobs' memory need, natively.
    log(f"\nphase 0: memory probe, {args.jobs} jobs natively at once, {args.probe_warmup} iterations each")
    idle = smi.idle()
    samp = Sampler(smi)
    samp.start()
    jobs = [worker_argv(args, k, 0, args.probe_warmup, mock_dir=mock_dir) for k in range(args.jobs)]
    probe = run_jobs(jobs, out / "probe", stagger=0, timeout=args.startup_allow + 30, tag="[probe]")
    samp.stop()
    needs = [r.get("peak_reserved_bytes") for r in probe]
    res["probe"] = {"idle_mib": idle, "gpu": samp.summary(base=idle),
                    "jobs": [{k: r.get(k) for k in ("job", "model", "rc", "peak_reserved_bytes", "peak_allocated_bytes",
                                                    "startup_s", "warmup_s", "mean_infer_s", "device")} for r in probe]}
    if any(n is None for n in needs):
        log("probe FAILED: a job printed no result (see " + str(out / "probe") + "); stopping")
        res["verdicts"].append({"line": "FAIL probe: a job printed no result", "ok": False})
        save()
        return 0
    need_sum = sum(needs)
    for r in probe:
        log(f"  {r['job']}: {r.get('model')}  peak torch reserved {gib(r['peak_reserved_bytes'])} GiB, "
            f"allocated {gib(r.get('peak_allocated_bytes'))} GiB; startup {r.get('startup_s')} s, "
            f"{args.probe_warmup} iterations {r.get('warmup_s')} s")
    pk = samp.summary(base=idle).get("peak_net_mib")
    log(f"  together: {gib(need_sum)} GiB of torch memory; nvidia-smi peak {fmt(pk and pk / 1024, 2)} GiB above idle "
        f"(contexts included); GPU total {fmt(total_mib and total_mib / 1024, 1)} GiB, idle use {fmt(idle, 0)} MiB")
    if args.mem_budget:
        budget_str, budget_bytes = args.mem_budget, None
    else:
        budget_bytes = int(need_sum * args.budget_fraction)
        if budget_bytes < 1.2 * max(needs):
            budget_bytes = int(1.2 * max(needs))
            log(f"  budget raised to 1.2 x the largest job's need")
        budget_str = budget_size(budget_bytes)
    res["budget"] = {"need_sum_bytes": need_sum, "needs_bytes": needs, "fraction": args.budget_fraction,
                     "budget_bytes": budget_bytes, "budget_arg": budget_str}
    log(f"  mem budget for (a) and (b): {budget_str} ({args.budget_fraction:g} x {gib(need_sum)} GiB)")
    if hooked_ok and total_mib is not None and idle is not None:
        free_gib = (total_mib - idle) / 1024
        want_gib = need_sum / GIB + args.jobs * 1.0 + args.reserve_gib
        if want_gib > free_gib:
            hooked_ok, why_not = False, (f"the jobs need {want_gib:.1f} GiB with contexts and reserve, the card has "
                                         f"{free_gib:.1f} GiB free: would oversubscribe for real (lower --batch)")
    save()

    # The configurations.
    for name in configs:
        cdef = CONFIGS[name]
        label = f"({name}) {cdef['title']}"
        cres = {"title": cdef["title"]}
        res["configs"][name] = cres
        left = args.max_total_s - (time.monotonic() - t_begin)
        need_s = args.stagger * (args.jobs - 1) + args.seconds + 20
        if left < need_s:
            cres["skipped"] = f"time: {left:.0f} s left of --max_total_s, needs ~{need_s:.0f} s"
            log(f"\n{label}: skipped ({cres['skipped']})")
            save()
            continue
        if cdef["hooked"] and not hooked_ok:
            cres["skipped"] = why_not
            log(f"\n{label}: skipped ({why_not})")
            save()
            continue
        timeout = min(args.seconds + args.startup_allow, left - args.stagger * (args.jobs - 1) - 15)
        log(f"\n{label}: {args.jobs} jobs, {args.stagger:g} s apart, {args.seconds:g} s each")
        for f in (mock_dir.glob("*.mem") if mock_dir else []):
            f.unlink()
        idle = smi.idle()
        jobs = [worker_argv(args, k, args.seconds, args.warmup, cdef.get("mock_infer", 1.0), cdef.get("mock_mem", 1.0),
                            mock_dir) for k in range(args.jobs)]
        cdir = out / name
        samp = Sampler(smi)
        try:
            if not cdef["hooked"]:
                samp.start()
                results = run_jobs(jobs, cdir, stagger=args.stagger, timeout=timeout, tag=f"({name})")
            else:
                schd_args = shlex.split(args.schd_extra)
                if args.budget_flag:
                    schd_args += [args.budget_flag, budget_str]
                if args.residency_flag and cdef.get("residency"):
                    schd_args += [args.residency_flag, cdef["residency"]]
                clients = [(j[0], round(1.0 / args.jobs, 6), 1.0, 0, args.um_option) for j in jobs]
                with Daemons(build, cdir, clients, schd_args, mock=mock_backend, log_level=args.log_level) as be:
                    cres["backend_commands"] = be.commands
                    cres["resource_config"] = be.cfg.read_text()
                    log("  gem-schd: " + be.commands[0])
                    log("  resource-config: " + be.cfg.read_text().strip().replace("\n", " | "))
                    log("  env: " + ", ".join(f"{k}={'(unset)' if v is None else v}" for k, v in cdef["env"].items()))
                    samp.start()
                    if mock_backend:
                        results = run_jobs(jobs, cdir, stagger=args.stagger, timeout=timeout,
                                           env_extra=cdef["env"], tag=f"({name})")
                    else:
                        results = run_jobs(jobs, cdir, stagger=args.stagger, timeout=timeout, backend=be,
                                           build=build, env_extra=cdef["env"], tag=f"({name})")
                    cres["backend_alive_at_end"] = mock_backend or be.alive()
                    st = G.read_json(be.stats)
                    if st is not None:
                        cres["schd_stats_last"] = st
        except Exception as e:  # noqa: BLE001 (a failed configuration must not stop the others)
            if samp.is_alive():
                samp.stop()
            cres["error"] = str(e)[-3000:]
            log(f"  {label} FAILED to run: {str(e)[-1500:]}")
            save()
            continue
        samp.stop()
        agg, w = aggregate(results)
        cres["aggregate_it_s"] = round(agg, 4) if agg is not None else None
        cres["window_s"] = round(w[1] - w[0], 2) if w else None
        cres["gpu_memory"] = samp.summary(w[0] if w else None, w[1] if w else None, base=idle)
        cres["gpu_memory"]["trace"] = [(round(t - t_begin, 2), v) for t, v in samp.samples]
        cres["torch_mean_reserved_sum_bytes"] = sum(r.get("mean_reserved_bytes") or 0 for r in results)
        cres["first_kernel_after_grant_us"] = first_kernel_stats(results)
        cres["jobs"] = [{k: r.get(k) for k in ("job", "model", "rc", "partial", "iterations", "it_per_s", "mean_infer_s",
                                                "startup_s", "warmup_s", "peak_reserved_bytes", "mean_reserved_bytes",
                                                "hook", "t_start", "t_end", "ends")} for r in results]
        m = cres["gpu_memory"]
        log(f"  aggregate {fmt(agg)} it/s over {fmt(cres['window_s'], 1)} s with all {args.jobs} running; "
            f"GPU memory avg {fmt(m['avg_used_mib'] and m['avg_used_mib'] / 1024, 2)} GiB, "
            f"peak {fmt(m['peak_used_mib'] and m['peak_used_mib'] / 1024, 2)} GiB (idle {fmt(idle, 0)} MiB)")
        for r in results:
            log(f"    {r['job']}: {r.get('iterations')} it, {fmt(r.get('it_per_s'))} it/s, inference "
                f"{fmt(r.get('mean_infer_s'))} s, torch peak {gib(r.get('peak_reserved_bytes'))} GiB, rc {r.get('rc')}"
                + (" (partial)" if r.get("partial") else ""))
        if cres["first_kernel_after_grant_us"]:
            log(f"    hook {HOOK_SWITCH_FIELD}: {json.dumps(cres['first_kernel_after_grant_us'])[:400]}")
        save()
        time.sleep(0 if args.dry_run else 2)

    # Verdicts and the table.
    def agg_of(c):
        return res["configs"].get(c, {}).get("aggregate_it_s")

    def mem_of(c, key="avg_used_mib"):
        v = res["configs"].get(c, {}).get("gpu_memory", {}).get(key)
        return v / 1024 if v is not None else None

    a, b, c = agg_of("a"), agg_of("b"), agg_of("c")

    def ratio(x, y):
        if x is None or y is None:
            return None
        return x / y if y > 0 else (float("inf") if x > 0 else None)

    ba, bc = ratio(b, a), ratio(b, c)
    res["ratios"] = {"b_over_a": ba if ba != float("inf") else "inf", "b_over_c": bc}
    verdicts = [("b >= %.1f x a" % TARGET_B_OVER_A, ba, ba is not None and ba >= TARGET_B_OVER_A),
                ("b >= %d%% of c" % round(TARGET_B_OVER_C * 100), bc, bc is not None and bc >= TARGET_B_OVER_C)]
    budget_gib = budget_bytes / GIB if budget_bytes else None
    log("\n" + "=" * 100)
    log(f"um_oversub: {gpu}; budget {budget_str} for (a) and (b); jobs' need {gib(need_sum)} GiB together")
    log(f"{'configuration':44s} {'seed it/s':>9s} {'seed mem':>9s} | {'it/s':>7s} {'avg GiB':>8s} {'net GiB':>8s} "
        f"{'peak GiB':>8s} {'torch GiB':>9s} {'window s':>8s}")
    seed_row = {"a": (SEED["a_it_s"], SEED["a_mem_gb"]), "b": (SEED["b_it_s"], SEED["b_mem_gb"]), "c": (None, None)}
    for name in ("a", "b", "c"):
        cr = res["configs"].get(name)
        si, sm = seed_row[name]
        if cr is None:
            continue
        if "aggregate_it_s" not in cr:
            note = " ".join((cr.get("skipped") or cr.get("error") or "not run").split())
            log(f"({name}) {cr['title']:40s} {fmt(si, 3):>9s} {(f'{sm:.2f} GB' if sm else '-'):>9s} | "
                f"not measured: {note[:160]}")
            continue
        gm = cr["gpu_memory"]
        log(f"({name}) {cr['title']:40s} {fmt(si, 3):>9s} {(f'{sm:.2f} GB' if sm else '-'):>9s} | "
            f"{fmt(cr['aggregate_it_s'], 3):>7s} {fmt(mem_of(name), 2):>8s} "
            f"{fmt(gm.get('avg_net_mib') and gm['avg_net_mib'] / 1024, 2):>8s} {fmt(mem_of(name, 'peak_used_mib'), 2):>8s} "
            f"{fmt(cr['torch_mean_reserved_sum_bytes'] / GIB, 2):>9s} {fmt(cr.get('window_s'), 1):>8s}")
    log(f"{'ratio b/a':44s} {SEED['b_over_a']:>9.2f} {'':>9s} | {fmt(ba, 2):>7s}")
    log(f"{'ratio b/c':44s} {'-':>9s} {'':>9s} | {fmt(bc, 2):>7s}")
    log("(seed memory: the paper's average GPU memory in GB; ours: nvidia-smi memory.used in GiB, avg over the "
        "window, 'net' = minus the idle use before the configuration, CUDA contexts included; 'torch' = the sum "
        "of the jobs' torch.cuda.memory_reserved, averaged over their iterations: what the jobs hold, resident or not)")
    if budget_gib is not None and "b" in res["configs"] and res["configs"]["b"].get("gpu_memory"):
        pn = res["configs"]["b"]["gpu_memory"].get("peak_net_mib")
        log(f"INFO (b) peak GPU memory above idle {fmt(pn and pn / 1024, 2)} GiB against the budget "
            f"{budget_gib:.2f} GiB (+ ~0.5 GiB of context per job, not budgeted)")
    for line, val, ok in verdicts:
        text = f"{'PASS' if ok else 'FAIL'} {line}: measured {fmt(val, 2)}"
        if val is None:
            text += " (not measured)"
        log(text)
        res["verdicts"].append({"line": text, "ok": bool(ok)})
    res["elapsed_s"] = round(time.monotonic() - t_begin, 1)
    save()
    log(f"results: {jpath} ({res['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
