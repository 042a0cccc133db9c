"""`gemctl ps`: one line per process of every client, like nvidia-smi's process table: its pid (in
its own pid namespace), client, GPU, the device memory it leases, whether it holds the token, and
its client's share of that GPU. From the pod managers' per-process series (gem_pmgr_process_*) and
gem-schd's per-client share; the GPU is the UUID in the route's socket name (<UUID>.sock)."""

import json
import re
import sys

from . import model, prom
from .status import size

UUID_RE = re.compile(r'(GPU-[0-9a-fA-F-]{36})')


def gpu_of(scheduler):
    """The GPU UUID a route's endpoint names ('unix:/run/gemini/GPU-....sock'), or '' (one shared gem-schd)."""
    m = UUID_RE.search(scheduler or '')
    return m.group(1) if m else ''


def rows(gpus, pmgrs):
    """[{pid, client, gpu, mem_bytes, token, share}] sorted by GPU, client, pid. share: the client's
    share of that GPU from its gem-schd (None when no gem-schd of that GPU was read)."""
    by_uuid = {g['gpu']: g for g in gpus}
    out = []
    for p in pmgrs:
        for proc in p.get('processes', []):
            uuid = gpu_of(proc['scheduler'])
            g = by_uuid.get(uuid) if uuid else (gpus[0] if len(gpus) == 1 else None)
            share = g['clients'].get(p['client'], {}).get('share') if g else None
            out.append({'pid': proc['pid'], 'client': p['client'], 'gpu': uuid or (g['gpu'] if g else ''),
                        'mem_bytes': proc['mem_bytes'], 'token': proc['token'], 'share': share})
    # A process has a launch gate and a memory session per GPU: one row for both.
    merged = {}
    for r in out:
        k = (r['gpu'], r['client'], r['pid'])
        if k in merged:
            m = merged[k]
            m['mem_bytes'] = r['mem_bytes'] if m['mem_bytes'] is None else m['mem_bytes']
            m['token'] = r['token'] if m['token'] is None else m['token']
        else:
            merged[k] = r
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0], k[1], k[2] or 0))]


def render(table):
    if not table:
        return 'no processes (no gem-pmgr read, or none connected)\n'
    lines = [f"{'PID':>8}  {'CLIENT':<28} {'GPU':<40} {'MEMORY':>10} {'SHARE':>6} TOKEN"]
    for r in table:
        share = '-' if r['share'] is None else f"{r['share']:.2f}"
        token = '-' if r['token'] is None else ('held' if r['token'] else '')
        lines.append(f"{r['pid'] if r['pid'] is not None else '?':>8}  {r['client']:<28} {r['gpu'] or '-':<40} "
                     f"{size(r['mem_bytes']):>10} {share:>6} {token}")
    return '\n'.join(lines) + '\n'


def cmd_ps(args):
    """gemctl ps: exit 0 when a gem-pmgr answered and every endpoint named or found was read; 1 otherwise."""
    urls, probed = prom.discover(args.endpoint)
    gpus, pmgrs, errors = model.views(prom.scrape_all(urls, timeout=args.timeout, probed=probed))
    table = rows(gpus, pmgrs)
    if args.json:
        json.dump({'processes': table, 'errors': [{'url': u, 'error': e} for u, e in errors]}, sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        sys.stdout.write(render(table))
        for u, e in errors:
            sys.stdout.write(f"cannot read {u}: {e}\n")
    return 1 if errors or not pmgrs else 0
