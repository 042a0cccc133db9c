#include "settings.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>

namespace gemwh {

bool parse_share(std::string_view text, double* out) {
  if (text.empty() || text.size() > 32) return false;
  bool dot = false;
  size_t digits = 0;
  for (char c : text) {
    if (c == '.') {
      if (dot) return false;
      dot = true;
    } else if (c >= '0' && c <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  if (digits == 0) return false;
  double v = std::stod(std::string(text));
  if (!(v >= 0.0 && v <= 1.0)) return false;
  *out = v;
  return true;
}

bool valid_size(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t d = uint64_t(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    value = value * 10 + d;
    ++i;
  }
  if (i == 0) return false;
  std::string_view suffix = text.substr(i);
  static const struct {
    const char* name;
    uint64_t mult;
  } kSuffixes[] = {
      {"", 1ULL},
      {"K", 1000ULL}, {"M", 1000000ULL}, {"G", 1000000000ULL}, {"T", 1000000000000ULL},
      {"KB", 1000ULL}, {"MB", 1000000ULL}, {"GB", 1000000000ULL}, {"TB", 1000000000000ULL},
      {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}, {"TiB", 1ULL << 40},
  };
  for (const auto& s : kSuffixes) {
    if (suffix == s.name) return value <= std::numeric_limits<uint64_t>::max() / s.mult;
  }
  return false;
}

namespace {
// A latency target as resource-config.txt's latency=MS takes it: a plain decimal (digits with at most
// one '.'), > 0 and at most 60000 ms.
bool valid_latency(const std::string& v) {
  if (v.empty() || v.size() > 16 || v.find_first_not_of("0123456789.") != std::string::npos ||
      std::count(v.begin(), v.end(), '.') > 1 || v == ".") {
    return false;
  }
  const double ms = std::strtod(v.c_str(), nullptr);
  return ms > 0 && ms <= 60000;
}

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
  if (present) out->latency_ms = v;
  if (!out->latency_ms.empty() && !valid_latency(out->latency_ms)) {
    *err = std::string("annotation ") + kAnnLatency + "=\"" + out->latency_ms +
           "\" is not a number of milliseconds in (0, 60000] (e.g. \"5\")";
    return false;
  }
  if (out->unified_memory != "on" && out->unified_memory != "off") {
    *err = std::string("annotation ") + kAnnUnifiedMemory + "=\"" + out->unified_memory + "\" must be \"on\" or \"off\"";
    return false;
  }

  double request = 0, limit = 0;
  if (!parse_share(out->request, &request)) {
    *err = std::string("annotation ") + kAnnRequest + "=\"" + out->request +
           "\" is not a share in [0,1] (e.g. \"0.3\")";
    return false;
  }
  if (!parse_share(out->limit, &limit)) {
    *err = std::string("annotation ") + kAnnLimit + "=\"" + out->limit +
           "\" is not a share in [0,1] (e.g. \"0.6\")";
    return false;
  }
  if (request > limit) {
    *err = std::string("annotation ") + kAnnRequest + "=" + out->request + " exceeds " + kAnnLimit +
           "=" + out->limit;
    return false;
  }
  if (!valid_size(out->gpu_memory)) {
    *err = std::string("annotation ") + kAnnGpuMemory + "=\"" + out->gpu_memory +
           "\" is not a size (bytes, or with K/M/G/T, KB/MB/GB/TB, KiB/MiB/GiB/TiB)";
    return false;
  }
  return true;
}

}  // namespace gemwh
