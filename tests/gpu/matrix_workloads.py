#!/usr/bin/env python3
"""Python workloads of the GPU regression matrix (tests/gpu/matrix.py); one per process.

  matrix_workloads.py WORKLOAD [--seconds 7.5] [--skip 1.5] [--mode M]

WORKLOAD (each on cuda:0; the frameworks are imported inside, this module itself is standard library):
  torch_eager       2048x2048 fp32 matmul loop
  torch_graph       torch.cuda.CUDAGraph of 10 matmuls captured on a side stream (the pattern of the
                    PyTorch docs), replayed in a loop
  torch_capture     the same capture with each capture_error_mode of --mode (a comma list of
                    relaxed, thread_local, global), 20 replays each, result checked; not timed
  torch_compile     torch.compile of a 3-layer MLP, --mode default|reduce-overhead (CUDA graphs inside)
  cupy_graph        CuPy stream capture (begin_capture/end_capture) of 4 matmuls, graph.launch loop
  jax_jit           jax.jit of a 4-matmul chain in a loop (XLA_PYTHON_CLIENT_PREALLOCATE=false,
                    XLA_PYTHON_CLIENT_MEM_FRACTION .2 unless set)
  torch_dataloader  training-ish loop (8 linear layers) fed by DataLoader(num_workers=2), fork workers
  torch_spawn       torch.multiprocessing.spawn of 2 processes, each a matmul loop on cuda:0
Timed workloads run --seconds after their warm-up with at most DEPTH iterations in flight and count
the iterations between --skip and --seconds (rate, per second). Each checks its own result (against
eager/CPU arithmetic, or a counter kernel run once per iteration) and prints one JSON line:
{"workload": W, "ok": B, "rate": R, "unit": U, "measured_s": S, ..., "error": E (when not ok)}.
Exit status 0 only when ok. Any exception: the JSON line carries its text, the traceback goes to stderr."""
import argparse
import collections
import json
import os
import sys
import time
import traceback

DEPTH = 4          # iterations in flight at most (events), as demo/workload.cu
REL_TOL = 1e-3     # fp32 without TF32: max |a - b| / max |b| of a result against its reference
N = 2048


def timed_loop(step, seconds, skip, depth=DEPTH):
    """Call step() (enqueues one iteration, returns a callable that waits for it) until `seconds`
    pass; count the iterations enqueued in the fixed span [skip, seconds] (whole LIMIT windows).
    Counting from the first loop turn after `skip` would start at the next grant when the loop
    waits at the gate across `skip`: the start of a burst, which reads high (measured: 0.275)."""
    q = collections.deque()
    t0 = time.monotonic()
    n, n_a, a = 0, None, None
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        if n_a is None and now - t0 >= skip:
            n_a, a = n, t0 + skip
        if len(q) >= depth:
            q.popleft()()
        q.append(step())
        n += 1
    while q:
        q.popleft()()
    if n_a is None:
        raise RuntimeError("nothing measured: --skip >= --seconds")
    b = t0 + seconds
    return {"rate": (n - n_a) / (b - a), "measured_s": round(b - a, 3), "measured_iterations": n - n_a,
            "iterations": n, "t0": t0, "t_a": a, "t_b": b}


def rel_err(a, b):
    """max |a - b| / max |b| (torch, cupy or numpy arrays, as floats)."""
    return float(abs(a - b).max()) / max(float(abs(b).max()), 1e-30)


# ----------------------------------------------------------------------------------------------- torch
def _torch_event_step(torch, fn):
    def step():
        fn()
        ev = torch.cuda.Event()
        ev.record()
        return ev.synchronize
    return step


def _counted(torch, fn, cnt):
    """fn, then one counter kernel on the same stream: cnt == iterations shows that every launch ran."""
    def both():
        fn()
        cnt.add_(1)
    return both


