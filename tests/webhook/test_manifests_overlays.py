"""webhook/deploy/overlays/*: each overlay set to another namespace and other images, as
docs/kubernetes.md ("Install") tells an admin to, and rendered with the built kubectl v1.20.2
(`kubectl kustomize`; skipped, saying so, when it is not built), follows them everywhere: namespace,
images, certificate DNS names and caBundle; make-certs.sh; the "Metrics access" patch."""

import base64
import json
import os
import re
import subprocess
import unittest

from kustomize_render import DEFAULT_IMAGES, NOT_BUILT, OVERLAYS, Rendered, kubectl_bin
from test_manifests import CLUSTER_SCOPED, NS, by_kind, one, pmgr_image, selector_matches
from webhook_server import REPO


NS2 = "gpu-share"
IMAGES2 = {"gem-webhook": "registry.example/team/gem-webhook:1.2.3",
           "gemini-node": "registry.example/team/gemini-node:1.2.3"}


def san_of(pem):
    p = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=pem, capture_output=True,
                       text=True, check=True)
    return sorted(re.findall(r"DNS:([^,\s]+)", p.stdout))

# docs/kubernetes.md, "Metrics access" (the test checks that the docs show these).
METRICS_PATCH_KUSTOMIZATION = """patchesJson6902:
  - target: {group: networking.k8s.io, version: v1, kind: NetworkPolicy, name: gemini-node-metrics}
    path: metrics-from.yaml
"""
METRICS_PATCH = """- op: replace
  path: /spec/ingress/0/from/0/namespaceSelector
  value: {matchLabels: {team: observability}}
"""


