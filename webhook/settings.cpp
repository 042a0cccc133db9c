#include "settings.h"

#include <cstdint>

#include "gem/config.h"

namespace gemwh {

namespace {
// Fetches annotation `key` as a string; *present false when absent. Non-string values are errors.
bool get_annotation(const nlohmann::json& annotations, const char* key, std::string* value,
                    bool* present, std::string* err) {
  *present = false;
  if (!annotations.is_object()) return true;
  auto it = annotations.find(key);
  if (it == annotations.end()) return true;
  if (!it->is_string()) {
    *err = std::string("annotation ") + key + " must be a string";
    return false;
  }
  *value = it->get<std::string>();
  *present = true;
  return true;
}
}  // namespace

bool settings_from_annotations(const nlohmann::json& annotations, const SharingSettings& defaults,
                               SharingSettings* out, std::string* err) {
  *out = defaults;
  bool present = false;
  std::string v;
  if (!get_annotation(annotations, kAnnRequest, &v, &present, err)) return false;
  if (present) out->request = v;
  if (!get_annotation(annotations, kAnnLimit, &v, &present, err)) return false;
  if (present) out->limit = v;
  if (!get_annotation(annotations, kAnnGpuMemory, &v, &present, err)) return false;
  if (present) out->gpu_memory = v;
  if (!get_annotation(annotations, kAnnUnifiedMemory, &v, &present, err)) return false;
  if (present) out->unified_memory = v;
  if (!get_annotation(annotations, kAnnLatency, &v, &present, err)) return false;
  const bool latency_given = present;  // given empty: a mistake, not "no latency client"
  if (present) out->latency_ms = v;
  auto bad = [&](const char* key, const std::string& why) {
    *err = std::string("annotation ") + key + ": " + why;
    return false;
  };
  std::string why;
  uint32_t latency_us = 0;
  if ((latency_given || !out->latency_ms.empty()) && !gem::parse_latency_ms(out->latency_ms, &latency_us, &why)) {
    return bad(kAnnLatency, why + " (e.g. \"5\")");
  }
  if (out->unified_memory != "on" && out->unified_memory != "off") {
    *err = std::string("annotation ") + kAnnUnifiedMemory + "=\"" + out->unified_memory + "\" must be \"on\" or \"off\"";
    return false;
  }
  double request = 0, limit = 0;
  if (!gem::parse_share(out->request, &request, &why)) return bad(kAnnRequest, why + " (e.g. \"0.3\")");
  if (!gem::parse_share(out->limit, &limit, &why)) return bad(kAnnLimit, why + " (e.g. \"0.6\")");
  if (!gem::admission_error(request, limit, 0).empty()) {  // with shares in [0,1]: request > limit
    *err = std::string("annotation ") + kAnnRequest + "=" + out->request + " exceeds " + kAnnLimit +
           "=" + out->limit;
    return false;
  }
  uint64_t bytes = 0;
  if (!gem::parse_size(out->gpu_memory, &bytes, &why)) return bad(kAnnGpuMemory, why + "; 0 = no limit");
  return true;
}

}  // namespace gemwh
