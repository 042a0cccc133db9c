#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler and kubectl v1.20.2 from Debian 12's `kubernetes` source
# package, once, into a cache that survives between runs:
# ${GEM_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gem-k8s/v1.20.2}/bin.
# Prints that bin directory on stdout when it is ready (reused without building when all three
# binaries are there; when only some are, only the missing ones are built and the others kept).
# Needs golang-go, dpkg-dev and golang-github-modern-go-reflect2-dev (.ci/install-deps).
# The machine's apt sources are left alone: the source package is fetched with a private
# Dir::Etc::SourceList that holds only deb-src lines (docs/kubernetes-tests.md, "End-to-end test").
set -euo pipefail
VERSION=v1.20.2
CACHE="${GEM_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gem-k8s/$VERSION}"
BIN="$CACHE/bin"
MIRROR="${GEM_K8S_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY="${GEM_K8S_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
COMMANDS=(kube-apiserver kube-scheduler kubectl)
log() { echo "build-kube: $*" >&2; }
missing() {
  local c
  for c in "${COMMANDS[@]}"; do [ -x "$BIN/$c" ] || echo "$c"; done
}

if [ -z "$(missing)" ]; then
  log "reusing $BIN"
  echo "$BIN"
  exit 0
fi
for tool in go dpkg-source apt-get; do
  command -v "$tool" >/dev/null || { log "$tool not found (run .ci/install-deps)"; exit 1; }
done
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -f "$REFLECT2/reflect2.go" ] || { log "$REFLECT2 missing (apt-get install golang-github-modern-go-reflect2-dev)"; exit 1; }

# One build at a time per cache (two runs on one machine share it); the second waits, then reuses.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w "${GEM_K8S_BUILD_TIMEOUT_S:-3600}" 9 || { log "timed out waiting for another build ($CACHE/.lock)"; exit 1; }
MISSING=($(missing))
if [ ${#MISSING[@]} -eq 0 ]; then
  log "reusing $BIN (built meanwhile)"
  echo "$BIN"
  exit 0
fi
# The unpacked source, Go's build cache and the outputs take about 2.2 GB; all but the three
# binaries (about 200 MB) are removed afterwards.
avail_kb=$(df -Pk "$CACHE" | awk 'NR==2 {print $4}')
if [ "${avail_kb:-0}" -lt $((3 * 1024 * 1024)) ]; then
  log "need about 3 GB free under $CACHE to build (have $((avail_kb / 1024)) MB); set GEM_K8S_CACHE elsewhere"
  exit 1
fi

start=$(date +%s)
WORK="$CACHE/work"
rm -rf "$WORK"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/apt/sourceparts" "$WORK/src"
cat > "$WORK/apt/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $SECURITY bookworm-security main
SRC
APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o "Dir::Etc::SourceParts=$WORK/apt/sourceparts"
  -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache=$WORK/apt/cache" -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=$(id -un)" -o "Acquire::Retries=3" -o "Acquire::http::Timeout=60")
log "fetching the kubernetes source package (private source list $WORK/apt/sources.list)"
apt-get "${APT_OPTS[@]}" -q update >&2
(cd "$WORK/src" && apt-get "${APT_OPTS[@]}" -q source kubernetes >&2)
SRCDIR=$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
[ -n "$SRCDIR" ] || { log "apt-get source kubernetes left no kubernetes-* directory in $WORK/src"; exit 1; }

# The vendored reflect2 v1.0.1 reads Go runtime internals that changed in Go 1.18: kube-apiserver
# built with it crashes on the first admission patch. Debian's 1.0.2 is API-compatible.
rm -rf "$SRCDIR/vendor/github.com/modern-go/reflect2"
cp -r "$REFLECT2" "$SRCDIR/vendor/github.com/modern-go/reflect2"
# Kubernetes 1.20's make builds in GOPATH mode (hack/lib/init.sh: GO111MODULE=off) straight from
# vendor/, so go.mod and vendor/modules.txt are left as they are.

WHAT=""
for c in "${MISSING[@]}"; do WHAT="$WHAT cmd/$c"; done
log "building ${MISSING[*]} $VERSION with $(go version) (several minutes)"
(cd "$SRCDIR" && CGO_ENABLED=0 KUBE_GIT_VERSION=$VERSION KUBE_GIT_TREE_STATE=clean \
  GOCACHE="$WORK/gocache" timeout "${GEM_K8S_BUILD_TIMEOUT_S:-3600}" make WHAT="${WHAT# }" >&2) || {
  log "the build failed or ran past ${GEM_K8S_BUILD_TIMEOUT_S:-3600} s (GEM_K8S_BUILD_TIMEOUT_S); $WORK kept"
  exit 1
}
# The new bin directory gets the binaries kept from the old one and the ones just built, then
# replaces it in one rename, so a reader never sees a half-copied binary.
rm -rf "$BIN.new" && mkdir -p "$BIN.new"
for c in "${COMMANDS[@]}"; do
  if [ -x "$SRCDIR/_output/bin/$c" ] && printf '%s\n' "${MISSING[@]}" | grep -qx "$c"; then
    cp "$SRCDIR/_output/bin/$c" "$BIN.new/"
  else
    cp "$BIN/$c" "$BIN.new/"
  fi
done
rm -rf "$BIN" && mv "$BIN.new" "$BIN"
rm -rf "$WORK"
log "built $BIN in $(( $(date +%s) - start )) s"
echo "$BIN"
