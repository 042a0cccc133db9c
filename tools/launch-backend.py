#!/usr/bin/env python3
"""Start Gemini's backend: one gem-schd (scheduler) per GPU and one gem-pmgr (pod manager) per client.

Usage as in Gemini:  launch-backend.py [SCHD [PMGR]] [--ip IP] [--port PORT] [--config FILE] ...
"""

import argparse
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemtools import discover, mps  # noqa: E402
from gemtools.daemons import PROG, Backend, describe_rc, log  # noqa: E402

DESCRIPTION = """\
Start the GPU-sharing backend: gem-schd (the token scheduler of one GPU) for each
GPU and one gem-pmgr (pod manager) per client listed in the resource configuration file.

GPUs (--gpus): by default NVML (libnvidia-ml.so.1) lists the node's GPUs and each
gets its own gem-schd (--gpu UUID) with the same configuration file. One GPU: its
gem-schd listens on IP:PORT as in Gemini. Several: gem-schd for GPU u listens on
the Unix socket SOCKET_DIR/u.sock and the pod managers route each process to its
GPU's scheduler (gem-pmgr --scheduler_dir). Without NVML, or with --gpus none, one
gem-schd on IP:PORT serves whatever GPU the clients use (Gemini's behaviour).

Client i (0-based, in the order of the file) gets its pod manager on
IP:(PMGR_BASE_PORT + i), i.e. 50052, 50053, ... by default, as in Gemini.
Each gem-pmgr is started as
    gem-pmgr --name ID --ip IP --port 50052+i --scheduler IP:PORT
and also gets Gemini's environment variables SCHEDULER_IP, SCHEDULER_PORT,
POD_MANAGER_IP, POD_MANAGER_PORT and POD_NAME with their old meaning.

The script stays in the foreground. Ctrl-C (SIGINT) or SIGTERM stops every daemon
(SIGTERM, then SIGKILL after 5 s) and exits 0. If a daemon exits on its own, the
others are stopped too and the exit status is 1.
"""

EPILOG = """\
resource configuration file (Gemini's format): the first line is the number N of
clients, then N lines "ID REQUEST LIMIT GPU_MEM"; '#' starts a comment. gem-schd
re-reads the file when it changes; the pod managers are started only for the IDs
present when this script starts.

Run applications under a pod manager with launch-command.py, e.g.
    launch-command.py --name client1 --port 50052 -- python3 train.py

Binaries: SCHD and PMGR may be given as positional paths (Gemini's usage);
otherwise gem-schd and gem-pmgr are looked for beside this script (installed
layout PREFIX/bin), in ../bin, in <repo>/build/bin, then on PATH.
"""


def find_binary(name, given):
    """Resolve a daemon binary: explicit path, then beside/near the script, then PATH."""
    if given:
        p = Path(given)
        if p.is_file() and os.access(p, os.X_OK):
            return str(p.resolve())
        raise SystemExit(f"{PROG}: error: {name}: {given} is not an executable file")
    here = Path(__file__).resolve().parent
    candidates = [here / name, here.parent / "bin" / name, here.parent / "build" / "bin" / name]
    build = os.environ.get("GEM_BUILD")
    if build:
        candidates.insert(0, Path(build) / "bin" / name)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    w = shutil.which(name)
    if w:
        return w
    raise SystemExit(f"{PROG}: error: cannot find {name} (looked in "
                     + ", ".join(str(c.parent) for c in candidates)
                     + " and PATH); pass its path as a positional argument")


