"""NVIDIA MPS (Multi-Process Service) control daemon for `launch-backend.py --mps`.

Under MPS every CUDA process of the node that sees the same pipe directory becomes a client of one
MPS server per GPU, and kernels of different processes run on the GPU at the same time (spatial
sharing) instead of being time-sliced between contexts (NVIDIA, "Multi-Process Service", sections
"Introduction" and "Environment Variables": CUDA_MPS_PIPE_DIRECTORY, default /tmp/nvidia-mps;
CUDA_MPS_LOG_DIRECTORY, default /var/log/nvidia-mps). Gemini's tokens still decide who may launch:
a latency client's co-run token is then served beside the holder's kernels, not after a time slice
(docs/scheduling.md, "Latency clients under MPS").

The daemon is found on PATH (`nvidia-cuda-mps-control`). When a daemon already answers on the pipe
directory (the node runs one), it is used and left running; otherwise one is started with `-d` and
stopped (`quit`) when the backend stops. Not thread-safe; one MpsDaemon per backend.
"""

import os
import shutil
import subprocess
import time

EXE = "nvidia-cuda-mps-control"
DEFAULT_PIPE_DIRECTORY = "/tmp/nvidia-mps"   # MPS's own default
DEFAULT_LOG_DIRECTORY = "/var/log/nvidia-mps"
CONTROL_TIMEOUT_S = 30                         # every control command has a deadline
MAX_PIPE_DIRECTORY = 80                        # MPS puts Unix sockets there (sun_path: 108 bytes)


class MpsError(RuntimeError):
    """The MPS control daemon cannot be used; the message names what is wrong and how to fix it."""


class MpsDaemon:
    """The node's MPS control daemon for the pipe directory of `env` (CUDA_MPS_PIPE_DIRECTORY, else
    MPS's default). start() raises MpsError with the reason; stop() quits only a daemon it started."""

    def __init__(self, env=None, exe=None):
        self.env = dict(os.environ if env is None else env)
        self.exe = exe or shutil.which(EXE, path=self.env.get("PATH"))
        self.pipe = self.env.get("CUDA_MPS_PIPE_DIRECTORY") or DEFAULT_PIPE_DIRECTORY
        self.logd = self.env.get("CUDA_MPS_LOG_DIRECTORY") or DEFAULT_LOG_DIRECTORY
        self.env["CUDA_MPS_PIPE_DIRECTORY"] = self.pipe
        self.env["CUDA_MPS_LOG_DIRECTORY"] = self.logd
        self.started = False   # True when this object started the daemon (and so stops it)

    def client_env(self):
        """What a client process needs to reach this daemon (the two directories)."""
        return {"CUDA_MPS_PIPE_DIRECTORY": self.pipe, "CUDA_MPS_LOG_DIRECTORY": self.logd}

    def _control(self, text, timeout=CONTROL_TIMEOUT_S):
        """Runs one control command; (exit status, output). Raises MpsError on a hang or exec error."""
        try:
            r = subprocess.run([self.exe], input=text, env=self.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MpsError(f"{EXE} did not answer '{text.strip()}' within {timeout} s (pipe directory {self.pipe})")
        except OSError as e:
            raise MpsError(f"{EXE}: {e}")
        return r.returncode, r.stdout.strip()

    def running(self):
        """True when a control daemon answers on the pipe directory."""
        if not os.path.exists(os.path.join(self.pipe, "control")):
            return False
        rc, _ = self._control("get_server_list\n", timeout=5)
        return rc == 0

    def start(self):
        """Uses a daemon that answers, else starts one (-d). Returns a line for the log."""
        if not self.exe:
            raise MpsError(f"--mps: {EXE} not found on PATH (it comes with the NVIDIA driver's utilities; "
                           f"or run without --mps)")
        if len(self.pipe) > MAX_PIPE_DIRECTORY:
            raise MpsError(f"--mps: CUDA_MPS_PIPE_DIRECTORY {self.pipe!r} is longer than {MAX_PIPE_DIRECTORY} "
                           f"characters; MPS puts Unix sockets in it: choose a shorter one")
        if self.running():
            return f"MPS: using the control daemon already running on {self.pipe}"
        for d in (self.pipe, self.logd):
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as e:
                raise MpsError(f"--mps: cannot create {d}: {e} (set CUDA_MPS_PIPE_DIRECTORY and "
                               f"CUDA_MPS_LOG_DIRECTORY to folders you can write)")
        try:
            r = subprocess.run([self.exe, "-d"], env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, timeout=CONTROL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise MpsError(f"--mps: {EXE} -d: {e}")
        if r.returncode != 0:
            raise MpsError(f"--mps: {EXE} -d exited {r.returncode}: {r.stdout.strip()[-300:]} "
                           f"(its log: {self.logd}/control.log)")
        self.started = True
        deadline = time.monotonic() + 10
        while not self.running():
            if time.monotonic() > deadline:
                self.stop()
                raise MpsError(f"--mps: {EXE} -d started but does not answer on {self.pipe} "
                               f"(its log: {self.logd}/control.log)")
            time.sleep(0.1)
        return f"MPS: started {EXE} -d on {self.pipe} (logs in {self.logd})"

    def stop(self):
        """Quits the daemon if this object started it (its servers exit with it). Returns a line or ''."""
        if not self.started:
            return ""
        self.started = False
        try:
            rc, out = self._control("quit\n")
        except MpsError as e:
            return f"MPS: quit failed: {e}"
        return "MPS: stopped" if rc == 0 else f"MPS: quit exited {rc}: {out[-200:]}"
