#!/usr/bin/env python3
"""PyTorch client for tests/gpu/two_gpus.py (issue 12); prints one JSON line. Modes:
  alternate --seconds S   matmul loop on cuda:0 and cuda:1 alternately (one process, both GPUs)
  ddp --seconds S         one rank of a DDP job over NCCL (RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT in the
                          environment; device cuda:RANK), a small conv net, stops together by an all_reduce
  mem                     allocate 64 MiB blocks on cuda:0 until torch.OutOfMemoryError (keeping them), then on
                          cuda:1 the same; MiB reached and torch.cuda.mem_get_info per device
Times are time.monotonic() (CLOCK_MONOTONIC, as gem-schd's --stats time_us)."""
import argparse
import datetime
import json
import os
import sys
import time

import torch

OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def alternate(seconds):
    devs = [torch.device("cuda:0"), torch.device("cuda:1")]
    xs = [torch.randn(2048, 2048, device=d) for d in devs]
    for d, x in zip(devs, xs):  # warm up (cuBLAS handles, first kernels)
        y = x @ x
        torch.cuda.synchronize(d)
    iters = [0, 0]
    t0 = time.monotonic()
    end = t0 + seconds
    k = 0
    while time.monotonic() < end:
        i = k % 2
        xs[i] = torch.tanh(xs[i] @ xs[i] * 1e-3)
        iters[i] += 1
        k += 1
        if k % 16 == 0:  # keep the queues bounded on both devices
            for d in devs:
                torch.cuda.synchronize(d)
    for d in devs:
        torch.cuda.synchronize(d)
    t1 = time.monotonic()
    return {"mode": "alternate", "t_start": t0, "t_end": t1, "iters": {"0": iters[0], "1": iters[1]},
            "iters_per_s": {str(i): iters[i] / (t1 - t0) for i in range(2)}}


def nccl_version():
    try:
        v = torch.cuda.nccl.version()
        return ".".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
    except Exception as e:  # only informative
        return f"? ({e})"


def ddp(seconds):
    import torch.distributed as dist
    import torch.nn as nn
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    torch.cuda.set_device(rank)
    dev = torch.device(f"cuda:{rank}")
    t_init = time.monotonic()
    dist.init_process_group("nccl", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60),
                            device_id=dev)
    init_s = time.monotonic() - t_init
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)).to(dev)
    model = nn.parallel.DistributedDataParallel(model, device_ids=[rank])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(64, 3, 64, 64, device=dev)
    y = torch.randint(0, 10, (64,), device=dev)
    lossf = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize(dev)
    dist.barrier()
    t0 = time.monotonic()
    end = t0 + seconds
    steps = 0
    flag = torch.zeros(1, device=dev)
    while True:
        loss = step()
        steps += 1
        if steps % 10 == 0:  # every rank stops at the same step
            flag.fill_(1.0 if time.monotonic() >= end else 0.0)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() > 0:
                break
    torch.cuda.synchronize(dev)
    t1 = time.monotonic()
    out = {"mode": "ddp", "rank": rank, "device": rank, "t_start": t0, "t_end": t1, "steps": steps,
           "steps_per_s": steps / (t1 - t0), "init_s": round(init_s, 2), "loss": float(loss.item()),
           "nccl": nccl_version()}
    dist.destroy_process_group()
    return out


def mem():
    res = {"mode": "mem", "devices": {}}
    held = []
    blk = 64 << 20
    for i in range(torch.cuda.device_count())[:2]:
        dev = torch.device(f"cuda:{i}")
        n = 0
        err = None
        while n < 64:  # at most 4 GiB per device
            try:
                held.append(torch.empty(blk, dtype=torch.uint8, device=dev))
                n += 1
            except OOM as e:
                err = str(e).splitlines()[0][:200]
                break
        free, total = torch.cuda.mem_get_info(dev)
        res["devices"][str(i)] = {"mib_reached": n * 64, "oom": err is not None, "error": err,
                                  "mem_get_info_total_mib": total >> 20, "mem_get_info_free_mib": free >> 20,
                                  "allocated_mib": torch.cuda.memory_allocated(dev) >> 20}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["alternate", "ddp", "mem"])
    ap.add_argument("--seconds", type=float, default=15)
    a = ap.parse_args()
    if torch.cuda.device_count() < 2:
        print(json.dumps({"error": f"{torch.cuda.device_count()} CUDA device(s) visible, need 2"}), flush=True)
        return 1
    r = alternate(a.seconds) if a.mode == "alternate" else ddp(a.seconds) if a.mode == "ddp" else mem()
    r["pid"] = os.getpid()
    r["torch"] = torch.__version__
    print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
