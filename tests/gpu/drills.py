#!/usr/bin/env python3
"""Kill and stop drills on a GPU (issue 6, "Liveness"): two PyTorch ResNet-50 trainers share the GPU
at REQUEST 0.5 each (gem-schd with the users' default quotas), and one daemon or process is killed
or stopped mid-run. For each client: the longest pause (gap between consecutive training
iterations) in the seconds before the event (the normal time-slicing gap) and after it.

  drills.py --build BUILD --out OUTDIR [--seconds 24] [--event_at 10] [--stop_for 6] [drill ...]

Drills: holder_killed, pmgr_killed, pmgr_stopped, schd_killed, schd_stopped (default: all).
--event_at counts from the moment both trainers run; both stop 6 s after the event (after the stop
for the _stopped drills) through train_resnet.py --stop_file, --seconds being only their cap, so a
trainer whose warm-up ran late still covers the whole span after the event.
"The holder" is the client gem-schd's --stats names as holding the token at the event.
Writes OUTDIR/drills.json and prints a table. Standard library only; the daemons are started
directly (not through launch-backend.py) so their pids are known."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import gemrun as G  # noqa: E402

TRAIN = REPO / "tests" / "gpu" / "train_resnet.py"
DRILLS = ["holder_killed", "pmgr_killed", "pmgr_stopped", "schd_killed", "schd_stopped"]
CLIENTS = ["a", "b"]


def wait_port(port, proc, seconds=20):
    deadline = time.monotonic() + seconds
    while not G.can_connect(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"daemon on port {port} did not come up")
        time.sleep(0.05)


def longest_gap(ends, t0, t1, clip=False):
    """Longest gap between consecutive iteration ends among the gaps that end inside [t0, t1] (a
    stall that starts before t0 and ends inside counts whole, or from t0 with `clip`)."""
    ends = sorted(ends)
    return max([b - (max(a, t0) if clip else a) for a, b in zip(ends, ends[1:]) if t0 <= b <= t1], default=0.0)


def read_ends(path):
    try:
        return [float(l) for l in Path(path).read_text().split()]
    except (OSError, ValueError):
        return []


def drill(name, build, out, seconds, event_at, stop_for, pause_from_event=False):
    d = Path(out) / name
    d.mkdir(parents=True, exist_ok=True)
    base = G.free_port_block(3)
    cfg = d / "resource-config.txt"
    cfg.write_text("2\na 0.5 1.0 0\nb 0.5 1.0 0\n")
    stats = d / "stats.json"
    logs = []

    def spawn(argv, tag, env=None):
        f = open(d / f"{tag}.log", "w")
        logs.append(f)
        return subprocess.Popen([str(a) for a in argv], stdout=f, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)

    schd = spawn([Path(build) / "bin" / "gem-schd", "--port", base, "--config", cfg, "--stats", stats], "schd")
    wait_port(base, schd)
    pmgrs = {}
    for i, c in enumerate(CLIENTS):
        pmgrs[c] = spawn([Path(build) / "bin" / "gem-pmgr", "--name", c, "--port", base + 1 + i,
                          "--scheduler", f"127.0.0.1:{base}"], f"pmgr-{c}")
        wait_port(base + 1 + i, pmgrs[c])
    trainers = {}
    for i, c in enumerate(CLIENTS):
        env = dict(os.environ, LD_PRELOAD=str(Path(build) / "lib" / "libgemhook.so.1"), POD_NAME=c,
                   POD_MANAGER_IP="127.0.0.1", POD_MANAGER_PORT=str(base + 1 + i),
                   GEMINI_STATS_FILE=str(d / f"{c}.hook.json"))
        trainers[c] = spawn([G.PY, TRAIN, "--seconds", seconds, "--ends_file", d / f"{c}.ends",
                             "--stop_file", d / "stop"], f"train-{c}", env)
    # Wait until both train (their first iteration ended), then until the event.
    deadline = time.monotonic() + 120
    while not all(read_ends(d / f"{c}.ends") for c in CLIENTS):
        if time.monotonic() > deadline or any(t.poll() is not None for t in trainers.values()):
            raise RuntimeError(f"{name}: trainers did not start; see {d}")
        time.sleep(0.2)
    t_begin = time.monotonic()
    time.sleep(event_at)
    st = G.read_json(stats) or {}
    holder = st.get("holder") or "a"
    victim = holder
    t_event = time.monotonic()
    if name == "holder_killed":
        trainers[victim].kill()
    elif name == "pmgr_killed":
        pmgrs[victim].kill()
    elif name == "pmgr_stopped":
        pmgrs[victim].send_signal(signal.SIGSTOP)
    elif name == "schd_killed":
        schd.kill()
    elif name == "schd_stopped":
        schd.send_signal(signal.SIGSTOP)
    if name.endswith("_stopped"):
        time.sleep(stop_for)
        (pmgrs[victim] if name.startswith("pmgr") else schd).send_signal(signal.SIGCONT)
    t_after = t_event + (stop_for if name.endswith("_stopped") else 0) + 6
    # The trainers stop together once the "after" span is over (--seconds is their cap): a trainer
    # that started late (its import and warm-up beside the other) still covers the whole span.
    time.sleep(max(0.0, t_after - time.monotonic()))
    (d / "stop").write_text("")
    for t in trainers.values():
        try:
            t.wait(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            t.kill()
    for p in [schd] + list(pmgrs.values()):
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    for f in logs:
        f.close()
    res = {"drill": name, "victim": victim, "holder_at_event": holder, "clients": {}}
    for c in CLIENTS:
        ends = read_ends(d / f"{c}.ends")
        hook = G.read_json(d / f"{c}.hook.json") or {}
        res["clients"][c] = {
            "iterations": len(ends),
            "pause_before_s": round(longest_gap(ends, t_begin, t_event), 3),
            "pause_after_s": round(longest_gap(ends, t_event, t_after, clip=pause_from_event), 3),
            "killed": name == "holder_killed" and c == victim,
            "unthrottled_launches": hook.get("unthrottled_launches"),
            "revocations": hook.get("revocations"),
        }
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=24)
    ap.add_argument("--event_at", type=float, default=10)
    ap.add_argument("--stop_for", type=float, default=6)
    ap.add_argument("--pause_from_event", action="store_true",
                    help="count a pause after the event from the event on (a wait that began before it, "
                         "such as the later starter's catch-up to its REQUEST, is not the fault's)")
    ap.add_argument("drills", nargs="*", default=DRILLS)
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.drills:
        G.log(f"drill {name} ...")
        try:
            results.append(drill(name, args.build, args.out, args.seconds, args.event_at, args.stop_for,
                                 args.pause_from_event))
        except Exception as e:  # keep going: one failed drill must not hide the others
            results.append({"drill": name, "error": str(e)})
        G.log(json.dumps(results[-1]))
    Path(args.out, "drills.json").write_text(json.dumps(results, indent=1) + "\n")
    G.log("\ndrill          victim  client  pause before (s)  pause after (s)  unthrottled  revocations")
    for r in results:
        for c, v in r.get("clients", {}).items():
            G.log(f"{r['drill']:<14} {r['victim']:<7} {c:<7} {v['pause_before_s']:>16} {v['pause_after_s']:>16}"
                  f"  {str(v['unthrottled_launches']):>11}  {str(v['revocations']):>11}"
                  + ("  (killed)" if v["killed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
