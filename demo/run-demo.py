#!/usr/bin/env python3
"""GPU-sharing demo (what `make demo` runs): two clients at shares 0.3 / 0.7 on one GPU.

  BUILD=<abs build dir> NVCC=<nvcc> python3 demo/run-demo.py [--out DIR] [--seconds S]

With a GPU (`nvidia-smi -L` lists one) the client is demo/workload.cu (a 2 ms spin kernel in a loop),
built here with $NVCC; without one, the stand-in driver's fake-cuda-app. Steps:
  (a) one client alone, without the hook: the unshared throughput;
  (b) gem-schd + two gem-pmgr via tools/launch-backend.py (free ports, temp config
      client1 0.3 1.0 0 / client2 0.7 1.0 0), both clients at once via tools/launch-command.py;
  (c) a table: configured share, achieved share of GPU time (gem-schd --stats used_us_total over the
      period both ran; on the stand-in also from its kernel log), throughput, throughput / unshared.
Results also go to DIR/demo.json and DIR/demo.txt when --out DIR (or $OUT) is given, and the
share-over-time picture (each client's share as gem-schd measures it, every 0.1 s) to
DIR/demo-shares.png with its samples in DIR/demo-shares.csv (DIR: --out, else BUILD/demo); the
picture needs matplotlib, the demo says where the files are or that matplotlib is missing.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tools"
PY = sys.executable or "python3"
sys.path.insert(0, str(TOOLS))
from gemtools import discover, nvml, plot  # noqa: E402
KERNEL_US = 2000
SHARES = [("client1", 0.3), ("client2", 0.7)]
SHARE_TOLERANCE = 0.10  # the demo fails beyond this; the tests hold the scheduler to much less


def say(msg=""):
    print(msg, flush=True)


def have_gpu():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False, "nvidia-smi not found"
    try:
        r = subprocess.run([smi, "-L"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"nvidia-smi -L failed: {e}"
    gpus = [l for l in r.stdout.splitlines() if l.startswith("GPU ")]
    if r.returncode != 0 or not gpus:
        return False, "nvidia-smi -L lists no GPU"
    return True, gpus[0]


def build_workload(nvcc, build):
    src = REPO / "demo" / "workload.cu"
    out = build / "demo" / "workload"
    if out.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [nvcc, "-O2", "-gencode", "arch=compute_90,code=sm_90", "-gencode", "arch=compute_90,code=compute_90",
           "-cudart", "static", "-o", str(out), str(src)]
    say("building the workload: " + " ".join(cmd))
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise SystemExit("demo: building demo/workload.cu failed")
    return out


def free_port_block(n):
    sys.path.insert(0, str(REPO / "bench"))
    from gemrun import free_port_block as block  # one port helper for the demo, tests and benchmarks
    return block(n)


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def parse_result(text):
    """The client's last JSON line -> (work units, seconds, pid)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            n = d.get("iterations", d.get("launches"))
            return n, float(d["seconds"]), d.get("pid")
    raise ValueError("no JSON result line")


def read_fake_log(path):
    out = []
    try:
        for line in Path(path).read_text().splitlines():
            f = line.split()
            if len(f) >= 4:
                out.append((int(f[0]), int(f[2]), int(f[3])))
    except OSError:
        pass
    return out


def overlap_busy(intervals_by_client):
    t0 = max(min(s for s, e in iv) for iv in intervals_by_client.values())
    t1 = min(max(e for s, e in iv) for iv in intervals_by_client.values())
    return t0, t1, {n: sum(max(0, min(e, t1) - max(s, t0)) for s, e in iv) for n, iv in intervals_by_client.items()}