class Overlays(unittest.TestCase):
    """Each overlay set to namespace gpu-share and registry.example images, as docs/kubernetes.md
    tells an admin to, rendered with the built kubectl."""

    @classmethod
    def setUpClass(cls):
        cls.kubectl = kubectl_bin()
        if cls.kubectl is None:
            raise unittest.SkipTest(NOT_BUILT)

    def rendered(self, overlay, namespace=NS2, images=IMAGES2):
        r = Rendered(self.kubectl, overlay, namespace, images)
        self.addCleanup(r.close)
        if overlay == "no-cert-manager":
            r.make_certs()
        return r, r.render()

    def check_common(self, docs, namespace, images):
        for d in docs:
            with self.subTest(kind=d["kind"], name=d["metadata"]["name"]):
                if d["kind"] not in CLUSTER_SCOPED:
                    self.assertEqual(d["metadata"]["namespace"], namespace)
                # No kustomize var left unresolved; $(GEMINI_NODE_IMAGE) is the kubelet's to expand.
                text = json.dumps(d).replace("$(GEMINI_NODE_IMAGE)", "")
                self.assertNotIn("$(", text)
                if namespace != NS:
                    self.assertNotIn(NS, text, "the default namespace is left in the output")
        self.assertEqual(one(docs, "Namespace")["metadata"]["name"], namespace)
        wh = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
        self.assertEqual(wh["clientConfig"]["service"]["namespace"], namespace)
        self.assertFalse(selector_matches(wh["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}))
        self.assertTrue(selector_matches(wh["namespaceSelector"], {"kubernetes.io/metadata.name": "team-a"}))
        dep = one(docs, "Deployment", "gem-webhook")
        ds = one(docs, "DaemonSet", "gemini-node")
        self.assertEqual(dep["spec"]["template"]["spec"]["containers"][0]["image"], images["gem-webhook"])
        for c in ds["spec"]["template"]["spec"]["containers"]:  # gem-schd and gem-device-plugin
            self.assertEqual(c["image"], images["gemini-node"], c["name"])
        self.assertEqual(pmgr_image(docs), images["gemini-node"])
        self.assertIn("readinessProbe", ds["spec"]["template"]["spec"]["containers"][0])
        self.assertIn("livenessProbe", ds["spec"]["template"]["spec"]["containers"][0])
        one(docs, "PodDisruptionBudget", "gem-webhook")
        one(docs, "NetworkPolicy", "gemini-node-metrics")
        return wh, dep

    def test_cert_manager(self):
        _, docs = self.rendered("cert-manager")
        wh, dep = self.check_common(docs, NS2, IMAGES2)
        mwc = one(docs, "MutatingWebhookConfiguration")
        ns, name = mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
        self.assertEqual(ns, NS2)
        cert = one(docs, "Certificate", name)
        self.assertEqual(cert["spec"]["dnsNames"], [f"gem-webhook.{NS2}.svc", f"gem-webhook.{NS2}.svc.cluster.local"])
        vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(vols["tls"]["secret"]["secretName"], cert["spec"]["secretName"])
        self.assertNotIn("caBundle", wh["clientConfig"])  # the cainjector's to fill
        self.assertNotIn("Secret", by_kind(docs))

    def test_no_cert_manager(self):
        r, docs = self.rendered("no-cert-manager")
        wh, dep = self.check_common(docs, NS2, IMAGES2)
        self.assertNotIn("Certificate", by_kind(docs))
        self.assertNotIn("annotations", one(docs, "MutatingWebhookConfiguration")["metadata"])
        vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        secret = one(docs, "Secret", vols["tls"]["secret"]["secretName"])
        self.assertEqual(secret["type"], "kubernetes.io/tls")
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        self.assertEqual(san_of(data["tls.crt"]), [f"gem-webhook.{NS2}.svc", f"gem-webhook.{NS2}.svc.cluster.local"])
        # caBundle is the CA that signed tls.crt, and the key matches the certificate.
        ca = base64.b64decode(wh["clientConfig"]["caBundle"]).decode()
        self.assertEqual(ca, data["ca-bundle"])
        with open(os.path.join(r.dir, "tls", "ca.crt")) as f:
            self.assertEqual(f.read(), ca)
        subprocess.run(["openssl", "verify", "-CAfile", os.path.join(r.dir, "tls", "ca.crt"),
                        os.path.join(r.dir, "tls", "tls.crt")], check=True, capture_output=True)
        pub = [subprocess.run(["openssl", kind, "-pubout"] if kind == "pkey" else ["openssl", "x509", "-noout", "-pubkey"],
                              input=data[key], capture_output=True, text=True, check=True).stdout
               for kind, key in (("pkey", "tls.key"), ("x509", "tls.crt"))]
        self.assertEqual(pub[0], pub[1])
        # Renewal keeps the CA (so the caBundle); a new namespace gets a new certificate.
        r.make_certs("--days", "30")
        again = r.render()
        self.assertEqual(one(again, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"],
                         wh["clientConfig"]["caBundle"])
        self.assertNotEqual(one(again, "Secret", "gem-webhook-tls")["data"]["tls.crt"], secret["data"]["tls.crt"])

    def test_no_cert_manager_without_certificates_fails_naming_the_file(self):
        r = Rendered(self.kubectl, "no-cert-manager")
        self.addCleanup(r.close)
        p = r.run()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("tls/tls.crt", p.stderr)

    def test_make_certs_refuses_bad_input(self):
        r = Rendered(self.kubectl, "no-cert-manager")
        self.addCleanup(r.close)
        for args, msg in ((["--namespace", "Team_A"], '"Team_A" is not a valid namespace name'),
                          (["--days", "0"], "--days wants a whole number of days"),
                          (["--bogus"], "unknown argument --bogus")):
            p = subprocess.run([os.path.join(r.dir, "make-certs.sh"), *args], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 1, args)
            self.assertIn(msg, p.stderr)

    def test_defaults_as_shipped(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                _, docs = self.rendered(overlay, None, None)
                self.check_common(docs, NS, DEFAULT_IMAGES)

    def test_monitoring_namespace_label_by_patch(self):
        # docs/kubernetes.md, "Metrics access": another label for the monitoring namespace.
        r = Rendered(self.kubectl, "cert-manager")
        self.addCleanup(r.close)
        with open(os.path.join(r.dir, "kustomization.yaml"), "a") as f:
            f.write(METRICS_PATCH_KUSTOMIZATION)
        with open(os.path.join(r.dir, "metrics-from.yaml"), "w") as f:
            f.write(METRICS_PATCH)
        np = one(r.render(), "NetworkPolicy", "gemini-node-metrics")
        self.assertEqual(np["spec"]["ingress"][0]["from"],
                         [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}])
        self.assertEqual(len(np["spec"]["ingress"][0]["ports"]), 8)
        with open(os.path.join(REPO, "docs", "kubernetes.md")) as f:
            doc = f.read()
        self.assertIn(METRICS_PATCH_KUSTOMIZATION, doc)
        self.assertIn(METRICS_PATCH, doc)


if __name__ == "__main__":
    unittest.main()
