#!/usr/bin/env python3
"""One job of bench/um_oversub.py (and of bench/um_switch.py): prints one JSON line at the end.

  um_worker.py --kind detect --model fasterrcnn_resnet50_fpn --batch 8 --height 800 --width 1216 \
               --sleep 0.5 --warmup 2 --seconds 40 [--ends_file F] [--out F]
  um_worker.py --kind touch --alloc_gib 4 --seconds 20 [--sleep 0]
  um_worker.py ... --mock        no torch, no GPU: simulated iterations (for --dry_run)

detect: a torchvision detection model with random weights (weights=None, weights_backbone=None) in
eval mode, torch.no_grad(); one iteration = model(batch of random images) + torch.cuda.synchronize(),
then --sleep seconds (not part of the iteration's latency, part of the job's it/s). --warmup
iterations first (untimed), then iterations until --seconds have passed since the first timed one.
touch: one tensor of --alloc_gib GiB; one iteration = x.add_(1) over all of it + synchronize (every
page used on the GPU), then --sleep.

Times are time.monotonic() (CLOCK_MONOTONIC, comparable between processes). Each iteration's end is
appended to --ends_file as it happens, so a job killed mid-run still leaves its timeline. The JSON
line: iterations, it_per_s (timed iterations / timed span, sleeps included), mean_infer_s,
peak/mean torch memory (max_memory_reserved, max_memory_allocated, memory_reserved sampled at each
iteration's end), t_start, t_end, ends."""
import argparse
import json
import os
import signal
import sys
import time

GIB = 1 << 30


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", default="job", help="name printed in the JSON line")
    ap.add_argument("--kind", choices=["detect", "touch"], default="detect")
    ap.add_argument("--model", default="fasterrcnn_resnet50_fpn",
                    help="a torchvision.models.detection builder (fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn, "
                         "retinanet_resnet50_fpn, ...)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--width", type=int, default=1216)
    ap.add_argument("--alloc_gib", type=float, default=4.0, help="touch: size of the tensor")
    ap.add_argument("--sleep", type=float, default=0.5, help="seconds between iterations")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    ap.add_argument("--seconds", type=float, default=40, help="timed part; 0 = warm-up only (memory probe)")
    ap.add_argument("--ends_file")
    ap.add_argument("--out", help="also write the JSON line here")
    ap.add_argument("--device", default="cuda", help="cpu: run the model code without a GPU (no memory figures)")
    ap.add_argument("--mock", action="store_true", help="no torch, no GPU: simulated iterations")
    ap.add_argument("--mock_infer_s", type=float, default=0.05, help="mock: seconds per iteration")
    ap.add_argument("--mock_mem_file", help="mock: write the simulated MiB in use here (read by the mock nvidia-smi)")
    ap.add_argument("--mock_first_kernel_us", type=float,
                    help="mock: write a made-up hook stats file ($GEMINI_STATS_FILE) with this grant-to-kernel time")
    return ap.parse_args(argv)


class Mock:
    """Stands in for torch + the model: sleeps instead of computing, reports a made-up memory use."""

    def __init__(self, args):
        self.args = args
        if args.kind == "touch":
            self.bytes = int(args.alloc_gib * GIB)
        else:
            self.bytes = int(args.batch * args.height * args.width * 3 * 4 * 40)  # ~ 40 x the input
        self.write_mem(self.bytes)

    def write_mem(self, n):
        if self.args.mock_mem_file:
            try:
                with open(self.args.mock_mem_file, "w") as f:
                    f.write(str(n >> 20))
            except OSError:
                pass

    def step(self):
        time.sleep(self.args.mock_infer_s)

    def mem(self):
        return {"reserved": self.bytes, "max_reserved": self.bytes, "max_allocated": int(self.bytes * 0.8)}

    def device(self):
        return "mock"

    def close(self):
        self.write_mem(0)
        path = os.environ.get("GEMINI_STATS_FILE")
        if path and self.args.mock_first_kernel_us is not None:
            us = self.args.mock_first_kernel_us
            with open(path, "w") as f:
                json.dump({"pid": os.getpid(), "mock": True, "tokens": 10,
                           "first_kernel_after_grant_us": [round(us * (1 + 0.05 * (i % 3)), 1) for i in range(10)]}, f)


