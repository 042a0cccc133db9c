#include "access_log.h"

#include <sys/time.h>

#include <ctime>

#include <nlohmann/json.hpp>

namespace gemwh {
namespace {
std::string now_rfc3339() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", int(tv.tv_usec / 1000));
  return buf;
}
}  // namespace

std::string format_access(const AccessRecord& rec) {
  nlohmann::ordered_json j;
  j["ts"] = now_rfc3339();
  j["level"] = "info";
  j["msg"] = "access";
  j["remote"] = rec.remote;
  j["method"] = rec.method;
  j["path"] = rec.path;
  j["status"] = rec.status;
  j["bytes_in"] = rec.bytes_in;
  j["bytes_out"] = rec.bytes_out;
  if (rec.dur_us >= 0) j["dur_us"] = rec.dur_us;
  if (const AdmissionResult* r = rec.review) {
    auto put = [&](const char* key, const std::string& v) {
      if (!v.empty()) j[key] = v;
    };
    put("uid", r->uid);
    put("kind", r->kind);
    put("operation", r->operation);
    put("namespace", r->ns);
    put("name", r->name);
    put("decision", r->decision);
    if (r->patch_ops) j["patch_ops"] = r->patch_ops;
    put("reason", r->reason);
  }
  // Replace invalid UTF-8 (names come from the request) instead of throwing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string format_message(const char* level, const std::string& text) {
  nlohmann::ordered_json j;
  j["ts"] = now_rfc3339();
  j["level"] = level;
  j["msg"] = text;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void write_line(std::FILE* out, const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

}  // namespace gemwh
