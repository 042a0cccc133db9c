#!/usr/bin/env python3
"""GPU checks (run by tests/gpu/run-all.sh on a machine with a GPU; standard library only).

  gpu_checks.py --out OUTDIR --build BUILD --bin BINDIR [interception] [shares] [limit] [bench] [demo]

Parts (all by default):
  interception  hook counters vs known launch counts: runtime API with static cudart (legacy and
                per-thread default stream, several threads, non-blocking streams), driver API
                (cuLaunchKernel, cuLaunchKernelEx, CUDA graph), PyTorch elementwise ops vs torch.profiler
  shares        two ResNet-50 trainers at REQUEST 0.3 / 0.7 (LIMIT 1.0): share of GPU time (gem-schd
                --stats) and throughput over the period both ran
  limit         one ResNet-50 trainer at LIMIT 0.25 alone vs its unshared throughput (target 0.25 +- 0.03)
  bench         bench/run_bench.py: launch overhead and ResNet-50 throughput with and without the hook
  demo          demo/run-demo.py on the GPU
Writes OUTDIR/<part>/... and OUTDIR/summary.json, OUTDIR/summary.txt."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import gemrun as G  # noqa: E402

PARTS = ["interception", "shares", "limit", "bench", "demo"]
TRAIN = REPO / "tests" / "gpu" / "train_resnet.py"

SHARES_SECONDS = float(os.environ.get("GEM_SHARES_SECONDS", 45))
LIMIT_SECONDS = float(os.environ.get("GEM_LIMIT_SECONDS", 30))
UNSHARED_SECONDS = float(os.environ.get("GEM_UNSHARED_SECONDS", 20))


class Part:
    def __init__(self, name, out):
        self.name = name
        self.dir = Path(out) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.checks = []  # {"check", "ok", "detail"}
        self.results = {}
        self.t0 = time.monotonic()

    def check(self, what, ok, detail=""):
        self.checks.append({"check": what, "ok": bool(ok), "detail": detail})
        G.log(f"  [{'PASS' if ok else 'FAIL'}] {what}" + (f": {detail}" if detail else ""))
        return ok

    def summary(self):
        return {"ok": all(c["ok"] for c in self.checks) and bool(self.checks), "checks": self.checks,
                "results": self.results, "seconds": round(time.monotonic() - self.t0, 1)}


# ---------------------------------------------------------------------------------------------------
def part_interception(p, build, bindir):
    with G.Backend(build, p.dir / "backend", [("probe", 1.0, 1.0)]) as be:
        port = be.port_of("probe")

        def hooked_run(tag, cmd, timeout=180):
            stats = p.dir / f"{tag}.hook.json"
            if stats.exists():
                stats.unlink()
            env = dict(os.environ, GEMINI_STATS_FILE=str(stats))
            rc, out = G.run_logged(G.hooked(build, "probe", port, cmd), p.dir, tag, env=env, timeout=timeout)
            return rc, G.last_json_line(out), G.read_json(stats)

        for tag, prog, want_ptsz in (("runtime_legacy", "intercept_rt", False),
                                     ("runtime_per_thread", "intercept_rt_ptds", True)):
            rc, res, ctr = hooked_run(tag, [bindir / prog, "--threads", "4", "--per_stream", "500",
                                            "--per_default", "100"])
            total, ptsz = G.hook_launches(ctr)
            p.results[tag] = {"program": res, "hook": ctr}
            if not p.check(f"{tag}: program ran (rc 0, every kernel executed)", rc == 0 and res,
                           f"rc {rc}; {G.tail(p.dir / (tag + '.err'), 400)}"):
                continue
            if not p.check(f"{tag}: hook wrote its counters", ctr is not None, str(p.dir / f"{tag}.hook.json")):
                continue
            p.check(f"{tag}: hook launches == {res['expected_launches']}", total == res["expected_launches"],
                    f"hook {total}: {ctr.get('launches')}")
            if want_ptsz:
                p.check(f"{tag}: _ptsz counters non-zero", ptsz > 0, f"ptsz {ptsz}")
            else:
                p.check(f"{tag}: no _ptsz launches in the legacy build", ptsz == 0, f"ptsz {ptsz}")
            p.check(f"{tag}: no unthrottled launches, token taken", ctr.get("unthrottled_launches", 0) == 0
                    and ctr.get("tokens", 0) >= 1, f"tokens {ctr.get('tokens')}, "
                    f"unthrottled {ctr.get('unthrottled_launches')}")

        k0, k1, k2 = 300, 400, 200
        rc, res, ctr = hooked_run("driver_api", [bindir / "intercept_drv", "--k0", k0, "--k1", k1, "--k2", k2])
        p.results["driver_api"] = {"program": res, "hook": ctr}
        if p.check("driver_api: program ran", rc == 0 and res, f"rc {rc}; {G.tail(p.dir / 'driver_api.err', 400)}") \
                and p.check("driver_api: hook wrote its counters", ctr is not None):
            total, _ = G.hook_launches(ctr)
            l = ctr.get("launches", {})
            p.check(f"driver_api: hook launches == {k0 + k1 + k2}", total == k0 + k1 + k2, str(l))
            graph = sum(v for k, v in l.items() if "Graph" in k)
            ex = sum(v for k, v in l.items() if k.startswith("cuLaunchKernelEx"))
            plain = sum(v for k, v in l.items() if k in ("cuLaunchKernel", "cuLaunchKernel_ptsz"))
            p.check(f"driver_api: cuLaunchKernel {k0}, cuLaunchKernelEx {k1}, graph launches {k2}",
                    (plain, ex, graph) == (k0, k1, k2), f"got {plain}, {ex}, {graph}")

        # PyTorch: two runs differing by D ops; the hook's difference must be D, as the profiler's.
        torch_res = {}
        for n in (200, 1200):
            tag = f"torch_ops_{n}"
            rc, res, ctr = hooked_run(tag, [G.PY, REPO / "tests" / "gpu" / "torch_launches.py", "--ops", n], 300)
            total, _ = G.hook_launches(ctr)
            torch_res[n] = (rc, res, ctr, total)
            p.results[tag] = {"program": res, "hook": ctr}
            if p.check(f"{tag}: ran, hook counters written", rc == 0 and res and ctr,
                       f"rc {rc}; {G.tail(p.dir / (tag + '.err'), 400)}"):
                p.check(f"{tag}: hook launches ({total}) >= profiler kernels ({res['profiler_kernels']}), "
                        "excess only setup (<= 16)",
                        res["profiler_kernels"] <= total <= res["profiler_kernels"] + 16,
                        f"hook {ctr.get('launches')}")
        if all(v[0] == 0 and v[1] and v[2] for v in torch_res.values()):
            (_, r1, _, h1), (_, r2, _, h2) = torch_res[200], torch_res[1200]
            p.check("torch: hook launch difference == 1000 ops == profiler kernel difference",
                    h2 - h1 == 1000 and r2["profiler_kernels"] - r1["profiler_kernels"] == 1000,
                    f"hook {h2 - h1}, profiler {r2['profiler_kernels'] - r1['profiler_kernels']}")


# ---------------------------------------------------------------------------------------------------
def throughput_between(res, a, b):
    """images/s of a train_resnet result counting iterations that ended in [a, b]."""
    n = sum(1 for t in res["iter_ends"] if a <= t <= b)
    return n * res["batch"] / (b - a) if b > a else None


def part_shares(p, build, bindir):
    clients = [("train30", 0.3, 1.0), ("train70", 0.7, 1.0)]
    with G.Backend(build, p.dir / "backend", clients) as be:
        procs = {}
        files = []
        for name, req, lim in clients:
            out = open(p.dir / f"{name}.out", "w")
            err = open(p.dir / f"{name}.err", "w")
            files += [out, err]
            argv = G.hooked(build, name, be.port_of(name),
                            [G.PY, TRAIN, "--seconds", SHARES_SECONDS, "--out", p.dir / f"{name}.json"],
                            timeout=SHARES_SECONDS + 240)
            procs[name] = G.subprocess.Popen(argv, stdin=G.subprocess.DEVNULL, stdout=out, stderr=err)
        while any(pr.poll() is None for pr in procs.values()):
            be.sample()
            time.sleep(0.25)
        for f in files:
            f.close()
        samples = be.samples
    res = {}
    for name, _, _ in clients:
        rc = procs[name].returncode
        res[name] = G.read_json(p.dir / f"{name}.json")
        p.check(f"{name}: trainer finished", rc == 0 and res[name],
                "" if rc == 0 and res[name] else f"rc {rc}; {G.tail(p.dir / (name + '.err'), 600)}")
    if not all(res.values()):
        return
    a = max(r["t_start"] for r in res.values()) + 3.0  # both past warm-up, +3 s
    b = min(r["t_end"] for r in res.values())
    span, used = G.used_delta(samples, [c[0] for c in clients], int(a * 1e6), int(b * 1e6))
    p.results["overlap_s"] = round(b - a, 2)
    if not p.check("gem-schd stats cover the overlap", span > 10e6 and len(used) == 2,
                   f"span {span / 1e6:.1f} s, clients {list(used)}"):
        return
    tot = sum(used.values())
    if not p.check("clients used GPU time during the overlap", tot > 0, f"used {used}"):
        return
    p.results["gpu_time_fraction_used"] = round(tot / span, 4)
    for name, req, lim in clients:
        share = used[name] / tot
        ips = throughput_between(res[name], a, b)
        p.results[name] = {"request": req, "limit": lim, "share_of_gpu_time": round(share, 4),
                           "used_fraction_of_wall": round(used[name] / span, 4),
                           "images_per_s": round(ips, 2), "images_per_s_whole_run": round(res[name]["images_per_s"], 2)}
        p.check(f"{name}: share of GPU time {share:.3f} within 0.05 of {req}", abs(share - req) <= 0.05)
    ips = {n: p.results[n]["images_per_s"] for n, _, _ in clients}
    p.results["throughput_split"] = {n: round(v / sum(ips.values()), 4) for n, v in ips.items()}


# ---------------------------------------------------------------------------------------------------
def part_limit(p, build, bindir):
    rc, out = G.run_logged([G.PY, TRAIN, "--seconds", UNSHARED_SECONDS, "--out", p.dir / "unshared.json"],
                           p.dir, "unshared", timeout=UNSHARED_SECONDS + 180)
    unshared = G.read_json(p.dir / "unshared.json")
    if not p.check("unshared trainer (no hook) finished", rc == 0 and unshared, G.tail(p.dir / "unshared.err", 600)):
        return
    base_ips = throughput_between(unshared, unshared["t_start"] + 2, unshared["t_end"])
    with G.Backend(build, p.dir / "backend", [("capped", 0.25, 0.25)]) as be:
        argv = G.hooked(build, "capped", be.port_of("capped"),
                        [G.PY, TRAIN, "--seconds", LIMIT_SECONDS, "--out", p.dir / "limited.json"],
                        timeout=LIMIT_SECONDS + 240)
        with open(p.dir / "limited.out", "w") as o, open(p.dir / "limited.err", "w") as e:
            pr = G.subprocess.Popen(argv, stdin=G.subprocess.DEVNULL, stdout=o, stderr=e)
            while pr.poll() is None:
                be.sample()
                time.sleep(0.25)
        samples = be.samples
    limited = G.read_json(p.dir / "limited.json")
    if not p.check("LIMIT 0.25 trainer finished", pr.returncode == 0 and limited,
                   G.tail(p.dir / "limited.err", 600)):
        return
    # LIMIT bounds the usage in every sliding window (10 s): a client starting with an empty window may
    # use a whole window's allowance at once and then waits while that burst slides out. Measure from
    # one window plus 2 s after the start (steady state), and report the whole run beside it.
    a, b = limited["t_start"] + 12, limited["t_end"]
    whole = throughput_between(limited, limited["t_start"], limited["t_end"]) / base_ips
    lim_ips = throughput_between(limited, a, b)
    ratio = lim_ips / base_ips
    span, used = G.used_delta(samples, ["capped"], int(a * 1e6), int(b * 1e6))
    p.results = {"unshared_images_per_s": round(base_ips, 2), "limited_images_per_s": round(lim_ips, 2),
                 "ratio": round(ratio, 4), "target": 0.25, "measured_over_s": round(b - a, 1),
                 "whole_run_ratio": round(whole, 4),
                 "schd_used_fraction": round(used["capped"] / span, 4) if span and "capped" in used else None}
    p.check(f"throughput ratio {ratio:.3f} within 0.03 of 0.25", abs(ratio - 0.25) <= 0.03)


# ---------------------------------------------------------------------------------------------------
def part_bench(p, build, bindir):
    rc, out = G.run_logged([G.PY, REPO / "bench" / "run_bench.py", "--build", build, "--bin", bindir,
                            "--out", p.dir], p.dir, "run_bench", timeout=420)
    res = G.read_json(p.dir / "bench.json")
    p.results = res or {}
    p.check("bench ran", rc == 0 and res is not None, G.tail(p.dir / "run_bench.err", 800))
    if res:
        for k, v in res.get("verdicts", {}).items():
            p.check(k, v["ok"], v.get("detail", ""))


def part_demo(p, build, bindir):
    env = dict(os.environ, BUILD=str(build), NVCC=os.environ.get("NVCC", "nvcc"), OUT=str(p.dir))
    rc, out = G.run_logged([G.PY, REPO / "demo" / "run-demo.py", "--out", p.dir], p.dir, "run-demo", env=env,
                           timeout=300)
    p.results = G.read_json(p.dir / "demo.json") or {}
    p.check("demo/run-demo.py exit 0", rc == 0, G.tail(p.dir / "run-demo.out", 1500))


# ---------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--build", required=True, help="build folder with bin/gem-schd, bin/gem-pmgr, lib/libgemhook.so.1")
    ap.add_argument("--bin", required=True, help="folder with the CUDA programs built by tests/gpu/Makefile")
    ap.add_argument("parts", nargs="*", choices=PARTS + ["all"], default=[])
    args = ap.parse_args()
    parts = PARTS if not args.parts or "all" in args.parts else [x for x in PARTS if x in args.parts]
    out, build, bindir = Path(args.out).resolve(), Path(args.build).resolve(), Path(args.bin).resolve()
    gpu = G.have_gpu()
    G.log(f"device: {gpu or 'NO GPU FOUND'}; build {build}; parts {parts}")
    summary = {"device": gpu, "parts": {}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    missing = [f for f in (build / "bin" / "gem-schd", build / "bin" / "gem-pmgr", build / "lib" / "libgemhook.so.1")
               if not f.is_file()]
    if missing or not gpu:
        summary["error"] = "no GPU" if not gpu else f"missing: {[str(m) for m in missing]}"
        G.log("error: " + summary["error"])
    else:
        for name in parts:
            G.log(f"\n== {name}")
            p = Part(name, out)
            try:
                globals()["part_" + name](p, build, bindir)
            except Exception as e:  # report and go on with the other parts
                import traceback
                p.check(f"{name}: no exception", False, "".join(traceback.format_exception_only(type(e), e)).strip())
                (p.dir / "exception.txt").write_text(traceback.format_exc())
            summary["parts"][name] = p.summary()
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["ok"] = bool(summary["parts"]) and all(v["ok"] for v in summary["parts"].values()) \
        and "error" not in summary
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"device: {gpu}", ""]
    for name, s in summary["parts"].items():
        lines.append(f"{name}: {'PASS' if s['ok'] else 'FAIL'} ({s['seconds']} s)")
        for c in s["checks"]:
            lines.append(f"  [{'PASS' if c['ok'] else 'FAIL'}] {c['check']}"
                         + (f" -- {c['detail']}" if c["detail"] and not c["ok"] else ""))
        res = {k: v for k, v in s["results"].items() if not isinstance(v, dict) or name in ("shares",)}
        if name in ("shares", "limit", "bench") and s["results"]:
            lines.append("  results: " + json.dumps(res if name != "bench" else s["results"].get("table", res)))
    lines.append("")
    lines.append("OVERALL: " + ("PASS" if summary["ok"] else "FAIL") + (f" ({summary['error']})" if "error" in summary else ""))
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    G.log("\n" + text + f"\nresults in {out}/summary.json and summary.txt")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
