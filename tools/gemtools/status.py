"""`gemctl status` and `gemctl top`: per GPU its health, token holder and busy time, and per client
the configured REQUEST/LIMIT against the share achieved, GPU time, memory and processes."""

import json
import sys
import time

from . import model, prom


def size(b):
    if b is None:
        return '-'
    b = float(b)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if b < 1024 or unit == 'TiB':
            return f"{b:.0f} {unit}" if unit == 'B' else f"{b:.1f} {unit}"
        b /= 1024
    return str(b)


def count(n):
    """A count for the table: '-' when it is unknown (None)."""
    return '-' if n is None else str(n)


def health_text(g):
    if g['lost']:
        return 'LOST'
    if not g['watched']:
        return 'health not watched (no NVML)'
    if g['xid_errors']:
        return f"UNHEALTHY: {g['xid_errors']} critical XID event(s), last XID {g['last_xid']}"
    return 'healthy'


def client_state(c):
    if c.get('resident', 1) == 0:
        return 'evicted'
    if c.get('waiting'):
        return 'waiting'
    return 'connected' if c.get('connected') else 'not connected'


def render(gpus, pmgrs, errors):
    """The status text."""
    procs = {p['client']: p for p in pmgrs}
    out = []
    for g in gpus:
        busy = f"busy {g['busy'] * 100:.0f}% of the last {g['window_s']:g} s"
        out.append(f"GPU {g['gpu']}: {health_text(g)}; token holder {g['holder'] or '-'}; {busy}; "
                   f"config reloads {g['reloads']} (refused {g['reload_errors']})  [{g['url']}]")
        if g['mem_budget']:
            out.append(f"  memory budget {size(g['mem_budget'])}, resident {size(g['resident_bytes'])}")
        out.append(f"  {'client':<20} {'request':>7} {'limit':>6} {'achieved':>8} {'GPU s':>9} {'grants':>7} "
                   f"{'revoked':>7} {'procs':>5}  {'memory used / limit':<22} state")
        for name in sorted(g['clients']):
            c = g['clients'][name]
            limit = size(c.get('mem_limit')) if c.get('mem_limit') else 'no limit'
            p = procs.get(name)
            state = 'holding' if g['holder'] == name else client_state(c)
            out.append(f"  {name:<20} {c.get('request', 0):>7.2f} {c.get('limit', 1):>6.2f} {c.get('share', 0):>8.3f} "
                       f"{c.get('gpu_seconds', 0):>9.1f} {count(c.get('grants', 0)):>7} {count(c.get('revocations', 0)):>7} "
                       f"{(str(p['launch']) if p else '-'):>5}  {size(c.get('mem_used', 0)) + ' / ' + limit:<22} {state}")
        for name in sorted(g.get('refused', {})):
            out.append(f"  {name:<20} REFUSED ({g['refused'][name]}): its processes wait until gem-schd admits it "
                       f"(see gem-pmgr's log for the fix)")
        out.append('')
    known = {name for g in gpus for name in g['clients']}
    for p in pmgrs:
        if p['client'] not in known:
            out.append(f"pod manager {p['client']}: {p['launch']} process(es), scheduler "
                       f"{'connected' if p['scheduler_up'] else 'NOT connected'}  [{p['url']}]")
    for url, err in errors:
        out.append(f"cannot read {url}: {err}")
    if not gpus and not pmgrs and not errors:
        out.append('no gem-schd or gem-pmgr metrics found (start them with --metrics_port, '
                   'e.g. launch-backend.py --metrics_port 19400, or say where: --endpoint HOST:PORT)')
    return '\n'.join(out).rstrip() + '\n'


def snapshot(args, skipped=None):
    """(gpus, pmgrs, errors) of the endpoints now; probed ones where something else answers are left
    out (prom.scrape_all) and added to `skipped` as (url, why)."""
    urls, probed = prom.discover(args.endpoint)
    return model.views(prom.scrape_all(urls, timeout=args.timeout, probed=probed, skipped=skipped))


def cmd_status(args):
    """gemctl status: exit 0 when a gem daemon answered and every other endpoint named or found was
    read; 1 when none answered or one could not be read (a foreign one on a probed port is skipped)."""
    skipped = []
    gpus, pmgrs, errors = snapshot(args, skipped)
    if args.json:
        json.dump({'gpus': gpus, 'pod_managers': pmgrs, 'errors': [{'url': u, 'error': e} for u, e in errors],
                   'skipped': [{'url': u, 'why': w} for u, w in skipped]}, sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        sys.stdout.write(render(gpus, pmgrs, errors))
    if errors or not (gpus or pmgrs):
        return 1
    return 0


def cmd_top(args):
    clear = sys.stdout.isatty()
    n = 0
    try:
        while True:
            gpus, pmgrs, errors = snapshot(args)
            text = render(gpus, pmgrs, errors)
            if clear:
                sys.stdout.write('\x1b[H\x1b[2J')
            sys.stdout.write(time.strftime('%H:%M:%S') + f"  gemctl top (every {args.interval:g} s; Ctrl-C quits)\n")
            sys.stdout.write(text)
            sys.stdout.flush()
            n += 1
            if args.count and n >= args.count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
