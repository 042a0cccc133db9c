#!/usr/bin/env python3
"""Two GPUs: one gem-schd per GPU and processes that use both (issue 12). One command, < 200 s:

  python3 tests/gpu/two_gpus.py --build build --bindir BINDIR --out OUT [--parts spin,torch,ddp,mem] [--fake]

BINDIR holds two_gpu_spin (tests/gpu/two_gpu_spin.cu; its header has the nvcc line).
The backend is started by tools/launch-backend.py with --gpus auto (NVML discovery: one gem-schd per GPU
UUID, each with --stats STATS.<UUID>, pod managers with --scheduler_dir); clients A (REQUEST 0.3) and
B (REQUEST 0.7), LIMIT 1.0, GPU_MEM 4GiB. Clients run with CUDA_VISIBLE_DEVICES unset and
CUDA_DEVICE_ORDER=PCI_BUS_ID (CUDA index = NVML index, so device d is the scheduler of the d-th UUID).
Parts (all by default, back to back):
  spin   A and B each one two_gpu_spin process launching on both GPUs from two threads, ~30 s: per GPU the
         shares from that GPU's gem-schd --stats and the throughput split (goal 0.3/0.7 +- 0.02)
  torch  one PyTorch process of A (matmul on cuda:0 and cuda:1 alternately, ~15 s) beside B's spin on both
  ddp    two-process DDP job over NCCL as client A (one rank per GPU, ~15 s) beside B's spin on both GPUs
  mem    GPU_MEM 2GiB: a torch process of A allocates on cuda:0 until OutOfMemoryError, then on cuda:1
--fake: dry run on the stand-in driver (build/fake-cuda, FAKE_CUDA_DEVICES=2): part spin with fake-cuda-app,
one process per client per GPU (--device d). Writes OUT/two_gpus.json and OUT/two_gpus.txt."""
import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import gemrun as G  # noqa: E402

PARTS = ["spin", "torch", "ddp", "mem"]
TORCH_CLIENT = REPO / "tests" / "gpu" / "two_gpu_torch.py"
GOAL = {"A": 0.3, "B": 0.7}
TOL = 0.02
T_START = time.monotonic()


def elapsed():
    return time.monotonic() - T_START


BUDGET = [190.0]


def cap(seconds):
    """A part's process timeout, never past the total budget (less 20 s to stop and report)."""
    return max(10.0, min(seconds, BUDGET[0] - elapsed() - 20))


