"""The daemons launch-backend.py starts: each in a process group of its own that dies with the script,
stopped in order (pod managers first, gem-schd last; SIGTERM, then SIGKILL after STOP_GRACE_S)."""

import ctypes
import os
import signal
import subprocess
import sys
import time

PROG = "launch-backend"  # the prefix of its messages (launch-backend.py uses it too)
STOP_GRACE_S = 5.0


def log(msg):
    """One line on stderr, prefixed with PROG."""
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def _child_setup():
    # Own process group: a Ctrl-C in the terminal reaches only this script, which then stops the
    # daemons in order. PR_SET_PDEATHSIG: if this script is killed outright the daemons get SIGTERM.
    os.setpgid(0, 0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Backend:
    """The started daemons, in start order. Not thread-safe: the script's main thread only."""

    def __init__(self):
        self.children = []  # (label, Popen)
        self.stop_signal = None

    def start(self, label, argv, env=None):
        log(f"starting {label}: {' '.join(argv)}")
        try:
            p = subprocess.Popen(argv, env=env, preexec_fn=_child_setup)
        except OSError as e:
            raise SystemExit(f"{PROG}: error: cannot start {argv[0]}: {e.strerror}")
        self.children.append((label, p))
        return p

    def exited(self):
        return [(label, p) for label, p in self.children if p.poll() is not None]

    def stop_all(self):
        alive = [(l, p) for l, p in self.children if p.poll() is None]
        # Pod managers first, the scheduler last.
        for label, p in reversed(alive):
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        for label, p in alive:
            left = deadline - time.monotonic()
            try:
                p.wait(timeout=max(left, 0.01))
            except subprocess.TimeoutExpired:
                log(f"{label} (pid {p.pid}) did not stop within {STOP_GRACE_S:.0f} s: SIGKILL")
                p.kill()
                p.wait()
        for label, p in self.children:
            rc = p.returncode
            if rc not in (0, -signal.SIGTERM):
                log(f"{label} (pid {p.pid}) exited with {describe_rc(rc)}")


def describe_rc(rc):
    if rc is None:
        return "no status"
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"status {rc}"