def read_client_ids(path):
    """Just enough of resource-config.txt: first line N, then N IDs in order."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SystemExit(f"{PROG}: error: cannot read config file {path}: {e.strerror}")
    lines = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append((lineno, line))
    if not lines:
        raise SystemExit(f"{PROG}: error: {path}: empty config (expected the number of clients on the first line)")
    lineno, first = lines[0]
    try:
        n = int(first.split()[0])
        if n < 0 or len(first.split()) != 1:
            raise ValueError
    except ValueError:
        raise SystemExit(f"{PROG}: error: {path}:{lineno}: expected the number of clients, got {first!r}")
    entries = lines[1:]
    if len(entries) != n:
        raise SystemExit(f"{PROG}: error: {path}: first line says {n} clients but {len(entries)} client lines follow")
    ids = []
    for lineno, line in entries:
        fields = line.split()
        # Gemini's four columns, optionally followed by options (um=on, latency=MS); gem-schd checks
        # the values.
        if len(fields) < 4 or len(fields) > 6 or any("=" not in f for f in fields[4:]):
            raise SystemExit(f"{PROG}: error: {path}:{lineno}: expected 'ID REQUEST LIMIT GPU_MEM [um=on|off] "
                             "[latency=MS]', "
                             f"got {line!r}")
        if fields[0] in ids:
            raise SystemExit(f"{PROG}: error: {path}:{lineno}: duplicate client ID {fields[0]!r}")
        ids.append(fields[0])
    return ids


def num(v):
    """Format a float flag as gem-schd expects it (integers without a decimal point)."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def can_connect(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def build_parser():
    ap = argparse.ArgumentParser(
        prog="launch-backend.py", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("schd", metavar="SCHD", nargs="?", help="path to gem-schd (default: found beside this script)")
    ap.add_argument("pmgr", metavar="PMGR", nargs="?", help="path to gem-pmgr (default: found beside this script)")
    ap.add_argument("--ip", default="127.0.0.1",
                    help="address the scheduler and the pod managers listen on (default: %(default)s)")
    ap.add_argument("--port", type=int, default=50051, help="scheduler port (default: %(default)s)")
    ap.add_argument("--config", default="./resource-config.txt",
                    help="resource configuration file (default: %(default)s)")
    ap.add_argument("--base_quota", type=float, default=250.0,
                    help="token quota granted to a client, ms (default: %(default)s)")
    ap.add_argument("--min_quota", type=float, default=100.0,
                    help="smallest token quota, ms (default: %(default)s)")
    ap.add_argument("--window", type=float, default=10000.0,
                    help="sliding window over which shares are measured, ms (default: %(default)s)")
    ap.add_argument("--lease_grace", type=float, default=None,
                    help="ms past its quota after which gem-schd revokes a holder's token (default: gem-schd's, 500)")
    ap.add_argument("--swing", type=int, default=None, metavar="MS",
                    help="how far a client held to a share may run ahead of it, ms: even quotas of at most "
                         "swing / (1 - share) (default: gem-schd's, 40; docs/scheduling.md)")
    ap.add_argument("--pmgr_base_port", type=int, default=50052,
                    help="port of the first client's pod manager; client i gets this + i (default: %(default)s)")
    ap.add_argument("--log_level", choices=["error", "warn", "info", "debug"],
                    help="log level passed to gem-schd and gem-pmgr (default: theirs, info)")
    ap.add_argument("--stats", metavar="PATH",
                    help="gem-schd writes its per-client usage JSON here every 500 ms (with several GPUs: "
                         "PATH.<UUID> for each)")
    ap.add_argument("--gpus", default="auto", metavar="auto|none|UUID,...",
                    help="GPUs to start a gem-schd for: auto (NVML discovery, the default), none (one gem-schd, "
                         "no --gpu), or a comma-separated list of GPU UUIDs")
    ap.add_argument("--socket_dir", default=None,
                    help="with several GPUs: directory of the schedulers' Unix sockets <UUID>.sock "
                         "(default: /tmp/gemini-<uid>)")
    ap.add_argument("--metrics_port", type=int, default=0,
                    help="Prometheus metrics of the gem-schd of GPU i on port METRICS_PORT + i (0: off, the "
                         "default; gemctl looks at 19400-19415)")
    ap.add_argument("--gang_window", type=int, default=None, metavar="MS",
                    help="passed to every gem-pmgr: a client whose processes used several GPUs within MS ms gets "
                         "their tokens together (gang tokens, for pipelines over GPUs; default: gem-pmgr's, 0 = off)")
    ap.add_argument("--pmgr_metrics_port", type=int, default=0,
                    help="metrics of client i's pod manager on port PMGR_METRICS_PORT + i (0: off, the default)")
    ap.add_argument("--mps", action="store_true",
                    help="run the clients under NVIDIA MPS (spatial sharing: a latency client's co-run kernels "
                         "run beside the token holder's instead of time-sliced with them): uses the MPS control "
                         "daemon answering on $CUDA_MPS_PIPE_DIRECTORY (default /tmp/nvidia-mps), else starts "
                         "one and stops it at exit. Clients need the same CUDA_MPS_PIPE_DIRECTORY (none with "
                         "the default); docs/scheduling.md, 'Latency clients under MPS'")
    ap.add_argument("--metrics_address", default="127.0.0.1",
                    help="address the metrics endpoints listen on (default: %(default)s)")
    return ap


def scheduler_plan(args, uuids):
    """[(label, listen flags, endpoint for the pod managers, --gpu UUID or None)], one per gem-schd."""
    if len(uuids) <= 1:
        return [("gem-schd" + (f"[{uuids[0]}]" if uuids else ""), ["--ip", args.ip, "--port", str(args.port)],
                 f"{args.ip}:{args.port}", uuids[0] if uuids else None)]
    d = Path(args.socket_dir or f"/tmp/gemini-{os.getuid()}")
    d.mkdir(parents=True, exist_ok=True)
    return [(f"gem-schd[{u}]", ["--socket", str(d / f"{u}.sock")], str(d / f"{u}.sock"), u) for u in uuids]


def endpoint_listening(endpoint):
    if endpoint.startswith("/"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.2)
                s.connect(endpoint)
                return True
        except OSError:
            return False
    host, port = endpoint.rsplit(":", 1)
    return can_connect(host, int(port))


def main(argv=None):
    args = build_parser().parse_args(argv)
    ids = read_client_ids(args.config)
    schd = find_binary("gem-schd", args.schd)
    pmgr = find_binary("gem-pmgr", args.pmgr)
    for port in [args.port] + [args.pmgr_base_port + i for i in range(len(ids))]:
        if not 0 < port < 65536:
            raise SystemExit(f"{PROG}: error: port {port} out of range")
    if args.port in range(args.pmgr_base_port, args.pmgr_base_port + len(ids)):
        raise SystemExit(f"{PROG}: error: scheduler port {args.port} collides with the pod manager ports "
                         f"{args.pmgr_base_port}..{args.pmgr_base_port + len(ids) - 1}")

    try:
        uuids, note = discover.resolve(args.gpus)
    except ValueError as e:
        raise SystemExit(f"{PROG}: error: {e}")
    log(note)
    plan = scheduler_plan(args, uuids)

    mps_daemon = None
    if args.mps:
        mps_daemon = mps.MpsDaemon()
        try:
            log(mps_daemon.start())
        except mps.MpsError as e:
            raise SystemExit(f"{PROG}: error: {e}")
        if mps_daemon.pipe != mps.DEFAULT_PIPE_DIRECTORY:
            log(f"MPS: clients need CUDA_MPS_PIPE_DIRECTORY={mps_daemon.pipe} "
                f"CUDA_MPS_LOG_DIRECTORY={mps_daemon.logd} in their environment")

    backend = Backend()

    def on_signal(signum, frame):
        if backend.stop_signal is None:
            backend.stop_signal = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    status = 0
    try:
        for g, (label, listen, endpoint, uuid) in enumerate(plan):
            cmd = [schd] + listen + ["--config", args.config, "--base_quota", num(args.base_quota),
                                     "--min_quota", num(args.min_quota), "--window", num(args.window)]
            if uuid:
                cmd += ["--gpu", uuid]
            if args.stats:
                cmd += ["--stats", args.stats if len(plan) == 1 else f"{args.stats}.{uuid}"]
            if args.lease_grace is not None:
                cmd += ["--lease_grace", num(args.lease_grace)]
            if args.swing is not None:
                cmd += ["--swing", str(args.swing)]
            if args.log_level:
                cmd += ["--log_level", args.log_level]
            if args.metrics_port:
                cmd += ["--metrics_port", str(args.metrics_port + g), "--metrics_address", args.metrics_address]
            sp = backend.start(label, cmd)
            # Wait until the scheduler accepts connections so the pod managers find it at once.
            deadline = time.monotonic() + 10
            while not endpoint_listening(endpoint):
                if sp.poll() is not None:
                    log(f"{label} exited with {describe_rc(sp.returncode)} before listening")
                    return 1
                if backend.stop_signal is not None:
                    break
                if time.monotonic() > deadline:
                    log(f"{label} does not accept connections on {endpoint} after 10 s")
                    return 1
                time.sleep(0.05)
            metrics = f", metrics on http://{args.metrics_address}:{args.metrics_port + g}/metrics" \
                if args.metrics_port else ""
            print(f"{label} listening on {endpoint} (pid {sp.pid}, config {args.config}{metrics})", flush=True)

        for i, cid in enumerate(ids):
            if backend.stop_signal is not None:
                break
            port = args.pmgr_base_port + i
            env = dict(os.environ, SCHEDULER_IP=args.ip, SCHEDULER_PORT=str(args.port),
                       POD_MANAGER_IP=args.ip, POD_MANAGER_PORT=str(port), POD_NAME=cid)
            cmd = [pmgr, "--name", cid, "--ip", args.ip, "--port", str(port), "--scheduler", plan[0][2]]
            if len(plan) > 1:
                cmd += ["--scheduler_dir", str(Path(plan[0][2]).parent)]
            if args.pmgr_metrics_port:
                cmd += ["--metrics_port", str(args.pmgr_metrics_port + i), "--metrics_address", args.metrics_address]
            if args.log_level:
                cmd += ["--log_level", args.log_level]
            if args.gang_window is not None:
                cmd += ["--gang_window", str(args.gang_window)]
            backend.start(f"gem-pmgr[{cid}]", cmd, env=env)

        # Report each pod manager once it listens.
        pending = {i: cid for i, cid in enumerate(ids)}
        deadline = time.monotonic() + 10
        while pending and backend.stop_signal is None and time.monotonic() < deadline:
            for i, cid in list(pending.items()):
                port = args.pmgr_base_port + i
                if can_connect(args.ip, port):
                    pid = backend.children[i + len(plan)][1].pid
                    print(f"gem-pmgr for {cid} listening on {args.ip}:{port} (pid {pid})", flush=True)
                    del pending[i]
            if backend.exited():
                break
            time.sleep(0.05)
        for i, cid in pending.items():
            if backend.stop_signal is None and not backend.exited():
                log(f"warning: gem-pmgr for {cid} does not accept connections on {args.ip}:{args.pmgr_base_port + i} yet")
        if backend.stop_signal is None and not backend.exited():
            print(f"backend ready: {len(ids)} client(s); Ctrl-C stops it", flush=True)

        while backend.stop_signal is None:
            gone = backend.exited()
            if gone:
                for label, p in gone:
                    log(f"{label} (pid {p.pid}) exited unexpectedly with {describe_rc(p.returncode)}; stopping the others")
                status = 1
                break
            time.sleep(0.1)
        if backend.stop_signal is not None:
            log(f"got {signal.Signals(backend.stop_signal).name}; stopping")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        backend.stop_all()
        if mps_daemon is not None:
            line = mps_daemon.stop()
            if line:
                log(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