class Backend:
    """launch-backend.py with --gpus auto; clients [(id, request, limit, gpu_mem)]."""

    def __init__(self, args, workdir, clients, env):
        self.args, self.dir, self.clients, self.env = args, Path(workdir), clients, env
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.uuids = []
        self.samples = {}  # uuid -> [(t, stats)]
        self._stop = threading.Event()
        self._thread = None

    def port_of(self, name):
        return self.base + 1 + [c[0] for c in self.clients].index(name)

    def stats_path(self, uuid):
        p = Path(f"{self.stats}.{uuid}")
        return p if len(self.uuids) > 1 else self.stats

    def start(self):
        cfg = self.dir / "resource-config.txt"
        cfg.write_text(f"{len(self.clients)}\n" + "".join(f"{c[0]} {c[1]} {c[2]} {c[3]}\n" for c in self.clients))
        self.base = G.free_port_block(len(self.clients) + 1)
        self.sockdir = tempfile.mkdtemp(prefix="gem2g-")  # short: Unix socket paths are limited to 107 bytes
        self.stats = self.dir / "stats.json"
        b = Path(self.args.build)
        argv = [G.PY, str(REPO / "tools" / "launch-backend.py"), str(b / "bin" / "gem-schd"), str(b / "bin" / "gem-pmgr"),
                "--config", str(cfg), "--port", str(self.base), "--pmgr_base_port", str(self.base + 1),
                "--stats", str(self.stats), "--gpus", "auto", "--socket_dir", self.sockdir] + \
            shlex.split(self.args.backend_opts)
        self.logpath = self.dir / "backend.log"
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        ports = [self.base + 1 + i for i in range(len(self.clients))]
        deadline = time.monotonic() + 25
        while not all(G.can_connect(p) for p in ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("backend did not come up: " + G.tail(self.logpath, 2000))
            time.sleep(0.05)
        text = self.logpath.read_text()
        self.uuids = re.findall(r"gem-schd\[(GPU-[0-9a-fA-F-]+)\] listening", text)
        G.log("  backend: " + "; ".join(l for l in text.splitlines() if "NVML" in l or "discover" in l.lower()
                                         or "GPUs named" in l))
        for u in self.uuids:
            G.log(f"  gem-schd started for {u} (stats {self.stats_path(u)})")
        if not self.uuids:
            G.log("  no per-GPU gem-schd started (one scheduler without --gpu):\n" + text[-1500:])
        self._thread = threading.Thread(target=self._sampler, daemon=True)
        self._thread.start()
        return self

    def _sampler(self):
        while not self._stop.is_set():
            for u in self.uuids:
                st = G.read_json(self.stats_path(u))
                s = self.samples.setdefault(u, [])
                if st and (not s or st.get("time_us") != s[-1][1].get("time_us")):
                    s.append((time.monotonic(), st))
            self._stop.wait(0.2)

    def shares(self, a, b):
        """Per GPU (by UUID): used_us of each client between monotonic seconds a and b, split and time share."""
        out = {}
        names = [c[0] for c in self.clients]
        for u in self.uuids:
            span, d = G.used_delta(self.samples.get(u, []), names, int(a * 1e6), int(b * 1e6))
            tot = sum(d.values())
            out[u] = {"span_s": round(span / 1e6, 2), "used_s": {n: round(v / 1e6, 3) for n, v in d.items()},
                      "split": {n: round(v / tot, 4) for n, v in d.items()} if tot > 0 else {},
                      "time_share": {n: round(v / span, 4) for n, v in d.items()} if span > 0 else {}}
        return out

    def stop(self):
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:
            self.logf.close()
        except Exception:
            pass
        shutil.rmtree(getattr(self, "sockdir", "/nonexistent"), ignore_errors=True)


class Proc:
    """A client process through launch-command.py (with its own --timeout), output to files."""

    def __init__(self, args, be, client, cmd, tag, wdir, env, timeout):
        self.tag = tag
        self.out = Path(wdir) / f"{tag}.out"
        self.err = Path(wdir) / f"{tag}.err"
        self.fo, self.fe = open(self.out, "w"), open(self.err, "w")
        argv = G.hooked(args.build, client, be.port_of(client), cmd, timeout=max(5, int(timeout)))
        self.t_spawn = time.monotonic()
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.fo, stderr=self.fe,
                                  start_new_session=True)
        self.timeout = timeout
        self.rc = None
        self.t_exit = None

    def wait(self, timeout=None):
        try:
            self.rc = self.p.wait(timeout=(timeout if timeout is not None else self.timeout) + 10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.t_exit = self.t_exit or time.monotonic()
        self.fo.close()
        self.fe.close()
        return self.rc

    def terminate(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except OSError:
                pass
        return self.wait(10)

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except OSError:
            pass
        self.rc = self.p.wait()

    def result(self):
        return G.last_json_line(self.out.read_text()) if self.out.exists() else None

    def why(self):
        return f"{self.tag}: rc {self.rc}; stderr: {G.tail(self.err, 600).strip()}"


class Part:
    def __init__(self, name, out):
        self.name = name
        self.dir = Path(out) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.checks, self.results, self.errors = [], {}, []
        self.t0 = time.monotonic()

    def check(self, what, ok, detail=""):
        self.checks.append({"check": what, "ok": bool(ok), "detail": detail})
        G.log(f"  [{'PASS' if ok else 'FAIL'}] {what}" + (f": {detail}" if detail else ""))
        return ok

    def error(self, why):
        self.errors.append(why)
        G.log(f"  [ERROR] {why}")

    def summary(self):
        return {"ok": bool(self.checks) and not self.errors and all(c["ok"] for c in self.checks),
                "checks": self.checks, "errors": self.errors, "results": self.results,
                "seconds": round(time.monotonic() - self.t0, 1)}


def client_env(args):
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["NCCL_NVLS_ENABLE"] = "0"
    if args.fake:
        fake = str(Path(args.build).resolve() / "fake-cuda")
        env["LD_LIBRARY_PATH"] = fake + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        env["FAKE_CUDA_DEVICES"] = "2"
    return env


def spin_cmds(args, seconds):
    """[(device or None, argv)] of one client's spin workload on both GPUs."""
    if args.fake:
        app = Path(args.build) / "fake-cuda" / "fake-cuda-app"
        return [(d, [app, "--device", d, "--kernel_us", 2000, "--seconds", seconds]) for d in (0, 1)]
    return [(None, [Path(args.bindir) / "two_gpu_spin", "--devices", "0,1", "--seconds", seconds,
                    "--kernel_us", 2000])]


def count_between(ticks, a, b):
    """Kernels completed in [a, b] from [(t, cumulative)] by linear interpolation."""
    def at(t):
        if not ticks or t <= ticks[0][0]:
            return ticks[0][1] if ticks else 0
        for (t0, c0), (t1, c1) in zip(ticks, ticks[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 1)
        return ticks[-1][1]
    return at(b) - at(a)


def fmt(d):
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(d.items())) if d else "n/a"


def gpu_shares(p, be, a, b, want=None, tol=TOL, label="time share"):
    sh = be.shares(a, b)
    p.results["window_s"] = [round(a - T_START, 2), round(b - T_START, 2)]
    p.results["shares"] = sh
    for g, u in enumerate(be.uuids):
        s = sh[u]
        G.log(f"  GPU {g} {u}: split {fmt(s['split'])}; time share {fmt(s['time_share'])} over {s['span_s']} s")
        if want:
            for n, goal in want.items():
                v = s["split"].get(n)
                p.check(f"GPU {g}: gem-schd split of {n} {goal} +- {tol}", v is not None and abs(v - goal) <= tol,
                        f"{v}")
    return sh


# ---------------------------------------------------------------------------------------------------
def part_spin(p, args, be, env):
    S = args.spin_seconds
    procs = {}
    for c in ("A", "B"):
        for dev, cmd in spin_cmds(args, S):
            tag = f"{c}" + ("" if dev is None else f"-gpu{dev}")
            e = dict(env)
            if args.fake:
                e["FAKE_CUDA_LOG"] = str(p.dir / "fake-kernels.log")
            procs[tag] = (c, dev, Proc(args, be, c, cmd, tag, p.dir, e, cap(S + 30)))
    for tag, (c, dev, pr) in procs.items():
        pr.wait()
    bad = [pr.why() for c, dev, pr in procs.values() if pr.rc != 0 or pr.result() is None]
    for w in bad:
        p.error(w)
    if bad:
        return
    res = {tag: pr.result() for tag, (c, dev, pr) in procs.items()}
    p.results["programs"] = {t: {k: v for k, v in r.items() if k != "devices"} if not args.fake else r
                             for t, r in res.items()}
    if args.fake:
        a = max(pr.t_spawn for _, _, pr in procs.values()) + 2.0
        b = min(pr.t_exit for _, _, pr in procs.values()) - 1.5
    else:
        a = max(d["ticks"][0][0] for r in res.values() for d in r["devices"]) + 1.0
        b = min(d["ticks"][-1][0] for r in res.values() for d in r["devices"]) - 0.5
    if b - a < 3:
        p.error(f"common period too short ({b - a:.1f} s)")
        return
    gpu_shares(p, be, a, b, GOAL)
    # Throughput split per GPU over the same period.
    thr = {}
    if args.fake:
        pid2client = {}
        for tag, (c, dev, pr) in procs.items():
            pid2client[res[tag]["pid"]] = c
        counts = {}
        for line in (p.dir / "fake-kernels.log").read_text().splitlines():
            f = line.split()
            if len(f) < 4:
                continue
            pid, dev, end_us = int(f[0]), int(f[1]), int(f[3])
            if a * 1e6 <= end_us <= b * 1e6 and pid in pid2client:
                counts.setdefault(dev, {}).setdefault(pid2client[pid], 0)
                counts[dev][pid2client[pid]] += 1
    else:
        counts = {}
        for c in ("A", "B"):
            for d in res[c]["devices"]:
                counts.setdefault(d["device"], {})[c] = count_between(d["ticks"], a, b)
    for dev in sorted(counts):
        tot = sum(counts[dev].values())
        split = {c: round(v / tot, 4) for c, v in counts[dev].items()} if tot else {}
        thr[dev] = {"kernels": {c: round(v, 1) for c, v in counts[dev].items()}, "split": split,
                    "gpu_busy": round(tot * 2000e-6 / (b - a), 3)}
        G.log(f"  GPU {dev}: throughput split {fmt(split)} ({thr[dev]['kernels']} kernels of 2 ms, "
              f"GPU busy {thr[dev]['gpu_busy']})")
        for c, goal in GOAL.items():
            v = split.get(c)
            p.check(f"GPU {dev}: throughput split of {c} {goal} +- {TOL}", v is not None and abs(v - goal) <= TOL,
                    f"{v}")
    p.results["throughput"] = thr
    p.check("both GPUs measured", len(counts) == 2 and len(be.uuids) == 2, f"devices {sorted(counts)}, "
            f"schedulers {len(be.uuids)}")


def with_b_spin(p, args, be, env, seconds, run_a):
    """B's spin on both GPUs for the whole of run_a(); B is stopped afterwards."""
    bs = [Proc(args, be, "B", cmd, "B" + ("" if d is None else f"-gpu{d}"), p.dir, env, seconds + 10)
          for d, cmd in spin_cmds(args, seconds)]
    try:
        time.sleep(1.0)
        return run_a()
    finally:
        for b in bs:
            if b.p.poll() is not None and b.p.returncode != 0:
                b.wait(1)
                p.error("B's spin ended early: " + b.why())
            else:
                b.terminate()


def a_share_check(p, be, a, b):
    sh = gpu_shares(p, be, a, b)
    for g, u in enumerate(be.uuids):
        v = sh[u]["split"].get("A")
        # A's demand on each GPU is its own (alternating / NCCL waits): reported, with a loose check.
        p.check(f"GPU {g}: A served (split of A > 0.05; 0.3 if A always has work there)", v is not None and v > 0.05,
                f"A {v}, B {sh[u]['split'].get('B')}")


def part_torch(p, args, be, env):
    S = args.torch_seconds
    budget = cap(S + 60)

    def run_a():
        a = Proc(args, be, "A", [G.PY, TORCH_CLIENT, "alternate", "--seconds", S], "A-torch", p.dir, env, budget)
        a.wait()
        return a
    a = with_b_spin(p, args, be, env, budget + 5, run_a)
    r = a.result()
    if a.rc != 0 or not r or "error" in r:
        p.error(a.why() + (f"; {r.get('error')}" if r else ""))
        return
    p.results["A"] = r
    G.log(f"  A iterations per s: cuda:0 {r['iters_per_s']['0']:.1f}, cuda:1 {r['iters_per_s']['1']:.1f}")
    a_share_check(p, be, r["t_start"] + 1.0, r["t_end"])


def part_ddp(p, args, be, env):
    S = args.ddp_seconds
    budget = cap(S + 60)
    port = G.free_port_block(1)

    def run_a():
        ranks = []
        for r in (0, 1):
            e = dict(env, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=str(port), NCCL_NVLS_ENABLE="0")
            ranks.append(Proc(args, be, "A", [G.PY, TORCH_CLIENT, "ddp", "--seconds", S], f"A-rank{r}", p.dir, e,
                              budget))
        deadline = time.monotonic() + budget + 10
        while any(x.p.poll() is None for x in ranks) and time.monotonic() < deadline:
            if any(x.p.poll() not in (None, 0) for x in ranks):  # the other rank would wait for a dead peer
                break
            time.sleep(0.2)
        for x in ranks:
            if x.p.poll() is None:
                x.terminate()
            else:
                x.wait(5)
        return ranks
    ranks = with_b_spin(p, args, be, env, budget + 5, run_a)
    res = [x.result() for x in ranks]
    bad = [x.why() for x, r in zip(ranks, res) if x.rc != 0 or not r or "error" in r]
    for w in bad:
        p.error(w)
    if bad:
        return
    p.results["ranks"] = res
    for r in res:
        G.log(f"  rank {r['rank']} (cuda:{r['device']}): {r['steps']} steps, {r['steps_per_s']:.1f}/s, "
              f"NCCL {r['nccl']}, init {r['init_s']} s, loss {r['loss']:.3f}")
    a_share_check(p, be, max(r["t_start"] for r in res) + 1.0, min(r["t_end"] for r in res))


def part_mem(p, args, be, env):
    a = Proc(args, be, "A", [G.PY, TORCH_CLIENT, "mem"], "A-mem", p.dir, env, cap(60))
    a.wait()
    r = a.result()
    if a.rc != 0 or not r or "error" in r:
        p.error(a.why() + (f"; {r.get('error')}" if r else ""))
        return
    p.results["A"] = r
    for d in ("0", "1"):
        x = r["devices"].get(d)
        if not x:
            p.error(f"no result for cuda:{d}")
            continue
        G.log(f"  cuda:{d}: reached {x['mib_reached']} MiB (OOM {x['oom']}), mem_get_info total "
              f"{x['mem_get_info_total_mib']} MiB; {x['error']}")
        p.check(f"cuda:{d}: OutOfMemoryError at GPU_MEM 2GiB, 1792-2048 MiB reached",
                x["oom"] and 1792 <= x["mib_reached"] <= 2048, f"{x['mib_reached']} MiB")
        p.check(f"cuda:{d}: torch.cuda.mem_get_info total 2048 MiB", x["mem_get_info_total_mib"] == 2048,
                f"{x['mem_get_info_total_mib']} MiB")


RUNNERS = {"spin": part_spin, "torch": part_torch, "ddp": part_ddp, "mem": part_mem}
NEED_S = {"spin": 45, "torch": 35, "ddp": 45, "mem": 20}  # rough wall time, to skip what no longer fits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--bindir", default=None, help="folder with two_gpu_spin (not needed with --fake)")
    ap.add_argument("--out", default="two_gpus-out")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    ap.add_argument("--fake", action="store_true", help="stand-in driver dry run (part spin)")
    ap.add_argument("--spin_seconds", type=float, default=30)
    ap.add_argument("--torch_seconds", type=float, default=15)
    ap.add_argument("--ddp_seconds", type=float, default=15)
    ap.add_argument("--backend_opts", default="",
                    help="more launch-backend.py options, e.g. '--base_quota 50 --min_quota 20 --window 4000' "
                         "(default: its own)")
    ap.add_argument("--budget", type=float, default=190, help="total wall time; parts that no longer fit are skipped")
    args = ap.parse_args()
    args.build = str(Path(args.build).resolve())
    BUDGET[0] = args.budget
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    for x in parts:
        if x not in PARTS:
            ap.error(f"unknown part {x!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = client_env(args)
    be_env = dict(env)
    if not args.fake and not args.bindir and any(x in parts for x in ("spin", "torch", "ddp")):
        ap.error("--bindir (folder with two_gpu_spin) is needed without --fake")
    if args.bindir:
        args.bindir = str(Path(args.bindir).resolve())
        if not args.fake and not os.access(Path(args.bindir) / "two_gpu_spin", os.X_OK):
            ap.error(f"{args.bindir}/two_gpu_spin missing: build it first (header of tests/gpu/two_gpu_spin.cu)")
    if not args.fake:
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,name,memory.used", "--format=csv,noheader"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
            G.log("nvidia-smi:\n" + r.stdout.strip())
        except (OSError, subprocess.TimeoutExpired) as e:
            G.log(f"nvidia-smi: {e}")

    summary = {"parts": {}, "fake": args.fake, "parts_asked": parts}
    # mem before ddp (the riskiest part: NCCL under the hook), each group on a fresh backend.
    groups = [("4GiB", [x for x in parts if x in ("spin", "torch")]), ("2GiB", [x for x in parts if x == "mem"]),
              ("4GiB", [x for x in parts if x == "ddp"])]
    for gpu_mem, group in groups:
        if not group:
            continue
        be = None
        try:
            if args.fake and any(x != "spin" for x in group):
                for x in [x for x in group if x != "spin"]:
                    summary["parts"][x] = {"ok": False, "skipped": "needs a GPU and PyTorch (not with --fake)"}
                    G.log(f"== {x}: skipped with --fake")
                group = [x for x in group if x == "spin"]
                if not group:
                    continue
            G.log(f"== backend: A 0.3 1.0 {gpu_mem}, B 0.7 1.0 {gpu_mem} (t={elapsed():.0f} s)")
            be = Backend(args, out / f"backend-{gpu_mem}-{'-'.join(group)}", [("A", 0.3, 1.0, gpu_mem), ("B", 0.7, 1.0, gpu_mem)],
                         be_env).start()
            summary.setdefault("schedulers", {})[f"{gpu_mem} ({','.join(group)})"] = be.uuids
            for name in group:
                if elapsed() + NEED_S[name] > args.budget:
                    summary["parts"][name] = {"ok": False, "skipped": f"no time left ({elapsed():.0f} s used)"}
                    G.log(f"== {name}: skipped, {elapsed():.0f} s used of {args.budget:.0f}")
                    continue
                G.log(f"== {name} (t={elapsed():.0f} s)")
                p = Part(name, out)
                try:
                    if len(be.uuids) != 2:
                        p.error(f"{len(be.uuids)} per-GPU gem-schd started, expected 2: {be.uuids}")
                    RUNNERS[name](p, args, be, env)
                except Exception as e:  # go on with the next part
                    p.error(f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}")
                if be.proc.poll() is not None:
                    p.error("backend exited: " + G.tail(be.logpath, 1500))
                summary["parts"][name] = p.summary()
        except Exception as e:
            for name in group:
                summary["parts"].setdefault(name, {"ok": False, "errors": [f"{type(e).__name__}: {e}"]})
            G.log(f"  [ERROR] backend {gpu_mem}: {e}")
        finally:
            if be is not None:
                be.stop()

    summary["seconds"] = round(elapsed(), 1)
    lines = [f"two_gpus.py ({'fake' if args.fake else 'GPU'}), {summary['seconds']} s",
             f"schedulers: {summary.get('schedulers')}",
             f"{'part':6} {'ok':5} {'GPU':4} {'split A':>8} {'split B':>8} {'thr A':>7} {'thr B':>7}  note"]
    for name in parts:
        s = summary["parts"].get(name, {})
        ok = "PASS" if s.get("ok") else ("SKIP" if s.get("skipped") else "FAIL")
        res = s.get("results", {})
        note = s.get("skipped") or "; ".join(e.splitlines()[0][:100] for e in s.get("errors", []))
        if name == "mem" and res.get("A"):
            for d, x in sorted(res["A"]["devices"].items()):
                lines.append(f"{name:6} {ok:5} {d:4} {'':>8} {'':>8} {'':>7} {'':>7}  reached {x['mib_reached']} MiB, "
                             f"OOM {x['oom']}, total {x['mem_get_info_total_mib']} MiB")
            continue
        sh = res.get("shares", {})
        thr = res.get("throughput", {})
        if not sh:
            lines.append(f"{name:6} {ok:5} {'-':4} {'':>8} {'':>8} {'':>7} {'':>7}  {note}")
        for g, (u, x) in enumerate(sh.items()):
            t = thr.get(g, {}).get("split", {})
            lines.append(f"{name:6} {ok:5} {g:<4} {x['split'].get('A', float('nan')):8.3f} "
                         f"{x['split'].get('B', float('nan')):8.3f} {t.get('A', float('nan')):7.3f} "
                         f"{t.get('B', float('nan')):7.3f}  {u} {note}")
    fails = [c["check"] for s in summary["parts"].values() for c in s.get("checks", []) if not c["ok"]]
    lines.append(f"failed checks: {len(fails)}" + ("".join(f"\n  - {f}" for f in fails)))
    summary["ok"] = all(summary["parts"].get(x, {}).get("ok") for x in parts)
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    (out / "two_gpus.txt").write_text(text + "\n")
    (out / "two_gpus.json").write_text(json.dumps(summary, indent=1, default=str))
    G.log(f"wrote {out / 'two_gpus.json'} and {out / 'two_gpus.txt'}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
