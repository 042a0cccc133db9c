#include "settings.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gem/log.h"
#include "symbols.h"

namespace gem::hook {

namespace {

Settings load() {
  if (std::getenv("GEMINI_LOG_LEVEL") == nullptr) log::set_level(log::Level::kWarn);
  log::set_program("gemhook");
  std::vector<std::string> problems;
  Settings s = parse_settings([](const char* name) -> const char* { return std::getenv(name); }, &problems);
  for (const std::string& p : problems) LOG_ERROR("%s", p.c_str());
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
