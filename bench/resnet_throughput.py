#!/usr/bin/env python3
"""ResNet-50 training throughput with and without the hook, in the same run.

  resnet_throughput.py --build BUILD --out DIR [--seconds 20] [--batch 64]

Runs tests/gpu/train_resnet.py twice on the GPU: plain (no LD_PRELOAD), then through
tools/launch-command.py under gem-schd + gem-pmgr with a single client (REQUEST 1.0, LIMIT 1.0, so the
token is held, uncontended). Reports images/s of both (steady state: iterations ending after the first
2 s) and the difference in percent. Target: the hook costs < 1% of throughput.
Writes DIR/resnet_throughput.json and prints a line of text."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gemrun as G  # noqa: E402

TRAIN = G.REPO / "tests" / "gpu" / "train_resnet.py"
TARGET_PERCENT = 1.0


def steady_ips(res, skip=2.0):
    a, b = res["t_start"] + skip, res["t_end"]
    n = sum(1 for t in res["iter_ends"] if a <= t <= b)
    return n * res["batch"] / (b - a)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(G.REPO / "build"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    worker = [G.PY, TRAIN, "--seconds", args.seconds, "--batch", args.batch]

    rc, _ = G.run_logged(worker + ["--out", out / "resnet_plain.json"], out, "resnet_plain",
                         timeout=args.seconds + 240)
    plain = G.read_json(out / "resnet_plain.json")
    if rc != 0 or not plain:
        print("resnet_throughput: plain run failed:\n" + G.tail(out / "resnet_plain.err"), file=sys.stderr)
        return 1
    with G.Backend(args.build, out / "resnet_backend", [("bench", 1.0, 1.0)]) as be:
        rc, _ = G.run_logged(G.hooked(args.build, "bench", be.port_of("bench"),
                                      worker + ["--out", out / "resnet_hooked.json"]),
                             out, "resnet_hooked", timeout=args.seconds + 240)
    hooked = G.read_json(out / "resnet_hooked.json")
    if rc != 0 or not hooked:
        print("resnet_throughput: hooked run failed:\n" + G.tail(out / "resnet_hooked.err"), file=sys.stderr)
        return 1
    p, h = steady_ips(plain), steady_ips(hooked)
    diff = (p - h) / p * 100
    res = {"batch": args.batch, "seconds": args.seconds, "plain_images_per_s": round(p, 2),
           "hooked_images_per_s": round(h, 2), "cost_percent": round(diff, 2), "target_percent": TARGET_PERCENT,
           "ok": diff < TARGET_PERCENT, "device": plain.get("device")}
    (out / "resnet_throughput.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"ResNet-50 training, batch {args.batch}: {p:.1f} images/s plain, {h:.1f} with the hook: "
          f"cost {diff:+.2f}% (target < {TARGET_PERCENT}%)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
