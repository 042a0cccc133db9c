"""A throwaway Kubernetes control plane on loopback for the e2e test: etcd (Debian's etcd-server),
kube-apiserver and kube-scheduler (built by build-kube.sh) with openssl-made certificates, a
service-account key and a token file; kubectl with a kubeconfig for it. No controller manager and no
kubelet: Node objects are made by the test (node()), pods are bound to them by kube-scheduler but
never run. Every wait polls with a deadline."""

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from webhook_server import Pki, die_with_parent, free_port, openssl  # noqa: E402

TOKEN = "gem-e2e-admin-token"
# Deadlines are generous: the test must pass on a loaded 2-core machine.
START_DEADLINE_S = float(os.environ.get("GEM_E2E_START_DEADLINE_S", "240"))


def wait_for(what, check, deadline_s, proc=None, log=None, period=0.2):
    """Polls check() until it returns a true value (returned) or deadline_s passes (RuntimeError).
    Fails early when `proc` has exited."""
    end = time.monotonic() + deadline_s
    last = None
    while True:
        try:
            got = check()
            if got:
                return got
        except Exception as e:  # noqa: BLE001 - reported if the deadline passes
            last = e
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}\n{tail(log)}")
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not ready after {deadline_s:.0f} s (last error: {last})\n{tail(log)}")
        time.sleep(period)


def tail(path, n=40):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


