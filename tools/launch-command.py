#!/usr/bin/env python3
"""Run a command as a client of Gemini's GPU sharing (under libgemhook.so.1).

Usage as in Gemini:  launch-command.py --name client1 --port 50052 -- CMD [ARGS...]
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROG = "launch-command"
HOOK_NAME = "libgemhook.so.1"
KILL_GRACE_S = 5.0
TIMEOUT_STATUS = 124

DESCRIPTION = """\
Run CMD with the GPU-sharing hook preloaded, as the client NAME of the pod manager
at IP:PORT (started by launch-backend.py; client i of resource-config.txt has its
pod manager on port 50052+i by default).

CMD runs with these environment variables, which keep Gemini's meaning:
  POD_NAME          the client ID (NAME), as in resource-config.txt
  POD_MANAGER_IP    the pod manager's address (IP)
  POD_MANAGER_PORT  the pod manager's port (PORT)
  LD_PRELOAD        libgemhook.so.1, put in front of any LD_PRELOAD already set
(SCHEDULER_IP and SCHEDULER_PORT, also Gemini's, are read by gem-pmgr, not by the
hook; see launch-backend.py.) Other hook settings pass through from the
environment: POD_MANAGER_SOCKET, GEMINI_FAIL_CLOSED, GEMINI_IDLE_MS, GEMINI_STATS,
GEMINI_STATS_FILE, GEMINI_LOG_LEVEL.

Exit status: CMD's own (128+N if a signal N killed it); 124 if --timeout expired
(CMD then got SIGTERM, and SIGKILL 5 s later). SIGINT, SIGTERM and SIGHUP sent to
this script are passed on to CMD; a Ctrl-C in the terminal reaches CMD directly.
"""

EPILOG = """\
example:
  launch-command.py --name client1 --port 50052 -- python3 train.py --epochs 1

The hook is found at: --hook PATH, else ../lib/libgemhook.so.1 beside this script
(installed layout PREFIX/bin + PREFIX/lib), else <repo>/build/lib/libgemhook.so.1.
A pod manager that does not accept connections gives a warning only: the hook then
lets launches run unthrottled (or waits, with GEMINI_FAIL_CLOSED=1).
"""


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def find_hook(given):
    if given:
        p = Path(given)
        if not p.is_file():
            raise SystemExit(f"{PROG}: error: --hook {given}: no such file")
        return str(p.resolve())
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "lib" / HOOK_NAME, here.parent / "build" / "lib" / HOOK_NAME]
    build = os.environ.get("GEM_BUILD")
    if build:
        candidates.insert(0, Path(build) / "lib" / HOOK_NAME)
    for c in candidates:
        if c.is_file():
            return str(c)
    raise SystemExit(f"{PROG}: error: cannot find {HOOK_NAME} (looked in "
                     + ", ".join(str(c.parent) for c in candidates) + "); use --hook PATH")


def prepend_preload(hook, current):
    parts = [p for p in (current or "").replace(" ", ":").split(":") if p]
    parts = [p for p in parts if p != hook]
    return ":".join([hook] + parts)


def port_accepts(ip, port, timeout=0.5):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def build_parser():
    ap = argparse.ArgumentParser(
        prog="launch-command.py", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s --name NAME [--ip IP] [--port PORT] [--timeout S] [--hook PATH] -- CMD [ARGS...]")
    ap.add_argument("--name", required=True, help="client ID as in resource-config.txt (sets POD_NAME)")
    ap.add_argument("--ip", default="127.0.0.1",
                    help="the pod manager's address (sets POD_MANAGER_IP; default: %(default)s)")
    ap.add_argument("--port", type=int, default=50052,
                    help="the pod manager's port (sets POD_MANAGER_PORT; default: %(default)s)")
    ap.add_argument("--socket", metavar="PATH",
                    help="reach the pod manager on this Unix socket instead (sets POD_MANAGER_SOCKET)")
    ap.add_argument("--timeout", type=float, default=0,
                    help="stop CMD after this many seconds and exit 124 (default: no limit)")
    ap.add_argument("--hook", metavar="PATH", help=f"path to {HOOK_NAME} (default: found beside this script)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD", help="the command to run, after --")
    return ap


class Terminal:
    """Job control as a shell does it: CMD runs in its own process group, which becomes the
    terminal's foreground group while it runs, so Ctrl-C reaches CMD (and its children) once."""

    def __init__(self):
        self.fd = None
        self.saved_pgrp = None
        try:
            fd = sys.stdin.fileno()
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                self.fd = fd
                self.saved_pgrp = os.getpgrp()
        except (OSError, ValueError, AttributeError):
            pass

    def give_to(self, pgrp):
        if self.fd is None:
            return
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self.fd, pgrp)
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, old)

    def restore(self):
        if self.fd is not None:
            self.give_to(self.saved_pgrp)


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    cmd = args.cmd
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        ap.error("no command given (put it after --)")
    if not 0 < args.port < 65536:
        ap.error(f"--port {args.port} out of range")
    if args.timeout < 0:
        ap.error("--timeout must be >= 0")
    hook = find_hook(args.hook)

    env = dict(os.environ)
    env["POD_NAME"] = args.name
    env["POD_MANAGER_IP"] = args.ip
    env["POD_MANAGER_PORT"] = str(args.port)
    if args.socket:
        env["POD_MANAGER_SOCKET"] = args.socket
    env["LD_PRELOAD"] = prepend_preload(hook, env.get("LD_PRELOAD"))

    if args.socket:
        if not Path(args.socket).exists():
            log(f"warning: pod manager socket {args.socket} does not exist (is launch-backend.py running?)")
    elif not port_accepts(args.ip, args.port):
        log(f"warning: no pod manager accepts connections on {args.ip}:{args.port} "
            "(is launch-backend.py running?); continuing")

    term = Terminal()
    received = []

    def on_signal(signum, frame):
        received.append(signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    def child_setup():
        os.setpgid(0, 0)
        if term.fd is not None:
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(term.fd, os.getpgrp())
            except OSError:
                pass
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTOU):
            signal.signal(s, signal.SIG_DFL)

    try:
        child = subprocess.Popen(cmd, env=env, preexec_fn=child_setup)
    except OSError as e:
        log(f"error: cannot run {cmd[0]}: {e.strerror}")
        return 127 if isinstance(e, FileNotFoundError) else 126
    try:
        os.setpgid(child.pid, child.pid)
    except OSError:
        pass
    term.give_to(child.pid)

    def signal_child(sig):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                child.send_signal(sig)
            except ProcessLookupError:
                pass

    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    timed_out = False
    kill_at = None
    try:
        while True:
            try:
                child.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            while received:
                signal_child(received.pop(0))
            now = time.monotonic()
            if deadline is not None and not timed_out and now >= deadline:
                timed_out = True
                log(f"timeout: {cmd[0]} still running after {args.timeout:g} s; sending SIGTERM")
                signal_child(signal.SIGTERM)
                kill_at = now + KILL_GRACE_S
            if kill_at is not None and now >= kill_at:
                log(f"{cmd[0]} did not exit {KILL_GRACE_S:.0f} s after SIGTERM; sending SIGKILL")
                signal_child(signal.SIGKILL)
                kill_at = None
        if timed_out:
            # Leave nothing of the command's process group behind.
            signal_child(signal.SIGKILL)
    finally:
        term.restore()

    if timed_out:
        return TIMEOUT_STATUS
    rc = child.returncode
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
