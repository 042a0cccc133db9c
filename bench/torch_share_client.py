#!/usr/bin/env python3
"""PyTorch client of bench/share_latency.py (scenario e): ResNet-50 training or batch-1 inference.

  torch_share_client.py --mode train [--batch 64] [--seconds 15] [--warmup_s 2]
  torch_share_client.py --mode infer [--rate 20] [--seconds 15] [--warmup_s 2]
  common: [--ready_file PATH --go_file PATH] [--name LABEL]

train: torchvision resnet50(weights=None), SGD, one fixed random batch on the GPU (synthetic data);
  synchronises after every iteration; images_per_s: iterations that end in the fixed period
  [start + --warmup_s, start + --seconds] over its length; images_per_s_total over the whole run.
infer: resnet50 in eval mode under torch.inference_mode(); request i is scheduled at start + i / --rate
  (fixed schedule, never drifting); each request copies one 1x3x224x224 image from pinned host memory,
  runs the model and brings the top-1 class back to the host (.item()); latency = that moment - the
  scheduled time (time.monotonic()). Requests scheduled in the first --warmup_s are dropped from the
  statistics; requests not served 5 s after the end are "unfinished".
Start barrier as bench/latency_client.cu: after model set-up and warm-up iterations the client creates
--ready_file, then waits for --go_file to hold a time.monotonic() start time.
Prints one JSON line on stdout at the end."""
import argparse
import json
import math
import os
import sys
import time


def barrier(args):
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    if not args.go_file:
        return time.monotonic(), False
    give_up = time.monotonic() + args.go_timeout_s
    while True:
        try:
            with open(args.go_file) as f:
                t = float(f.read().split()[0])
            now = time.monotonic()
            if now < t:
                time.sleep(t - now)
            return max(t, now), False
        except (OSError, ValueError, IndexError):
            pass
        if time.monotonic() > give_up:
            return time.monotonic(), True
        time.sleep(0.002)


def pct(sorted_v, q):
    if not sorted_v:
        return 0.0
    k = min(max(int(math.ceil(q * len(sorted_v))), 1), len(sorted_v))
    return sorted_v[k - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["train", "infer"], required=True)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--warmup_s", type=float, default=2)
    ap.add_argument("--batch", type=int, default=64, help="training batch (default %(default)s)")
    ap.add_argument("--rate", type=float, default=20, help="inference requests per second (default %(default)s)")
    ap.add_argument("--warmup_iters", type=int, default=None,
                    help="iterations before the barrier (default: 5 train, 20 infer)")
    ap.add_argument("--ready_file")
    ap.add_argument("--go_file")
    ap.add_argument("--go_timeout_s", type=float, default=600)
    ap.add_argument("--name", default="")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--latencies_out")
    args = ap.parse_args()

    import torch
    import torchvision

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    model = torchvision.models.resnet50(weights=None).to(dev)
    head = {"pid": os.getpid(), "name": args.name, "mode": args.mode, "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0) if cuda else str(dev)}

    if args.mode == "train":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        x = torch.randn(args.batch, 3, 224, 224, device=dev)
        y = torch.randint(0, 1000, (args.batch,), device=dev)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()

        for _ in range(5 if args.warmup_iters is None else args.warmup_iters):
            step()
        sync()
        t_ready = time.monotonic()
        start, go_timeout = barrier(args)
        end = start + args.seconds
        ends = []
        while True:
            step()
            sync()
            now = time.monotonic()
            ends.append(now)
            if now >= end:
                break
        # The fixed period [start + warmup, end], the same for every client of one go file.
        a = start + min(args.warmup_s, args.seconds)
        steady = [t for t in ends if a < t <= end]
        ips = len(steady) * args.batch / (end - a) if end > a else 0.0
        res = dict(head, batch=args.batch, iterations=len(ends), start_mono=start, end_mono=ends[-1],
                   waited_for_go_s=round(start - t_ready, 3), go_timeout=go_timeout, seconds=args.seconds,
                   warmup_s=args.warmup_s, images_per_s=round(ips, 2),
                   images_per_s_total=round(len(ends) * args.batch / (ends[-1] - start), 2),
                   measured_iterations=len(steady))
    else:
        model.eval()
        x_host = torch.randn(1, 3, 224, 224)
        if cuda:
            x_host = x_host.pin_memory()

        def request():
            with torch.inference_mode():
                return int(model(x_host.to(dev, non_blocking=True)).argmax(1).item())

        for _ in range(20 if args.warmup_iters is None else args.warmup_iters):
            request()
        sync()
        t_ready = time.monotonic()
        start, go_timeout = barrier(args)
        period = 1.0 / args.rate
        end, give_up = start + args.seconds, start + args.seconds + 5.0
        lat, every = [], []
        scheduled = served = unfinished = 0
        max_late = 0.0
        i = 0
        while True:
            due = start + i * period
            i += 1
            if due >= end:
                break
            scheduled += 1
            now = time.monotonic()
            if now > give_up:
                unfinished += 1
                continue
            if now < due:
                time.sleep(due - now)
            max_late = max(max_late, time.monotonic() - due)
            request()
            ms = (time.monotonic() - due) * 1000.0
            served += 1
            every.append(ms)
            if due >= start + args.warmup_s:
                lat.append(ms)
        if args.latencies_out:
            with open(args.latencies_out, "w") as f:
                f.write("".join(f"{v:.4f}\n" for v in every))
        s = sorted(lat)
        res = dict(head, rate=args.rate, start_mono=start, end_mono=time.monotonic(),
                   waited_for_go_s=round(start - t_ready, 3), go_timeout=go_timeout, seconds=args.seconds,
                   warmup_s=args.warmup_s, scheduled=scheduled, served=served, unfinished=unfinished,
                   count=len(s), p50_ms=round(pct(s, 0.5), 4), p90_ms=round(pct(s, 0.9), 4),
                   p99_ms=round(pct(s, 0.99), 4), max_ms=round(s[-1], 4) if s else 0.0,
                   mean_ms=round(sum(s) / len(s), 4) if s else 0.0, min_ms=round(s[0], 4) if s else 0.0,
                   max_late_launch_ms=round(max_late * 1000.0, 4))
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
