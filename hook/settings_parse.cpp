// parse_settings(): the environment -> Settings, with a named problem for each value it ignores.
// Kept apart from settings.cpp (which logs and calls the driver) so unit tests run it on a map.
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "gem/secret.h"
#include "settings.h"

namespace gem::hook {

namespace {

class Env {
 public:
  Env(const EnvLookup& lookup, std::vector<std::string>* problems) : lookup_(lookup), problems_(problems) {}

  /// The value, or `fallback` when unset or empty.
  std::string str(const char* name, const char* fallback) const {
    const char* v = lookup_(name);
    return v != nullptr && *v != '\0' ? v : fallback;
  }
  bool set(const char* name) const { return !str(name, "").empty(); }

  /// An integer in [lo, hi]; otherwise `fallback`, and the problem named.
  int integer(const char* name, int fallback, long lo, long hi) const {
    const std::string v = str(name, "");
    if (v.empty()) return fallback;
    errno = 0;
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    // strtol skips leading white space: " 64" is as unusable as "64 ".
    if (std::isspace(static_cast<unsigned char>(v[0])) || errno != 0 || end != v.c_str() + v.size() || n < lo ||
        n > hi) {
      problem(name, v, "an integer from " + std::to_string(lo) + " to " + std::to_string(hi), std::to_string(fallback));
      return fallback;
    }
    return static_cast<int>(n);
  }

  /// "0" or "1"; otherwise `fallback` (-1 when the variable has a third state: unset).
  int boolean(const char* name, int fallback) const {
    const std::string v = str(name, "");
    if (v.empty()) return fallback;
    if (v == "0" || v == "1") return v == "1";
    problem(name, v, "0 or 1", fallback < 0 ? "unset" : std::to_string(fallback));
    return fallback;
  }

  void problem(const char* name, const std::string& value, const std::string& want, const std::string& used) const {
    problems_->push_back(std::string(name) + "='" + value + "': not " + want + "; using " + used);
  }
  void note(std::string line) const { problems_->push_back(std::move(line)); }

 private:
  const EnvLookup& lookup_;
  std::vector<std::string>* problems_;
};

Micros idle_us(const Env& env) {
  const std::string v = env.str("GEMINI_IDLE_MS", "");
  if (v.empty()) return kDefaultIdleUs;
  errno = 0;
  char* end = nullptr;
  const double ms = std::strtod(v.c_str(), &end);
  // strtod also reads white space first, hexadecimal ("0x10": 16) and "inf": none is a decimal
  // number. A value under 1 µs would be 0, which the range excludes.
  if (v.find_first_not_of("0123456789.eE+-") != std::string::npos || errno != 0 || end != v.c_str() + v.size() ||
      !(ms > 0 && ms <= kMaxIdleMs) || ms * 1000 < 1) {
    env.problem("GEMINI_IDLE_MS", v, "a decimal number of ms above 0 and at most 10000",
                std::to_string(kDefaultIdleUs / 1000) + " ms");
    return kDefaultIdleUs;
  }
  return static_cast<Micros>(ms * 1000);
}

}  // namespace

Settings parse_settings(const EnvLookup& lookup, std::vector<std::string>* problems) {
  const Env env(lookup, problems);
  Settings s;
  s.client = env.str("POD_NAME", "");
  s.enabled = !s.client.empty();
  std::string err;
  const std::string sock = env.str("POD_MANAGER_SOCKET", "");
  const std::string addr =
      sock.empty() ? env.str("POD_MANAGER_IP", "127.0.0.1") + ":" + env.str("POD_MANAGER_PORT", "50052") : sock;
  if (!net::parse_endpoint(addr, &s.pod_manager, &err)) {
    env.note("pod manager address '" + addr + "': " + err + "; launches run unthrottled");
    s.enabled = false;
  }
  s.fail_closed = env.boolean("GEMINI_FAIL_CLOSED", 0) == 1;
  s.idle_us = idle_us(env);
  s.max_inflight = env.integer("GEMINI_MAX_INFLIGHT", kDefaultMaxInflight, 2, 1 << 20);
  s.pmgr_timeout_ms = env.integer("GEMINI_PMGR_TIMEOUT_MS", kDefaultPmgrTimeoutMs, kMinPmgrTimeoutMs, kMaxPmgrTimeoutMs);
  const std::string secret_file = env.str("GEMINI_SECRET_FILE", "");
  if (!secret_file.empty() && !read_secret_file(secret_file, &s.secret, &err, "GEMINI_SECRET_FILE")) {
    env.note(err + "; the pod manager will refuse this process");
  }
  s.empty_cache = env.boolean("GEMINI_EMPTY_CACHE", -1);
  s.empty_cache_ms = env.integer("GEMINI_EMPTY_CACHE_MS", kDefaultEmptyCacheMs, 0, kMaxEmptyCacheMs);
  s.print_stats = env.boolean("GEMINI_STATS", 0) == 1;
  s.stats_file = env.str("GEMINI_STATS_FILE", "");
  return s;
}

}  // namespace gem::hook