def torch_eager(a):
    import torch
    x = torch.randn(N, N, device="cuda")
    w = torch.randn(N, N, device="cuda") / N ** 0.5
    cnt = torch.zeros(1, dtype=torch.int64, device="cuda")
    out = {}

    def mm():
        out["y"] = x @ w
    for _ in range(5):
        mm()
    torch.cuda.synchronize()
    r = timed_loop(_torch_event_step(torch, _counted(torch, mm, cnt)), a.seconds, a.skip)
    torch.cuda.synchronize()
    ref = x[:8].double().cpu() @ w.double().cpu()
    err = rel_err(out["y"][:8].double().cpu(), ref)
    r.update(unit="matmuls/s", counter=int(cnt.item()), rel_err=err,
             ok=int(cnt.item()) == r["iterations"] and err < REL_TOL)
    return r


def _graph_pattern(torch, capture_error_mode=None):
    """The capture of the brief, verbatim; returns (graph, its output, the eager reference)."""
    x = torch.randn(2048, 2048, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            y = x @ x
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    kw = {} if capture_error_mode is None else {"capture_error_mode": capture_error_mode}
    with torch.cuda.graph(g, **kw):
        y = x @ x
        for _ in range(9):
            y = y @ x * 1e-3
    ref = x @ x
    for _ in range(9):
        ref = ref @ x * 1e-3
    return g, y, ref


def torch_graph(a):
    import torch
    g, y, ref = _graph_pattern(torch)
    cnt = torch.zeros(1, dtype=torch.int64, device="cuda")
    y.zero_()  # the check below then needs the replays to have run
    g.replay()
    torch.cuda.synchronize()
    r = timed_loop(_torch_event_step(torch, _counted(torch, g.replay, cnt)), a.seconds, a.skip)
    torch.cuda.synchronize()
    err = rel_err(y, ref)
    r.update(unit="replays/s", counter=int(cnt.item()), rel_err=err,
             ok=int(cnt.item()) == r["iterations"] and err < REL_TOL)
    return r


def torch_capture(a):
    """--mode: a comma list of capture_error_modes, tried in turn in this process (relaxed first: a
    failed capture under a stricter mode cannot spoil the ones before it)."""
    import torch
    res = {}
    for mode in a.mode.split(","):
        try:
            g, y, ref = _graph_pattern(torch, mode)
            y.zero_()
            for _ in range(20):
                g.replay()
            torch.cuda.synchronize()
            err = rel_err(y, ref)
            res[mode] = {"replays": 20, "rel_err": err, "ok": err < REL_TOL}
        except Exception as e:  # report, and try the next mode
            traceback.print_exc()
            res[mode] = {"ok": False, "error": f"{type(e).__name__}: {str(e).strip()[-300:]}"}
    bad = [f"{m}: {r.get('error') or 'rel_err %.2g' % r['rel_err']}" for m, r in res.items() if not r["ok"]]
    out = {"modes": res, "ok": not bad}
    if bad:
        out["error"] = "; ".join(bad)
    return out


def torch_compile(a):
    import torch
    if a.mode not in ("default", "reduce-overhead"):
        raise ValueError("--mode default|reduce-overhead")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(N, N), torch.nn.ReLU(), torch.nn.Linear(N, N), torch.nn.ReLU(),
                                torch.nn.Linear(N, N)).cuda().eval()
    x = torch.randn(N, N, device="cuda")
    cnt = torch.zeros(1, dtype=torch.int64, device="cuda")
    cm = torch.compile(model, mode=None if a.mode == "default" else a.mode)
    graphs = a.mode == "reduce-overhead"
    t_c = time.monotonic()

    def call():
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        cm(x)
    with torch.no_grad():
        for _ in range(4):  # compile; reduce-overhead records its CUDA graph on a later call
            call()
        torch.cuda.synchronize()
        compile_s = time.monotonic() - t_c
        r = timed_loop(_torch_event_step(torch, _counted(torch, call, cnt)), a.seconds, a.skip)
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        got = cm(x).clone()
        err = rel_err(got, model(x))
    torch.cuda.synchronize()
    skips = 0
    try:
        from torch._dynamo.utils import counters
        skips = int(counters["inductor"].get("cudagraph_skips", 0))
    except Exception:  # the counter moved: report, do not guess
        skips = None
    r.update(unit="calls/s", counter=int(cnt.item()), rel_err=err, compile_s=round(compile_s, 1),
             cudagraph_skips=skips, ok=int(cnt.item()) == r["iterations"] and err < REL_TOL and not skips)
    if skips:
        r["error"] = f"reduce-overhead skipped CUDA graphs ({skips} skips)"
    return r


