#!/usr/bin/env bash
# GPU checks, one command:   tests/gpu/run-all.sh OUTDIR [interception|shares|limit|bench|demo ...]
# (OUTDIR may be omitted when $OUT is set.) Needs: a GPU, nvcc (CUDA 13), python3 with torch +
# torchvision, and the project's build folder ($BUILD, default <repo>/build) with bin/gem-schd,
# bin/gem-pmgr, lib/libgemhook.so.1. Builds its CUDA programs into OUTDIR/bin, runs the parts
# (default: all, about 6-7 minutes), writes OUTDIR/summary.json + OUTDIR/summary.txt and a folder
# per part. Exit status 0 when every check passed.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PARTS_RE='^(interception|shares|limit|bench|demo|all)$'
if [ $# -ge 1 ] && ! [[ "$1" =~ $PARTS_RE ]]; then
  OUTDIR="$1"; shift
elif [ -n "${OUT:-}" ]; then
  OUTDIR="$OUT"
else
  echo "usage: $0 OUTDIR [interception|shares|limit|bench|demo ...]   (or set \$OUT)" >&2
  exit 2
fi
mkdir -p "$OUTDIR" && OUTDIR="$(cd "$OUTDIR" && pwd)"
BUILD="${BUILD:-$REPO/build}"
BUILD="$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
CUDA_PATH="${CUDA_PATH:-$(dirname "$(dirname "$(readlink -f "$NVCC")")")}"
export NVCC CUDA_PATH BUILD
PY="${PYTHON:-python3}"

echo "run-all: repo $REPO, build $BUILD, nvcc $NVCC, out $OUTDIR"
nvidia-smi -L 2>&1 | head -4
start=$(date +%s)
if ! make -C "$REPO/tests/gpu" -j"$(nproc 2>/dev/null || echo 4)" OUT="$OUTDIR/bin" NVCC="$NVCC" \
     CUDA_PATH="$CUDA_PATH" >"$OUTDIR/build.log" 2>&1; then
  echo "run-all: building the CUDA test programs failed:" >&2
  tail -40 "$OUTDIR/build.log" >&2
  printf '{"ok": false, "error": "build of tests/gpu programs failed, see build.log"}\n' >"$OUTDIR/summary.json"
  exit 1
fi
echo "run-all: built test programs in $(( $(date +%s) - start )) s"
"$PY" "$REPO/tests/gpu/gpu_checks.py" --out "$OUTDIR" --build "$BUILD" --bin "$OUTDIR/bin" "$@"
rc=$?
echo "run-all: finished in $(( $(date +%s) - start )) s, status $rc"
exit $rc
