#!/usr/bin/env python3
"""GPU_MEM on a real GPU (issue 7; docs/memory.md): one command, one JSON summary.

  gpu_mem.py --build BUILD --bin BINDIR --out OUTDIR [--skip_resnet]

BINDIR holds mem_paths (tests/gpu/Makefile). Clients (gem-schd + one gem-pmgr each through
tools/launch-backend.py): "lim" with GPU_MEM 2GiB, "free" without a limit, "big" with 20GiB.
Checks, each a [PASS]/[FAIL] line and a field of OUTDIR/gpu_mem.json:
  - PyTorch (native, expandable_segments:True, backend:cudaMallocAsync), CuPy's default pool and a
    CuPy managed pool allocate 256 MiB steps under "lim" until the framework's own OOM error:
    at most 2 GiB held, torch.cuda.mem_get_info / cupy memGetInfo total = 2 GiB, the process goes on;
  - mem_paths (cudaMalloc, cudaMallocAsync, cudaMallocManaged, cudaMallocPitch, cudaMallocArray,
    cuMemCreate) the same; fake-mem-app on the real driver (VMM, arrays, graph memory, NVML);
  - nvidia-smi run under the hook shows a 2048 MiB total;
  - two processes of "lim" share the 2 GiB; "free" allocates 4 GiB meanwhile;
  - cost: 2 MiB cuMemAlloc_v2 + cuMemFree_v2 pairs without and with the hook (ABBA), and ResNet-50
    images/s under "big" (GPU_MEM 20GiB) against "free" (none).
Never asks for more memory than 4 GiB per process (managed included), far below the card's free memory."""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import alloc_cost  # noqa: E402
import gemrun as G  # noqa: E402

MIB = 1 << 20
LIMIT_MIB = 2048
CHECKS = []


def check(name, ok, detail=""):
    CHECKS.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"  [{'PASS' if ok else 'FAIL'}] {name}" + (f"  ({detail})" if detail and not ok else ""), flush=True)


