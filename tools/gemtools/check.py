"""`gemctl check`: a preflight of the node's GPUs through NVML. Each finding is
  OK    nothing to do,
  WARN  hurts predictability (shares drift, slices cost more): persistence off, clocks held down,
        ECC errors, XID errors, other processes on the GPU,
  FAIL  breaks sharing: no NVML or driver, a CUDA driver older than 12, a compute mode that lets
        only one process in, MIG on, a lost GPU.
Exit status 1 when anything FAILs, else 0 (2 on a usage error)."""

import json
import os
import sys

from . import model, nvml, prom

COMPUTE_MODES = {0: 'Default', 1: 'Exclusive_Thread', 2: 'Prohibited', 3: 'Exclusive_Process'}
# Clock event (throttle) reasons that mean the GPU runs slower than it could, by bit.
SLOWDOWN = {0x4: 'software power cap', 0x8: 'hardware slowdown', 0x20: 'software thermal slowdown',
            0x40: 'hardware thermal slowdown', 0x80: 'hardware power brake', 0x100: 'display clock setting'}
IDLE = 0x1


class Report:
    def __init__(self):
        self.items = []

    def add(self, level, where, what, detail):
        self.items.append({'level': level, 'gpu': where, 'item': what, 'detail': detail})

    def text(self):
        lines = [f"{i['level']:<5} {i['gpu']:<8} {i['item']}: {i['detail']}" for i in self.items]
        fails = sum(i['level'] == 'FAIL' for i in self.items)
        warns = sum(i['level'] == 'WARN' for i in self.items)
        if fails:
            lines.append(f"{fails} problem(s) will break sharing, {warns} will hurt predictability.")
        elif warns:
            lines.append(f"Sharing will work; {warns} finding(s) will hurt predictability.")
        else:
            lines.append('Sharing will work; nothing found that hurts predictability.')
        return '\n'.join(lines) + '\n'

    def failed(self):
        return any(i['level'] == 'FAIL' for i in self.items)


def _guard(report, where, what, fn):
    """Runs fn(); an NVML error is reported (NOT_SUPPORTED as OK, else WARN) and None returned."""
    try:
        return fn()
    except nvml.NvmlError as e:
        if e.code == nvml.NOT_SUPPORTED:
            report.add('OK', where, what, 'not supported on this GPU')
        elif e.code == nvml.GPU_IS_LOST:
            report.add('FAIL', where, what, f"GPU lost ({e})")
        else:
            report.add('WARN', where, what, f"cannot read: {e}")
        return None


def _proc_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return '?'


