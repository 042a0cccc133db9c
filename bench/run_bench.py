#!/usr/bin/env python3
"""Benchmarks of the hook's overhead (what `make bench` runs).

  run_bench.py --build BUILD --bin BINDIR --out DIR [--cpu] [--skip_resnet]

On a GPU (nvidia-smi -L lists one):
  launch overhead  BINDIR/launch_overhead (bench/launch_overhead.cu): empty-kernel launches, ns per
                   launch (median of 7 repetitions of 100000 launches), run alternately without and with
                   the hook (3 times each, order ABBAAB) under gem-schd + gem-pmgr with a single client
                   at LIMIT 1.0 (token held, uncontended). Target: hook < 0.1 us (100 ns) per launch.
  ResNet-50        bench/resnet_throughput.py: training images/s with and without the hook.
                   Target: < 1% of throughput.
Without a GPU nothing is measured by default: through the stand-in driver a launch costs ~9 us (its queue
to an executor thread), with run-to-run noise of +-2 us on a 2-core machine, which swamps the hook's
< 0.1 us target. --cpu runs that comparison anyway (fake-cuda-app --kernel_us 0 for 3 s, 3 runs with and
3 without the hook): it shows the hook adds no gross cost on its fast path, nothing finer.
Writes DIR/bench.json and DIR/bench.txt."""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gemrun as G  # noqa: E402

LAUNCH_TARGET_NS = 100.0


def summarize(runs, key):
    return G.median([r[key] for r in runs])


def launch_overhead_gpu(build, bindir, out):
    prog = Path(bindir) / "launch_overhead"
    if not prog.is_file():
        raise SystemExit(f"run_bench: {prog} not built (make -C bench)")
    cmd = [prog, "--launches", "100000", "--reps", "7", "--streams", "4"]
    runs = {"plain": [], "hooked": []}
    with G.Backend(build, out / "launch_backend", [("bench", 1.0, 1.0)]) as be:
        for i, mode in enumerate(["plain", "hooked", "hooked", "plain", "plain", "hooked"]):
            stats = out / f"launch_{i}_{mode}.hook.json"
            env = dict(os.environ, GEMINI_STATS_FILE=str(stats))
            argv = cmd if mode == "plain" else G.hooked(build, "bench", be.port_of("bench"), cmd)
            rc, text = G.run_logged(argv, out, f"launch_{i}_{mode}", env=env, timeout=120)
            res = G.last_json_line(text)
            if rc != 0 or not res:
                raise SystemExit(f"run_bench: launch_overhead ({mode}) failed: " + G.tail(out / f"launch_{i}_{mode}.err"))
            if mode == "hooked":
                res["hook"] = G.read_json(stats)
            runs[mode].append(res)
    r = {}
    for key in ("median_total_ns", "median_issue_ns"):
        p, h = summarize(runs["plain"], key), summarize(runs["hooked"], key)
        r[key[len("median_"):-len("_ns")]] = {"plain_ns": round(p, 1), "hooked_ns": round(h, 1), "hook_cost_ns": round(h - p, 1)}
    hk = runs["hooked"][0].get("hook") or {}
    total, _ = G.hook_launches(hk)
    r["hook_counted_launches_first_hooked_run"] = total
    r["runs"] = runs
    return r


