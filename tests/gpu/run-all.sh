#!/usr/bin/env bash
# GPU checks, one command:   tests/gpu/run-all.sh OUTDIR [interception|shares|limit|bench|demo|matrix ...]
# (OUTDIR may be omitted when $OUT is set.) Needs: a GPU, nvcc (CUDA 13), python3 with torch +
# torchvision, and the project's build folder ($BUILD, default <repo>/build) with bin/gem-schd,
# bin/gem-pmgr, lib/libgemhook.so.1. Builds its CUDA programs into OUTDIR/bin, runs the parts
# (default: all, about 6-7 minutes), writes OUTDIR/summary.json + OUTDIR/summary.txt and a folder
# per part. Exit status 0 when every check passed.
#
# `matrix` (not part of `all`) is the GPU regression matrix, tests/gpu/matrix.py (docs/gpu-results.md,
# "Regression matrix"): each workload (the spin kernel through every launch path, PyTorch eager, CUDA
# graphs and their capture modes, torch.compile, CuPy graph, JAX, a forking DataLoader, torch spawn)
# alone at LIMIT 0.25 against its unhooked rate, then tests/gpu/gpu_mem.py --skip_resnet and
# tests/gpu/drills.py (shortened); 6.5-8 minutes in all (matrix.py's BUDGET_S skips what does not fit).
# Also needs CuPy and JAX. It writes only OUTDIR/build.log, OUTDIR/matrix.txt, OUTDIR/matrix.json and
# OUTDIR/logs.tar.gz: with `matrix` alone the programs are built into $GEM_MATRIX_WORK/bin and the
# per-row logs kept in $GEM_MATRIX_WORK (default /tmp/gem-matrix.PID), not in OUTDIR.
#   BUILD=$PWD/build tests/gpu/run-all.sh $OUT matrix
# Through the device tool, carry build/bin/gem-schd, build/bin/gem-pmgr, build/lib and
# build/fake-cuda/fake-mem-app (gpu_mem's driver-path check; matrix.py fails its setup row at once
# without it), and build/gpu-bin with `matrix.py --bin` to skip building the test programs there.
#   python3 tests/gpu/matrix.py --out X --build build --bin B --dry_run   # the plan, runs nothing
#   python3 tests/gpu/matrix.py --out X --build build --bin B --fake      # the stand-in driver, no GPU
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PARTS_RE='^(interception|shares|limit|bench|demo|matrix|all)$'
if [ $# -ge 1 ] && ! [[ "$1" =~ $PARTS_RE ]]; then
  OUTDIR="$1"; shift
elif [ -n "${OUT:-}" ]; then
  OUTDIR="$OUT"
else
  echo "usage: $0 OUTDIR [interception|shares|limit|bench|demo|matrix ...]   (or set \$OUT)" >&2
  exit 2
fi
mkdir -p "$OUTDIR" && OUTDIR="$(cd "$OUTDIR" && pwd)"
BUILD="${BUILD:-$REPO/build}"
BUILD="$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
CUDA_PATH="${CUDA_PATH:-$(dirname "$(dirname "$(readlink -f "$NVCC")")")}"
export NVCC CUDA_PATH BUILD
PY="${PYTHON:-python3}"

# `matrix` goes to tests/gpu/matrix.py, the other parts to gpu_checks.py.
matrix=0; others=()
for a in "$@"; do if [ "$a" = matrix ]; then matrix=1; else others+=("$a"); fi; done
BIN="$OUTDIR/bin"
if [ "$matrix" = 1 ]; then
  WORK="${GEM_MATRIX_WORK:-${TMPDIR:-/tmp}/gem-matrix.$$}"
  mkdir -p "$WORK" && WORK="$(cd "$WORK" && pwd)"
  [ ${#others[@]} -eq 0 ] && BIN="$WORK/bin"   # OUTDIR keeps only the matrix's few files
fi
export PYTHONUNBUFFERED=1
echo "run-all: repo $REPO, build $BUILD, nvcc $NVCC, out $OUTDIR"
nvidia-smi -L 2>&1 | head -4
start=$(date +%s)
if ! make -C "$REPO/tests/gpu" -j"$(nproc 2>/dev/null || echo 4)" OUT="$BIN" NVCC="$NVCC" \
     CUDA_PATH="$CUDA_PATH" >"$OUTDIR/build.log" 2>&1; then
  echo "run-all: building the CUDA test programs failed:" >&2
  tail -40 "$OUTDIR/build.log" >&2
  printf '{"ok": false, "error": "build of tests/gpu programs failed, see build.log"}\n' >"$OUTDIR/summary.json"
  exit 1
fi
echo "run-all: built test programs in $(( $(date +%s) - start )) s"
rc=0
if [ "$matrix" = 0 ] || [ ${#others[@]} -gt 0 ]; then
  "$PY" "$REPO/tests/gpu/gpu_checks.py" --out "$OUTDIR" --build "$BUILD" --bin "$BIN" ${others[@]+"${others[@]}"}
  rc=$?
fi
if [ "$matrix" = 1 ]; then
  "$PY" "$REPO/tests/gpu/matrix.py" --out "$OUTDIR" --build "$BUILD" --bin "$BIN" --work "$WORK"
  mrc=$?
  [ $rc -eq 0 ] && rc=$mrc
fi
echo "run-all: finished in $(( $(date +%s) - start )) s, status $rc"
exit $rc