def run(argv, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([str(a) for a in argv], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def oom_of(error, want):
    """True when `error` (module.Name) is the framework's out-of-memory exception: same class name
    and the same top-level package as `want` (torch re-exports its class under several modules)."""
    return bool(error) and error.split(".")[-1] == want.split(".")[-1] and error.split(".")[0] == want.split(".")[0]


def frameworks(build, be, res):
    client = [G.PY, REPO / "tests" / "gpu" / "mem_client.py"]
    cases = [("torch_native", "torch", ""), ("torch_expandable", "torch", "expandable_segments:True"),
             ("torch_cudaMallocAsync", "torch", "backend:cudaMallocAsync"), ("cupy_pool", "cupy", ""),
             ("cupy_managed", "cupy_managed", "")]
    want = {"torch": "torch.OutOfMemoryError", "cupy": "cupy.cuda.memory.OutOfMemoryError",
            "cupy_managed": "cupy.cuda.memory.OutOfMemoryError"}
    for name, mode, conf in cases:
        env = {"PYTORCH_CUDA_ALLOC_CONF": conf} if conf else {}
        rc, out, err = run(G.hooked(build, "lim", be.port_of("lim"), client + ["--mode", mode]), env)
        r = (json_lines(out) or [{}])[-1]
        res[name] = r or {"rc": rc, "stderr": err[-800:]}
        total = (r.get("mem_get_info_before") or [0, 0])[1]
        check(f"{name}: {r.get('error')} after {r.get('allocated_mib')} MiB, total {total / MIB:.0f} MiB, goes on",
              oom_of(r.get("error"), want[mode]) and LIMIT_MIB - 768 <= r.get("allocated_mib", -1) <= LIMIT_MIB and total == LIMIT_MIB * MIB
              and r.get("goes_on") is True, json.dumps(r)[:400] + err[-400:])


def native_paths(build, bindir, be, res):
    rc, out, err = run(G.hooked(build, "lim", be.port_of("lim"), [Path(bindir) / "mem_paths", "256", "4096"]))
    rows = json_lines(out)
    res["mem_paths"] = rows or {"rc": rc, "stderr": err[-800:]}
    for r in rows:
        check(f"{r['path']}: {r['error']} after {r['held_mib']} MiB, total {r['mem_get_info'][1] / MIB:.0f} MiB",
              r["error"] == "cudaErrorMemoryAllocation" and LIMIT_MIB - 512 <= r["held_mib"] <= LIMIT_MIB
              and r["mem_get_info"][1] == LIMIT_MIB * MIB, json.dumps(r))
    if len(rows) != 6:
        check("mem_paths ran every path", False, err[-800:])
    steps = ["info", "alloc:1G", "vmm:512M", "array:4096x4096:f32x4", "graph_mem:64M", "alloc:1G", "nvml_info",
             "free_all", "sync", "info", "graph_trim", "info"]
    rc, out, err = run(G.hooked(build, "lim", be.port_of("lim"), [Path(build) / "fake-cuda" / "fake-mem-app"] + steps))
    rows = json_lines(out)
    res["fake_mem_app_real_driver"] = rows or {"rc": rc, "stderr": err[-800:]}
    by = {r.get("step"): r for r in rows}
    # Two steps are named alloc:1G: the first must succeed and the second (rows[5]) be refused.
    ok = (len(rows) > 5 and rows[1].get("result") == "CUDA_SUCCESS" and rows[5].get("result") == "CUDA_ERROR_OUT_OF_MEMORY"
          and by.get("nvml_info", {}).get("v1", {}).get("total") == LIMIT_MIB * MIB
          and len(rows) == 12 and rows[9].get("free") == LIMIT_MIB * MIB - 64 * MIB and rows[-1].get("free") == LIMIT_MIB * MIB)
    check("driver paths on the real driver: VMM, array, graph memory counted; the second 1 GiB refused; NVML shows "
          "2 GiB; everything back after freeing, graph memory once trimmed", ok, json.dumps(rows)[:1200] + err[-400:])


def nvidia_smi(build, be, res):
    q = ["nvidia-smi", "--query-gpu=memory.total,memory.used,memory.free", "--format=csv,noheader,nounits", "-i", "0"]
    rc, out, err = run(G.hooked(build, "lim", be.port_of("lim"), q))
    rc0, out0, _ = run(q)
    res["nvidia_smi"] = {"under_hook": out.strip(), "plain": out0.strip(), "stderr": err[-300:]}
    check(f"nvidia-smi under the hook: '{out.strip()}' (plain: '{out0.strip()}')",
          out.strip().split(",")[0].strip() == str(LIMIT_MIB), err[-300:])


def two_processes(build, be, res, out):
    client = [G.PY, REPO / "tests" / "gpu" / "mem_client.py", "--mode", "torch"]
    ready = out / "a.ready"
    ready.unlink(missing_ok=True)
    a = subprocess.Popen([str(x) for x in G.hooked(build, "lim", be.port_of("lim"), client + [
        "--max_mib", "1536", "--hold_s", "10", "--ready_file", ready])], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline and a.poll() is None:
        time.sleep(0.1)
    rc, bo, be_err = run(G.hooked(build, "lim", be.port_of("lim"), client))
    rc2, fo, fe = run(G.hooked(build, "free", be.port_of("free"), client + ["--max_mib", "4096"]))
    ao = a.communicate(timeout=120)[0]
    ra, rb, rf = (json_lines(ao) or [{}])[-1], (json_lines(bo) or [{}])[-1], (json_lines(fo) or [{}])[-1]
    res["two_processes"] = {"a": ra, "b": rb, "neighbour_free": rf}
    check(f"two processes of one client share 2 GiB: a holds {ra.get('allocated_mib')} MiB, b got "
          f"{rb.get('allocated_mib')} MiB then {rb.get('error')}",
          ra.get("allocated_mib") == 1536 and rb.get("allocated_mib", 9999) <= 512 and rb.get("error"),
          json.dumps([ra, rb])[:600] + be_err[-300:])
    check(f"neighbour without a limit allocated {rf.get('allocated_mib')} MiB meanwhile",
          rf.get("allocated_mib") == 4096 and rf.get("error") is None, json.dumps(rf)[:300] + fe[-300:])


def cost(build, be, res, skip_resnet):
    r = alloc_cost.measure(build, be, "lim", "2M", 3000, 8, run=lambda argv: run(argv)[:2])
    res["alloc_2mib_ns_per_pair"] = r
    ok, mp, mh = bool(r["ratio"]), r["median_plain"], r["median_hooked"]
    check(f"2 MiB cuMemAlloc_v2+cuMemFree_v2: {mp:.0f} ns plain, {mh:.0f} ns hooked (x{mh / mp:.3f}; target <= 1.05)"
          if ok else "2 MiB alloc benchmark ran", ok and mh / mp <= 1.05, json.dumps(res["alloc_2mib_ns_per_pair"]))
    if skip_resnet:
        return
    train = REPO / "tests" / "gpu" / "train_resnet.py"
    ips = {}
    for name in ["free", "big", "free", "big"]:
        outf = Path(be.dir) / f"resnet-{name}.json"
        rc, out, err = run(G.hooked(build, name, be.port_of(name), [G.PY, train, "--seconds", "10", "--out", outf]),
                           timeout=300)
        r = G.read_json(outf) or {}
        ips.setdefault(name, []).append(r.get("images_per_s"))
    res["resnet_images_per_s"] = ips
    try:
        f, b = sum(ips["free"]) / 2, sum(ips["big"]) / 2
        check(f"ResNet-50 images/s: {b:.1f} with GPU_MEM 20GiB, {f:.1f} without (x{b / f:.3f})", b / f >= 0.97,
              json.dumps(ips))
    except TypeError:
        check("ResNet-50 runs finished", False, json.dumps(ips))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--skip_resnet", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {}
    clients = [("lim", 0.34, 1.0, "2GiB"), ("free", 0.33, 1.0, "0"), ("big", 0.33, 1.0, "20GiB")]
    with G.Backend(a.build, out / "backend", clients) as be:
        for part in (lambda: frameworks(a.build, be, res), lambda: native_paths(a.build, a.bin, be, res),
                     lambda: nvidia_smi(a.build, be, res), lambda: two_processes(a.build, be, res, out),
                     lambda: cost(a.build, be, res, a.skip_resnet)):
            try:
                part()
            except Exception as e:  # one broken part must not hide the others' results
                check(f"part raised {type(e).__name__}: {e}", False)
    res["checks"] = CHECKS
    (out / "gpu_mem.json").write_text(json.dumps(res, indent=1))
    failed = [c for c in CHECKS if not c["ok"]]
    print(f"gpu_mem: {len(CHECKS) - len(failed)}/{len(CHECKS)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
