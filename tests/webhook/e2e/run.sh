#!/usr/bin/env bash
# The Kubernetes end-to-end test (`make k8s-e2e`; a step of .ci/run): builds or reuses the cached
# kube-apiserver, kube-scheduler and kubectl v1.20.2 (build-kube.sh), installs or reuses the pinned
# schema packages (package-lock.json, npm ci), then runs test_e2e.py against etcd + kube-apiserver +
# kube-scheduler on loopback. Prints how long each part took. Needs GEM_WEBHOOK_BIN (the Makefile
# sets it).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE_ROOT="${GEM_K8S_CACHE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/gem-k8s}"
export GEM_K8S_CACHE="${GEM_K8S_CACHE:-$CACHE_ROOT/v1.20.2}"
for tool in etcd node npm openssl "${PYTHON:-/usr/bin/python3}"; do
  command -v "$tool" >/dev/null || { echo "k8s-e2e: $tool not found (run .ci/install-deps)" >&2; exit 1; }
done
[ -x "${GEM_WEBHOOK_BIN:-}" ] || { echo "k8s-e2e: GEM_WEBHOOK_BIN must name gem-webhook (run make k8s-e2e)" >&2; exit 1; }

t0=$(date +%s)
GEM_K8S_BIN="$("$HERE/build-kube.sh")"
export GEM_K8S_BIN
t1=$(date +%s)

# npm packages, once per lock file: the cache directory is named after the lock file's hash.
NPM_DIR="$CACHE_ROOT/npm-$(sha256sum "$HERE/package-lock.json" | cut -c1-16)"
if [ ! -f "$NPM_DIR/.complete" ]; then
  rm -rf "$NPM_DIR" && mkdir -p "$NPM_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$NPM_DIR/.complete"
fi
export NODE_PATH="$NPM_DIR/node_modules"
t2=$(date +%s)

status=0
"${PYTHON:-/usr/bin/python3}" -m unittest discover -s "$HERE" -p 'test_e2e.py' -v || status=$?
t3=$(date +%s)
echo "k8s-e2e: kube-apiserver+kube-scheduler+kubectl (build or reuse) $((t1 - t0)) s, npm packages $((t2 - t1)) s, tests $((t3 - t2)) s, total $((t3 - t0)) s" >&2
exit $status