def check_device(n, report, where, h, args, schd_health):
    name = _guard(report, where, 'name', lambda: n.name(h))
    uuid = _guard(report, where, 'uuid', lambda: n.uuid(h))
    if uuid is None:
        return
    report.add('OK', where, 'device', f"{name} {uuid}")
    mode = _guard(report, where, 'compute mode', lambda: n.compute_mode(h))
    if mode is not None:
        label = COMPUTE_MODES.get(mode, str(mode))
        if mode == 0:
            report.add('OK', where, 'compute mode', label)
        else:
            report.add('FAIL', where, 'compute mode', f"{label}: only one process (or none) may use the GPU, so "
                       "clients cannot share it (nvidia-smi -c DEFAULT)")
    mig = _guard(report, where, 'MIG', lambda: n.mig_mode(h))
    if mig is not None:
        if mig[0]:
            report.add('FAIL', where, 'MIG', 'on: gem-schd shares whole GPUs; MIG instances are separate devices '
                       '(nvidia-smi -mig 0)')
        else:
            report.add('OK', where, 'MIG', 'off' + (' (on after the next reset)' if mig[1] else ''))
    pm = _guard(report, where, 'persistence mode', lambda: n.persistence_mode(h))
    if pm is not None:
        if pm:
            report.add('OK', where, 'persistence mode', 'on')
        else:
            report.add('WARN', where, 'persistence mode', 'off: the driver tears the GPU down when the last '
                       'process exits, so first launches are slow and clocks start low (nvidia-smi -pm 1)')
    sm = _guard(report, where, 'SM clock', lambda: (n.clock(h), n.clock(h, maximum=True)))
    reasons = _guard(report, where, 'clock reasons', lambda: n.clock_reasons(h))
    if sm is not None:
        slow = [text for bit, text in SLOWDOWN.items() if reasons and reasons & bit]
        detail = f"{sm[0]} of {sm[1]} MHz"
        if slow:
            report.add('WARN', where, 'clocks', f"{detail}, held down by {', '.join(slow)}: kernels take longer "
                       "than when measured, so slices and shares drift")
        elif reasons is not None and reasons & IDLE:
            report.add('OK', where, 'clocks', f"{detail} (idle; lock them with nvidia-smi -lgc for steadier slices)")
        else:
            report.add('OK', where, 'clocks', detail)
    ecc = _guard(report, where, 'ECC', lambda: n.ecc(h))
    if ecc is not None:
        on, errors = ecc
        if errors:
            report.add('WARN', where, 'ECC', f"{errors} uncorrected error(s) since the driver loaded: pages may be "
                       "retired and programs killed")
        else:
            report.add('OK', where, 'ECC', ('on' if on else 'off') + ', no uncorrected errors')
    xids = _guard(report, where, 'XID events', lambda: n.xid_events(h, args.xid_wait)) if args.xid_wait > 0 else []
    seen = schd_health.get(uuid)
    if seen and seen['lost']:
        report.add('FAIL', where, 'health', f"gem-schd reports the GPU lost [{seen['url']}]")
    if seen and seen['xid_errors']:
        xids = (xids or []) + [seen['last_xid']]
        report.add('WARN', where, 'XID errors', f"gem-schd saw {seen['xid_errors']} critical XID event(s), last "
                   f"XID {seen['last_xid']} [{seen['url']}]")
    elif xids:
        counts = {}
        for x in xids:
            counts[x] = counts.get(x, 0) + 1
        listed = ', '.join(f"{x}" + (f" (x{n})" if n > 1 else '') for x, n in counts.items())
        report.add('WARN', where, 'XID errors', f"critical XID event(s) {listed} within {args.xid_wait:g} s")
    elif xids is not None:
        report.add('OK', where, 'XID errors', f"none within {args.xid_wait:g} s"
                   + (' nor in gem-schd\'s metrics' if seen else ''))
    procs = _guard(report, where, 'processes', lambda: n.processes(h))
    if procs is not None:
        if procs:
            listed = ', '.join(f"{pid} ({_proc_name(pid)}, {b >> 20} MiB)" for pid, b in procs)
            report.add('WARN', where, 'other processes', f"{len(procs)} on the GPU: {listed}; anything not run "
                       "under the hook takes GPU time the shares do not account for")
        else:
            report.add('OK', where, 'other processes', 'none')


def run_check(args):
    report = Report()
    schd_health = {}
    try:
        urls, probed = prom.discover(args.endpoint)
        gpus, _, _ = model.views(prom.scrape_all(urls, timeout=args.timeout, probed=probed))
        schd_health = {g['gpu']: g for g in gpus}
    except Exception:
        pass
    try:
        n = nvml.Nvml(args.nvml)
    except nvml.NvmlError as e:
        report.add('FAIL', '-', 'NVML', f"{e}: no NVIDIA driver here, nothing can be shared")
        return report
    try:
        report.add('OK', '-', 'driver', _guard(report, '-', 'driver', n.driver_version) or '?')
        cuda = _guard(report, '-', 'CUDA', n.cuda_version)
        if cuda is not None:
            text = f"{cuda // 1000}.{cuda % 1000 // 10}"
            if cuda < 12000:
                report.add('FAIL', '-', 'CUDA', f"driver supports CUDA {text}; the hook needs CUDA 12 or 13")
            else:
                report.add('OK', '-', 'CUDA', f"driver supports CUDA {text}")
        if args.gpu:
            targets = [(args.gpu, {'uuid': args.gpu} if args.gpu.startswith('GPU-') else {'index': int(args.gpu)})]
        else:
            count = _guard(report, '-', 'devices', n.count) or 0
            if count == 0:
                report.add('FAIL', '-', 'devices', 'NVML sees no GPU')
            targets = [(str(i), {'index': i}) for i in range(count)]
        for where, key in targets:
            h = _guard(report, where, 'device', lambda: n.handle(**key))
            if h is not None:
                check_device(n, report, where, h, args, schd_health)
    finally:
        n.close()
    return report


def cmd_check(args):
    if args.gpu and not (args.gpu.startswith('GPU-') or args.gpu.isdigit()):
        print(f"gemctl check: --gpu: expected an index or a GPU-... UUID, got {args.gpu!r}", file=sys.stderr)
        return 2
    report = run_check(args)
    if args.json:
        json.dump({'ok': not report.failed(), 'findings': report.items}, sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        sys.stdout.write(report.text())
    return 1 if report.failed() else 0
