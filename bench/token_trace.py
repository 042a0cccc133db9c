#!/usr/bin/env python3
"""Slices a busy client gave back as idle soon after its grant, from the hook's debug trace.

  token_trace.py [--short_ms 10] [--context 6] CLIENT.err ...

Input: a hooked program's stderr at GEMINI_LOG_LEVEL=debug (hook/token_worker.cpp: one
"YYYY-MM-DDTHH:MM:SS.mmmZ gemhook[PID] DEBUG: token: ACTION N us[, again] (STATE...)" line per step of
the token worker but the waits, and "token: sync returned after N us" after each idle look;
docs/operations.md, "Tracing the token protocol"). A slice starts at its `prefetch` step (the grant)
and ends at the release after it: `release-and-request ..., again` when the quota ran out (busy) or
`release` when the worker found the client idle. An idle release within --short_ms of the grant is
what cost a 0.3 client a turn in the H100 split runs E5/E7b (docs/scheduling.md, "--swing"): for each
one the tool prints the trace lines from --context lines before the grant to the release.
The log's times have ms resolution. Pure functions over lines; no I/O but main()."""
import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency_trace import debug_line  # noqa: E402

_STEP = re.compile(r"^token: (\S+)(.*)$")


def parse(lines):
    """[(t_unix_s, step, rest, line)] for the hook's token trace lines among `lines`."""
    out = []
    for line in lines:
        d = debug_line(line)
        m = _STEP.match(d[2]) if d else None
        if m:
            out.append((d[0], m.group(1), m.group(2), line.rstrip("\n")))
    return out


def slices(steps):
    """[(grant_index, release_index, idle)] for every slice that ended in `steps` (parse()'s list)."""
    out, start = [], None
    for i, (_, step, _, _) in enumerate(steps):
        if step == "prefetch":
            start = i
        elif step in ("release", "release-and-request") and start is not None:
            out.append((start, i, step == "release"))
            start = None
    return out


def short_idle(steps, short_ms):
    """The slices of `steps` given back as idle within short_ms of their grant: [(grant_i, release_i)]."""
    return [(a, b) for a, b, idle in slices(steps) if idle and (steps[b][0] - steps[a][0]) * 1000 <= short_ms]


def report(name, steps, short_ms, context):
    """Lines: the slices, idle releases, short ones; each short one with its trace lines."""
    all_slices = slices(steps)
    idle = sum(1 for _, _, i in all_slices if i)
    short = short_idle(steps, short_ms)
    lines = [f"{name}: {len(all_slices)} slices, {idle} idle releases, {len(short)} within {short_ms:g} ms of the grant"]
    for a, b in short:
        lines.append(f"  held {(steps[b][0] - steps[a][0]) * 1000:.0f} ms:")
        lines += ["    " + s[3] for s in steps[max(0, a - context):b + 1]]
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+", help="hooked programs' stderr at GEMINI_LOG_LEVEL=debug")
    ap.add_argument("--short_ms", type=float, default=10.0, help="an idle release this soon after the grant is listed")
    ap.add_argument("--context", type=int, default=6, help="trace lines shown before each listed grant")
    a = ap.parse_args(argv)
    found = 0
    for path in a.logs:
        try:
            with open(path, errors="replace") as f:
                steps = parse(f)
        except OSError as e:
            print(f"token_trace: {path}: {e.strerror}", file=sys.stderr)
            return 2
        if not steps:
            print(f"{path}: no token trace lines (was the program run with GEMINI_LOG_LEVEL=debug?)")
            continue
        found += len(short_idle(steps, a.short_ms))
        print("\n".join(report(path, steps, a.short_ms, a.context)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