class Process:
    """A child process with its output in a log file; stopped (TERM, then KILL) by stop(), or when
    the test process dies."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.log = os.path.join(workdir, name + ".log")
        self._out = open(self.log, "w")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, cwd=workdir,
                                     start_new_session=True, preexec_fn=die_with_parent)

    def stop(self, deadline_s=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(deadline_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(deadline_s)
        self._out.close()


class Cluster:
    """etcd + kube-apiserver on 127.0.0.1 under `workdir`. Use start(), then kubectl(), then stop()."""

    def __init__(self, kube_bin, workdir):
        self.kube_bin = kube_bin
        self.dir = workdir
        self.procs = []
        self.pki = Pki(workdir)
        self.port = free_port()
        self.kubeconfig = os.path.join(workdir, "kubeconfig")

    def start(self):
        etcd_client, etcd_peer = free_port(), free_port()
        etcd = Process("etcd", [
            "etcd", "--name", "e2e", "--data-dir", os.path.join(self.dir, "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{etcd_peer}",
            "--log-level", "warn"], self.dir)
        self.procs.append(etcd)

        def etcd_healthy():
            with urllib.request.urlopen(f"http://127.0.0.1:{etcd_client}/health", timeout=5) as r:
                return json.load(r).get("health") == "true"
        wait_for("etcd", etcd_healthy, START_DEADLINE_S, etcd.proc, etcd.log)

        cert, key, _ = self.pki.issue("apiserver", cn="kube-apiserver")
        openssl("genrsa", "-out", "sa.key", "2048", cwd=self.dir)
        openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=self.dir)
        with open(os.path.join(self.dir, "tokens.csv"), "w") as f:
            f.write(f"{TOKEN},e2e-admin,e2e-admin,system:masters\n")
        apiserver = Process("kube-apiserver", [
            os.path.join(self.kube_bin, "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            "--insecure-port=0",
            f"--tls-cert-file={cert}", f"--tls-private-key-file={key}",
            f"--token-auth-file={self.dir}/tokens.csv", "--authorization-mode=RBAC",
            f"--service-account-key-file={self.dir}/sa.pub",
            f"--service-account-signing-key-file={self.dir}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/24",
            # No controller manager runs, so no default ServiceAccount or token Secret is ever made;
            # the ServiceAccount admission plugin would reject every pod for the missing account.
            "--disable-admission-plugins=ServiceAccount",
            f"--cert-dir={self.dir}/apiserver-certs", "--profiling=false", "--v=1"], self.dir)
        self.procs.append(apiserver)
        with open(self.kubeconfig, "w") as f:
            json.dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
                "clusters": [{"name": "e2e", "cluster": {"server": self.server(),
                                                         "certificate-authority": self.pki.ca_cert}}],
                "users": [{"name": "e2e", "user": {"token": TOKEN}}],
                "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}]}, f)
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)

        def ready():
            req = urllib.request.Request(self.server() + "/readyz",
                                         headers={"Authorization": "Bearer " + TOKEN})
            try:
                with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                    return r.status == 200
            except urllib.error.HTTPError:
                return False
        wait_for("kube-apiserver /readyz", ready, START_DEADLINE_S, apiserver.proc, apiserver.log, period=0.5)
        # RBAC's bootstrap roles and the default namespace come with readyz; kubectl's discovery too.
        wait_for("namespace default", lambda: self.kubectl("get", "namespace", "default",
                                                           check=False).returncode == 0,
                 START_DEADLINE_S, apiserver.proc, apiserver.log, period=0.5)

        # kube-scheduler: the admin token through the same kubeconfig, no leader election (one
        # instance), no insecure port; its /healthz on a free loopback port is always allowed
        # without authentication (--authorization-always-allow-paths' default). Its serving
        # certificate is self-signed into --cert-dir, so the check does not verify it.
        self.scheduler_port = free_port()
        scheduler = Process("kube-scheduler", [
            os.path.join(self.kube_bin, "kube-scheduler"),
            f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={self.scheduler_port}", "--port=0",
            f"--cert-dir={self.dir}/scheduler-certs", "--profiling=false", "--v=2"], self.dir)
        self.procs.append(scheduler)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE

        def scheduler_healthy():
            url = f"https://127.0.0.1:{self.scheduler_port}/healthz"
            with urllib.request.urlopen(url, timeout=5, context=insecure) as r:
                return r.status == 200 and r.read().strip() == b"ok"
        wait_for("kube-scheduler /healthz", scheduler_healthy, START_DEADLINE_S, scheduler.proc,
                 scheduler.log, period=0.5)
        self.scheduler = scheduler

    def server(self):
        return f"https://127.0.0.1:{self.port}"

    def api(self, method, path, body=None, content_type="application/json"):
        """One request to the API server as the admin (for what kubectl v1.20 cannot do, such as
        writing a subresource); returns the decoded JSON reply, raises AssertionError on an HTTP
        error with the server's message."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server() + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + TOKEN,
                                              "Content-Type": content_type})
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        try:
            with urllib.request.urlopen(req, timeout=60, context=ctx) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}")

    def node(self, name, allocatable, labels=None, taints=None):
        """A Node object as a kubelet (and a device plugin) would leave it, without a kubelet:
        created, then its status written through the status subresource with `allocatable` (a
        dict of resource name -> quantity) as capacity and allocatable, and Ready true. The API
        server's TaintNodesByCondition admission gives every new Node the NoSchedule taint
        node.kubernetes.io/not-ready; the node lifecycle controller (kube-controller-manager, not run
        here) would lift it once the node is Ready, so the test does that itself, leaving `taints`
        (a list of {key, value, effect}, as an admin's `kubectl taint` would set them) instead."""
        self.api("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                           "metadata": {"name": name, "labels": {
                                               "kubernetes.io/hostname": name, **(labels or {})}}})
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.api("PATCH", f"/api/v1/nodes/{name}/status", {"status": {
            "capacity": allocatable, "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "e2e: no kubelet; made by the test", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}]}},
            content_type="application/merge-patch+json")
        node = self.api("PATCH", f"/api/v1/nodes/{name}", {"spec": {"taints": taints or None}},
                        content_type="application/merge-patch+json")
        assert (node["spec"].get("taints") or []) == (taints or []), node["spec"]
        return node

    def kubectl(self, *args, stdin=None, check=True, timeout=120):
        """Runs kubectl against this cluster; returns the CompletedProcess (text). check: raise with
        stderr on a non-zero exit."""
        p = subprocess.run([os.path.join(self.kube_bin, "kubectl"), "--kubeconfig", self.kubeconfig,
                            "--request-timeout=60s", *args],
                           input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
        return p

    def stop(self):
        for p in reversed(self.procs):
            p.stop()
