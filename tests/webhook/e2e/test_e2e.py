"""End to end: gem-webhook behind a real kube-apiserver (v1.20.2, built from Debian's source package)
with the project's MutatingWebhookConfiguration, and every kustomize overlay of webhook/deploy/
rendered by the built kubectl and sent to it; kube-scheduler (same source) placing pods by the device
plugin's resources on Node objects whose status carries the capacity gem-device-plugin advertises (no
kubelet: pods are bound, never run).

Needs GEM_K8S_BIN (kube-apiserver, kube-scheduler and kubectl), GEM_WEBHOOK_BIN and NODE_PATH with
kubernetes-models; tests/webhook/e2e/run.sh (`make k8s-e2e`) sets them. docs/kubernetes-tests.md, "End-to-end test".

v1.20 has no native sidecars, so pods are created and read back with gem-webhook --sidecar_mode
container; the native-sidecar patch is checked against the 1.29+ schemas (kubernetes-models) and
shown to be refused by v1.20. Tests run in name order and share one cluster."""

import base64
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from cluster import Cluster, wait_for  # noqa: E402
from kustomize_render import OVERLAYS, Rendered  # noqa: E402
from webhook_server import WebhookServer, apply_response, kubelet_env, to_v1pod  # noqa: E402

sys.path.insert(0, HERE)
from placement_cases import GROUP, LABEL, NS, SIDECAR, PlacementCases, gpu_pod  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
DEPLOY = os.path.join(REPO, "webhook", "deploy")
HOOK = "/gemini/lib/libgemhook.so.1"
PMGR_IMAGE = "registry.example/gemini-node:e2e"
# How long a change of the webhook configuration may take to reach the API server's admission chain.
CONFIG_DEADLINE_S = 120


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def validate_schemas(objects):
    """Runs validate.js (kubernetes-models, 1.29+ schemas; cert-manager); returns its entries."""
    p = subprocess.run(["node", os.path.join(HERE, "validate.js")], input=json.dumps(objects),
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"validate.js exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)


class WebhookBehindApiServer(PlacementCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kube_bin = os.environ.get("GEM_K8S_BIN")
        if not kube_bin or not all(os.path.exists(os.path.join(kube_bin, b))
                                   for b in ("kube-apiserver", "kube-scheduler", "kubectl")):
            raise RuntimeError("GEM_K8S_BIN must name a directory with kube-apiserver, kube-scheduler and kubectl "
                               "(run `make k8s-e2e`)")
        cls.tmp = tempfile.mkdtemp(prefix="gem-k8s-e2e-")
        cls.cluster = Cluster(kube_bin, cls.tmp)
        cls.webhooks = []
        try:
            t0 = time.monotonic()
            cls.cluster.start()
            print(f"\ne2e: etcd + kube-apiserver + kube-scheduler ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
            # The webhook the cluster uses (pre-1.29 mode), and one in the default (native) mode.
            cls.container_wh = cls.start_webhook("--sidecar_mode", "container")
            cls.native_wh = cls.start_webhook()
            for ns in (NS, "kube-system"):
                if ns != "kube-system":
                    cls.cluster.kubectl("create", "namespace", ns)
                # 1.21+ sets this label on every namespace (NamespaceDefaultLabelName); the
                # configuration's namespaceSelector relies on it, so set it as 1.21+ would.
                cls.cluster.kubectl("label", "--overwrite", "namespace", ns, f"kubernetes.io/metadata.name={ns}")
            cls.register(cls.container_wh)
            # The configuration reaches the admission chain through an informer: wait until an
            # opted-in pod is mutated (server-side dry run: nothing is stored).
            wait_for("webhook configuration in effect", lambda: cls.dry_run_pod(gpu_pod("probe")).get(
                "metadata", {}).get("annotations", {}).get("gemini.gpu-sharing.io/mutated") == "true",
                CONFIG_DEADLINE_S, period=0.5)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        # The API server first: it holds keep-alive connections that a stopping webhook waits for.
        cls.cluster.stop()
        for wh in cls.webhooks:
            wh.__exit__(None, None, None)
        if os.environ.get("GEM_E2E_KEEP"):
            print(f"e2e: kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def start_webhook(cls, *args):
        wh = WebhookServer("--pmgr_image", PMGR_IMAGE, *args).__enter__()
        cls.webhooks.append(wh)
        return wh

    @classmethod
    def rendered(cls, overlay, namespace=None, images=None):
        """`kubectl kustomize` of the overlay in a copy of webhook/deploy set to namespace/images
        (no-cert-manager: after its make-certs.sh); the objects."""
        r = Rendered(os.path.join(os.environ["GEM_K8S_BIN"], "kubectl"), overlay, namespace, images)
        try:
            if overlay == "no-cert-manager":
                r.make_certs()
            return r.render()
        finally:
            r.close()

    @classmethod
    def webhook_configuration(cls, wh, port=None):
        """The project's MutatingWebhookConfiguration (cert-manager overlay as shipped) with a url
        client config for `wh` and its CA (what cert-manager's cainjector would put in caBundle)."""
        (cfg,) = [d for d in cls.rendered("cert-manager") if d["kind"] == "MutatingWebhookConfiguration"]
        del cfg["metadata"]["annotations"]
        with open(wh.pki.ca_cert, "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        for w in cfg["webhooks"]:
            w["clientConfig"] = {"url": f"https://127.0.0.1:{port or wh.port}/mutate", "caBundle": ca}
        return cfg

    @classmethod
    def register(cls, wh, port=None):
        cls.cluster.kubectl("apply", "-f", "-", stdin=json.dumps(cls.webhook_configuration(wh, port)))

    @classmethod
    def dry_run_pod(cls, pod):
        p = cls.cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-",
                                stdin=json.dumps(pod), check=False)
        return json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr}

    def create(self, pod, check=True):
        return self.cluster.kubectl("create", "-f", "-", stdin=json.dumps(pod), check=check)

    def get(self, name, namespace=NS):
        return json.loads(self.cluster.kubectl("get", "pod", "-n", namespace, name, "-o", "json").stdout)

    def requests_for(self, wh, name):
        return [r for r in wh.log_records() if r.get("msg") == "access" and r.get("name") == name]

    def logged_requests(self, wh, name, count=1):
        """The access-log records for pod `name`, once there are `count`: the webhook logs a request
        after answering it, so the line may come just after the API server's reply."""
        return wait_for(f"{count} access-log record(s) for {name}",
                        lambda: (lambda r: r if len(r) >= count else None)(self.requests_for(wh, name)),
                        CONFIG_DEADLINE_S, period=0.1)

    # -- pods through the API server, --sidecar_mode container ----------------------------------

    def test_10_opted_in_pod_is_mutated_and_read_back(self):
        pod = gpu_pod("shared-train", {"gemini.gpu-sharing.io/request": "0.3",
                                       "gemini.gpu-sharing.io/limit": "0.6",
                                       "gemini.gpu-sharing.io/gpu-memory": "8GiB"})
        pod["spec"]["initContainers"] = [{"name": "warmup", "image": "cuda:e2e",
                                          "resources": {"limits": {"nvidia.com/gpu": "1"}}},
                                         {"name": "fetch", "image": "busybox"}]
        pod["spec"]["containers"].append({"name": "log", "image": "busybox"})
        self.create(pod)
        stored = self.get("shared-train")
        self.assertEqual(stored["metadata"]["annotations"]["gemini.gpu-sharing.io/mutated"], "true")
        v1 = to_v1pod(stored)
        names = [c.name for c in v1.spec.containers]
        self.assertEqual(names, ["main", "log", SIDECAR])  # the user's containers keep their places
        self.assertEqual([c.name for c in v1.spec.init_containers], ["warmup", "fetch"])
        for c in (v1.spec.containers[0], v1.spec.init_containers[0]):
            env = kubelet_env(c, NS, "shared-train")
            self.assertEqual(env["POD_NAME"], f"{NS}/shared-train")
            self.assertEqual(env["LD_PRELOAD"], HOOK)
            self.assertEqual(env["POD_MANAGER_IP"], "127.0.0.1")
            self.assertEqual(env["POD_MANAGER_PORT"], "50052")
            lib = [m for m in c.volume_mounts if m.mount_path == "/gemini/lib"]
            self.assertEqual(len(lib), 1)
            self.assertTrue(lib[0].read_only)
            self.assertEqual(lib[0].name, "gemini-lib")
        for c in (v1.spec.containers[1], v1.spec.init_containers[1]):  # no GPU: untouched
            self.assertIsNone(c.env)
        volumes = {v.name: v.host_path for v in v1.spec.volumes}
        self.assertEqual((volumes["gemini-lib"].path, volumes["gemini-lib"].type), ("/var/lib/gemini/lib", "Directory"))
        self.assertEqual((volumes["gemini-scheduler"].path, volumes["gemini-scheduler"].type), ("/run/gemini", "Directory"))
        pm = v1.spec.containers[2]
        self.assertEqual(pm.image, PMGR_IMAGE)
        self.assertEqual(pm.command, ["gem-pmgr"])
        self.assertEqual(pm.args, ["--name", "$(POD_NAME)", "--ip", "127.0.0.1", "--port", "50052",
                                   "--metrics_port", "19500", "--metrics_address", "0.0.0.0",
                                   "--scheduler_dir", "/run/gemini", "--request", "0.3", "--limit", "0.6",
                                   "--gpu_mem", "8GiB"])
        # The metrics port the PodMonitor gemini-pod-managers scrapes, stored as sent.
        self.assertEqual([(p.name, p.container_port, p.protocol) for p in pm.ports], [("gem-metrics", 19500, "TCP")])
        self.assertEqual(kubelet_env(pm, NS, "shared-train")["POD_NAME"], f"{NS}/shared-train")
        self.assertEqual([(m.name, m.mount_path) for m in pm.volume_mounts], [("gemini-scheduler", "/run/gemini")])
        self.assertIsNotNone(pm.startup_probe)
        self.assertNotIn("restartPolicy", stored["spec"]["containers"][2])
        # The stored object (with the API server's defaults) is also a valid 1.29+ pod.
        (entry,) = validate_schemas([stored])
        self.assertTrue(entry["ok"], entry["errors"])
        # Exactly one admission, patched.
        (rec,) = self.logged_requests(self.container_wh, "shared-train")
        self.assertEqual((rec["operation"], rec["decision"]), ("CREATE", "patched"))

    def test_11_example_pod_gets_the_pod_manager(self):
        (pod,) = load_docs(os.path.join(DEPLOY, "examples", "shared-pod.yaml"))
        pod["metadata"]["namespace"] = NS
        # It asks for a share: kept off the placement tests' nodes (no node is in this group).
        pod["spec"]["nodeSelector"] = {GROUP: "example"}
        out = json.loads(self.cluster.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(pod)).stdout)
        self.assertEqual(out["spec"]["containers"][-1]["name"], SIDECAR)
        self.assertEqual(out["spec"]["containers"][-1]["args"][-6:],
                         ["--request", "0.3", "--limit", "0.6", "--gpu_mem", "8192MiB"])

    def test_20_bad_annotation_is_denied_with_the_webhooks_message(self):
        p = self.create(gpu_pod("bad-share", {"gemini.gpu-sharing.io/request": "0.9",
                                              "gemini.gpu-sharing.io/limit": "0.5"}), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('admission webhook "pods.gemini.gpu-sharing.io" denied the request', p.stderr)
        self.assertIn("gemini: annotation gemini.gpu-sharing.io/request=0.9 exceeds "
                      "gemini.gpu-sharing.io/limit=0.5", p.stderr)
        self.assertEqual(self.cluster.kubectl("get", "pod", "-n", NS, "bad-share", check=False).returncode, 1)

    def test_30_opted_in_pod_without_gpu_passes_unchanged_with_a_warning(self):
        pod = gpu_pod("no-gpu", gpu=False)
        p = self.create(pod)
        self.assertIn("Warning: gemini: pod has label gemini.gpu-sharing.io/enabled=true but no container "
                      "requests nvidia.com/gpu or gemini.gpu-sharing.io/gpu-share; it is not put under GPU sharing",
                      p.stderr)
        stored = self.get("no-gpu")
        self.assertNotIn("annotations", stored["metadata"])
        self.assertEqual([c["name"] for c in stored["spec"]["containers"]], ["main"])
        self.assertNotIn("env", stored["spec"]["containers"][0])
        self.assertNotIn("volumes", stored["spec"])
        (rec,) = self.logged_requests(self.container_wh, "no-gpu")
        self.assertEqual(rec["decision"], "no_gpu")

    def test_40_excluded_namespace_is_never_sent(self):
        self.create(gpu_pod("system-pod", namespace="kube-system"))
        stored = self.get("system-pod", namespace="kube-system")
        self.assertEqual([c["name"] for c in stored["spec"]["containers"]], ["main"])
        self.assertNotIn("annotations", stored["metadata"])
        # Nor is a pod that does not opt in (objectSelector).
        self.create(gpu_pod("plain", labels={"app": "plain"}))
        self.assertEqual([c["name"] for c in self.get("plain")["spec"]["containers"]], ["main"])
        # An opted-in pod created after them: once its request is logged, so would theirs be.
        self.create(gpu_pod("after-system-pod"))
        self.logged_requests(self.container_wh, "after-system-pod")
        self.assertEqual(self.requests_for(self.container_wh, "system-pod"), [])
        self.assertEqual(self.requests_for(self.container_wh, "plain"), [])
        self.assertEqual([r for r in self.container_wh.log_records() if r.get("namespace") == "kube-system"], [])

    def test_50_update_that_changes_the_pod_manager_is_refused(self):
        self.create(gpu_pod("guarded"))
        p = self.cluster.kubectl("set", "image", "-n", NS, "pod/guarded", f"{SIDECAR}=evil/impersonator:1",
                                 check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("gemini: the gemini-pod-manager sidecar cannot be changed", p.stderr)
        self.cluster.kubectl("set", "image", "-n", NS, "pod/guarded", "main=cuda:e2e-2")  # user's: fine
        self.assertEqual(self.get("guarded")["spec"]["containers"][-1]["image"], PMGR_IMAGE)

    # -- the native-sidecar patch (default mode, Kubernetes 1.29+) -------------------------------

    def test_60_native_sidecar_patch_is_valid_for_1_29(self):
        # An API-server-defaulted pod (created without the opt-in label, as stored), labelled and
        # sent to the native-mode webhook as the API server would send it.
        pod = gpu_pod("native-src", labels={"app": "native"})
        pod["spec"]["initContainers"] = [{"name": "warmup", "image": "cuda:e2e",
                                          "resources": {"limits": {"nvidia.com/gpu": "1"}}}]
        self.create(pod)
        stored = self.get("native-src")
        stored["metadata"]["labels"][LABEL] = "true"
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": str(uuid.uuid4()),
                              "kind": {"group": "", "version": "v1", "kind": "Pod"},
                              "resource": {"group": "", "version": "v1", "resource": "pods"},
                              "namespace": NS, "operation": "CREATE", "object": stored}}
        resp = self.native_wh.review(review)["response"]
        self.assertTrue(resp["allowed"])
        patched = apply_response(copy.deepcopy(stored), resp)
        inits = patched["spec"]["initContainers"]
        self.assertEqual([c["name"] for c in inits], [SIDECAR, "warmup"])
        self.assertEqual(inits[0]["restartPolicy"], "Always")
        self.assertEqual([c["name"] for c in patched["spec"]["containers"]], ["main"])
        (entry,) = validate_schemas([patched])
        self.assertTrue(entry["ok"], entry["errors"])
        # The same check catches a field 1.29+ does not know.
        broken = copy.deepcopy(patched)
        broken["spec"]["initContainers"][0]["restartPolicyy"] = "Always"
        (entry,) = validate_schemas([broken])
        self.assertFalse(entry["ok"])

    def test_61_v1_20_refuses_the_native_sidecar(self):
        # Why --sidecar_mode container exists: v1.20 drops restartPolicy and refuses the probe.
        self.register(self.native_wh)
        try:
            got = wait_for("native-mode webhook in effect",
                           lambda: "error" in (r := self.dry_run_pod(gpu_pod("native-probe"))) and r,
                           CONFIG_DEADLINE_S, period=0.5)
            self.assertIn("spec.initContainers[0].startupProbe: Invalid value", got["error"])
            self.assertIn("must not be set for init containers", got["error"])
        finally:
            self.register(self.container_wh)
            wait_for("container-mode webhook in effect again",
                     lambda: "error" not in self.dry_run_pod(gpu_pod("probe")), CONFIG_DEADLINE_S, period=0.5)

    # -- manifests ---------------------------------------------------------------------------------

    def test_70_every_overlay_passes_server_dry_run_and_schema(self):
        # Each overlay set to its own namespace and images, as docs/kubernetes.md tells an admin.
        crds = self.cluster.kubectl("get", "crd", "-o", "name").stdout
        have_cert_manager = "certificates.cert-manager.io" in crds
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                ns = f"gem-{overlay}"
                objects = self.rendered(overlay, ns, {"gem-webhook": f"registry.example/gem-webhook:{ns}",
                                                      "gemini-node": f"registry.example/gemini-node:{ns}"})
                # Namespaced objects need their namespace for a server-side dry run: apply it for real.
                (namespace,) = [d for d in objects if d["kind"] == "Namespace"]
                self.assertEqual(namespace["metadata"]["name"], ns)
                self.cluster.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
                checked, schema_only = [], []
                for d in objects:
                    if d["kind"] == "Namespace":
                        continue
                    if d["apiVersion"].startswith("cert-manager.io/") and not have_cert_manager:
                        schema_only.append(d)
                        continue
                    if d["apiVersion"] == "policy/v1":
                        # policy/v1 PodDisruptionBudget: 1.21+. v1.20 serves the same spec as v1beta1.
                        d = dict(d, apiVersion="policy/v1beta1")
                    checked.append(d)
                p = self.cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                                         stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": checked}),
                                         check=False)
                self.assertEqual(p.returncode, 0, f"{overlay}: {p.stderr}")
                kinds = {d["kind"] for d in checked}
                for kind in ("Deployment", "DaemonSet", "PodDisruptionBudget", "NetworkPolicy",
                             "MutatingWebhookConfiguration", "Service", "ConfigMap", "Role"):
                    self.assertIn(kind, kinds)
                self.assertEqual("Secret" in kinds, overlay == "no-cert-manager")
                self.assertTrue(schema_only or have_cert_manager or overlay == "no-cert-manager")
                # Every object, cert-manager's and policy/v1 included, against the 1.29+ schemas.
                for entry in validate_schemas(objects):
                    self.assertTrue(entry["ok"], entry)
                print(f"\ne2e: {overlay} in namespace {ns}: server dry run {len(checked)} objects + the "
                      f"Namespace applied; schemas: {len(objects)} objects ({len(schema_only)} cert-manager "
                      f"objects without their CRDs)", file=sys.stderr)

    # -- last: the webhook goes away ---------------------------------------------------------------

    def test_90_failure_policy_when_the_webhook_is_down(self):
        # Gone at once (a crash, a node lost). A SIGTERM would also do, but gem-webhook then waits
        # for the API server's idle keep-alive connection (up to its 30 s keep-alive timeout).
        port = self.container_wh.port
        self.container_wh.proc.kill()
        self.container_wh.proc.wait(30)
        p = self.create(gpu_pod("while-down"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('failed calling webhook "pods.gemini.gpu-sharing.io"', p.stderr)
        self.assertIn(f"127.0.0.1:{port}", p.stderr)
        self.assertEqual(self.cluster.kubectl("get", "pod", "-n", NS, "while-down", check=False).returncode, 1)
        # Pods that do not opt in never reach the webhook: unaffected.
        self.create(gpu_pod("plain-while-down", labels={"app": "plain"}))
        self.assertEqual(self.get("plain-while-down")["metadata"]["name"], "plain-while-down")


if __name__ == "__main__":
    unittest.main()
