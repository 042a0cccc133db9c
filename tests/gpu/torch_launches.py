#!/usr/bin/env python3
"""PyTorch interception probe: N in-place elementwise ops (x.add_(1), one kernel each on a contiguous
float32 tensor) inside torch.profiler; prints JSON with N and the number of CUDA kernels the profiler
saw. tests/gpu/gpu_checks.py runs it under the hook twice (two values of N) and compares the hook's
launch counters with these counts.

  torch_launches.py --ops 1000"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=1000)
    args = ap.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    dev = torch.device("cuda")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        x = torch.ones(1 << 20, device=dev)  # one fill kernel
        for _ in range(args.ops):
            x.add_(1.0)
        torch.cuda.synchronize()
    kernels = 0
    names = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            n = e.name
            if n.startswith("Memcpy") or n.startswith("Memset"):
                continue
            kernels += 1
            names[n[:80]] = names.get(n[:80], 0) + 1
    kineto = None
    try:  # second opinion straight from the Kineto trace
        kineto = 0
        for e in prof.profiler.kineto_results.events():
            if str(e.device_type()).endswith("CUDA"):
                n = e.name()
                if not (n.startswith("Memcpy") or n.startswith("Memset")):
                    kineto += 1
    except Exception:
        kineto = None
    if kernels == 0 and kineto:
        kernels = kineto
    ok = float(x[0].item()) == 1.0 + args.ops
    print(json.dumps({"ops": args.ops, "profiler_kernels": kernels, "kineto_kernels": kineto,
                      "kernel_names": names, "value_ok": ok,
                      "torch": torch.__version__}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
