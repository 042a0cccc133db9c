#!/usr/bin/env python3
"""Issue 9: many saturating clients of equal REQUEST under gem-schd, with short and default quotas.

  many_clients.py --out OUT [--bindir build/gpu-bench] [--build build] [--clients 64] [--seconds 36]
                  [--measure_s 30] [--window 4000] [--quotas 50:50,250:100] [--plan] [--fake]

N clients (bench/latency_client.cu --mode saturate: 100 us kernels, a sync every 20) at REQUEST 1/N,
LIMIT 1.0, run through tools/launch-command.py under tools/launch-backend.py with --window (ms) and,
per run, --base_quota:--min_quota (ms; gem-schd refuses a min_quota above base_quota, so the 50 ms run
has min_quota 50). All start together (start barrier) and run --seconds; over the last --measure_s,
from gem-schd's --stats file (rewritten every 500 ms, sampled here every 100 ms):
  busy      sum over clients of the growth of used_us_total (the charged time) / wall time
  share     each client's part of the charged time vs 1/N: max |share * N - 1| in %
  gaps      per client, the longest stretch without a grant (times a client's grants counter grew, so
            +-0.5 s; the stretches from the start of the period to the first grant and from the last
            grant to its end count too); every client granted in every window-long stretch when the
            longest gap over all clients is <= --window
and from the clients: kernels/s each (min, max) and their sum as a busy fraction. Per second (issue 19):
GPU busy, the number of clients granted and the largest share, printed; every client's share per second
in OUT/runs/<quota>/series.csv (and .png with matplotlib) for `tools/gemctl plot --from ...`.
Writes OUT/many_clients.json, OUT/many_clients.txt, OUT/runs/<quota>/ (client logs, backend log,
stats samples). Time: about 45 s per run with 64 clients on an H200, two runs.

--fake: CPU dry run against the stand-in driver (--clients defaults to 8 there)."""

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gemrun as G  # noqa: E402
import series as SER  # noqa: E402
import sharebench as S  # noqa: E402
from sharebench import log  # noqa: E402


def busy_stretches(inside, names, window_s):
    """Busy fraction (charged time / wall) over consecutive window-long stretches of the samples."""
    out = []
    i = 0
    while i < len(inside) - 1:
        j = i
        while j < len(inside) - 1 and (inside[j]["time_us"] - inside[i]["time_us"]) / 1e6 < window_s:
            j += 1
        span = (inside[j]["time_us"] - inside[i]["time_us"]) / 1e6
        if span < 0.75 * window_s:
            break
        used = sum(inside[j]["clients"][n]["used_us_total"] - inside[i]["clients"][n]["used_us_total"] for n in names)
        out.append(used / 1e6 / span)
        i = j
    return out


