#!/usr/bin/env python3
"""Token switch with residency (issue 8): time from a grant to the new holder's first kernel, against
the holder's resident size. Target: at most bytes / measured prefetch bandwidth + 5 ms.

  1. prefetch bandwidth, standalone (no hook): managed memory from cuMemAllocManaged, filled on the
     host, then cuMemPrefetchAsync(_v2) to the GPU and back, --rounds times, timed around a
     synchronize (driver API through ctypes in a torch process; CuPy as a fallback). A pinned-memory
     copy is timed beside it for reference.
  2. two clients under gem-schd + gem-pmgr + the hook, both UM (resource-config option um=on), residency
     on, a budget (--mem_budget) that holds the larger one and half the smaller one, so every switch
     moves memory: each client loops over one tensor (--small_gib / --large_gib), touching all of it
     with a kernel per iteration, for --seconds. The grant-to-first-kernel time is the hook's stats
     field first_kernel_after_grant_us (GEMINI_STATS_FILE, written at exit); if it is absent the
     result says "not available".

  um_switch.py [--build BUILD] [--out DIR] [--seconds 20] [--small_gib 2] [--large_gib 8]
  um_switch.py --dry_run            no GPU: mock bandwidth, mock workers, no daemons
  um_switch.py --bw_only            just the prefetch bandwidth (no hook, no daemons)
About a minute on an H200. Writes DIR/um_switch.json. Exit 0 whatever the verdict."""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gemrun as G  # noqa: E402
import um_oversub as U  # noqa: E402  (flag names, Daemons, run_jobs)

HERE = Path(__file__).resolve()
GIB = 1 << 30
SLACK_MS = 5.0
# Hook stats fields that may give the resident size per grant (used only to report, if present).
RESIDENT_FIELDS = ("resident_bytes_at_grant", "resident_bytes", "prefetch_bytes", "prefetched_bytes")


def log(msg=""):
    print(msg, flush=True)


# ---- 1. prefetch bandwidth (runs in its own process: python3 um_switch.py --bw_probe) -------------

