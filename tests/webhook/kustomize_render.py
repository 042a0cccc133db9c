"""Renders webhook/deploy/overlays/* with the kubectl that tests/webhook/e2e/build-kube.sh builds
(`kubectl kustomize`, kustomize v2.0.3 inside kubectl v1.20.2), in a copy of webhook/deploy whose
overlay has the namespace and images an admin would set. Shared by test_manifests.py and the e2e
test."""

import os
import re
import shutil
import subprocess
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "webhook", "deploy")
OVERLAYS = ("cert-manager", "no-cert-manager")
DEFAULT_NS = "gemini-system"
DEFAULT_IMAGES = {"gem-webhook": "ghcr.io/gemini-gpu-sharing/gem-webhook:0.1.0",
                  "gemini-node": "ghcr.io/gemini-gpu-sharing/gemini-node:0.1.0"}


def kubectl_bin():
    """The built kubectl: $GEM_K8S_BIN/kubectl, else build-kube.sh's cache; None when not built."""
    if os.environ.get("GEM_K8S_BIN"):
        dirs = [os.environ["GEM_K8S_BIN"]]
    else:
        root = os.environ.get("GEM_K8S_CACHE_ROOT") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gem-k8s")
        dirs = [os.path.join(os.environ.get("GEM_K8S_CACHE") or os.path.join(root, "v1.20.2"), "bin")]
    for d in dirs:
        path = os.path.join(d, "kubectl")
        if os.access(path, os.X_OK):
            return path
    return None


NOT_BUILT = ("kubectl v1.20.2 is not built (looked in $GEM_K8S_BIN, else ~/.cache/gem-k8s/v1.20.2/bin): "
             "run `make k8s-e2e` once to build it (tests/webhook/e2e/build-kube.sh)")


def set_overlay(path, namespace=None, images=None):
    """Edits an overlay's kustomization.yaml as docs/kubernetes.md tells an admin to: the
    `namespace:` line, the images' newName/newTag, the gemini-node literal. images: {"gem-webhook":
    "REPO/NAME:TAG", "gemini-node": ...}."""
    with open(path) as f:
        text = f.read()
    if namespace:
        text, n = re.subn(r"(?m)^namespace: .*$", f"namespace: {namespace}", text)
        assert n == 1, path
    for name, ref in (images or {}).items():
        repo, tag = ref.rsplit(":", 1)
        pat = rf"(?m)^(  - name: ghcr\.io/gemini-gpu-sharing/{name}\n    newName: ).*\n(    newTag: ).*$"
        text, n = re.subn(pat, rf'\g<1>{repo}\n\g<2>"{tag}"', text)
        assert n == 1, (path, name)
        if name == "gemini-node":
            text, n = re.subn(r"(?m)^(      - gemini-node=).*$", rf"\g<1>{ref}", text)
            assert n == 1, path
    with open(path, "w") as f:
        f.write(text)


class Rendered:
    """A copy of webhook/deploy with `overlay` set to namespace/images; render() runs kubectl
    kustomize on it. For no-cert-manager, make_certs() runs the overlay's make-certs.sh first."""

    def __init__(self, kubectl, overlay, namespace=None, images=None):
        self.kubectl = kubectl
        self.tmp = tempfile.mkdtemp(prefix="gem-kustomize-")
        self.deploy = os.path.join(self.tmp, "deploy")
        shutil.copytree(DEPLOY, self.deploy, ignore=shutil.ignore_patterns("tls"))
        self.dir = os.path.join(self.deploy, "overlays", overlay)
        set_overlay(os.path.join(self.dir, "kustomization.yaml"), namespace, images)

    def make_certs(self, *args):
        return subprocess.run([os.path.join(self.dir, "make-certs.sh"), *args], capture_output=True,
                              text=True, timeout=60, check=True)

    def run(self, path=None):
        return subprocess.run([self.kubectl, "kustomize", path or self.dir], capture_output=True, text=True,
                              timeout=120)

    def render(self, path=None):
        p = self.run(path)
        if p.returncode != 0:
            raise AssertionError(f"kubectl kustomize {path or self.dir} exited {p.returncode}: {p.stderr}")
        return [d for d in yaml.safe_load_all(p.stdout) if d]

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
