#!/usr/bin/env python3
"""What the hook's GPU_MEM accounting costs an allocation (issue 7 target: a 2 MiB cudaMalloc at
most 5 % slower): fake-mem-app times N cuMemAlloc_v2 + cuMemFree_v2 pairs of SIZE through the driver
reached as the CUDA runtime reaches it, without the hook and under it (a client with GPU_MEM 2GiB,
so every allocation is counted and leased), in the order ABBAABBA, and prints both medians and
their ratio as one JSON line. The baseline is measured in the same run.

  alloc_cost.py --build BUILD [--size 2M] [--pairs 3000] [--runs 8]

On a GPU machine fake-mem-app finds the real libcuda.so.1; on the stand-in (LD_LIBRARY_PATH with
build/fake-cuda) it measures the hook's own cost against a near-free driver."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gemrun as G  # noqa: E402


def measure(build, be, client, size="2M", pairs=3000, runs=8, run=None):
    """Returns {"plain": [...], "hooked": [...], "median_plain", "median_hooked", "ratio"} (ns per pair)."""
    app = [Path(build) / "fake-cuda" / "fake-mem-app", f"bench_alloc:{size}:{pairs}"]
    plain, hooked = [], []
    for order in ("ABBA" * ((runs + 3) // 4))[:runs]:
        argv = app if order == "A" else G.hooked(build, client, be.port_of(client), app)
        rc, out = run(argv) if run else G.run_logged(argv, be.dir, f"alloc-{order}")
        v = (G.last_json_line(out) or {}).get("ns_per_pair")
        (plain if order == "A" else hooked).append(v)
    ok = all(v for v in plain + hooked)
    mp, mh = (G.median(plain), G.median(hooked)) if ok else (None, None)
    return {"size": size, "pairs": pairs, "plain": plain, "hooked": hooked, "median_plain": mp, "median_hooked": mh,
            "ratio": round(mh / mp, 4) if ok else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(Path(__file__).resolve().parents[1] / "build"))
    ap.add_argument("--size", default="2M")
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--out", default="/tmp/gem-alloc-cost")
    a = ap.parse_args()
    with G.Backend(a.build, a.out, [("lim", 1.0, 1.0, "2GiB")]) as be:
        r = measure(a.build, be, "lim", a.size, a.pairs, a.runs)
    print(json.dumps(r))
    return 0 if r["ratio"] else 1


if __name__ == "__main__":
    sys.exit(main())
