"""What gemctl shows, built from scraped samples: one view per GPU (a gem-schd) with its clients,
and the pod managers' process counts per client. Counts (of launches, grants, refusals, events...),
byte sizes and 0/1 states are ints; ratios (shares, REQUEST, LIMIT, busy) and seconds are floats."""

import math


def _by_name(samples):
    d = {}
    for name, labels, value in samples:
        d.setdefault(name, []).append((labels, value))
    return d


def _one(d, name, default=None):
    v = d.get(name)
    return v[0][1] if v else default


def _int(v):
    """A count, byte size or 0/1 state as an int; None for NaN or an infinity (no gem daemon writes one)."""
    return int(v) if math.isfinite(v) else None


def _count(d, name):
    """The first sample of series `name` as an int (_int); 0 when there is none."""
    return _int(_one(d, name, 0))


# Per-client series: the key in the view and its type.
CLIENT_SERIES = {
    'gem_client_request_ratio': ('request', float),
    'gem_client_limit_ratio': ('limit', float),
    'gem_client_share_ratio': ('share', float),
    'gem_client_gpu_seconds_total': ('gpu_seconds', float),
    'gem_client_grants_total': ('grants', _int),
    'gem_client_revocations_total': ('revocations', _int),
    'gem_client_connected': ('connected', _int),
    'gem_client_waiting': ('waiting', _int),
    'gem_client_memory_used_bytes': ('mem_used', _int),
    'gem_client_memory_limit_bytes': ('mem_limit', _int),
    'gem_client_memory_resident': ('resident', _int),
    'gem_client_evictions_total': ('evictions', _int),
}


def gpu_view(url, samples):
    """A gem-schd's samples -> dict(url, gpu, holder, busy, health..., clients={name: {...}});
    None when the samples are not a gem-schd's (a pod manager's)."""
    d = _by_name(samples)
    if 'gem_gpu_busy_ratio' not in d:
        return None
    # Named as dcgm-exporter names a GPU: UUID="GPU-...", gpu="NVML index" (an older gem-schd wrote
    # its UUID as gpu).
    labels0 = d['gem_gpu_busy_ratio'][0][0]
    label = labels0.get('gpu', '')
    gpu = labels0.get('UUID') or (label if label.startswith('GPU-') else '')
    index = label if label.isdigit() else None
    holder = [labels.get('client') for labels, v in d.get('gem_gpu_token_holder', []) if v == 1]
    view = {
        'url': url, 'gpu': gpu or '(no --gpu)', 'index': int(index) if index and index.isdigit() else None,
        'holder': holder[0] if holder else None,
        'busy': float(_one(d, 'gem_gpu_busy_ratio', 0.0)), 'window_s': float(_one(d, 'gem_gpu_window_seconds', 0.0)),
        'watched': _one(d, 'gem_gpu_health_watched', 0) == 1, 'healthy': _one(d, 'gem_gpu_healthy', 0) == 1,
        'lost': _one(d, 'gem_gpu_lost', 0) == 1, 'xid_errors': _count(d, 'gem_gpu_xid_errors_total'),
        'last_xid': _count(d, 'gem_gpu_last_xid'),
        'reloads': _count(d, 'gem_config_reloads_total'),
        'reload_errors': _count(d, 'gem_config_reload_errors_total'),
        'mem_budget': _count(d, 'gem_memory_budget_bytes'), 'resident_bytes': _count(d, 'gem_memory_resident_bytes'),
        'clients': {},
        # Clients refused lately (gem_client_refused): their processes wait until admitted.
        'refused': {labels.get('client', '?'): labels.get('reason', '?')
                    for labels, v in d.get('gem_client_refused', []) if v == 1},
        'refusals': _int(sum(v for _, v in d.get('gem_client_refusals_total', []))),
    }
    for series, (key, kind) in CLIENT_SERIES.items():
        for labels, value in d.get(series, []):
            view['clients'].setdefault(labels.get('client', '?'), {})[key] = kind(value)
    return view


def pmgr_view(url, samples):
    """A gem-pmgr's samples -> dict(url, client, launch, memory, scheduler_up); None if not one."""
    d = _by_name(samples)
    if 'gem_pmgr_processes' not in d:
        return None
    kinds = {labels.get('kind'): v for labels, v in d['gem_pmgr_processes']}
    client = d['gem_pmgr_processes'][0][0].get('client', '?')
    # Per process and GPU (gem_pmgr_process_*): a launch gate's token, a memory session's lease.
    procs = {}
    for series, key in (('gem_pmgr_process_token_held', 'token'), ('gem_pmgr_process_memory_bytes', 'mem_bytes')):
        for labels, v in d.get(series, []):
            p = procs.setdefault((labels.get('pid', '?'), labels.get('scheduler', '')),
                                 {'pid': int(labels['pid']) if labels.get('pid', '').isdigit() else None,
                                  'scheduler': labels.get('scheduler', ''), 'token': None, 'mem_bytes': None})
            p[key] = _int(v)
    return {'url': url, 'client': client, 'launch': _int(kinds.get('launch', 0)), 'memory': _int(kinds.get('memory', 0)),
            'scheduler_up': all(v == 1 for _, v in d.get('gem_pmgr_scheduler_up', [])),
            'grants': _count(d, 'gem_pmgr_grants_total'),
            'processes': [procs[k] for k in sorted(procs, key=lambda k: (str(k[0]), k[1]))]}


def views(scraped):
    """(gpus, pmgrs, errors) from prom.scrape_all's result."""
    gpus, pmgrs, errors = [], [], []
    for url, samples, err in scraped:
        if samples is None:
            errors.append((url, err))
            continue
        g = gpu_view(url, samples)
        if g is not None:
            gpus.append(g)
            continue
        p = pmgr_view(url, samples)
        if p is not None:
            pmgrs.append(p)
        else:
            errors.append((url, 'not a gem-schd or gem-pmgr metrics endpoint'))
    return gpus, pmgrs, errors