# ------------------------------------------------------------------------------------------- cupy, jax
def cupy_graph(a):
    import cupy as cp
    # Elementwise kernels only: CuPy refuses cuBLAS calls during a stream capture ("calling cuBLAS
    # API during stream capture is currently unsupported", CuPy 13 on the H200).
    a_ = cp.random.standard_normal((4 * N, 4 * N), dtype=cp.float32)  # 64 Mi elements
    y0, y1 = cp.empty_like(a_), cp.empty_like(a_)
    s = cp.cuda.Stream(non_blocking=True)

    def chain():  # preallocated outputs: nothing is allocated during the capture
        cp.multiply(a_, 1.0001, out=y0)
        for _ in range(10):
            cp.add(y0, a_, out=y1)
            cp.multiply(y1, 0.5, out=y0)
    with s:
        chain()
        s.synchronize()
        ref = y0.copy()
        s.synchronize()
        s.begin_capture()
        chain()
        graph = s.end_capture()
        y0.fill(0)
        graph.launch(s)
        s.synchronize()

        def step():
            graph.launch(s)
            ev = cp.cuda.Event(disable_timing=True)
            ev.record(s)
            return ev.synchronize
        r = timed_loop(step, a.seconds, a.skip)
        s.synchronize()
        err = rel_err(y0, ref)
    r.update(unit="graph launches/s", rel_err=err, ok=err < REL_TOL)
    return r


def jax_jit(a):
    import jax
    import jax.numpy as jnp
    import numpy as np
    dev = jax.devices()[0]
    if dev.platform != "gpu":
        raise RuntimeError(f"JAX runs on {dev.platform}, not on the GPU")
    x = jax.random.normal(jax.random.PRNGKey(0), (N, N), jnp.float32)

    def chain(v):  # 4 matmuls a call: the GPU, not JAX's dispatch, sets the rate
        y = v
        for _ in range(4):
            y = (y @ v) * 1e-3
        return y
    f = jax.jit(chain)
    out = {"y": f(x)}
    out["y"].block_until_ready()

    def step():
        y = f(x)
        out["y"] = y
        return y.block_until_ready
    r = timed_loop(step, a.seconds, a.skip)
    xn = np.asarray(x, dtype=np.float64)
    ref = xn[:8]
    for _ in range(4):
        ref = (ref @ xn) * 1e-3
    err = rel_err(np.asarray(out["y"], dtype=np.float64)[:8], ref)
    # JAX's default matmul precision on the GPU may use TF32: a looser bound, still far below garbage.
    r.update(unit="calls/s (4 matmuls)", rel_err=err, device=str(dev), ok=err < 1e-2)
    return r


# ------------------------------------------------------------------------------------ processes
class _Batches:
    """Dataset of (64, 2048) batches filled with the batch index mod 97 (made on the CPU: workers
    never touch CUDA)."""

    def __len__(self):
        return 1 << 30

    def __getitem__(self, i):
        import torch
        return torch.full((64, N), float(i % 97)), i


