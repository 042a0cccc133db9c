#!/usr/bin/env python3
"""Bounded soak (issue 6): real gem-schd + several gem-pmgr on Unix sockets, clients (fake-cuda-app
under the real hook) joining continuously; some are killed with -9, the others exit on their own.
Every few seconds each daemon's VmRSS and open descriptors are sampled. At the end: RSS is flat
(last-quarter max <= first-quarter max + slack) and the descriptors are back to their baseline once
the clients are gone. Prints a table. Standard library only.

  SOAK_SECONDS=600 GEM_BUILD=build python3 tests/soak/soak.py
Environment: SOAK_SECONDS (default 600), SOAK_CLIENTS (pod managers, default 3),
SOAK_SAMPLE_S (default 5), SOAK_RSS_SLACK_KIB (default 1024), GEM_BUILD (default ./build).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("GEM_BUILD") or REPO / "build").resolve()
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
NCLIENTS = int(os.environ.get("SOAK_CLIENTS", "3"))
SAMPLE_S = float(os.environ.get("SOAK_SAMPLE_S", "5"))
RSS_SLACK_KIB = int(os.environ.get("SOAK_RSS_SLACK_KIB", "1024"))
MAX_APPS = 6  # client processes alive at once, at most (a 2-core machine)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return -1.0


def wait_socket(path, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


def main():
    for rel in ("bin/gem-schd", "bin/gem-pmgr", "lib/libgemhook.so.1", "fake-cuda/libcuda.so.1",
                "fake-cuda/fake-cuda-app"):
        if not (BUILD / rel).is_file():
            print(f"soak: {BUILD / rel} missing: build it (make all build/fake-cuda/...)", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="gem-soak-"))
    names = [f"soak{i}" for i in range(NCLIENTS)]
    share = round(1.0 / NCLIENTS, 3)
    (tmp / "resource-config.txt").write_text(
        f"{len(names)}\n" + "".join(f"{n} {share} 1.0 0\n" for n in names))
    daemons = {}
    logs = []

    def spawn(name, argv, env=None):
        log = open(tmp / f"{name}.log", "wb")
        logs.append(log)
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)

    apps = []  # (Popen, client, will_kill_at or None)
    counts = {"started": 0, "killed": 0, "exited_ok": 0, "exited_bad": 0}
    samples = []  # (t, {daemon: (rss, fds)})
    ok = True
    try:
        # Started as users start them: no --stats, default quotas and window.
        daemons["gem-schd"] = spawn("gem-schd", [str(BUILD / "bin/gem-schd"), "--socket", str(tmp / "schd.sock"),
                                                 "--config", str(tmp / "resource-config.txt")])
        if not wait_socket(tmp / "schd.sock", daemons["gem-schd"]):
            print("soak: gem-schd did not start:\n" + (tmp / "gem-schd.log").read_text(), file=sys.stderr)
            return 1
        for n in names:
            p = spawn(f"pmgr-{n}", [str(BUILD / "bin/gem-pmgr"), "--name", n, "--socket", str(tmp / f"pmgr-{n}.sock"),
                                    "--scheduler", str(tmp / "schd.sock")])
            daemons[f"gem-pmgr {n}"] = p
            if not wait_socket(tmp / f"pmgr-{n}.sock", p):
                print(f"soak: gem-pmgr {n} did not start", file=sys.stderr)
                return 1

        base_env = dict(os.environ)
        for k in ("GEMINI_FAIL_CLOSED", "GEMINI_IDLE_MS", "FAKE_CUDA_DEVICES", "GEMINI_STATS_FILE"):
            base_env.pop(k, None)
        base_env.update({"LD_LIBRARY_PATH": str(BUILD / "fake-cuda"), "LD_PRELOAD": str(BUILD / "lib/libgemhook.so.1"),
                         "GEMINI_MAX_INFLIGHT": "8"})
        devnull = open(os.devnull, "wb")
        logs.append(devnull)
        rng = random.Random(6)

        def start_app(client, seconds, kill_after=None):
            env = dict(base_env, POD_NAME=client, POD_MANAGER_SOCKET=str(tmp / f"pmgr-{client}.sock"))
            argv = [str(BUILD / "fake-cuda/fake-cuda-app"), "--seconds", f"{seconds:.2f}", "--kernel_us",
                    str(rng.choice([200, 1000, 3000])), "--threads", str(rng.choice([1, 1, 2]))]
            p = subprocess.Popen(argv, stdout=devnull, stderr=devnull, env=env, stdin=subprocess.DEVNULL)
            counts["started"] += 1
            apps.append((p, client, None if kill_after is None else time.monotonic() + kill_after))

        def reap():
            now = time.monotonic()
            for entry in list(apps):
                p, client, kill_at = entry
                if kill_at is not None and now >= kill_at and p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    counts["killed"] += 1
                    apps.remove(entry)
                elif p.poll() is not None:
                    counts["exited_ok" if p.returncode == 0 else "exited_bad"] += 1
                    apps.remove(entry)

        def drain_apps(timeout):
            deadline = time.monotonic() + timeout
            while apps and time.monotonic() < deadline:
                reap()
                time.sleep(0.1)
            for p, _, _ in apps:
                p.kill()
                p.wait()
            apps.clear()

        def sample(t):
            samples.append((t, {d: (rss_kib(p.pid), fds(p.pid)) for d, p in daemons.items()}))

        # Warm-up: one short app per client, so every pod manager has its scheduler connection;
        # the descriptors measured after it are the baseline.
        for n in names:
            start_app(n, 1.0)
        drain_apps(30)
        time.sleep(1.0)
        baseline = {d: fds(p.pid) for d, p in daemons.items()}
        cpu0 = {d: cpu_s(p.pid) for d, p in daemons.items()}

        start = time.monotonic()
        next_sample = start
        next_join = start
        while time.monotonic() - start < SECONDS:
            now = time.monotonic()
            reap()
            if now >= next_join and len(apps) < MAX_APPS:
                client = rng.choice(names)
                if rng.random() < 0.4:
                    start_app(client, 5.0, kill_after=rng.uniform(0.2, 3.0))  # killed with -9
                else:
                    start_app(client, rng.uniform(0.3, 3.0))  # exits on its own
                next_join = now + rng.uniform(0.2, 1.0)
            if now >= next_sample:
                sample(now - start)
                next_sample += SAMPLE_S
            dead = [d for d, p in daemons.items() if p.poll() is not None]
            if dead:
                print(f"soak: FAIL: {', '.join(dead)} died", file=sys.stderr)
                ok = False
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - start
        drain_apps(15)
        time.sleep(3.0)  # pod managers notice the closes; the scheduler its released tokens
        sample(time.monotonic() - start)
        final_fds = {d: fds(p.pid) for d, p in daemons.items()}
        cpu1 = {d: cpu_s(p.pid) for d, p in daemons.items()}

        # ---- table and verdict ----
        q = max(1, len(samples) // 4)
        first, last = samples[:q], samples[-q:]
        print(f"soak: {elapsed:.0f} s, {len(names)} clients, apps started {counts['started']}, killed -9 "
              f"{counts['killed']}, exited 0 {counts['exited_ok']}, exited non-zero {counts['exited_bad']}; "
              f"{len(samples)} samples every {SAMPLE_S:g} s")
        hdr = (f"{'daemon':<16} {'RSS start':>10} {'RSS 1st-q max':>14} {'RSS last-q max':>15} {'RSS end':>9} "
               f"{'fds base':>9} {'fds max':>8} {'fds end':>8} {'CPU s':>7}")
        print(hdr)
        print("-" * len(hdr))
        for d in daemons:
            rss = [s[d][0] for _, s in samples]
            fq = max(s[d][0] for _, s in first)
            lq = max(s[d][0] for _, s in last)
            fmax = max(s[d][1] for _, s in samples)
            print(f"{d:<16} {rss[0]:>7} KiB {fq:>10} KiB {lq:>11} KiB {rss[-1]:>5} KiB {baseline[d]:>9} {fmax:>8} "
                  f"{final_fds[d]:>8} {cpu1[d] - cpu0[d]:>7.2f}")
            if lq > fq + RSS_SLACK_KIB:
                print(f"soak: FAIL: {d}: RSS grew: last-quarter max {lq} KiB > first-quarter max {fq} KiB + "
                      f"{RSS_SLACK_KIB} KiB", file=sys.stderr)
                ok = False
            if final_fds[d] > baseline[d]:
                print(f"soak: FAIL: {d}: {final_fds[d]} descriptors open at the end, {baseline[d]} at the start",
                      file=sys.stderr)
                ok = False
        if counts["exited_bad"]:
            print(f"soak: FAIL: {counts['exited_bad']} apps exited non-zero", file=sys.stderr)
            ok = False
        if counts["started"] < elapsed / 2:
            print("soak: FAIL: too few clients joined", file=sys.stderr)
            ok = False
        print("soak: " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        for p, _, _ in apps:
            if p.poll() is None:
                p.kill()
                p.wait()
        for p in daemons.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for log in logs:
            log.close()
        if ok and os.environ.get("GEM_KEEP_TMP") is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"soak: logs in {tmp}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
