#!/usr/bin/env python3
"""ResNet-50 training worker for the GPU checks and bench/resnet_throughput.py.

  train_resnet.py --seconds 45 [--batch 64] [--warmup 5] [--out result.json]

torchvision resnet50(weights=None), a fixed random batch, SGD; runs --warmup iterations, then trains
for --seconds, synchronising after every iteration and recording when each one ended
(time.monotonic(), i.e. CLOCK_MONOTONIC, comparable with gem-schd's --stats time_us).
Prints (and writes to --out) one JSON line with images/s and the iteration end times."""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=45)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--ends_file", help="append each iteration's end time (one line each) as it happens, "
                    "so a process killed mid-run still leaves its timeline")
    ap.add_argument("--stop_file", help="also stop once this file exists (looked for after each iteration)")
    args = ap.parse_args()

    import torch
    import torchvision

    torch.backends.cudnn.benchmark = False
    dev = torch.device("cuda")
    model = torchvision.models.resnet50(weights=None).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(args.batch, 3, 224, 224, device=dev)
    y = torch.randint(0, 1000, (args.batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t_start = time.monotonic()
    ends = []
    ends_f = open(args.ends_file, "a", buffering=1) if args.ends_file else None
    while True:
        step()
        torch.cuda.synchronize()
        now = time.monotonic()
        ends.append(now)
        if ends_f:
            ends_f.write(f"{now:.6f}\n")
        if now - t_start >= args.seconds or (args.stop_file and os.path.exists(args.stop_file)):
            break
    t_end = ends[-1]
    res = {"pid": os.getpid(), "batch": args.batch, "iterations": len(ends), "t_start": t_start, "t_end": t_end,
           "seconds": t_end - t_start, "images_per_s": len(ends) * args.batch / (t_end - t_start),
           "iter_ends": [round(t, 6) for t in ends], "torch": torch.__version__,
           "device": torch.cuda.get_device_name(0)}
    line = json.dumps(res)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    short = {k: v for k, v in res.items() if k != "iter_ends"}
    print(json.dumps(short), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
