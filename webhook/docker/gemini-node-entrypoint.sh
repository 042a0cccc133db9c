#!/usr/bin/env bash
# DaemonSet entrypoint: copy the hook for shared pods, then run one gem-schd per GPU on
# $GEMINI_SCHEDULER_DIR/<GPU-UUID>.sock. The GPUs are found through NVML (gem-schd --list_gpus)
# unless $GEMINI_GPUS names them (comma-separated UUIDs). With $GEMINI_METRICS_PORT (0: off)
# the gem-schd of the i-th GPU serves Prometheus metrics on $GEMINI_METRICS_ADDRESS:PORT+i.
# Exits (and the kubelet restarts the pod) when any scheduler exits; SIGTERM stops them all.
set -euo pipefail

SCHED_DIR="${GEMINI_SCHEDULER_DIR:-/run/gemini}"
CONFIG="${GEMINI_CONFIG:-/etc/gemini/resource-config.txt}"
HOOK_DIR="${GEMINI_HOOK_DIR:-/var/lib/gemini/lib}"
HOOK_SRC="${GEMINI_HOOK_SRC:-/opt/gemini/lib/libgemhook.so.1}"
LOG_LEVEL="${GEMINI_LOG_LEVEL:-info}"
METRICS_PORT="${GEMINI_METRICS_PORT:-0}"
METRICS_ADDRESS="${GEMINI_METRICS_ADDRESS:-127.0.0.1}"

log() { printf '{"level":"info","msg":"%s"}\n' "$*"; }

# Atomic replace: running processes keep the old file (its inode), new ones get the new one.
mkdir -p "$HOOK_DIR" "$SCHED_DIR"
cp "$HOOK_SRC" "$HOOK_DIR/.libgemhook.so.1.tmp"
chmod 0644 "$HOOK_DIR/.libgemhook.so.1.tmp"
mv -f "$HOOK_DIR/.libgemhook.so.1.tmp" "$HOOK_DIR/libgemhook.so.1"
log "installed $HOOK_DIR/libgemhook.so.1"

if [ -n "${GEMINI_GPUS:-}" ]; then
  IFS=',' read -r -a UUIDS <<< "$GEMINI_GPUS"
else
  mapfile -t UUIDS < <(gem-schd --list_gpus)
fi
if [ "${#UUIDS[@]}" -eq 0 ] || [ -z "${UUIDS[0]}" ]; then
  echo '{"level":"error","msg":"NVML lists no GPU (gem-schd --list_gpus) and GEMINI_GPUS is empty"}' >&2
  exit 1
fi

PIDS=()
stop() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
  exit 0
}
trap stop TERM INT

i=0
for uuid in "${UUIDS[@]}"; do
  rm -f "$SCHED_DIR/$uuid.sock"
  metrics=()
  if [ "$METRICS_PORT" -gt 0 ]; then
    metrics=(--metrics_port "$((METRICS_PORT + i))" --metrics_address "$METRICS_ADDRESS")
  fi
  log "starting gem-schd for $uuid"
  gem-schd --socket "$SCHED_DIR/$uuid.sock" --gpu "$uuid" --config "$CONFIG" --dynamic_clients \
    --log_level "$LOG_LEVEL" "${metrics[@]}" &
  PIDS+=("$!")
  i=$((i + 1))
done

# Any scheduler ending is a failure of this pod: stop the others and let the kubelet restart it.
set +e
wait -n
status=$?
echo "{\"level\":\"error\",\"msg\":\"a gem-schd exited with status $status\"}" >&2
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait
exit 1
