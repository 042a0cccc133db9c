#include "settings.h"

#include <algorithm>
#include <cmath>
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

namespace {

// A Kubernetes quantity that must be a whole, non-negative number (extended resources are counted
// in integers): digits, optionally '.' and digits, then nothing, a decimal SI suffix (k M G T P E),
// a binary one (Ki Mi Gi Ti Pi Ei) or an exponent (e3, E3). At most 2^53 (any GPU's count fits).
bool whole_quantity(const nlohmann::json& q, int64_t* out) {
  constexpr unsigned __int128 kMax = uint64_t(1) << 53;
  if (q.is_number_unsigned() || q.is_number_integer()) {
    int64_t v = q.get<int64_t>();
    if (v < 0 || uint64_t(v) > kMax) return false;
    *out = v;
    return true;
  }
  if (!q.is_string()) return false;
  const std::string s = q.get<std::string>();
  size_t i = 0;
  unsigned __int128 mant = 0;  // all digits, the fraction's included
  int frac = 0, digits = 0;
  auto digit_run = [&](bool fraction) {
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (mant > kMax * 1000) return false;  // far beyond anything accepted
      mant = mant * 10 + unsigned(s[i] - '0');
      ++digits;
      if (fraction) ++frac;
      ++i;
    }
    return true;
  };
  if (!digit_run(false)) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit_run(true)) return false;
  }
  if (digits == 0) return false;
  const std::string suffix = s.substr(i);
  unsigned __int128 mult = 1;
  int pow10 = 0;
  static const std::pair<const char*, int> kDecimal[] = {{"", 0}, {"k", 3}, {"M", 6}, {"G", 9},
                                                         {"T", 12}, {"P", 15}, {"E", 18}};
  static const std::pair<const char*, int> kBinary[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30},
                                                        {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  bool known = false;
  for (const auto& [sfx, p] : kDecimal) {
    if (suffix == sfx) pow10 = p, known = true;
  }
  for (const auto& [sfx, p] : kBinary) {
    if (suffix == sfx) mult = static_cast<unsigned __int128>(1) << p, known = true;
  }
  if (!known && suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E') &&
      suffix.size() <= 4 && std::all_of(suffix.begin() + 1, suffix.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    pow10 = std::stoi(suffix.substr(1));
    known = true;
  }
  if (!known || pow10 > 18) return false;
  // value = mant * mult * 10^pow10 / 10^frac, which must be whole.
  unsigned __int128 num = mant * mult;
  int shift = pow10 - frac;
  for (; shift > 0; --shift) {
    if (num > kMax) return false;
    num *= 10;
  }
  for (; shift < 0; ++shift) {
    if (num % 10 != 0) return false;
    num /= 10;
  }
  if (num > kMax) return false;
  *out = int64_t(num);
  return true;
}

const nlohmann::json* find_key(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

std::string share_text(int64_t units) {
  if (units <= 0) return "0";
  if (units >= kShareUnitsPerGpu) return std::to_string(units / kShareUnitsPerGpu);  // only 1 is accepted
  std::string frac = std::to_string(units);
  frac.insert(0, size_t(2 - std::min<size_t>(2, frac.size())), '0');  // kShareUnitsPerGpu = 100: 2 digits
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return "0." + frac;
}

bool resource_ask(const nlohmann::json& spec, ResourceAsk* out, std::string* err) {
  *out = ResourceAsk();
  int64_t sum[2] = {0, 0}, init_max[2] = {0, 0};
  const char* const kRes[2] = {kResShare, kResMemory};
  for (const char* list : {"containers", "initContainers"}) {
    const nlohmann::json* cs = find_key(spec, list);
    if (!cs || !cs->is_array()) continue;
    const bool init = std::string(list) == "initContainers";
    for (const auto& c : *cs) {
      const nlohmann::json* res = find_key(c, "resources");
      if (!res) continue;
      const nlohmann::json* limits = find_key(*res, "limits");
      const nlohmann::json* requests = find_key(*res, "requests");
      for (int k = 0; k < 2; ++k) {
        const char* kind = "limits";
        const nlohmann::json* q = limits ? find_key(*limits, kRes[k]) : nullptr;
        if (!q && requests) q = find_key(*requests, kRes[k]), kind = "requests";
        if (!q) continue;
        int64_t v = 0;
        if (!whole_quantity(*q, &v)) {
          const nlohmann::json* name = find_key(c, "name");
          *err = std::string(init ? "init container " : "container ") +
                 (name && name->is_string() ? name->get<std::string>() : std::string("?")) + ": resources." +
                 kind + "[" + kRes[k] + "]=" + q->dump() + " is not a whole number";
          return false;
        }
        if (init) {
          init_max[k] = std::max(init_max[k], v);
        } else {
          sum[k] += v;
        }
      }
    }
  }
  int64_t share = std::max(sum[0], init_max[0]), memory = std::max(sum[1], init_max[1]);
  if (share > kShareUnitsPerGpu) {
    *err = std::string("the pod asks for ") + kResShare + "=" + std::to_string(share) + ", more than one GPU (" +
           std::to_string(kShareUnitsPerGpu) + ")";
    return false;
  }
  if (share > 0) out->share = share;
  if (memory > 0) out->memory = memory;
  return true;
}

bool settings_for_pod(const nlohmann::json& annotations, const ResourceAsk& ask, const SharingSettings& defaults,
                      SharingSettings* out, std::string* err, std::vector<std::string>* warnings,
                      int64_t memory_unit_mib) {
  SharingSettings base = defaults;
  auto annotated = [&](const char* key) -> const nlohmann::json* { return find_key(annotations, key); };
  if (ask.share >= 0) {
    base.request = share_text(ask.share);
    const double asked = double(ask.share) / double(kShareUnitsPerGpu);
    double limit = 0;
    if (!gem::parse_share(base.limit, &limit) || limit < asked) base.limit = base.request;
    const nlohmann::json* ann_limit = annotated(kAnnLimit);
    double ann = 0;
    if (!annotated(kAnnRequest) && ann_limit && ann_limit->is_string() &&
        gem::parse_share(ann_limit->get<std::string>(), &ann) && ann < asked) {
      *err = std::string("annotation ") + kAnnLimit + "=" + ann_limit->get<std::string>() + " is below the pod's " +
             kResShare + "=" + std::to_string(ask.share) + " (REQUEST " + base.request + ")";
      return false;
    }
  }
  if (ask.memory >= 0) {
    // GPU_MEM is bytes in 64 bits: at most 2^44 MiB.
    constexpr int64_t kMaxMiB = int64_t(1) << 44;
    if (memory_unit_mib < 1 || memory_unit_mib > kMaxMemoryUnitMiB || ask.memory > kMaxMiB / memory_unit_mib) {
      *err = std::string("the pod asks for ") + kResMemory + "=" + std::to_string(ask.memory) + " units of " +
             std::to_string(memory_unit_mib) + " MiB, more than GPU_MEM can hold";
      return false;
    }
    base.gpu_memory = std::to_string(ask.memory * memory_unit_mib) + kMemoryUnit;
  }
  if (!settings_from_annotations(annotations, base, out, err)) return false;
  if (ask.share >= 0 && annotated(kAnnRequest)) {
    double a = 0;
    if (gem::parse_share(out->request, &a) && std::abs(a * kShareUnitsPerGpu - double(ask.share)) > 1e-6) {
      warnings->push_back(std::string("gemini: annotation ") + kAnnRequest + "=" + out->request +
                          " overrides the REQUEST " + base.request + " of " + kResShare + "=" +
                          std::to_string(ask.share) + " that kube-scheduler counted");
    }
  }
  if (ask.memory >= 0 && annotated(kAnnGpuMemory)) {
    uint64_t a = 0, b = 0;
    if (gem::parse_size(out->gpu_memory, &a) && gem::parse_size(base.gpu_memory, &b) && a != b) {
      warnings->push_back(std::string("gemini: annotation ") + kAnnGpuMemory + "=" + out->gpu_memory +
                          " overrides the " + base.gpu_memory + " of " + kResMemory + "=" +
                          std::to_string(ask.memory) + " that kube-scheduler counted");
    }
  }
  return true;
}

}  // namespace gemwh
