"""Test helpers: a throwaway CA and serving certificate made with `openssl`, the real gem-webhook
started on a free loopback port, an HTTPS client that verifies the server against that CA, and
reading objects back with the Kubernetes Python client's models (Debian python3-kubernetes)."""

import base64
import ctypes
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import jsonpatch
import kubernetes.client

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
REPO = os.path.dirname(os.path.dirname(HERE))


def webhook_bin():
    path = os.environ.get("GEM_WEBHOOK_BIN", os.path.join(REPO, "build", "bin", "gem-webhook"))
    if not os.path.exists(path):
        raise RuntimeError(f"{path} missing: run `make webhook-test`")
    return path


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class Pki:
    """A CA in `directory` that signs serving certificates for localhost/127.0.0.1."""

    def __init__(self, directory):
        self.dir = directory
        self.ca_cert = os.path.join(directory, "ca.crt")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                "-days", "2", "-subj", "/CN=gemini-test-ca", cwd=directory)
        self.serial = 1000

    def issue(self, name, cn="gem-webhook.gemini-system.svc"):
        """Writes name.crt/name.key; returns (cert_path, key_path, serial as an int)."""
        self.serial += 1
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:gem-webhook.gemini-system.svc\n"
                    "extendedKeyUsage=serverAuth\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + cn, cwd=self.dir)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-set_serial", str(self.serial), "-days", "1", "-out", name + ".crt", "-extfile", ext,
                cwd=self.dir)
        return (os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key"), self.serial)


def die_with_parent():
    """preexec_fn for test daemons: PR_SET_PDEATHSIG (prctl(2)) sends the child SIGTERM when the test
    process dies without stopping it (killed by a timeout, say)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookServer:
    """The real gem-webhook on 127.0.0.1 with a fresh PKI. Use as a context manager."""

    def __init__(self, *extra_args):
        self.tmp = tempfile.TemporaryDirectory(prefix="gem-webhook-test-")
        self.pki = Pki(self.tmp.name)
        issued, key, self.serial = self.pki.issue("server")
        # The served files, as a mounted Secret: replaced atomically by rename.
        self.cert = os.path.join(self.tmp.name, "tls.crt")
        self.key = os.path.join(self.tmp.name, "tls.key")
        os.rename(issued, self.cert)
        os.rename(key, self.key)
        self.port = free_port()
        self.log_path = os.path.join(self.tmp.name, "webhook.log")
        self.extra = list(extra_args)
        self.proc = None

    def __enter__(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [webhook_bin(), "--bind", "127.0.0.1", "--port", str(self.port), "--cert", self.cert,
             "--key", self.key, "--cert_check_ms", "100", *self.extra],
            stdout=self.log, stderr=self.log, preexec_fn=die_with_parent)
        deadline = time.time() + 10
        while True:
            try:
                status, _ = self.request("GET", "/healthz")
                if status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("gem-webhook did not start:\n" + self.log_text())
            time.sleep(0.05)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def log_records(self):
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        return ctx

    def connect(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(), timeout=10)

    def request(self, method, path, body=None, headers=None, conn=None):
        """One request (on `conn` when given, keeping it open). Returns (status, body bytes)."""
        own = conn is None
        conn = conn or self.connect()
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            if own:
                conn.close()

    def review(self, review, conn=None):
        """POSTs an AdmissionReview (dict) to /mutate; returns the response dict (HTTP 200 asserted)."""
        status, body = self.request("POST", "/mutate", json.dumps(review).encode(), conn=conn)
        if status != 200:
            raise AssertionError(f"HTTP {status}: {body!r}")
        return json.loads(body)


def load_fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def decoded_patch(response):
    """The JSON Patch of an AdmissionReview response, or None when it has none."""
    if "patch" not in response:
        return None
    assert response["patchType"] == "JSONPatch", response
    return json.loads(base64.b64decode(response["patch"], validate=True))


def apply_response(obj, response):
    """Applies the response's patch with python3-jsonpatch (an independent RFC 6902 implementation)."""
    ops = decoded_patch(response)
    if ops is None:
        return obj
    return jsonpatch.JsonPatch(ops).apply(obj)


class _FakeResponse:
    def __init__(self, obj):
        self.data = json.dumps(obj)


def to_v1pod(obj):
    """Reads a pod dict back with the Kubernetes client's models, as `kubectl`-style code would."""
    return kubernetes.client.ApiClient().deserialize(_FakeResponse(obj), "V1Pod")


def kubelet_env(container, namespace, name):
    """The environment the kubelet would give `container` (a V1Container): fieldRef metadata.name /
    metadata.namespace resolved, $(VAR) expanded from variables defined before it ($$ escapes),
    later definitions winning (Kubernetes dependent environment variables)."""
    env = {}
    for e in container.env or []:
        if e.value_from is not None:
            if e.value_from.field_ref is None:
                continue  # ConfigMap/Secret: not known here
            path = e.value_from.field_ref.field_path
            known = {"metadata.name": name, "metadata.namespace": namespace}
            if path in known:
                env[e.name] = known[path]
            continue
        value, out, i = e.value or "", "", 0
        while i < len(value):
            if value.startswith("$$", i):
                out += "$"
                i += 2
            elif value.startswith("$(", i) and ")" in value[i:]:
                j = value.index(")", i)
                ref = value[i + 2:j]
                out += env.get(ref, value[i:j + 1])
                i = j + 1
            else:
                out += value[i]
                i += 1
        env[e.name] = out
    return env