class Torch:
    def __init__(self, args):
        import torch
        self.torch = torch
        self.dev = torch.device(args.device)
        self.cuda = self.dev.type == "cuda"
        torch.backends.cudnn.benchmark = False
        if args.kind == "touch":
            n = int(args.alloc_gib * GIB) // 4
            self.x = torch.zeros(n, dtype=torch.float32, device=self.dev)
            self.fn = lambda: self.x.add_(1.0)
        else:
            import torchvision
            builder = getattr(torchvision.models.detection, args.model, None)
            if builder is None:
                raise SystemExit(f"um_worker: torchvision.models.detection has no {args.model}")
            # Resize target = the images' own size, so the batch and image size set the memory.
            size = min(args.height, args.width)
            model = builder(weights=None, weights_backbone=None, min_size=size, max_size=max(args.height, args.width))
            self.model = model.to(self.dev).eval()
            g = torch.Generator(device=self.dev)
            g.manual_seed(0)
            self.images = [torch.rand(3, args.height, args.width, device=self.dev, generator=g) for _ in range(args.batch)]
            self.fn = self.infer
        self.sync()

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def infer(self):
        with self.torch.no_grad():
            return self.model(self.images)

    def step(self):
        self.fn()
        self.sync()

    def mem(self):
        if not self.cuda:
            return {"reserved": 0, "max_reserved": 0, "max_allocated": 0}
        c = self.torch.cuda
        return {"reserved": c.memory_reserved(), "max_reserved": c.max_memory_reserved(),
                "max_allocated": c.max_memory_allocated()}

    def device(self):
        return self.torch.cuda.get_device_name(self.dev) if self.cuda else str(self.dev)

    def close(self):
        pass


class Stop(Exception):
    pass


def on_term(signum, frame):
    raise Stop()


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_term)  # stopped early: still print what was measured
    t_launch = time.monotonic()
    engine = Mock(args) if args.mock else Torch(args)
    t_ready = time.monotonic()
    for _ in range(args.warmup):
        engine.step()
    t_warm = time.monotonic()
    ends, infer_s, reserved = [], [], []
    ends_f = open(args.ends_file, "a", buffering=1) if args.ends_file else None
    t_start = time.monotonic()
    stopped = False
    try:
        while args.seconds > 0:
            a = time.monotonic()
            engine.step()
            now = time.monotonic()
            ends.append(now)
            infer_s.append(now - a)
            reserved.append(engine.mem()["reserved"])
            if ends_f:
                ends_f.write(f"{now:.6f}\n")
            if now - t_start >= args.seconds:
                break
            if args.sleep > 0:
                time.sleep(args.sleep)
    except Stop:
        stopped = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    t_end = ends[-1] if ends else time.monotonic()
    m = engine.mem()
    span = t_end - t_start
    res = {"job": args.job, "kind": args.kind, "model": args.model if args.kind == "detect" else None,
           "batch": args.batch, "height": args.height, "width": args.width,
           "alloc_gib": args.alloc_gib if args.kind == "touch" else None, "sleep": args.sleep,
           "mock": args.mock, "stopped_by_sigterm": stopped, "device": engine.device(), "pid": os.getpid(),
           "iterations": len(ends), "it_per_s": round(len(ends) / span, 4) if ends and span > 0 else None,
           "mean_infer_s": round(sum(infer_s) / len(infer_s), 4) if infer_s else None,
           "startup_s": round(t_ready - t_launch, 3), "warmup_s": round(t_warm - t_ready, 3),
           "peak_reserved_bytes": m["max_reserved"], "peak_allocated_bytes": m["max_allocated"],
           "end_reserved_bytes": m["reserved"],
           "mean_reserved_bytes": int(sum(reserved) / len(reserved)) if reserved else m["reserved"],
           "t_launch": t_launch, "t_start": t_start, "t_end": t_end, "ends": [round(t, 6) for t in ends]}
    engine.close()
    line = json.dumps(res)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
