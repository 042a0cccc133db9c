"""Fetch and parse the daemons' Prometheus metrics (text format 0.0.4), standard library only.

Endpoints: --endpoint HOST:PORT or URL (repeatable), else $GEMINI_METRICS (comma-separated), else
the loopback ports GEM_METRICS_BASE_PORT + 0..15 (19400-19415, where launch-backend.py --metrics_port
19400 puts gem-schd), probed quickly.
Something else may listen on a probed port (node_exporter, Grafana, sshd): what answers there but not
with gem_ metrics (NotGem) is skipped with a note on stderr. On a port the operator named it is an error.
"""

import http.client
import os
import re
import socket
import sys
import urllib.error
import urllib.request

# Base of the daemons' metrics ports: gem-schd of GPU i on GEM_METRICS_BASE_PORT + i (launch-backend.py
# --metrics_port, the node DaemonSet). Outside Prometheus' exporter range 9100-9999 (fully allocated
# on its "default port allocations" wiki page; 9400 there is dcgm-exporter's), below the Kubernetes
# NodePort (30000-32767) and Linux ephemeral (32768-60999) ranges. docs/operations.md, "Metrics ports".
GEM_METRICS_BASE_PORT = 19400
DEFAULT_PORTS = range(GEM_METRICS_BASE_PORT, GEM_METRICS_BASE_PORT + 16)
_LINE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


class NotGem(Exception):
    """The endpoint answered, but not with a gem daemon's metrics: another program on the port."""


def _short(text, n=60):
    """text on one line, at most n characters (for a one-line note)."""
    text = ' '.join(str(text).split())
    return text if len(text) <= n else text[:n - 3] + '...'


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
    """The text at url. Raises NotGem when what answers is not a metrics endpoint (an HTTP status
    other than 200, not HTTP at all), OSError (urllib.error.URLError is one) when it cannot be had."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        raise NotGem(f"HTTP {e.code} {_short(e.reason)}") from None
    except OSError:
        raise  # refused, timed out, closed without an answer (RemoteDisconnected): nothing answered
    except (http.client.BadStatusLine, http.client.UnknownProtocol, http.client.LineTooLong) as e:
        raise NotGem(f"not HTTP ({type(e).__name__}: {_short(e)})") from None
    except http.client.HTTPException as e:  # HTTP, cut short (IncompleteRead, ...)
        raise OSError(f"{type(e).__name__}: {_short(e)}") from None
    if status != 200:
        raise NotGem(f"HTTP {status}")
    return body.decode('utf-8', 'replace')


def _gem_lines(text):
    return any(line.startswith(('gem_', '# HELP gem_', '# TYPE gem_')) for line in text.splitlines())


def read(url, timeout=3.0):
    """The samples of a gem daemon's metrics at url. Raises NotGem when what answers is something
    else (not metrics, or metrics without a gem_ series), OSError or ValueError (a gem daemon's
    malformed exposition) when they cannot be had."""
    text = fetch(url, timeout)
    try:
        samples = parse(text)
    except ValueError:
        if _gem_lines(text):
            raise
        first = next((line for line in text.splitlines() if line.strip()), '')
        raise NotGem(f"not Prometheus metrics (starts {_short(first, 40)!r})") from None
    if not any(name.startswith('gem_') for name, _, _ in samples):
        raise NotGem(f"Prometheus metrics without a gem_ series ({len(samples)} samples)")
    return samples


def _listening(port, host='127.0.0.1'):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def discover(given):
    """(URLs, probed): the given endpoints, else $GEMINI_METRICS's, else the default ports that
    listen; probed is True in the last case (the operator named none of them)."""
    if given:
        return [url_of(e) for e in given], False
    env = os.environ.get('GEMINI_METRICS', '')
    if env.strip():
        return [url_of(e) for e in env.split(',') if e.strip()], False
    return [url_of(str(p)) for p in DEFAULT_PORTS if _listening(p)], True


_noted = set()


def note_skipped(url, why):
    """One line on stderr, once per URL and process (top and plot scrape again and again)."""
    if url not in _noted:
        _noted.add(url)
        print(f"gemctl: skipped {url}, a probed port where something other than a gem daemon answers: {why}",
              file=sys.stderr)


def scrape_all(urls, timeout=3.0, probed=False, skipped=None):
    """[(url, samples or None, error or None)] for every URL. With probed (the URLs came from probing
    the default ports), an endpoint where something else answers (NotGem) is left out instead, noted on
    stderr (note_skipped) and added to `skipped` as (url, why) when a list is given; on an endpoint the
    operator named it is an error like any other."""
    out = []
    for u in urls:
        try:
            out.append((u, read(u, timeout), None))
        except NotGem as e:
            if probed:
                note_skipped(u, str(e))
                if skipped is not None:
                    skipped.append((u, str(e)))
            else:
                out.append((u, None, f"not a gem-schd or gem-pmgr metrics endpoint: {e}"))
        except (OSError, ValueError) as e:
            out.append((u, None, str(getattr(e, 'reason', e))))
    return out