def read_stats(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT"), help="directory for demo.json / demo.txt")
    ap.add_argument("--seconds", type=float, help="length of the shared run (default 20 on a GPU, 8 on the stand-in)")
    ap.add_argument("--baseline_seconds", type=float, help="length of the unshared run (default 5 / 3)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory with the logs")
    ap.add_argument("--metrics_port", type=int, default=0,
                    help="gem-schd's Prometheus metrics on 127.0.0.1:PORT during the run, for gemctl (default: off)")
    args = ap.parse_args()

    build = Path(os.environ.get("BUILD") or REPO / "build").resolve()
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    gpu, what = have_gpu()
    env_base = dict(os.environ)
    if gpu:
        say(f"GPU found: {what}")
        client = [str(build_workload(nvcc, build))]
        shared_s = args.seconds or 20
        base_s = args.baseline_seconds or 5
        mode = "gpu"
    else:
        fake_dir = build / "fake-cuda"
        app = fake_dir / "fake-cuda-app"
        if not app.is_file() or not (fake_dir / "libcuda.so.1").is_file():
            raise SystemExit(f"demo: no GPU found ({what}) and no stand-in driver in {fake_dir} (run `make demo`)")
        say(f"no GPU found ({what}): running against the stand-in driver ({fake_dir}/libcuda.so.1)")
        # Synchronise every 4 kernels (8 ms in flight at most), as the GPU workload does.
        client = [str(app), "--sync_every", "4"]
        env_base["LD_LIBRARY_PATH"] = str(fake_dir) + (":" + env_base["LD_LIBRARY_PATH"]
                                                       if env_base.get("LD_LIBRARY_PATH") else "")
        shared_s = args.seconds or 8
        base_s = args.baseline_seconds or 3
        mode = "stand-in"
    schd, pmgr, hook = build / "bin" / "gem-schd", build / "bin" / "gem-pmgr", build / "lib" / "libgemhook.so.1"
    for f in (schd, pmgr, hook):
        if not f.is_file():
            raise SystemExit(f"demo: {f} is missing (run `make demo`, which builds it)")

    tmp = Path(tempfile.mkdtemp(prefix="gem-demo-"))
    failures = []
    backend = None
    children = []
    try:
        # (a) unshared baseline, no hook.
        say(f"\n(a) one client alone, without the hook, {base_s:g} s ...")
        env = dict(env_base, FAKE_CUDA_LOG=str(tmp / "baseline.log"))
        env.pop("LD_PRELOAD", None)
        r = subprocess.run(client + ["--seconds", str(base_s), "--kernel_us", str(KERNEL_US)], env=env,
                           stdout=subprocess.PIPE, universal_newlines=True, timeout=base_s + 60)
        if r.returncode != 0:
            raise SystemExit(f"demo: the unshared run failed with status {r.returncode}")
        n, secs, _ = parse_result(r.stdout)
        baseline = n / secs
        say(f"    unshared throughput: {baseline:.1f} kernels/s ({KERNEL_US} us each: "
            f"{baseline * KERNEL_US / 1e6:.0%} of the GPU's time)")

        # (b) backend + two clients.
        base = free_port_block(3)
        cfg = tmp / "resource-config.txt"
        cfg.write_text("# demo\n2\n" + "".join(f"{c} {s} 1.0 0\n" for c, s in SHARES))
        stats = tmp / "schd-stats.json"
        blog = open(tmp / "backend.log", "w")
        bcmd = [PY, str(TOOLS / "launch-backend.py"), str(schd), str(pmgr), "--config", str(cfg),
                "--port", str(base), "--pmgr_base_port", str(base + 1), "--stats", str(stats)]
        if args.metrics_port:
            bcmd += ["--metrics_port", str(args.metrics_port)]
        if mode == "stand-in":
            bcmd += ["--base_quota", "30", "--min_quota", "10", "--window", "2000", "--gpus", "none"]
        else:
            # One gem-schd, for the GPU the clients run on (device 0), found through NVML.
            try:
                bcmd += ["--gpus", discover.nvml_uuids()[0]]
            except (nvml.NvmlError, IndexError):
                bcmd += ["--gpus", "none"]
        say(f"\n(b) gem-schd on 127.0.0.1:{base}, pod managers on {base + 1} (client1, 0.3) and "
            f"{base + 2} (client2, 0.7); both clients for {shared_s:g} s ...")
        backend = subprocess.Popen(bcmd, stdin=subprocess.DEVNULL, stdout=blog, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not all(can_connect(p) for p in (base, base + 1, base + 2)):
            if backend.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("demo: the backend did not come up:\n" + (tmp / "backend.log").read_text())
            time.sleep(0.05)

        outs = {}
        for i, (name, _) in enumerate(SHARES):
            env = dict(env_base, FAKE_CUDA_LOG=str(tmp / f"{name}.log"))
            outs[name] = open(tmp / f"{name}.out", "w")
            p = subprocess.Popen([PY, str(TOOLS / "launch-command.py"), "--hook", str(hook), "--name", name,
                                  "--port", str(base + 1 + i), "--timeout", str(shared_s + 120), "--",
                                  *client, "--seconds", str(shared_s), "--kernel_us", str(KERNEL_US)],
                                 env=env, stdin=subprocess.DEVNULL, stdout=outs[name],
                                 stderr=open(tmp / f"{name}.err", "w"))
            children.append((name, p))
        t_start = time.monotonic()
        samples = []  # gem-schd stats while both clients run
        while all(p.poll() is None for _, p in children):
            st = read_stats(stats)
            if st and (not samples or st.get("time_us") != samples[-1][1].get("time_us")):
                samples.append((time.monotonic(), st))
            if backend.poll() is not None:
                failures.append("the backend exited during the run")
                break
            time.sleep(0.1)
        for name, p in children:
            try:
                rc = p.wait(timeout=shared_s + 150)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            outs[name].close()
            if rc != 0:
                failures.append(f"{name} exited with status {rc}: " + (tmp / f"{name}.err").read_text()[-2000:])

        # (c) results.
        rows = []
        warm = [s for t, s in samples if t >= t_start + 1.0]
        stats_share = {}
        if len(warm) >= 2:
            first, last = warm[0]["clients"], warm[-1]["clients"]
            d = {n: last[n]["used_us_total"] - first[n]["used_us_total"] for n, _ in SHARES if n in first and n in last}
            tot = sum(d.values())
            if tot > 0 and len(d) == len(SHARES):
                stats_share = {n: v / tot for n, v in d.items()}
            stats_span = (warm[-1]["time_us"] - warm[0]["time_us"]) / 1e6
        else:
            stats_span = 0
        if not stats_share:
            failures.append("no usable gem-schd --stats samples during the run")
        log_share = {}
        results = {}
        for name, _ in SHARES:
            try:
                results[name] = parse_result((tmp / f"{name}.out").read_text())
            except (ValueError, OSError) as e:
                failures.append(f"{name}: {e}")
        if mode == "stand-in" and len(results) == len(SHARES):
            iv = {}
            for name, _ in SHARES:
                iv[name] = [(s, e) for pid, s, e in read_fake_log(tmp / f"{name}.log") if pid == results[name][2]]
            if all(iv.values()):
                t0, t1, busy = overlap_busy(iv)
                tot = sum(busy.values())
                if tot > 0:
                    log_share = {n: b / tot for n, b in busy.items()}
        for name, share in SHARES:
            row = {"client": name, "configured_share": share}
            if name in stats_share:
                row["achieved_share_schd"] = round(stats_share[name], 4)
            if name in log_share:
                row["achieved_share_log"] = round(log_share[name], 4)
            if name in results:
                n, secs, _ = results[name]
                row["throughput_per_s"] = round(n / secs, 2)
                row["relative_to_unshared"] = round(n / secs / baseline, 4)
            rows.append(row)
            got = row.get("achieved_share_schd")
            if got is not None and abs(got - share) > SHARE_TOLERANCE:
                failures.append(f"{name}: achieved share {got:.3f}, configured {share}")

        unit = "kernels/s"
        lines = [f"mode: {mode} ({what}); kernel {KERNEL_US} us; unshared throughput {baseline:.1f} {unit}; "
                 f"shared run {shared_s:g} s, shares measured over {stats_span:.1f} s",
                 "",
                 f"{'client':<9} {'configured':>10} {'achieved (gem-schd)':>20} "
                 + (f"{'achieved (log)':>15} " if log_share else "")
                 + f"{'throughput':>16} {'vs unshared':>12}"]
        for row in rows:
            a = row.get("achieved_share_schd")
            l = row.get("achieved_share_log")
            tp = row.get("throughput_per_s")
            rel = row.get("relative_to_unshared")
            lines.append(f"{row['client']:<9} {row['configured_share']:>10.2f} "
                         f"{(f'{a:.3f}' if a is not None else 'n/a'):>20} "
                         + (f"{(f'{l:.3f}' if l is not None else 'n/a'):>15} " if log_share else "")
                         + f"{(f'{tp:.1f} {unit}' if tp is not None else 'n/a'):>16} "
                         f"{(f'{rel:.2f}' if rel is not None else 'n/a'):>12}")
        say("\n(c) results\n" + "\n".join(lines))
        pictures = Path(args.out) if args.out else build / "demo"
        pictures.mkdir(parents=True, exist_ok=True)
        picture = plot.save(plot.rows_from_stats(samples, t_start), pictures / "demo-shares.png",
                            f"demo: {what}, configured 0.3 / 0.7")
        say(picture)
        lines.append("")
        lines.append(picture)
        if failures:
            say("\nFAILED:\n  " + "\n  ".join(failures))
        else:
            say("\nOK: each client got about its configured share of GPU time.")
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "demo.json").write_text(json.dumps({
                "mode": mode, "device": what, "kernel_us": KERNEL_US, "unshared_per_s": round(baseline, 2),
                "shared_seconds": shared_s, "share_span_s": round(stats_span, 2), "clients": rows,
                "failures": failures, "ok": not failures}, indent=2) + "\n")
            (out / "demo.txt").write_text("\n".join(lines) + "\n" + ("FAILED:\n  " + "\n  ".join(failures) + "\n"
                                                                     if failures else "OK\n"))
    finally:
        for _, p in children:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if backend is not None and backend.poll() is None:
            backend.send_signal(signal.SIGINT)
            try:
                backend.wait(timeout=10)
            except subprocess.TimeoutExpired:
                backend.kill()
        if failures or args.keep:
            say(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
