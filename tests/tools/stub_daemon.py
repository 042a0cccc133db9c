#!/usr/bin/env python3
"""Stand-in for gem-schd / gem-pmgr in the launcher tests: accepts the same flags, listens on
--ip:--port, appends its argv (JSON) to $STUB_LOG, exits 0 on SIGTERM/SIGINT.
STUB_EXIT_AFTER=S makes it (or only the one named $STUB_EXIT_PROG) exit with status 3 after S seconds (a daemon dying on its own);
STUB_IGNORE_TERM=1 makes it ignore SIGTERM (to test the SIGKILL fallback)."""
import json
import os
import signal
import socket
import sys
import time


def main():
    argv = sys.argv[1:]
    opts = {}
    i = 0
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            opts[argv[i][2:]] = True
            i += 1
    log = os.environ.get("STUB_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"prog": os.path.basename(sys.argv[0]), "argv": argv, "pid": os.getpid(),
                                "env": {k: os.environ.get(k) for k in ("SCHEDULER_IP", "SCHEDULER_PORT",
                                                                       "POD_NAME", "POD_MANAGER_PORT")}}) + "\n")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((opts.get("ip", "127.0.0.1"), int(opts.get("port", 50051))))
    s.listen(16)
    s.settimeout(0.1)
    stop = []
    if os.environ.get("STUB_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    exit_after = float(os.environ.get("STUB_EXIT_AFTER", "0"))
    if os.environ.get("STUB_EXIT_PROG", os.path.basename(sys.argv[0])) != os.path.basename(sys.argv[0]):
        exit_after = 0
    t0 = time.monotonic()
    while not stop:
        try:
            c, _ = s.accept()
            c.close()
        except socket.timeout:
            pass
        if exit_after and time.monotonic() - t0 > exit_after:
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