def torch_dataloader(a):
    import multiprocessing
    import torch
    method = multiprocessing.get_start_method()
    torch.manual_seed(0)
    layers = torch.nn.Sequential(*[torch.nn.Linear(N, N, bias=False) for _ in range(8)]).cuda()
    opt = torch.optim.SGD(layers.parameters(), lr=1e-4)
    # Start method: the default (fork on Linux); named only where the default is not fork.
    kw = {} if method == "fork" else {"multiprocessing_context": "fork"}
    loader = torch.utils.data.DataLoader(_Batches(), batch_size=None, num_workers=2, **kw)
    it = iter(loader)
    state = {"next": 0, "bad": 0, "losses": []}

    def train():
        xb, i = next(it)
        state["bad"] += int(i != state["next"] or float(xb[0, 0]) != float(i % 97))
        state["next"] += 1
        h = xb.cuda().repeat(16, 1) / 97.0  # (1024, 2048)
        loss = layers(h).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if state["next"] % 50 == 1:
            state["losses"].append(loss.detach())
    for _ in range(5):
        train()
    torch.cuda.synchronize()
    r = timed_loop(_torch_event_step(torch, train), a.seconds, a.skip)
    losses = [float(v) for v in state["losses"]]
    finite = all(v == v and abs(v) < 1e30 for v in losses)
    r.update(unit="steps/s", start_method=method, default_start_method=not kw, out_of_order_or_wrong=state["bad"],
             loss_first=losses[0] if losses else None, loss_last=losses[-1] if losses else None,
             ok=state["bad"] == 0 and finite and len(losses) >= 2)
    return r


def _spawn_worker(rank, seconds, skip, barrier, outdir):
    import torch
    torch.cuda.set_device(0)
    res = {"rank": rank, "pid": os.getpid()}
    try:
        ns = argparse.Namespace(seconds=seconds, skip=skip)
        x = torch.randn(N, N, device="cuda")
        w = torch.randn(N, N, device="cuda") / N ** 0.5
        cnt = torch.zeros(1, dtype=torch.int64, device="cuda")
        for _ in range(5):
            x @ w
        torch.cuda.synchronize()
        barrier.wait(timeout=120)  # both measure over the same stretch
        r = timed_loop(_torch_event_step(torch, _counted(torch, lambda: x @ w, cnt)), ns.seconds, ns.skip)
        torch.cuda.synchronize()
        res.update(r, counter=int(cnt.item()), ok=int(cnt.item()) == r["iterations"])
    except Exception as e:
        res.update(ok=False, error=f"{type(e).__name__}: {e}")
        raise
    finally:
        with open(os.path.join(outdir, f"rank{rank}.json"), "w") as f:
            f.write(json.dumps(res) + "\n")


def torch_spawn(a):
    import tempfile
    import torch.multiprocessing as tmp
    outdir = tempfile.mkdtemp(prefix="gem-spawn-")
    barrier = tmp.get_context("spawn").Barrier(2)
    tmp.spawn(_spawn_worker, args=(a.seconds, a.skip, barrier, outdir), nprocs=2, join=True)
    ranks = []
    for i in range(2):
        with open(os.path.join(outdir, f"rank{i}.json")) as f:
            ranks.append(json.loads(f.read()))
    ok = all(r.get("ok") for r in ranks)
    return {"unit": "matmuls/s (2 processes)", "rate": sum(r.get("rate", 0) for r in ranks) if ok else 0.0,
            "measured_s": min(r.get("measured_s", 0) for r in ranks), "ranks": ranks, "ok": ok}


WORKLOADS = {f.__name__: f for f in (torch_eager, torch_graph, torch_capture, torch_compile, cupy_graph, jax_jit,
                                     torch_dataloader, torch_spawn)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("--seconds", type=float, default=7.5)
    ap.add_argument("--skip", type=float, default=1.5)
    ap.add_argument("--mode", default="default")
    a = ap.parse_args()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", ".2")
    try:
        res = WORKLOADS[a.workload](a)
    except BaseException as e:  # the matrix shows the error text; the traceback goes to stderr
        traceback.print_exc()
        res = {"ok": False, "error": f"{type(e).__name__}: {str(e).strip()[-600:]}"}
    res = dict({"workload": a.workload, "mode": a.mode, "pid": os.getpid()}, **res)
    res.pop("t0", None)
    print(json.dumps(res), flush=True)
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