def launch_overhead_standin(build, out):
    fake = Path(build) / "fake-cuda"
    app = fake / "fake-cuda-app"
    if not app.is_file():
        raise SystemExit(f"run_bench: no GPU and no stand-in driver at {fake}")
    env = dict(os.environ, LD_LIBRARY_PATH=str(fake))
    cmd = [app, "--kernel_us", "0", "--seconds", "3"]
    runs = {"plain": [], "hooked": []}
    with G.Backend(build, out / "standin_backend", [("bench", 1.0, 1.0)]) as be:
        for i, mode in enumerate(["plain", "hooked", "hooked", "plain", "plain", "hooked"]):
            argv = cmd if mode == "plain" else G.hooked(build, "bench", be.port_of("bench"), cmd)
            rc, text = G.run_logged(argv, out, f"standin_{i}_{mode}", env=env, timeout=60)
            res = G.last_json_line(text)
            if rc != 0 or not res:
                raise SystemExit(f"run_bench: fake-cuda-app ({mode}) failed: " + G.tail(out / f"standin_{i}_{mode}.err"))
            res["ns_per_launch"] = res["seconds"] * 1e9 / max(res["launches"], 1)
            runs[mode].append(res)
    p, h = summarize(runs["plain"], "ns_per_launch"), summarize(runs["hooked"], "ns_per_launch")
    return {"plain_ns": round(p, 1), "hooked_ns": round(h, 1), "hook_cost_ns": round(h - p, 1), "runs": runs,
            "what": "ns per launch through the stand-in driver (fake-cuda-app --kernel_us 0), median of 3 runs "
                    "each; the stand-in's own queueing dominates; the difference bounds the hook's fast path"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(G.REPO / "build"))
    ap.add_argument("--bin", help="folder with launch_overhead (default BUILD/bench)")
    ap.add_argument("--out", default=os.environ.get("OUT"))
    ap.add_argument("--cpu", action="store_true", help="stand-in variant even if a GPU is present")
    ap.add_argument("--skip_resnet", action="store_true")
    ap.add_argument("--resnet_seconds", type=float, default=20)
    args = ap.parse_args()
    build = Path(args.build).resolve()
    out = Path(args.out or build / "bench" / "results").resolve()
    out.mkdir(parents=True, exist_ok=True)
    bindir = Path(args.bin or build / "bench").resolve()
    gpu = None if args.cpu else G.have_gpu()
    res = {"device": gpu or "none (stand-in driver)", "targets": {"launch_ns": LAUNCH_TARGET_NS, "throughput_percent": 1.0}}
    verdicts = {}
    lines = []
    if gpu:
        G.log(f"GPU: {gpu}\nlaunch overhead: 6 runs of launch_overhead (3 plain, 3 hooked) ...")
        lo = launch_overhead_gpu(build, bindir, out)
        res["launch_overhead"] = lo
        t = lo["issue"]
        lines.append(f"empty-kernel launch call, ns per launch (median, batches of 100 then a synchronise): "
                     f"plain {t['plain_ns']}, with hook {t['hooked_ns']}, hook cost {t['hook_cost_ns']} ns "
                     f"(target < {LAUNCH_TARGET_NS:.0f} ns)")
        i = lo["total"]
        lines.append(f"  with the synchronises (GPU-bound): plain {i['plain_ns']}, with hook {i['hooked_ns']}, "
                     f"cost {i['hook_cost_ns']} ns")
        verdicts[f"hook cost per launch {t['hook_cost_ns']} ns < {LAUNCH_TARGET_NS:.0f} ns"] = \
            {"ok": t["hook_cost_ns"] < LAUNCH_TARGET_NS}
        if not args.skip_resnet:
            G.log("ResNet-50 throughput with and without the hook ...")
            rc, text = G.run_logged([G.PY, Path(__file__).resolve().parent / "resnet_throughput.py", "--build", build,
                                     "--out", out, "--seconds", args.resnet_seconds], out, "resnet_throughput",
                                    timeout=args.resnet_seconds * 2 + 400)
            rt = G.read_json(out / "resnet_throughput.json")
            if rc != 0 or not rt:
                verdicts["resnet_throughput.py ran"] = {"ok": False, "detail": G.tail(out / "resnet_throughput.err")}
            else:
                res["resnet"] = rt
                lines.append(f"ResNet-50 training images/s: plain {rt['plain_images_per_s']}, with hook "
                             f"{rt['hooked_images_per_s']}, cost {rt['cost_percent']}% (target < 1%)")
                verdicts[f"hook costs {rt['cost_percent']}% < 1% of ResNet-50 throughput"] = {"ok": rt["ok"]}
    elif not args.cpu:
        lines.append("no GPU found: GPU benchmarks skipped. The stand-in driver's own per-launch cost (~9 us, "
                     "+-2 us noise) swamps the hook's (< 0.1 us target), so no CPU-only figure is reported "
                     "(run_bench.py --cpu runs that comparison anyway).")
    else:
        G.log("launch rate through the stand-in driver, with and without the hook ...")
        sd = launch_overhead_standin(build, out)
        res["standin_launch"] = sd
        lines.append(f"stand-in driver (no GPU), fake-cuda-app --kernel_us 0: plain {sd['plain_ns']} ns/launch, "
                     f"with hook {sd['hooked_ns']} ns/launch, difference {sd['hook_cost_ns']} ns")
        lines.append("  (measures the stand-in's queueing plus the hook's fast path on the CPU; not GPU launch cost)")
    res["verdicts"] = verdicts
    res["table"] = lines
    (out / "bench.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "bench.txt").write_text("\n".join(lines) + "\n")
    G.log("\n".join(lines) + f"\nresults: {out}/bench.json, bench.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