def bw_probe(size_gib, rounds, dev_index=0):
    import ctypes
    import torch

    torch.cuda.set_device(dev_index)
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    n = int(size_gib * GIB)
    res = {"size_bytes": n, "rounds": rounds, "device": torch.cuda.get_device_name(dev_index)}

    # Reference: a pinned host -> device copy of up to 1 GiB.
    m = min(n, GIB)
    h = torch.empty(m, dtype=torch.uint8, pin_memory=True)
    d = torch.empty(m, dtype=torch.uint8, device="cuda")
    d.copy_(h, non_blocking=True)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(3):
        d.copy_(h, non_blocking=True)
    torch.cuda.synchronize()
    res["pinned_copy_h2d_gb_s"] = round(3 * m / (time.perf_counter() - t) / 1e9, 2)
    del h, d
    torch.cuda.empty_cache()

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()  # the runtime's context is the primary one the driver calls use
        return time.perf_counter() - t0

    errors = []
    try:
        cu = ctypes.CDLL("libcuda.so.1")

        def ck(rc, what):
            if rc != 0:
                raise RuntimeError(f"{what} returned CUresult {rc}")

        dev = ctypes.c_int()
        ck(cu.cuDeviceGet(ctypes.byref(dev), dev_index), "cuDeviceGet")
        ctx = ctypes.c_void_p()
        ck(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
        ck(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")

        class Loc(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]

        if hasattr(cu, "cuMemPrefetchAsync_v2"):  # CUDA >= 12.2 drivers
            f = cu.cuMemPrefetchAsync_v2
            f.argtypes = [ctypes.c_uint64, ctypes.c_size_t, Loc, ctypes.c_uint, ctypes.c_void_p]
            api = "cuMemPrefetchAsync_v2"

            def prefetch(p, to_gpu):
                ck(f(p, n, Loc(1, dev.value) if to_gpu else Loc(2, 0), 0, None), api)  # DEVICE=1, HOST=2
        else:
            f = cu.cuMemPrefetchAsync
            f.argtypes = [ctypes.c_uint64, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
            api = "cuMemPrefetchAsync"

            def prefetch(p, to_gpu):
                ck(f(p, n, dev.value if to_gpu else -1, None), api)  # CU_DEVICE_CPU = -1

        ptr = ctypes.c_uint64()
        ck(cu.cuMemAllocManaged(ctypes.byref(ptr), ctypes.c_size_t(n), ctypes.c_uint(1)), "cuMemAllocManaged")
        try:
            timed(lambda: prefetch(ptr.value, False))  # populate on the host
            ctypes.memset(ptr.value, 1, n)              # real data, written by the CPU
            h2d, d2h = [], []
            for _ in range(rounds):
                h2d.append(timed(lambda: prefetch(ptr.value, True)))
                d2h.append(timed(lambda: prefetch(ptr.value, False)))
        finally:
            cu.cuMemFree_v2(ptr)
            cu.cuDevicePrimaryCtxRelease_v2(dev)
        res.update(method=f"ctypes libcuda {api}", h2d_s=h2d, d2h_s=d2h)
    except Exception as e:  # noqa: BLE001
        errors.append(f"ctypes: {e}")
        try:
            import cupy
            mem = cupy.cuda.malloc_managed(n)
            p = mem.ptr
            rt = cupy.cuda.runtime
            ctypes.memset(p, 1, n)
            h2d, d2h = [], []
            for _ in range(rounds):
                h2d.append(timed(lambda: (rt.memPrefetchAsync(p, n, dev_index, 0), rt.deviceSynchronize())))
                d2h.append(timed(lambda: (rt.memPrefetchAsync(p, n, -1, 0), rt.deviceSynchronize())))
            del mem
            res.update(method="cupy runtime.memPrefetchAsync", h2d_s=h2d, d2h_s=d2h)
        except Exception as e2:  # noqa: BLE001
            errors.append(f"cupy: {e2}")
    if errors:
        res["errors"] = errors
    if "h2d_s" in res:
        th, td = G.median(res["h2d_s"]), G.median(res["d2h_s"])
        res["h2d_gb_s"] = round(n / th / 1e9, 2)
        res["d2h_gb_s"] = round(n / td / 1e9, 2)
        # Faster than HBM would mean nothing moved (pages were on the GPU already).
        res["suspicious"] = n / th > 5e12
    return res


def mock_bw(size_gib, rounds):
    n = int(size_gib * GIB)
    t = n / 50e9
    return {"size_bytes": n, "rounds": rounds, "device": "mock", "method": "mock", "pinned_copy_h2d_gb_s": 55.0,
            "h2d_s": [t] * rounds, "d2h_s": [t] * rounds, "h2d_gb_s": 50.0, "d2h_gb_s": 50.0, "suspicious": False}


# ---- 2. the hook's grant -> first kernel times ---------------------------------------------------

def summarize_us(v):
    """The hook field in whatever form it comes: a number, a list of numbers (or of {"us": ...} /
    [us, ...] entries), or a dict of statistics. Returns {"value": representative µs or None, ...}."""
    def num(x):
        if isinstance(x, bool):
            return None
        if isinstance(x, (int, float)):
            return float(x)
        if isinstance(x, (list, tuple)) and x:
            return num(x[0])
        if isinstance(x, dict):
            for k in ("us", "first_kernel_after_grant_us", "value"):
                if k in x:
                    return num(x[k])
        return None

    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return {"value": float(v), "form": "number"}
    if isinstance(v, list):
        xs = sorted(x for x in (num(e) for e in v) if x is not None)
        if not xs:
            return {"value": None, "form": "empty list"}
        return {"value": G.median(xs), "form": f"list of {len(xs)}", "min": xs[0], "max": xs[-1],
                "p90": xs[min(len(xs) - 1, int(0.9 * len(xs)))], "samples": xs}
    if isinstance(v, dict):
        out = {"value": None}
        for k in ("samples", "values", "all"):
            if isinstance(v.get(k), list):
                out = summarize_us(v[k])
                break
        for k in ("median", "p50", "mean", "avg", "last"):
            if num(v.get(k)) is not None:
                out["value"], out["from"] = num(v[k]), k
                break
        if num(v.get("max")) is not None:
            out["max"] = num(v["max"])
        out["form"] = "dict" + (f" ({out['form']})" if out.get("form") else "")
        out["raw"] = {k: x for k, x in v.items() if not isinstance(x, list)}
        return out
    return {"value": None, "form": type(v).__name__}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(G.REPO / "build"))
    ap.add_argument("--out", help="results folder (default $OUT/um_switch, else BUILD/bench/um_switch)")
    ap.add_argument("--bw_gib", type=float, default=4.0, help="managed buffer of the bandwidth probe")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small_gib", type=float, default=2.0)
    ap.add_argument("--large_gib", type=float, default=8.0)
    ap.add_argument("--mem_budget", help="budget as gem-schd takes it (default: large + small/2 + 1 GiB)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds between a client's iterations")
    ap.add_argument("--startup_allow", type=float, default=60)
    ap.add_argument("--gpu_index", type=int, default=0)
    ap.add_argument("--schd_extra", default="", help="more gem-schd flags, one string")
    ap.add_argument("--budget_flag", default=U.SCHD_MEM_BUDGET_FLAG, help="'' = do not pass a budget")
    ap.add_argument("--residency_flag", default=U.SCHD_RESIDENCY_FLAG, help="'' = do not pass residency")
    ap.add_argument("--um_option", default=U.CONFIG_UM_OPTION, help="'' = 4-field config lines")
    ap.add_argument("--log_level", choices=["error", "warn", "info", "debug"])
    ap.add_argument("--bw_only", action="store_true")
    ap.add_argument("--dry_run", action="store_true", help="no GPU: mock bandwidth and workers, no daemons")
    ap.add_argument("--real_backend", action="store_true", help="with --dry_run: the real daemons and hook")
    ap.add_argument("--bw_probe", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.dry_run:
        a.seconds = min(a.seconds, 4)
    return a


def main(argv=None):
    args = parse_args(argv)
    if args.bw_probe:
        print(json.dumps(bw_probe(args.bw_gib, args.rounds, args.gpu_index)), flush=True)
        return 0
    t_begin = time.monotonic()
    build = Path(args.build).resolve()
    default_out = Path(os.environ["OUT"]) / "um_switch" if os.environ.get("OUT") else build / "bench" / "um_switch"
    out = Path(args.out or default_out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        gpu = "mock (dry run)"
    else:
        gpu = G.have_gpu()
        if not gpu:
            log("um_switch: no GPU (nvidia-smi -L lists none); use --dry_run to exercise the script without one")
            return 2
    res = {"what": "grant -> first kernel with residency, against resident bytes / prefetch bandwidth + 5 ms",
           "device": gpu, "dry_run": args.dry_run, "settings": vars(args), "verdicts": []}
    jpath = out / "um_switch.json"

    def save():
        jpath.write_text(json.dumps(res, indent=1) + "\n")

    # 1. bandwidth
    log(f"um_switch: {gpu}; prefetch bandwidth with a {args.bw_gib:g} GiB managed buffer, {args.rounds} rounds")
    if args.dry_run:
        bw = mock_bw(args.bw_gib, args.rounds)
    else:
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        rc, text = G.run_logged([G.PY, HERE, "--bw_probe", "--bw_gib", args.bw_gib, "--rounds", args.rounds,
                                 "--gpu_index", args.gpu_index], out, "bw_probe", env=env, timeout=180)
        bw = G.last_json_line(text) or {"errors": [f"rc {rc}: " + G.tail(out / "bw_probe.err", 1500)]}
    res["bandwidth"] = bw
    h2d = bw.get("h2d_gb_s")
    log(f"  prefetch host->GPU {U.fmt(h2d, 2)} GB/s, GPU->host {U.fmt(bw.get('d2h_gb_s'), 2)} GB/s "
        f"({bw.get('method', 'no method worked')}); pinned copy {U.fmt(bw.get('pinned_copy_h2d_gb_s'), 2)} GB/s"
        + ("  WARNING: faster than HBM, the prefetch may have moved nothing" if bw.get("suspicious") else ""))
    for e in bw.get("errors", []):
        log(f"  note: {e[:500]}")
    save()
    if args.bw_only:
        return 0

    # 2. two UM clients swapping the token
    mock_backend = args.dry_run and not args.real_backend
    sizes = {"small": args.small_gib, "large": args.large_gib}
    budget = args.mem_budget or U.budget_size(int((args.large_gib + args.small_gib / 2 + 1) * GIB))
    schd_args = shlex.split(args.schd_extra)
    if args.budget_flag:
        schd_args += [args.budget_flag, budget]
    if args.residency_flag and U.RESIDENCY_ON:
        schd_args += [args.residency_flag, U.RESIDENCY_ON]
    env_extra = {U.ENV_EMPTY_CACHE: U.EMPTY_CACHE_ON}
    jobs = []
    for name, g in sizes.items():
        argv = [G.PY, U.WORKER, "--job", name, "--kind", "touch", "--alloc_gib", g, "--sleep", args.sleep,
                "--warmup", 1, "--seconds", args.seconds]
        if args.dry_run:
            # a made-up grant->kernel time: 90 % of what the bound allows
            us = (g * GIB / ((h2d or 50) * 1e9) * 1e3 + SLACK_MS) * 900
            argv += ["--mock", "--mock_infer_s", 0.02, "--mock_first_kernel_us", round(us, 1)]
        jobs.append((name, argv))
    clients = [(n, 0.5, 1.0, 0, args.um_option) for n, _ in jobs]
    log(f"\ntwo UM clients, {args.small_gib:g} GiB and {args.large_gib:g} GiB, budget {budget}, residency "
        f"{U.RESIDENCY_ON}, {args.seconds:g} s")
    try:
        with U.Daemons(build, out / "switch", clients, schd_args, mock=mock_backend, log_level=args.log_level) as be:
            res["backend_commands"] = be.commands
            res["resource_config"] = be.cfg.read_text()
            log("  gem-schd: " + be.commands[0])
            kw = {} if mock_backend else {"backend": be, "build": build}
            results = U.run_jobs(jobs, out / "switch", stagger=0, timeout=args.seconds + args.startup_allow,
                                 env_extra=env_extra, tag="[switch]", **kw)
            st = G.read_json(be.stats)
            if st is not None:
                res["schd_stats_last"] = st
    except Exception as e:  # noqa: BLE001
        res["error"] = str(e)[-3000:]
        log(f"  FAILED to run: {str(e)[-1500:]}")
        res["verdicts"].append({"line": "FAIL switch run did not start", "ok": False})
        save()
        return 0

    rows = []
    for r in results:
        name = r["job"]
        resident = r.get("end_reserved_bytes") or int(sizes[name] * GIB)
        bound_ms = resident / (h2d * 1e9) * 1e3 + SLACK_MS if h2d else None
        hk = r.get("hook") if isinstance(r.get("hook"), dict) else None
        row = {"client": name, "resident_bytes": resident, "iterations": r.get("iterations"), "rc": r.get("rc"),
               "bound_ms": round(bound_ms, 2) if bound_ms else None, "hook_tokens": (hk or {}).get("tokens")}
        for f in RESIDENT_FIELDS:
            if hk and f in hk:
                row["hook_" + f] = hk[f]
        if hk is None or U.HOOK_SWITCH_FIELD not in hk:
            row["first_kernel"] = None
            row["verdict"] = "not available" + (" (no hook stats file)" if hk is None else
                                                f" (hook stats have no {U.HOOK_SWITCH_FIELD})")
        else:
            s = summarize_us(hk[U.HOOK_SWITCH_FIELD])
            row["first_kernel"] = s
            v = s.get("value")
            if v is None or bound_ms is None:
                row["verdict"] = "not available (" + ("no bandwidth" if bound_ms is None else f"field form {s.get('form')}") + ")"
            else:
                ok = v / 1e3 <= bound_ms
                row["ok"] = ok
                within = ""
                if s.get("samples"):
                    k = sum(1 for x in s["samples"] if x / 1e3 <= bound_ms)
                    within = f", {k}/{len(s['samples'])} grants within"
                row["verdict"] = (f"{'PASS' if ok else 'FAIL'} {name}: grant->first kernel {v / 1e3:.2f} ms "
                                  f"({s.get('form')}{', max %.2f ms' % (s['max'] / 1e3) if s.get('max') else ''}{within}) "
                                  f"<= {resident / GIB:.2f} GiB / {h2d:.1f} GB/s + {SLACK_MS:g} ms = {bound_ms:.2f} ms")
        rows.append(row)
    res["clients"] = rows
    log(f"\n{'client':8s} {'resident GiB':>12s} {'iterations':>10s} {'tokens':>7s} {'bound ms':>9s}  result")
    for row in rows:
        log(f"{row['client']:8s} {row['resident_bytes'] / GIB:12.2f} {U.fmt(row['iterations']):>10s} "
            f"{U.fmt(row['hook_tokens']):>7s} {U.fmt(row['bound_ms'], 2):>9s}  "
            + (row["verdict"] if not row.get("first_kernel") or "ok" not in row else ("PASS" if row["ok"] else "FAIL")))
    for row in rows:
        line = row["verdict"] if "ok" in row else f"{row['client']}: {U.HOOK_SWITCH_FIELD} {row['verdict']}"
        log(line)
        res["verdicts"].append({"line": line, "ok": row.get("ok")})
    res["elapsed_s"] = round(time.monotonic() - t_begin, 1)
    save()
    log(f"results: {jpath} ({res['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
