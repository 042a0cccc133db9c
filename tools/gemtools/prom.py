"""Fetch and parse the daemons' Prometheus metrics (text format 0.0.4), standard library only.

Endpoints: --endpoint HOST:PORT or URL (repeatable), else $GEMINI_METRICS (comma-separated), else
the loopback ports launch-backend.py --metrics_port uses by default (9400-9415), probed quickly.
"""

import os
import re
import socket
import urllib.error
import urllib.request

DEFAULT_PORTS = range(9400, 9416)
_LINE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(v):
    return v.replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')


def parse(text):
    """Samples of an exposition: a list of (name, {label: value}, float). Comments are skipped;
    a malformed line raises ValueError (a daemon never writes one)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"malformed metrics line: {line!r}")
        labels = {k: _unescape(v) for k, v in _LABEL.findall(m.group(3) or '')}
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def url_of(endpoint):
    """'HOST:PORT', 'PORT' or a URL -> the /metrics URL."""
    e = endpoint.strip()
    if e.isdigit():
        e = f"127.0.0.1:{e}"
    if not e.startswith(('http://', 'https://')):
        e = 'http://' + e
    if e.count('/') == 2:
        e += '/metrics'
    return e


def fetch(url, timeout=3.0):
    """The text at url; raises OSError (urllib.error.URLError is one) when it cannot be had."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        if r.status != 200:
            raise OSError(f"{url}: HTTP {r.status}")
        return r.read().decode('utf-8', 'replace')


def _listening(port, host='127.0.0.1'):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def endpoints(given):
    """The metrics URLs to read: given ones, else $GEMINI_METRICS, else the default ports that listen."""
    if given:
        return [url_of(e) for e in given]
    env = os.environ.get('GEMINI_METRICS', '')
    if env.strip():
        return [url_of(e) for e in env.split(',') if e.strip()]
    return [url_of(str(p)) for p in DEFAULT_PORTS if _listening(p)]


def scrape_all(urls, timeout=3.0):
    """[(url, samples or None, error or None)] for every URL."""
    out = []
    for u in urls:
        try:
            out.append((u, parse(fetch(u, timeout)), None))
        except (OSError, ValueError, urllib.error.URLError) as e:
            out.append((u, None, str(getattr(e, 'reason', e))))
    return out
