"""webhook/deploy: the kustomize overlays rendered with the built kubectl v1.20.2 (`kubectl
kustomize`; skipped, saying so, when it is not built) name API versions a current cluster serves,
and the pieces refer to each other consistently; set to another namespace and other images, every
overlay follows them (namespace, images, certificate DNS names, caBundle); probes, the
PodDisruptionBudget and the NetworkPolicy are there; the example pod goes through the real
webhook; the Dockerfiles and the node entrypoint match what the manifests and docs/interfaces.md
say."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

from kustomize_render import DEPLOY, NOT_BUILT, Rendered, kubectl_bin
from webhook_server import REPO, WebhookServer, apply_response, to_v1pod, webhook_bin

DOCKER = os.path.join(REPO, "webhook", "docker")


def device_plugin_bin():
    """gem-device-plugin as `make webhook-manifest-test` passes it (GEM_DEVICE_PLUGIN_BIN), else build/."""
    return os.environ.get("GEM_DEVICE_PLUGIN_BIN") or os.path.join(REPO, "build", "bin", "gem-device-plugin")
NS = "gemini-system"

# (apiVersion, kind) pairs served by current Kubernetes (1.29+) and cert-manager v1.
SERVED = {
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Pod"),
    ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"), ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "Secret"),
    ("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    # webhook/deploy/monitoring/ only (applied separately where the Prometheus Operator runs).
    ("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                  "ClusterIssuer"}


def load_all(kubectl):
    """(source, object) for the cert-manager overlay as shipped, the monitoring folder, the example."""
    r = Rendered(kubectl, "cert-manager")
    try:
        docs = [("overlays/cert-manager", d) for d in r.render()]
        docs += [("monitoring", d) for d in r.render(os.path.join(r.deploy, "monitoring"))]
    finally:
        r.close()
    with open(os.path.join(DEPLOY, "examples", "shared-pod.yaml")) as f:
        docs += [("examples/shared-pod.yaml", d) for d in yaml.safe_load_all(f) if d]
    return docs


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


def one(docs, kind, name=None):
    items = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"].get("name") == name)]
    assert len(items) == 1, f"{kind} {name}: {len(items)} found"
    return items[0]


def webhook_args(docs):
    c = one(docs, "Deployment", "gem-webhook")["spec"]["template"]["spec"]["containers"][0]
    return dict(a.split("=", 1) for a in c["args"])


def pmgr_image(docs):
    """--pmgr_image as the kubelet expands it: $(GEMINI_NODE_IMAGE) from the ConfigMap key."""
    c = one(docs, "Deployment", "gem-webhook")["spec"]["template"]["spec"]["containers"][0]
    ref = {e["name"]: e for e in c["env"]}["GEMINI_NODE_IMAGE"]["valueFrom"]["configMapKeyRef"]
    cm = one(docs, "ConfigMap", ref["name"])
    return webhook_args(docs)["--pmgr_image"].replace("$(GEMINI_NODE_IMAGE)", cm["data"][ref["key"]])


def selector_matches(selector, labels):
    """metav1.LabelSelector semantics (matchLabels AND matchExpressions)."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kubectl = kubectl_bin()
        if kubectl is None:
            raise unittest.SkipTest(NOT_BUILT)
        cls.docs = load_all(kubectl)
        cls.by_kind = by_kind([d for _, d in cls.docs])

    def one(self, kind, name=None):
        items = [d for d in self.by_kind.get(kind, []) if name is None or d["metadata"].get("name") == name]
        self.assertEqual(len(items), 1, f"{kind} {name}: {len(items)} found")
        return items[0]

    def test_every_object_has_a_served_version(self):
        self.assertGreaterEqual(len(self.docs), 18)
        for path, d in self.docs:
            with self.subTest(path=path, kind=d.get("kind")):
                self.assertIsInstance(d, dict)
                self.assertIn((d.get("apiVersion"), d.get("kind")), SERVED)
                self.assertTrue(d["metadata"].get("name") or d["metadata"].get("generateName"))
                if d["kind"] not in CLUSTER_SCOPED and "examples" not in path:
                    self.assertEqual(d["metadata"].get("namespace"), NS)

    def test_required_objects_exist(self):
        for kind in ("Namespace", "ServiceAccount", "Deployment", "Service", "MutatingWebhookConfiguration",
                     "Certificate", "DaemonSet", "ConfigMap", "Pod", "Role", "PodDisruptionBudget",
                     "NetworkPolicy"):
            self.assertIn(kind, self.by_kind)
        self.one("Namespace", NS)

    def test_webhook_configuration(self):
        mwc = self.one("MutatingWebhookConfiguration")
        svc = self.one("Service", "gem-webhook")
        self.assertEqual(len(mwc["webhooks"]), 1)
        wh = mwc["webhooks"][0]
        self.assertEqual(wh["sideEffects"], "None")
        self.assertEqual(wh["admissionReviewVersions"], ["v1"])
        self.assertTrue(1 <= wh["timeoutSeconds"] <= 30)
        self.assertIn(wh["failurePolicy"], ("Fail", "Ignore"))
        with open(os.path.join(REPO, "docs", "kubernetes.md")) as f:
            doc = f.read()
        self.assertIn(f"failurePolicy: {wh['failurePolicy']}", doc)
        self.assertEqual(wh["reinvocationPolicy"], "IfNeeded")  # our patch is idempotent
        ref = wh["clientConfig"]["service"]
        self.assertEqual((ref["name"], ref["namespace"], ref["path"]), ("gem-webhook", NS, "/mutate"))
        self.assertIn(ref.get("port", 443), [p["port"] for p in svc["spec"]["ports"]])
        self.assertEqual(wh["rules"], [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                        "resources": ["pods"], "scope": "Namespaced"}])
        # Never the system's own namespace (nor kube-system); other namespaces do match.
        for ns in (NS, "kube-system"):
            self.assertFalse(selector_matches(wh["namespaceSelector"], {"kubernetes.io/metadata.name": ns}))
        self.assertTrue(selector_matches(wh["namespaceSelector"], {"kubernetes.io/metadata.name": "team-a"}))
        self.assertTrue(selector_matches(wh["objectSelector"], {"gemini.gpu-sharing.io/enabled": "true"}))
        self.assertFalse(selector_matches(wh["objectSelector"], {"app": "x"}))
        self.assertFalse(selector_matches(wh["objectSelector"], {"gemini.gpu-sharing.io/enabled": "false"}))
        # The webhook's own pods and the node DaemonSet's never carry the opt-in label.
        for kind in ("Deployment", "DaemonSet"):
            for d in self.by_kind[kind]:
                labels = d["spec"]["template"]["metadata"]["labels"]
                self.assertFalse(selector_matches(wh["objectSelector"], labels))

    def test_certificate_wiring(self):
        mwc = self.one("MutatingWebhookConfiguration")
        ca_from = mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        ns, name = ca_from.split("/")
        cert = self.one("Certificate", name)
        self.assertEqual(cert["metadata"]["namespace"], ns)
        self.assertIn(f"gem-webhook.{NS}.svc", cert["spec"]["dnsNames"])
        issuer = cert["spec"]["issuerRef"]
        self.one(issuer.get("kind", "Issuer"), issuer["name"])
        dep = self.one("Deployment", "gem-webhook")
        pod = dep["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        c = pod["containers"][0]
        args = dict(a.split("=", 1) for a in c["args"])
        self.assertEqual(args["--gpu_resource"], "nvidia.com/gpu")
        for flag in ("--cert", "--key"):
            mount = [m for m in c["volumeMounts"] if args[flag].startswith(m["mountPath"] + "/")]
            self.assertEqual(len(mount), 1, flag)
            self.assertEqual(vols[mount[0]["name"]]["secret"]["secretName"], cert["spec"]["secretName"])
        port = int(args["--port"])
        named = {p["name"]: p["containerPort"] for p in c["ports"]}
        svc = self.one("Service", "gem-webhook")
        target = svc["spec"]["ports"][0]["targetPort"]
        self.assertEqual(named[target] if isinstance(target, str) else target, port)
        self.assertTrue(selector_matches({"matchLabels": svc["spec"]["selector"]},
                                         dep["spec"]["template"]["metadata"]["labels"]))
        self.assertEqual(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(args["--failure_policy"], "Fail")
        self.assertEqual(args["--sidecar_mode"], "native")  # 1.29+ (Requirements)
        usage = subprocess.run([webhook_bin(), "--help"], capture_output=True, text=True, check=True).stdout
        for flag in args:
            self.assertIn(flag + " ", usage)

    def test_least_privilege(self):
        for sa in self.by_kind["ServiceAccount"]:
            self.assertIs(sa.get("automountServiceAccountToken"), False, sa["metadata"]["name"])
        for kind in ("Role", "ClusterRole"):
            for r in self.by_kind.get(kind, []):
                for rule in r["rules"]:
                    for field in ("verbs", "resources", "apiGroups"):
                        self.assertNotIn("*", rule.get(field, []))
        self.assertNotIn("ClusterRoleBinding", self.by_kind)
        for kind in ("Deployment", "DaemonSet"):
            for d in self.by_kind[kind]:
                for c in d["spec"]["template"]["spec"]["containers"]:
                    sc = c["securityContext"]
                    self.assertIs(sc["allowPrivilegeEscalation"], False)
                    self.assertIn("ALL", sc["capabilities"]["drop"])
                    self.assertNotIn("privileged", sc)

    def test_node_daemonset(self):
        ds = self.one("DaemonSet", "gemini-node")
        pod = ds["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        c = pod["containers"][0]
        by_path = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertEqual(vols[by_path["/run/gemini"]["name"]]["hostPath"]["path"], "/run/gemini")
        self.assertEqual(vols[by_path["/var/lib/gemini/lib"]["name"]]["hostPath"]["path"], "/var/lib/gemini/lib")
        cfg = by_path["/etc/gemini"]
        self.assertNotIn("subPath", cfg)  # subPath mounts never see ConfigMap updates
        cm = self.one("ConfigMap", vols[cfg["name"]]["configMap"]["name"])
        env = {e["name"]: e.get("value") for e in c["env"]}
        self.assertEqual(env["GEMINI_CONFIG"], "/etc/gemini/resource-config.txt")
        text = cm["data"]["resource-config.txt"]
        lines = [l.split("#")[0].strip() for l in text.splitlines()]
        lines = [l for l in lines if l]
        self.assertEqual(int(lines[0]), len(lines) - 1)
        # Same image for the DaemonSet and the gem-pmgr sidecar the webhook adds.
        self.assertEqual(pmgr_image([d for _, d in self.docs]), c["image"])
        # Probes on the first gem-schd's /healthz (metrics/endpoint.cpp), on a declared port.
        ports = {p["name"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            self.assertEqual((get["path"], get["scheme"]), ("/healthz", "HTTP"), probe)
            self.assertIn(get["port"], ports)

    def test_device_plugin_in_the_node_daemonset(self):
        """gem-device-plugin runs beside gem-schd on every shared node, on the kubelet's folder, with
        flags it knows and the webhook's memory unit; the DaemonSet goes to the shared nodes only."""
        ds = self.one("DaemonSet", "gemini-node")
        pod = ds["spec"]["template"]["spec"]
        containers = {c["name"]: c for c in pod["containers"]}
        self.assertEqual(set(containers), {"gem-schd", "gem-device-plugin"})
        dp = containers["gem-device-plugin"]
        self.assertEqual(dp["image"], containers["gem-schd"]["image"])
        self.assertEqual(dp["command"], ["/usr/local/bin/gem-device-plugin"])
        args = dict(a.split("=", 1) for a in dp["args"])
        usage = subprocess.run([device_plugin_bin(), "--help"], capture_output=True, text=True, check=True).stdout
        for flag in args:
            self.assertIn(f"  {flag} ", usage)
        # The kubelet's device-plugin folder, from the node, where --plugin_dir says.
        vols = {v["name"]: v for v in pod["volumes"]}
        (mount,) = dp["volumeMounts"]
        self.assertEqual(mount["mountPath"], args["--plugin_dir"])
        self.assertEqual(vols[mount["name"]]["hostPath"]["path"], "/var/lib/kubelet/device-plugins")
        self.assertNotIn("readOnly", mount)  # it creates its sockets there
        self.assertEqual(args["--scheduler_dir"], "/run/gemini")
        # gpu-memory units mean the same MiB to the plugin and to the webhook.
        self.assertEqual(args["--memory_unit_mib"], webhook_args([d for _, d in self.docs])["--memory_unit_mib"])
        env = {e["name"]: e.get("value") for e in dp["env"]}
        self.assertEqual((env["NVIDIA_VISIBLE_DEVICES"], env["NVIDIA_DRIVER_CAPABILITIES"]), ("all", "utility"))
        probe = " ".join(dp["livenessProbe"]["exec"]["command"])
        for sock in ("gemini-share.sock", "gemini-memory.sock"):
            self.assertIn(f"{args['--plugin_dir']}/{sock}", probe)
        # Shared nodes only: their label selected, their taint tolerated; the webhook places
        # governed pods there.
        self.assertEqual(pod["nodeSelector"], {"gemini.gpu-sharing.io/shared": "true"})
        self.assertIn({"key": "gemini.gpu-sharing.io/shared", "operator": "Equal", "value": "true",
                       "effect": "NoSchedule"}, pod["tolerations"])
        self.assertEqual(webhook_args([d for _, d in self.docs])["--shared_nodes"], "true")

    def test_disruption_budget_and_network_policy(self):
        dep = self.one("Deployment", "gem-webhook")
        pdb = self.one("PodDisruptionBudget", "gem-webhook")
        self.assertTrue(selector_matches(pdb["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"]))
        self.assertLess(pdb["spec"]["minAvailable"], dep["spec"]["replicas"])  # drains still proceed
        ds = self.one("DaemonSet", "gemini-node")
        np = self.one("NetworkPolicy", "gemini-node-metrics")
        self.assertTrue(selector_matches(np["spec"]["podSelector"], ds["spec"]["template"]["metadata"]["labels"]))
        self.assertEqual(np["spec"]["policyTypes"], ["Ingress"])
        (rule,) = np["spec"]["ingress"]
        self.assertEqual(rule["from"], [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                                               "monitoring"}}}])
        declared = {p["name"] for p in ds["spec"]["template"]["spec"]["containers"][0]["ports"]}
        self.assertEqual({p["port"] for p in rule["ports"]}, declared)

    def test_entrypoint_uses_documented_flags(self):
        script = os.path.join(DOCKER, "gemini-node-entrypoint.sh")
        subprocess.run(["bash", "-n", script], check=True)
        with open(script) as f:
            text = f.read()
        with open(os.path.join(REPO, "docs", "interfaces.md")) as f:
            interfaces = f.read()
        schd_usage = interfaces.split("## gem-schd")[1].split("##")[0]
        for flag in ("--socket", "--gpu", "--config", "--dynamic_clients", "--metrics_port", "--metrics_address"):
            self.assertIn(flag, text)
            self.assertIn(f"[{flag}", schd_usage)
        # Discovery through NVML (issue 10), by gem-schd itself: the image has no nvidia-smi to rely on.
        self.assertIn("gem-schd --list_gpus", text)
        self.assertIn("[--list_gpus]", schd_usage)

    def test_metrics_are_scraped_from_every_gpu(self):
        ds = self.one("DaemonSet", "gemini-node")
        tmpl = ds["spec"]["template"]
        ann = tmpl["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(ann["prometheus.io/path"], "/metrics")
        self.assertNotIn("prometheus.io/port", ann)  # one target per declared port, one port per GPU
        c = tmpl["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"]}
        base = int(env["GEMINI_METRICS_PORT"])
        self.assertEqual(env["GEMINI_METRICS_ADDRESS"], "0.0.0.0")  # the pod's IP, where Prometheus scrapes
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports, {f"metrics-{i}": base + i for i in range(8)})
        pm = self.one("PodMonitor", "gemini-node")
        self.assertTrue(selector_matches(pm["spec"]["selector"], tmpl["metadata"]["labels"]))
        self.assertEqual({e["port"] for e in pm["spec"]["podMetricsEndpoints"]}, set(ports))
        # metrics-i is kept where the node's nvidia.com/gpu.count is above i, or the label is absent
        # (Prometheus' relabel regex is anchored at both ends; an absent label reads as ""); metrics-0
        # always (the pod's probes use it).
        self.assertTrue(pm["spec"]["attachMetadata"]["node"])
        for e in pm["spec"]["podMetricsEndpoints"]:
            i = int(e["port"].rsplit("-", 1)[1])
            rules = e.get("relabelings", [])
            for count in [""] + [str(n) for n in range(0, 20)] + ["100"]:
                kept = all(re.fullmatch(r["regex"], count) for r in rules
                           if r["action"] == "keep"
                           and r["sourceLabels"] == ["__meta_kubernetes_node_label_nvidia_com_gpu_count"])
                self.assertEqual(kept, i == 0 or count == "" or int(count) > i, (e["port"], count))

    def test_pod_managers_metrics_are_scraped(self):
        # The webhook's sidecars (gem-pmgr --metrics_port, container port gem-metrics) of the pods
        # that opted in, in any namespace, away from the node DaemonSet's ports.
        wh = self.one("Deployment", "gem-webhook")["spec"]["template"]["spec"]["containers"][0]
        flags = dict(a[2:].split("=", 1) for a in wh["args"] if a.startswith("--") and "=" in a)
        port = int(flags["pmgr_metrics_port"])
        self.assertNotIn(port, range(9100, 10000))  # Prometheus' allocated exporter range (dcgm-exporter: 9400)
        ds = self.one("DaemonSet", "gemini-node")["spec"]["template"]["spec"]["containers"][0]
        self.assertNotIn(port, [p["containerPort"] for p in ds["ports"]])
        pm = self.one("PodMonitor", "gemini-pod-managers")
        self.assertEqual(pm["spec"]["namespaceSelector"], {"any": True})
        self.assertTrue(selector_matches(pm["spec"]["selector"], {"gemini.gpu-sharing.io/enabled": "true"}))
        self.assertEqual([e["port"] for e in pm["spec"]["podMetricsEndpoints"]], ["gem-metrics"])

    def test_dockerfiles_exist_and_copy_real_paths(self):
        images = set()
        for kind in ("Deployment", "DaemonSet"):
            for d in self.by_kind[kind]:
                for c in d["spec"]["template"]["spec"]["containers"]:
                    images.add(c["image"].rsplit("/", 1)[-1].split(":")[0])
        self.assertEqual(images, {"gem-webhook", "gemini-node"})
        for image in images:
            path = os.path.join(DOCKER, f"{image}.Dockerfile")
            with open(path) as f:
                text = f.read()
            self.assertRegex(text, r"(?m)^FROM ")
            for m in re.finditer(r"(?m)^COPY (?!--from)(.+)$", text):
                for src in m.group(1).split()[:-1]:
                    self.assertTrue(os.path.exists(os.path.join(REPO, src)), f"{image}: COPY {src}")
        # Every command the DaemonSet runs is in the image.
        with open(os.path.join(DOCKER, "gemini-node.Dockerfile")) as f:
            node = f.read()
        for c in self.one("DaemonSet", "gemini-node")["spec"]["template"]["spec"]["containers"]:
            name = os.path.basename(c["command"][0])
            self.assertRegex(node, rf"(?m)^COPY (--from=build .*/{name} .*/usr/local/bin/$|\S+ /usr/local/bin/{name}$)")

    def test_dockerfiles_copy_what_their_make_target_needs(self):
        """The files each Dockerfile COPYs, alone in a folder, are enough for make to plan its build
        (`make -n`): the Makefile's includes and every source it names are there."""
        for image, target in (("gem-webhook", "/out/bin/gem-webhook"), ("gemini-node", "all")):
            with open(os.path.join(DOCKER, f"{image}.Dockerfile")) as f:
                text = f.read()
            with tempfile.TemporaryDirectory() as tmp:
                for m in re.finditer(r"(?m)^COPY (?!--from)(.+)$", text):
                    *srcs, dst = m.group(1).split()
                    for src in srcs:
                        to = os.path.join(tmp, dst.rstrip("/"), os.path.basename(src)) if dst.endswith("/") \
                            else os.path.join(tmp, dst)
                        os.makedirs(os.path.dirname(to), exist_ok=True)
                        (shutil.copytree if os.path.isdir(os.path.join(REPO, src)) else shutil.copy)(
                            os.path.join(REPO, src), to)
                p = subprocess.run(["make", "-n", "BUILD=/out", "CUDA_PATH=/usr/local/cuda", target], cwd=tmp,
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, f"{image}: make -n {target}:\n{p.stderr}")
                self.assertIn("libgemcommon.a", p.stdout, image)
                if image == "gemini-node":
                    self.assertIn("-o /out/bin/gem-device-plugin", p.stdout)

    def test_example_pod_through_the_webhook(self):
        pod = self.one("Pod")
        self.assertEqual(pod["metadata"]["labels"]["gemini.gpu-sharing.io/enabled"], "true")
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "example-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                              "resource": {"group": "", "version": "v1", "resource": "pods"},
                              "namespace": pod["metadata"]["namespace"], "operation": "CREATE",
                              "userInfo": {"username": "alice"}, "object": pod}}
        with WebhookServer() as server:
            resp = server.review(review)["response"]
        self.assertIs(resp["allowed"], True)
        out = to_v1pod(apply_response(pod, resp))
        sc = out.spec.init_containers[0]
        self.assertEqual(sc.name, "gemini-pod-manager")
        opts = dict(zip(sc.args[0::2], sc.args[1::2]))
        self.assertEqual((opts["--request"], opts["--limit"], opts["--gpu_mem"]), ("0.3", "0.6", "8192MiB"))
        # Placed on the shared nodes only (docs/kubernetes.md, "Shared nodes").
        self.assertEqual(out.spec.node_selector, {"gemini.gpu-sharing.io/shared": "true"})
        self.assertEqual([(t.key, t.value, t.effect) for t in out.spec.tolerations],
                         [("gemini.gpu-sharing.io/shared", "true", "NoSchedule")])
        with open(os.path.join(REPO, "docs", "interfaces.md")) as f:
            pmgr_usage = f.read().split("## gem-pmgr")[1].split("##")[0]
        for flag in sc.args[0::2]:
            self.assertIn(flag, pmgr_usage)
        env = {e.name: e.value for e in out.spec.containers[0].env}
        self.assertEqual(env["LD_PRELOAD"], "/gemini/lib/libgemhook.so.1")


if __name__ == "__main__":
    unittest.main()
