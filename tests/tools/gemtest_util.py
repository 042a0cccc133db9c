"""Helpers for the launcher tests (standard library only)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gemrun import free_port_block  # noqa: E402,F401  (one port helper for tests and benchmarks)

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
BACKEND = TOOLS / "launch-backend.py"
COMMAND = TOOLS / "launch-command.py"
STUB = Path(__file__).resolve().parent / "stub_daemon.py"
PY = sys.executable or "python3"


def gem_build():
    b = os.environ.get("GEM_BUILD")
    return Path(b) if b else REPO / "build"


def real_binaries():
    """(schd, pmgr) from $GEM_BUILD/bin, or None if they are not built."""
    b = gem_build()
    schd, pmgr = b / "bin" / "gem-schd", b / "bin" / "gem-pmgr"
    if schd.is_file() and pmgr.is_file():
        return schd, pmgr
    return None


def hook_lib():
    p = gem_build() / "lib" / "libgemhook.so.1"
    return p if p.is_file() else None


def fake_cuda():
    """(dir, app) of the stand-in driver, or None."""
    d = gem_build() / "fake-cuda"
    if (d / "libcuda.so.1").is_file() and (d / "fake-cuda-app").is_file():
        return d, d / "fake-cuda-app"
    return None




def can_connect(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_listening(ports, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    left = set(ports)
    while left and time.monotonic() < deadline:
        left = {p for p in left if not can_connect(p)}
        if proc is not None and proc.poll() is not None:
            break
        if left:
            time.sleep(0.05)
    return not left


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def descendants(pid):
    """All descendant pids of pid, via /proc/*/stat."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def write_config(path, clients):
    """clients: list of (id, request, limit, gpu_mem)."""
    lines = ["# written by the launcher tests", str(len(clients))]
    lines += [f"{c[0]} {c[1]} {c[2]} {c[3]}" for c in clients]
    Path(path).write_text("\n".join(lines) + "\n")


def stop(proc, sig=signal.SIGTERM, timeout=10):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_with_children(p):
    """SIGKILLs process p and whatever it started (the daemons a launcher left behind)."""
    leftover = descendants(p.pid)
    stop(p, signal.SIGKILL)
    kill_pids(leftover)


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
