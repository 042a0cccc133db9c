#!/usr/bin/env python3
"""One GPU-memory client for the GPU_MEM checks (docs/memory.md): allocates STEP MiB at a time with a
framework's own allocator until the framework raises its out-of-memory error (or MAX MiB are held),
then checks the process goes on (frees, allocates again), and prints one JSON line.

  mem_client.py --mode torch|cupy|cupy_managed [--step_mib 256] [--max_mib 4096] [--hold_s 0]
                [--ready_file F] [--go_file F]

torch: PyTorch's caching allocator as PYTORCH_CUDA_ALLOC_CONF configures it (native,
expandable_segments:True, backend:cudaMallocAsync); cupy: CuPy's default memory pool;
cupy_managed: a CuPy pool over cudaMallocManaged. --hold_s keeps what was allocated for that long
(for the two-process check); --go_file waits for that file before allocating."""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=["torch", "cupy", "cupy_managed"])
    ap.add_argument("--step_mib", type=int, default=256)
    ap.add_argument("--max_mib", type=int, default=4096)
    ap.add_argument("--hold_s", type=float, default=0)
    ap.add_argument("--ready_file")
    ap.add_argument("--go_file")
    a = ap.parse_args()
    res = {"mode": a.mode, "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")}
    held = []
    step = a.step_mib << 20
    if a.mode == "torch":
        import torch
        torch.cuda.init()
        free, total = torch.cuda.mem_get_info()
        res["mem_get_info_before"] = [free, total]
        oom_type = torch.OutOfMemoryError

        def alloc():
            held.append(torch.empty(step, dtype=torch.uint8, device="cuda"))
    else:
        import cupy
        if a.mode == "cupy_managed":
            cupy.cuda.set_allocator(cupy.cuda.MemoryPool(cupy.cuda.malloc_managed).malloc)
        free, total = cupy.cuda.runtime.memGetInfo()
        res["mem_get_info_before"] = [free, total]
        oom_type = cupy.cuda.memory.OutOfMemoryError

        def alloc():
            x = cupy.empty(step, dtype=cupy.uint8)
            x.fill(1)  # touch it (managed memory is placed on first touch)
            held.append(x)
    if a.go_file:
        while not os.path.exists(a.go_file):
            time.sleep(0.02)
    res["error"] = None
    try:
        while len(held) * a.step_mib < a.max_mib:
            alloc()
    except oom_type as e:
        res["error"] = type(e).__module__ + "." + type(e).__name__
        res["error_text"] = str(e).splitlines()[0][:300]
    except Exception as e:  # any other error is a failure of the check
        res["error"] = "other: " + type(e).__module__ + "." + type(e).__name__
        res["error_text"] = str(e)[:300]
    res["allocated_mib"] = len(held) * a.step_mib
    if a.mode == "torch":
        res["mem_get_info_full"] = list(torch.cuda.mem_get_info())
    else:
        res["mem_get_info_full"] = list(cupy.cuda.runtime.memGetInfo())
    if a.ready_file:
        open(a.ready_file, "w").close()
    time.sleep(a.hold_s)
    # The process goes on: give half back and allocate again.
    del held[len(held) // 2:]
    if a.mode == "torch":
        torch.cuda.empty_cache()
    else:
        cupy.get_default_memory_pool().free_all_blocks()
    try:
        alloc()
        res["goes_on"] = True
    except Exception as e:
        res["goes_on"] = False
        res["goes_on_error"] = str(e)[:200]
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(main())
