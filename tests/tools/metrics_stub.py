"""Stand-in metrics endpoints for the gemctl tests that need no build: an HTTP server answering what
it is told (a gem-schd's or gem-pmgr's exposition, HTML, a 404, another program's Prometheus
metrics) and a TCP service that answers with something that is not HTTP; and which numbers in
gemctl status --json are ints. Standard library only."""

import http.server
import socket
import threading

GPU = "GPU-fa4e0000-0000-0000-0000-000000000000"

# What gem-schd and gem-pmgr write (trimmed from a real scrape; HELP lines and histograms left out).
SCHD = f"""# TYPE gem_gpu_busy_ratio gauge
gem_gpu_busy_ratio{{gpu="0",UUID="{GPU}"}} 0.497277
gem_gpu_window_seconds{{gpu="0",UUID="{GPU}"}} 2
gem_gpu_token_holder{{gpu="0",UUID="{GPU}",client="client1"}} 1
gem_config_reloads_total{{gpu="0",UUID="{GPU}"}} 3
gem_config_reload_errors_total{{gpu="0",UUID="{GPU}"}} 1
gem_gpu_health_watched{{gpu="0",UUID="{GPU}"}} 1
gem_gpu_healthy{{gpu="0",UUID="{GPU}"}} 1
gem_gpu_lost{{gpu="0",UUID="{GPU}"}} 0
gem_gpu_xid_errors_total{{gpu="0",UUID="{GPU}"}} 0
gem_gpu_last_xid{{gpu="0",UUID="{GPU}"}} 0
gem_memory_budget_bytes{{gpu="0",UUID="{GPU}"}} 15032385536
gem_memory_resident_bytes{{gpu="0",UUID="{GPU}"}} 1048576
gem_client_refusals_total{{gpu="0",UUID="{GPU}",reason="unknown_client"}} 2
gem_client_refusals_total{{gpu="0",UUID="{GPU}",reason="busy"}} 1
gem_client_refused{{gpu="0",UUID="{GPU}",client="stranger",reason="unknown_client"}} 1
gem_client_request_ratio{{gpu="0",UUID="{GPU}",client="client1"}} 0.5
gem_client_limit_ratio{{gpu="0",UUID="{GPU}",client="client1"}} 1
gem_client_share_ratio{{gpu="0",UUID="{GPU}",client="client1"}} 0.267144698
gem_client_gpu_seconds_total{{gpu="0",UUID="{GPU}",client="client1"}} 3
gem_client_grants_total{{gpu="0",UUID="{GPU}",client="client1"}} 34
gem_client_connected{{gpu="0",UUID="{GPU}",client="client1"}} 1
gem_client_waiting{{gpu="0",UUID="{GPU}",client="client1"}} 0
gem_client_memory_limit_bytes{{gpu="0",UUID="{GPU}",client="client1"}} 1073741824
gem_client_memory_used_bytes{{gpu="0",UUID="{GPU}",client="client1"}} 1048576
gem_client_memory_resident{{gpu="0",UUID="{GPU}",client="client1"}} 1
gem_client_evictions_total{{gpu="0",UUID="{GPU}",client="client1"}} 2
gem_client_revocations_total{{gpu="0",UUID="{GPU}",client="client1"}} 5
"""

# What gem-schd wrote before issue 20 (its UUID as `gpu`, no index): gemctl still reads it.
SCHD_BEFORE_ISSUE_20 = SCHD.replace('gpu="0",UUID=', 'gpu=')

PMGR = """# TYPE gem_pmgr_processes gauge
gem_pmgr_processes{client="client1",kind="launch"} 2
gem_pmgr_processes{client="client1",kind="memory"} 1
gem_pmgr_grants_total{client="client1"} 34
gem_pmgr_scheduler_up{client="client1",scheduler="unix:/tmp/schd.sock"} 1
"""

# Another program's metrics on a port gemctl probes (node_exporter's, say).
OTHER_PROMETHEUS = """# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.25
process_open_fds 12
"""

HTML = "<!DOCTYPE html>\n<html><head><title>Grafana</title></head><body>hello</body></html>\n"


class Server:
    """An HTTP server on a free loopback port answering GET PATH with routes[PATH] =
    (status, content type, body); anything else is a 404."""

    def __init__(self, routes):
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, ctype, body = stub.routes.get(self.path, (404, "text/plain", "404 page not found\n"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.routes = routes
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def metrics(body, status=200, ctype="text/plain; version=0.0.4"):
    """A Server answering /metrics with body."""
    return Server({"/metrics": (status, ctype, body)})


class Banner:
    """A TCP service on a free loopback port that answers each connection with `line` (not HTTP),
    as an SSH server would, and closes it."""

    def __init__(self, line=b"SSH-2.0-OpenSSH_9.6\r\n"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.line = line
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                try:
                    c.sendall(self.line)
                except OSError:
                    pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        self.sock.close()


# gemctl status --json: which numbers are ints (counts of things, bytes, 0/1 states) and which floats
# (ratios, seconds), per object; every number in the output is one of these.
JSON_INTS = {"gpu": {"index", "xid_errors", "last_xid", "reloads", "reload_errors", "mem_budget", "resident_bytes", "refusals"},
             "client": {"grants", "revocations", "connected", "waiting", "mem_used", "mem_limit", "resident",
                        "evictions"},
             "pmgr": {"launch", "memory", "grants"}}
JSON_FLOATS = {"gpu": {"busy", "window_s"}, "client": {"request", "limit", "share", "gpu_seconds"}, "pmgr": set()}


def json_number_types(s):
    """[(object kind, key, 'int' or 'float', value)] of every number in gemctl status --json that is not
    of the type JSON_INTS / JSON_FLOATS give it (or that neither names)."""
    objs = [("gpu", g) for g in s["gpus"]] + [("pmgr", p) for p in s["pod_managers"]]
    objs += [("client", c) for g in s["gpus"] for c in g["clients"].values()]
    wrong = []
    for kind, obj in objs:
        for key, v in obj.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            want = "int" if key in JSON_INTS[kind] else "float" if key in JSON_FLOATS[kind] else "unknown"
            if type(v).__name__ != want:
                wrong.append((kind, key, want, v))
    return wrong
