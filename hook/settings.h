// The hook's settings, read once from the environment (docs/interfaces.md lists them).
#pragma once

#include <string>

#include "gem/net.h"

namespace gem::hook {

struct Settings {
  bool enabled = false;        // POD_NAME set: gate launches; else pass everything through
  std::string client;          // POD_NAME
  net::Endpoint pod_manager;   // POD_MANAGER_SOCKET, or POD_MANAGER_IP:POD_MANAGER_PORT
  bool fail_closed = false;    // GEMINI_FAIL_CLOSED=1
  int idle_ms = 10;            // GEMINI_IDLE_MS
  int max_inflight = 128;      // GEMINI_MAX_INFLIGHT: launches queued on the GPU at most (about)
  int pmgr_timeout_ms = 800;   // GEMINI_PMGR_TIMEOUT_MS: silence from gem-pmgr that means it hung
  std::string secret;          // first line of GEMINI_SECRET_FILE: the client's shared secret
  bool print_stats = false;    // GEMINI_STATS=1
  std::string stats_file;      // GEMINI_STATS_FILE
};

/// Parsed on first use; never changes afterwards. Thread-safe.
const Settings& settings();

}  // namespace gem::hook
