"""What gemctl shows, built from scraped samples: one view per GPU (a gem-schd) with its clients,
and the pod managers' process counts per client."""


def _by_name(samples):
    d = {}
    for name, labels, value in samples:
        d.setdefault(name, []).append((labels, value))
    return d


def _one(d, name, default=None):
    v = d.get(name)
    return v[0][1] if v else default


CLIENT_SERIES = {
    'gem_client_request_ratio': 'request',
    'gem_client_limit_ratio': 'limit',
    'gem_client_share_ratio': 'share',
    'gem_client_gpu_seconds_total': 'gpu_seconds',
    'gem_client_grants_total': 'grants',
    'gem_client_revocations_total': 'revocations',
    'gem_client_connected': 'connected',
    'gem_client_waiting': 'waiting',
    'gem_client_memory_used_bytes': 'mem_used',
    'gem_client_memory_limit_bytes': 'mem_limit',
    'gem_client_memory_resident': 'resident',
    'gem_client_evictions_total': 'evictions',
}


def gpu_view(url, samples):
    """A gem-schd's samples -> dict(url, gpu, holder, busy, health..., clients={name: {...}});
    None when the samples are not a gem-schd's (a pod manager's)."""
    d = _by_name(samples)
    if 'gem_gpu_busy_ratio' not in d:
        return None
    gpu = d['gem_gpu_busy_ratio'][0][0].get('gpu', '')
    holder = [labels.get('client') for labels, v in d.get('gem_gpu_token_holder', []) if v == 1]
    view = {
        'url': url, 'gpu': gpu or '(no --gpu)', 'holder': holder[0] if holder else None,
        'busy': _one(d, 'gem_gpu_busy_ratio', 0.0), 'window_s': _one(d, 'gem_gpu_window_seconds', 0.0),
        'watched': _one(d, 'gem_gpu_health_watched', 0) == 1, 'healthy': _one(d, 'gem_gpu_healthy', 0) == 1,
        'lost': _one(d, 'gem_gpu_lost', 0) == 1, 'xid_errors': int(_one(d, 'gem_gpu_xid_errors_total', 0)),
        'last_xid': int(_one(d, 'gem_gpu_last_xid', 0)),
        'reloads': int(_one(d, 'gem_config_reloads_total', 0)),
        'reload_errors': int(_one(d, 'gem_config_reload_errors_total', 0)),
        'mem_budget': _one(d, 'gem_memory_budget_bytes', 0), 'resident_bytes': _one(d, 'gem_memory_resident_bytes', 0),
        'clients': {},
        # Clients refused lately (gem_client_refused): their processes wait until admitted.
        'refused': {labels.get('client', '?'): labels.get('reason', '?')
                    for labels, v in d.get('gem_client_refused', []) if v == 1},
        'refusals': int(sum(v for _, v in d.get('gem_client_refusals_total', []))),
    }
    for series, key in CLIENT_SERIES.items():
        for labels, value in d.get(series, []):
            view['clients'].setdefault(labels.get('client', '?'), {})[key] = value
    return view


def pmgr_view(url, samples):
    """A gem-pmgr's samples -> dict(url, client, launch, memory, scheduler_up); None if not one."""
    d = _by_name(samples)
    if 'gem_pmgr_processes' not in d:
        return None
    kinds = {labels.get('kind'): v for labels, v in d['gem_pmgr_processes']}
    client = d['gem_pmgr_processes'][0][0].get('client', '?')
    return {'url': url, 'client': client, 'launch': int(kinds.get('launch', 0)), 'memory': int(kinds.get('memory', 0)),
            'scheduler_up': all(v == 1 for _, v in d.get('gem_pmgr_scheduler_up', [])),
            'grants': int(_one(d, 'gem_pmgr_grants_total', 0))}


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
