#include "settings.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gem/log.h"
#include "gem/protocol.h"
#include "gem/secret.h"
#include "symbols.h"

namespace gem::hook {

namespace {

std::string env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

Settings load() {
  Settings s;
  if (std::getenv("GEMINI_LOG_LEVEL") == nullptr) log::set_level(log::Level::kWarn);
  log::set_program("gemhook");
  s.client = env("POD_NAME", "");
  s.enabled = !s.client.empty();
  std::string err;
  const std::string sock = env("POD_MANAGER_SOCKET", "");
  const std::string addr = sock.empty()
                               ? env("POD_MANAGER_IP", "127.0.0.1") + ":" + env("POD_MANAGER_PORT", "50052")
                               : sock;
  if (!net::parse_endpoint(addr, &s.pod_manager, &err)) {
    LOG_ERROR("pod manager address '%s': %s; launches run unthrottled", addr.c_str(), err.c_str());
    s.enabled = false;
  }
  s.fail_closed = env("GEMINI_FAIL_CLOSED", "0") == "1";
  // Decimal ms (e.g. "0.5"); out of (0, 10000] or not a number: the default.
  const std::string idle = env("GEMINI_IDLE_MS", "");
  char* end = nullptr;
  const double idle_ms = idle.empty() ? 0 : std::strtod(idle.c_str(), &end);
  s.idle_us = (!idle.empty() && end == idle.c_str() + idle.size() && idle_ms > 0 && idle_ms <= 10000)
                  ? static_cast<Micros>(idle_ms * 1000)
                  : kDefaultIdleUs;
  s.max_inflight = std::atoi(env("GEMINI_MAX_INFLIGHT", "").c_str());
  if (s.max_inflight < 2) s.max_inflight = kDefaultMaxInflight;
  s.pmgr_timeout_ms = std::atoi(env("GEMINI_PMGR_TIMEOUT_MS", "").c_str());
  if (s.pmgr_timeout_ms < 50 || s.pmgr_timeout_ms > 60000) s.pmgr_timeout_ms = kDefaultPmgrTimeoutMs;
  const std::string secret_file = env("GEMINI_SECRET_FILE", "");
  if (!secret_file.empty() && !read_secret_file(secret_file, &s.secret, &err, "GEMINI_SECRET_FILE")) {
    LOG_ERROR("%s; the pod manager will refuse this process", err.c_str());
  }
  const std::string empty = env("GEMINI_EMPTY_CACHE", "");
  s.empty_cache = empty == "1" ? 1 : empty == "0" ? 0 : -1;
  s.empty_cache_ms = std::atoi(env("GEMINI_EMPTY_CACHE_MS", "50").c_str());
  if (s.empty_cache_ms < 0 || s.empty_cache_ms > 60000) s.empty_cache_ms = 50;
  s.print_stats = env("GEMINI_STATS", "0") == "1";
  s.stats_file = env("GEMINI_STATS_FILE", "");
  return s;
}

}  // namespace

const Settings& settings() {
  static const Settings s = load();
  return s;
}

std::string device_uuid(CUdevice device) {
  CUuuid u;
  if (real::cuDeviceGetUuid_v2 == nullptr || real::cuDeviceGetUuid_v2(&u, device) != CUDA_SUCCESS) return "";
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char s[64];
  std::snprintf(s, sizeof s,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

}  // namespace gem::hook
