// The hook's per-process settings, read once from the environment (docs/interfaces.md lists them),
// and the name a per-device session gives its GPU.
//
// Everything here is per process and shared: each per-device session of the process (a gate's
// token worker, and any other session to the pod manager for a device) reads settings() where it
// needs them and keeps no copy. Thread-safety: settings() is parsed on first use and never changes
// afterwards; device_uuid() is thread-safe.
#pragma once

#include <string>

#include "driver_api.h"
#include "gem/clock.h"
#include "gem/net.h"

namespace gem::hook {

/// GEMINI_IDLE_MS's default, µs: how long after its GPU work is done a holder waits for its next
/// launch before it gives the token back (docs/scheduling.md, "Work conservation").
constexpr Micros kDefaultIdleUs = 2000;
/// GEMINI_PMGR_TIMEOUT_MS's default, ms: silence from gem-pmgr while waiting that means it hung.
constexpr int kDefaultPmgrTimeoutMs = 800;
/// GEMINI_MAX_INFLIGHT's default: launches queued on the GPU at most (about; the gate paces in
/// rounds of a power of two below half of it).
constexpr int kDefaultMaxInflight = 128;

struct Settings {
  bool enabled = false;        // POD_NAME set: gate launches; else pass everything through

  // The client and its pod manager: how every per-device session of the process says Hello, and
  // what it does while the pod manager or scheduler cannot be reached.
  std::string client;          // POD_NAME
  net::Endpoint pod_manager;   // POD_MANAGER_SOCKET, or POD_MANAGER_IP:POD_MANAGER_PORT
  std::string secret;          // first line of GEMINI_SECRET_FILE: the client's shared secret
  int pmgr_timeout_ms = kDefaultPmgrTimeoutMs; // GEMINI_PMGR_TIMEOUT_MS: silence from gem-pmgr that means it hung
  bool fail_closed = false;    // GEMINI_FAIL_CLOSED=1: wait instead of running unthrottled

  // The launch gate.
  Micros idle_us = kDefaultIdleUs;  // GEMINI_IDLE_MS (decimal ms), in µs: see token_worker.h
  int max_inflight = kDefaultMaxInflight; // GEMINI_MAX_INFLIGHT: launches queued on the GPU at most (about)

  // Emptying PyTorch's cache after idle releases (hook/cache_emptier.h).
  int empty_cache = -1;        // GEMINI_EMPTY_CACHE: 1 on, 0 off, unset (-1): on in unified-memory mode
  int empty_cache_ms = 50;     // GEMINI_EMPTY_CACHE_MS: time without the token before emptying

  // The launch counters' report at exit (hook/stats.h).
  bool print_stats = false;    // GEMINI_STATS=1
  std::string stats_file;      // GEMINI_STATS_FILE
};

/// Parsed on first use; never changes afterwards. Thread-safe.
const Settings& settings();

/// The UUID of CUDA device `device` as a per-device session names it in its Hello
/// ("GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi -L prints it); empty when the driver
/// cannot say. Calls the driver (cuDeviceGetUuid_v2).
std::string device_uuid(CUdevice device);

}  // namespace gem::hook
