"""GPU discovery for launch-backend.py: the node's GPUs by UUID through NVML (ctypes), or the
UUIDs an operator names. One gem-schd per GPU is then started (docs/operations.md)."""

import os
import re

from . import nvml

UUID = re.compile(r'^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')


def nvml_uuids(library='libnvidia-ml.so.1'):
    """UUIDs of every GPU NVML sees, in index order; raises nvml.NvmlError when NVML cannot be used."""
    n = nvml.Nvml(library)
    try:
        return [n.uuid(n.handle(index=i)) for i in range(n.count())]
    finally:
        n.close()


def resolve(spec, library=None):
    """--gpus: 'auto' -> (NVML's UUIDs, note) or ([], why) when NVML cannot be used or sees none;
    'none' -> ([], note); 'GPU-...,GPU-...' -> (those, note). Raises ValueError for a malformed UUID."""
    if spec == 'none':
        return [], 'GPU discovery off (--gpus none): one gem-schd for whatever GPU the clients use'
    if spec == 'auto':
        library = library or os.environ.get('GEMINI_NVML') or 'libnvidia-ml.so.1'
        try:
            uuids = nvml_uuids(library)
        except nvml.NvmlError as e:
            return [], f"no GPU discovered ({e}): one gem-schd for whatever GPU the clients use"
        if not uuids:
            return [], 'NVML sees no GPU: one gem-schd for whatever GPU the clients use'
        return uuids, f"NVML found {len(uuids)} GPU(s): {', '.join(uuids)}"
    uuids = [u.strip() for u in spec.split(',') if u.strip()]
    for u in uuids:
        if not UUID.match(u):
            raise ValueError(f"--gpus: {u!r} is not a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    if len(set(uuids)) != len(uuids):
        raise ValueError('--gpus: a UUID is named twice')
    return uuids, f"GPUs named with --gpus: {', '.join(uuids)}"
