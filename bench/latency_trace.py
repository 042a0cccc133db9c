"""Where a latency client's slow requests spent their time (share_latency.py --trace).

Inputs: the client's trace (bench/latency_client.cu --trace_out: "DUE LAUNCH_MS DONE_MS" per request,
DUE in Unix seconds) and gem-schd's log at --log_level debug (common/log.cpp's "YYYY-MM-DDTHH:MM:SS.mmmZ
gem-schd[PID] DEBUG: ..." lines; the events of scheduler/server.cpp: "NAME requests the token",
"grant NAME quota N us [(co-run)]", "NAME released: ...", "NAME renewal after N us: ..."). The log's
times have ms resolution, so an event is matched to a request within +-1 ms.

A request is slow when it took more than SLOW_X times the kernel. Its time is split into the wait in
the launch call (under the hook: the wait for the token) and the GPU's (launch return to sync return).
Pure functions over lists; no I/O but the two readers."""
import calendar
import re
import time

SLOW_X = 1.5       # a request over 1.5 x the kernel's length is slow
TOKEN_WAIT_MS = 0.5  # a launch call longer than this waited for the token
_LOG = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z (\S+)\[\d+\] DEBUG: (.*)$")
_EVENTS = [
    ("request", re.compile(r"^(\S+) requests the token(?: \(holds it\))?$")),
    ("grant", re.compile(r"^grant (\S+) quota (\d+) us( \(co-run\))?$")),
    ("release", re.compile(r"^(\S+) released: used (\d+) us")),
    ("renew", re.compile(r"^(\S+) renewal after (\d+) us: (\w+)$")),
]


def debug_line(line):
    """(t_unix_s, program, message) of one DEBUG line of common/log.cpp's format, or None. Also
    bench/token_trace.py's reader of the hook's trace."""
    m = _LOG.match(line.rstrip("\n"))
    if not m:
        return None
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + int(m.group(2)) / 1000.0
    return (t, m.group(3), m.group(4))


def parse_event(line):
    """(t_unix_s, kind, client, detail) of one debug log line, or None."""
    d = debug_line(line)
    if not d:
        return None
    t, _, message = d
    for kind, rx in _EVENTS:
        e = rx.match(message)
        if e:
            detail = ""
            if kind == "grant":
                detail = f"{int(e.group(2)) / 1000:.0f} ms" + (" co-run" if e.group(3) else "")
            elif kind == "renew":
                detail = e.group(3)
            return (t, kind, e.group(1), detail)
    return None


def read_events(path):
    """Every scheduler event of a backend log, in file order."""
    with open(path, errors="replace") as f:
        return [e for e in (parse_event(line) for line in f) if e]


def read_trace(path):
    """[(due_unix_s, launch_ms, done_ms)] of a --trace_out file; malformed lines are skipped."""
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                try:
                    out.append(tuple(float(x) for x in parts))
                except ValueError:
                    pass
    return out


def holder_at(events, t):
    """The client holding the (not co-run) token at time t by the log: the last plain grant before t
    whose holder has not released it since; None when free."""
    holder = None
    for et, kind, client, detail in events:
        if et > t:
            break
        if kind == "grant" and "co-run" not in detail:
            holder = client
        elif kind == "release" and client == holder:
            holder = None
    return holder


def classify(req):
    """'token' when the launch call waited over TOKEN_WAIT_MS, else 'gpu'."""
    _, launch_ms, _ = req
    return "token" if launch_ms > TOKEN_WAIT_MS else "gpu"


def report(name, reqs, events, kernel_ms, skip_s=0.0, slow_x=SLOW_X, limit=40):
    """Lines: a summary first (for the run's notes), then one line per slow request (up to limit) with
    the client's own events within its span and who held the token at its start."""
    if not reqs:
        return [f"{name} trace: no requests"]
    t0 = reqs[0][0] + skip_s
    kept = [r for r in reqs if r[0] >= t0]
    slow = [r for r in kept if r[2] > slow_x * kernel_ms]
    kinds = [classify(r) for r in slow]
    n_tok = kinds.count("token")
    gpu_extra = sorted(r[2] - r[1] - kernel_ms for r, k in zip(slow, kinds) if k == "gpu")
    head = (f"{name} trace: {len(slow)} of {len(kept)} requests over {slow_x:g}x the kernel "
            f"({slow_x * kernel_ms:.2f} ms): {n_tok} waited in the launch call (token), "
            f"{len(slow) - n_tok} on the GPU"
            + (f" (GPU extra median {gpu_extra[len(gpu_extra) // 2]:.2f} ms, max {gpu_extra[-1]:.2f} ms)"
               if gpu_extra else ""))
    lines = [head, "  due (s after start)  launch ms  done ms  where  holder  client events (ms after due)"]
    for r, k in list(zip(slow, kinds))[:limit]:
        due, launch_ms, done_ms = r
        mine = [f"{kind}{'(' + d + ')' if d else ''}@{(et - due) * 1000:+.0f}"
                for et, kind, c, d in events if c == name and due - 0.001 <= et <= due + done_ms / 1000 + 0.001]
        lines.append(f"  {due - reqs[0][0]:9.3f}  {launch_ms:9.2f}  {done_ms:7.2f}  {k:5}  "
                     f"{holder_at(events, due) or '-':6}  {' '.join(mine) or '-'}")
    return lines