def analyse(samples, names, t_from, t_to, window_s):
    """From gem-schd stats samples [(mono s, stats)], the period [t_from, t_to] (time.monotonic() s)."""
    inside = [st for _, st in samples if t_from * 1e6 <= st.get("time_us", 0) <= t_to * 1e6]
    inside = [st for st in inside if all(n in st.get("clients", {}) for n in names)]
    if len(inside) < 2:
        return None
    a, b = inside[0], inside[-1]
    span_s = (b["time_us"] - a["time_us"]) / 1e6
    used = {n: (b["clients"][n]["used_us_total"] - a["clients"][n]["used_us_total"]) / 1e6 for n in names}
    total = sum(used.values())
    n = len(names)
    share = {k: (v / total if total > 0 else 0.0) for k, v in used.items()}
    dev = {k: (s * n - 1) * 100 for k, s in share.items()}
    gaps = {}
    grants = {}
    for name in names:
        times = []
        prev = a["clients"][name]["grants"]
        for st in inside[1:]:
            g = st["clients"][name]["grants"]
            if g > prev:
                times.append(st["time_us"] / 1e6)
            prev = g
        grants[name] = b["clients"][name]["grants"] - a["clients"][name]["grants"]
        edges = [a["time_us"] / 1e6] + times + [b["time_us"] / 1e6]
        gaps[name] = max(y - x for x, y in zip(edges, edges[1:]))
    worst_dev = max(dev, key=lambda k: abs(dev[k]))
    worst_gap = max(gaps, key=gaps.get)
    sorted_gaps = sorted(gaps.values())
    stretches = busy_stretches(inside, names, window_s)
    return {"span_s": round(span_s, 3), "samples": len(inside), "busy": round(total / span_s, 4) if span_s else None,
            "share_min": round(min(share.values()), 5), "share_max": round(max(share.values()), 5),
            "equal_share": round(1 / n, 5), "max_dev_percent": round(abs(dev[worst_dev]), 2),
            "max_dev_client": worst_dev, "longest_gap_s": round(gaps[worst_gap], 3), "longest_gap_client": worst_gap,
            "median_longest_gap_s": round(sorted_gaps[len(sorted_gaps) // 2], 3),
            "busy_per_window_min": round(min(stretches), 4) if stretches else None,
            "busy_per_window_max": round(max(stretches), 4) if stretches else None,
            "grants_per_client_min": min(grants.values()), "grants_per_client_max": max(grants.values()),
            "per_client": {k: {"used_s": round(used[k], 4), "share": round(share[k], 5),
                               "dev_percent": round(dev[k], 2), "longest_gap_s": round(gaps[k], 3),
                               "grants": grants[k]} for k in names}}


def run_one(args, base_quota, min_quota):
    tag = f"base{base_quota:g}-min{min_quota:g}-window{args.window:g}"
    rundir = Path(args.out) / "runs" / tag
    n = args.clients
    req = math.floor(1e6 / n) / 1e6  # REQUESTs must sum to at most 1
    names = [f"c{i:02d}" for i in range(n)]
    warm = max(args.seconds - args.measure_s, 0)
    argv = [args.client, "--mode", "saturate", "--seconds", args.seconds, "--warmup_s", warm,
            "--kernel_us", args.kernel_us, "--sync_every", args.sync_every]
    clients = [S.Client(c, argv, "sat") for c in names]
    quotas = {"base_quota": base_quota, "min_quota": min_quota, "window": args.window}
    rec = {"tag": tag, "base_quota_ms": base_quota, "min_quota_ms": min_quota, "window_ms": args.window,
           "clients": n, "request": req, "status": "failed"}
    t0 = time.monotonic()
    log(f"{tag}: starting the backend with {n} clients (REQUEST {req}, LIMIT 1.0)")
    try:
        be = G.Backend(args.build, rundir / "backend", [(c, req, 1.0) for c in names], quotas=quotas).__enter__()
    except RuntimeError as e:
        rec["why"] = "backend did not start: " + S.backend_error(e)
        log(f"{tag}: FAILED: {rec['why']}")
        return rec
    try:
        log(f"{tag}: backend up in {time.monotonic() - t0:.1f} s; starting {n} clients")
        go, notes = S.run_group(rundir, clients, env_extra=args.base_env, backend=be, build=args.build,
                                ready_timeout=180, run_seconds=args.seconds,
                                run_grace=n * base_quota / 1000.0 + 30, sample_every=0.1)
    finally:
        be.__exit__(None, None, None)
    S.save_samples(be, rundir / "backend" / "stats-samples.jsonl")
    rec["seconds_taken"] = round(time.monotonic() - t0, 1)
    rec["notes"] = notes
    bad = [c for c in clients if c.rc != 0 or not c.result]
    rec["failed_clients"] = {c.name: f"rc {c.rc}: {c.err_tail.strip()[-200:]}" for c in bad}
    a = analyse(be.samples, names, go + args.seconds - args.measure_s, go + args.seconds, args.window / 1000.0)
    rec["schd"] = a
    kps = [c.result["kernels_per_s"] for c in clients if c.result]
    if kps:
        rec["client_kernels_per_s_min"] = round(min(kps), 1)
        rec["client_kernels_per_s_max"] = round(max(kps), 1)
        rec["clients_busy"] = round(sum(kps) * args.kernel_us / 1e6, 4)
    if a is None:
        rec["why"] = "fewer than two gem-schd stats samples over the measured period"
    elif bad:
        rec["why"] = f"{len(bad)} client(s) failed, e.g. " + next(iter(rec["failed_clients"].items()))[1]
    else:
        rec["status"] = "ok"
    if a:
        rec["every_window_granted"] = a["longest_gap_s"] <= args.window / 1000.0
    sec = SER.shares_per_second(be.samples, names, go + args.seconds - args.measure_s, go + args.seconds)
    if sec:
        rec["per_second"] = {"busy": [round(sum(v.values()), 4) for _, v in sec],
                             "clients_served": [sum(1 for x in v.values() if x > 0) for _, v in sec],
                             "share_max": [round(max(v.values()), 4) for _, v in sec]}
        rec["plot"] = SER.write_plot(SER.plot_rows(sec, {c: req for c in names}), rundir / "series.png",
                                     f"{tag}: share of GPU time per second")
    log(f"{tag}: " + summary(rec, args) + f" ({rec['seconds_taken']} s)")
    for x in series_lines(rec):
        log("  " + x)
    return rec


def series_lines(rec):
    """The run's per-second series (issue 19): GPU busy (charged / wall), clients granted in the second,
    the largest share; the per-client shares are in the CSV for gemctl plot."""
    p = rec.get("per_second")
    if not p:
        return []
    return [SER.line("busy per second (gem-schd)", p["busy"], "{:.3f}"),
            SER.line("clients served per second", p["clients_served"], "{:d}"),
            SER.line("largest share per second", p["share_max"], "{:.3f}")] + ([rec["plot"]] if rec.get("plot") else [])


def summary(rec, args):
    a = rec.get("schd")
    if not a:
        return f"{rec['status'].upper()}: {rec.get('why', '')}"
    s = (f"busy {a['busy']:.3f} (gem-schd), {rec.get('clients_busy', float('nan')):.3f} (clients); share vs equal: "
         f"max deviation {a['max_dev_percent']:.1f}% ({a['max_dev_client']}); longest gap without a grant "
         f"{a['longest_gap_s']:.2f} s ({a['longest_gap_client']}; median client {a['median_longest_gap_s']:.2f} s) "
         f"vs window {args.window / 1000:.1f} s: {'every client granted in every window' if rec['every_window_granted'] else 'NOT every window'}")
    if rec["status"] != "ok":
        s += f" [{rec['status']}: {rec.get('why', '')}]"
    if rec.get("notes"):
        s += f" [{'; '.join(rec['notes'])}]"
    return s


def table(recs, args):
    w = 24
    lines = [f"{args.clients} saturating clients ({args.kernel_us:.0f} us kernels, sync every {args.sync_every}) at "
             f"REQUEST 1/{args.clients}, LIMIT 1.0; window {args.window:g} ms; last {args.measure_s:g} s of "
             f"{args.seconds:g} s; gem-schd stats every 0.5 s (gaps +-0.5 s)", ""]
    lines.append(f"{'':40}" + "".join(f"{r['tag'].split('-window')[0]:>{w}}" for r in recs))

    def row(label, fn):
        vals = []
        for r in recs:
            a = r.get("schd")
            try:
                vals.append(fn(r, a) if a else r["status"])
            except (KeyError, TypeError):
                vals.append("-")
        lines.append(f"{label:40}" + "".join(f"{v:>{w}}" for v in vals))

    row("GPU busy (gem-schd charged / wall)", lambda r, a: f"{a['busy']:.3f}")
    row("GPU busy (clients' kernels)", lambda r, a: f"{r['clients_busy']:.3f}")
    row(f"busy per {args.window / 1000:g} s stretch min / max",
        lambda r, a: f"{a['busy_per_window_min']:.3f}/{a['busy_per_window_max']:.3f}")
    row("share min / max (equal)", lambda r, a: f"{a['share_min']:.4f}/{a['share_max']:.4f} ({a['equal_share']:.4f})")
    row("max deviation from equal, %", lambda r, a: f"{a['max_dev_percent']:.1f}")
    row("grants per client min / max", lambda r, a: f"{a['grants_per_client_min']}/{a['grants_per_client_max']}")
    row("longest gap without a grant, s", lambda r, a: f"{a['longest_gap_s']:.2f}")
    row("median client's longest gap, s", lambda r, a: f"{a['median_longest_gap_s']:.2f}")
    row(f"granted in every {args.window / 1000:g} s stretch", lambda r, a: "yes" if r["every_window_granted"] else "NO")
    row("client kernels/s min / max",
        lambda r, a: f"{r['client_kernels_per_s_min']:.0f}/{r['client_kernels_per_s_max']:.0f}")
    row("status", lambda r, a: r["status"])
    for r in recs:
        if r.get("per_second"):
            lines.append(f"per second, {r['tag']}:")
            lines.extend("  " + x for x in series_lines(r))
    for r in recs:
        if r["status"] != "ok" or r.get("notes"):
            lines.append(f"{r['tag']}: {r['status']} {r.get('why', '')} {'; '.join(r.get('notes', []))}".rstrip())
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(G.REPO / "build" / "many_clients"))
    ap.add_argument("--build", default=str(G.REPO / "build"), help="build folder with bin/ and lib/ (default %(default)s)")
    ap.add_argument("--bindir", default=None, help="folder with latency_client (default BUILD/gpu-bench)")
    ap.add_argument("--clients", type=int, default=None, help="number of clients (default 64; 8 with --fake)")
    ap.add_argument("--seconds", type=float, default=36, help="run of every client (default %(default)s)")
    ap.add_argument("--measure_s", type=float, default=30, help="measured: the last this many seconds (default %(default)s)")
    ap.add_argument("--window", type=float, default=4000, help="gem-schd --window, ms (default %(default)s)")
    ap.add_argument("--quotas", default="50:50,250:100",
                    help="runs, comma list of BASE_QUOTA:MIN_QUOTA in ms (default %(default)s)")
    ap.add_argument("--kernel_us", type=float, default=100)
    ap.add_argument("--sync_every", type=int, default=20)
    ap.add_argument("--plan", action="store_true", help="print the runs, run nothing")
    ap.add_argument("--fake", action="store_true", help="CPU dry run against the stand-in driver")
    args = ap.parse_args(argv)
    if args.clients is None:
        args.clients = 8 if args.fake else 64
    if not 1 <= args.clients <= 1000:
        ap.error("--clients must be 1..1000")
    if args.measure_s > args.seconds:
        ap.error("--measure_s is longer than --seconds")
    try:
        args.quota_list = [tuple(int(x) for x in q.split(":")) for q in args.quotas.split(",") if q]
        if any(len(q) != 2 or q[1] > q[0] or q[1] < 1 for q in args.quota_list):
            raise ValueError
    except ValueError:
        ap.error("--quotas: BASE:MIN pairs of whole ms with 1 <= MIN <= BASE")
    args.build = str(Path(args.build).resolve())
    args.bindir = Path(args.bindir or Path(args.build) / "gpu-bench").resolve()
    args.out = str(Path(args.out).resolve())
    args.client = args.bindir / ("latency_client_standin" if args.fake else "latency_client")
    args.base_env = S.standin_env(args.build) if args.fake else {}
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.plan:
        for bq, mq in args.quota_list:
            print(f"  {args.clients} clients, --base_quota {bq} --min_quota {mq} --window {args.window:g}: "
                  f"~{args.seconds + 8 + args.clients * bq / 2000:.0f} s")
        return 0
    errs = []
    if not args.client.is_file():
        errs.append(f"{args.client} missing: make -C bench {'latency-standin' if args.fake else 'latency NVCC=/usr/local/cuda/bin/nvcc'} OUT={args.bindir}")
    for p in (Path(args.build) / "bin" / "gem-schd", Path(args.build) / "bin" / "gem-pmgr",
              Path(args.build) / "lib" / "libgemhook.so.1"):
        if not p.is_file():
            errs.append(f"{p} missing: make")
    if errs:
        for e in errs:
            print("many_clients: " + e, file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = "stand-in driver (--fake)" if args.fake else (G.have_gpu() or "no GPU found by nvidia-smi")
    log(f"many_clients: {device}; {args.clients} clients; runs {args.quotas}; out {out}")
    recs = [run_one(args, bq, mq) for bq, mq in args.quota_list]
    text = table(recs, args)
    print("\n" + text, flush=True)
    (out / "many_clients.txt").write_text(f"many_clients: {device}\n" + text + "\n")
    doc = {"device": device, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                      if k != "base_env"}, "runs": recs, "elapsed_s": round(time.monotonic() - S.T0, 1)}
    (out / "many_clients.json").write_text(json.dumps(doc, indent=1) + "\n")
    log(f"wrote {out / 'many_clients.txt'} and {out / 'many_clients.json'}")
    return 0 if all(r["status"] == "ok" for r in recs) else 1


if __name__ == "__main__":
    sys.exit(main())
