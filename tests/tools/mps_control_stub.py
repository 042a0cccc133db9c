#!/usr/bin/env python3
"""Stand-in for nvidia-cuda-mps-control in the launcher tests (no GPU, no driver): `-d` "starts" a
daemon by creating $CUDA_MPS_PIPE_DIRECTORY/control (refused when it exists, as the real one refuses
a second instance); without arguments it reads one command on stdin: get_server_list answers while
the daemon "runs", quit removes the control file. Each start and quit is appended to $MPS_STUB_LOG."""
import os
import sys


def record(what):
    log = os.environ.get("MPS_STUB_LOG")
    if log:
        with open(log, "a") as f:
            f.write(what + "\n")


def main():
    pipe = os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")
    control = os.path.join(pipe, "control")
    if sys.argv[1:] == ["-d"]:
        if os.path.exists(control):
            print("An instance of this daemon is already running")
            return 1
        open(control, "w").close()
        record("start " + pipe)
        return 0
    cmd = sys.stdin.readline().strip()
    if not os.path.exists(control):
        print("Cannot find MPS control daemon process")
        return 1
    if cmd == "get_server_list":
        return 0
    if cmd == "quit":
        os.unlink(control)
        record("quit " + pipe)
        return 0
    print(f"unknown command {cmd}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
