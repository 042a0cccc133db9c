"""webhook/deploy/overlays/mps, the MPS option (docs/kubernetes.md, "MPS for latency clients
(option)"): each applicable overlay with its `- ../../base` replaced by `- ../mps` as the docs tell an
admin to, set to another namespace and other images, rendered with the built kubectl (skipped,
saying so, when it is not built). The node DaemonSet then runs the MPS control daemon in the node's
IPC namespace on the pipe directory that gem-webhook --mps_pipe_directory names, the pod the webhook
patches with that flag reaches the same directory, and the overlays as shipped have no MPS at all."""

import os
import subprocess
import unittest

from kustomize_render import NOT_BUILT, OVERLAYS, Rendered, kubectl_bin
from test_manifests import one, webhook_args
import test_manifests_overlays as overlays_test
from webhook_server import REPO, WebhookServer, apply_response, load_fixture, to_v1pod, webhook_bin

BASE_LINE = "  - ../../base\n"
MPS_LINE = "  - ../mps\n"


def env_of(c):
    return {e["name"]: e.get("value") for e in c.get("env", [])}


class MpsOption(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kubectl = kubectl_bin()
        if cls.kubectl is None:
            raise unittest.SkipTest(NOT_BUILT)

    def rendered(self, overlay, with_mps=True):
        r = Rendered(self.kubectl, overlay, overlays_test.NS2, overlays_test.IMAGES2)
        self.addCleanup(r.close)
        if with_mps:
            path = os.path.join(r.dir, "kustomization.yaml")
            with open(path) as f:
                text = f.read()
            self.assertEqual(text.count(BASE_LINE), 1, overlay)
            with open(path, "w") as f:
                f.write(text.replace(BASE_LINE, MPS_LINE))
        if overlay == "no-cert-manager":
            r.make_certs()
        return r.render()

    def check_mps(self, docs):
        ds = one(docs, "DaemonSet", "gemini-node")
        pod = ds["spec"]["template"]["spec"]
        self.assertIs(pod["hostIPC"], True)
        names = [c["name"] for c in pod["containers"]]
        self.assertEqual(names, ["gem-schd", "gem-device-plugin", "mps-control"])  # base's keep their places
        mps = pod["containers"][2]
        self.assertEqual(mps["command"], ["nvidia-cuda-mps-control", "-f"])
        self.assertEqual(mps["image"], overlays_test.IMAGES2["gemini-node"])  # the overlay's images reach it
        env = env_of(mps)
        self.assertEqual(env["NVIDIA_VISIBLE_DEVICES"], "all")
        self.assertEqual(env["NVIDIA_DRIVER_CAPABILITIES"], "compute,utility")  # compute: the MPS binaries
        pipe, logd = env["CUDA_MPS_PIPE_DIRECTORY"], env["CUDA_MPS_LOG_DIRECTORY"]
        vols = {v["name"]: v for v in pod["volumes"]}
        by_path = {m["mountPath"]: m for m in mps["volumeMounts"]}
        for d in (pipe, logd):
            self.assertEqual(vols[by_path[d]["name"]]["hostPath"]["path"], d)
            self.assertNotIn("readOnly", by_path[d])
        sc = mps["securityContext"]
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertIn("ALL", sc["capabilities"]["drop"])
        self.assertNotIn("privileged", sc)
        self.assertTrue(set(sc["capabilities"].get("add", [])) <= {"SETUID", "SETGID"})
        self.assertIn("nvidia-cuda-mps-control", " ".join(mps["livenessProbe"]["exec"]["command"]))
        # gem-webhook is told the same directory, with a flag it knows and a value it accepts.
        args = webhook_args(docs)
        self.assertEqual(args["--mps_pipe_directory"], pipe)
        usage = subprocess.run([webhook_bin(), "--help"], capture_output=True, text=True, check=True).stdout
        for flag in args:
            self.assertIn(flag + " ", usage)
        return pipe

    def test_each_overlay_with_mps(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                docs = self.rendered(overlay)
                overlays_test.Overlays.check_common(self, docs, overlays_test.NS2, overlays_test.IMAGES2)
                # The option changes objects, it adds none.
                plain = self.rendered(overlay, with_mps=False)
                self.assertEqual(sorted((d["kind"], d["metadata"]["name"]) for d in docs),
                                 sorted((d["kind"], d["metadata"]["name"]) for d in plain))
                pipe = self.check_mps(docs)
                # A shared pod patched by gem-webhook with the rendered arguments reaches the daemon:
                # the same hostPath, mounted where CUDA_MPS_PIPE_DIRECTORY says, in the node's IPC namespace.
                with WebhookServer("--mps_pipe_directory", pipe) as server:
                    rv = load_fixture("pod-generate-name.json")
                    resp = server.review(rv)["response"]
                pod = to_v1pod(apply_response(rv["request"]["object"], resp))
                self.assertIs(pod.spec.host_ipc, True)
                c = pod.spec.containers[0]
                self.assertEqual({e.name: e.value for e in c.env}["CUDA_MPS_PIPE_DIRECTORY"], pipe)
                m = {m.mount_path: m for m in c.volume_mounts}[pipe]
                self.assertEqual({v.name: v for v in pod.spec.volumes}[m.name].host_path.path, pipe)

    def test_overlays_as_shipped_have_no_mps(self):
        for overlay in OVERLAYS:
            with self.subTest(overlay=overlay):
                docs = self.rendered(overlay, with_mps=False)
                pod = one(docs, "DaemonSet", "gemini-node")["spec"]["template"]["spec"]
                self.assertNotIn("hostIPC", pod)
                self.assertNotIn("mps-control", [c["name"] for c in pod["containers"]])
                self.assertNotIn("--mps_pipe_directory", webhook_args(docs))

    def test_the_docs_tell_the_same_edit(self):
        with open(os.path.join(REPO, "docs", "kubernetes.md")) as f:
            doc = f.read()
        self.assertIn("## MPS for latency clients (option)", doc)
        self.assertIn(BASE_LINE.strip(), doc)
        self.assertIn(MPS_LINE.strip(), doc)
        with open(os.path.join(REPO, "webhook", "deploy", "overlays", "mps", "kustomization.yaml")) as f:
            self.assertIn(MPS_LINE.strip(), f.read())


if __name__ == "__main__":
    unittest.main()
