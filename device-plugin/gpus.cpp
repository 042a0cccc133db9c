// Device IDs and GPU discovery: see gpus.h.
#include "gpus.h"

#include <charconv>
#include <cinttypes>
#include <cstdio>

#include "../scheduler/nvml_probe.h"

namespace gem::dp {

namespace {
constexpr const char* kShareTag = "-share-";
constexpr const char* kMemTag = "-mem-";

// 1 to 9 decimal digits, nothing else (no sign, no space); false otherwise.
bool parse_number(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 9) return false;
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && ptr == end;
}
}  // namespace

const char* resource_name(Kind kind) { return kind == Kind::kShare ? kShareResource : kMemoryResource; }

std::string device_id(const std::string& uuid, Kind kind, uint64_t n) {
  char num[24];
  std::snprintf(num, sizeof num, kind == Kind::kShare ? "%02" PRIu64 : "%" PRIu64, n);
  return uuid + (kind == Kind::kShare ? kShareTag : kMemTag) + num;
}

bool parse_device_id(const std::string& id, DeviceRef* out) {
  for (Kind kind : {Kind::kShare, Kind::kMemory}) {
    const std::string tag = kind == Kind::kShare ? kShareTag : kMemTag;
    const size_t at = id.rfind(tag);
    if (at == std::string::npos || at == 0) continue;
    uint64_t n = 0;
    const std::string digits = id.substr(at + tag.size());
    if (!parse_number(digits, &n)) continue;
    if (kind == Kind::kShare && (digits.size() != 2 || n >= kSharesPerGpu)) continue;
    if (device_id(id.substr(0, at), kind, n) != id) continue;  // no leading zeros for memory
    *out = {id.substr(0, at), kind, n};
    return true;
  }
  return false;
}

uint64_t memory_devices(uint64_t memory_mib, uint64_t unit_mib) {
  return unit_mib == 0 ? 0 : memory_mib / unit_mib;
}

bool parse_fake_gpus(const std::string& spec, std::vector<Gpu>* out, std::string* why) {
  const size_t colon = spec.find(':');
  uint64_t n = 0, mib = 0;
  if (colon == std::string::npos || !parse_number(spec.substr(0, colon), &n) ||
      !parse_number(spec.substr(colon + 1), &mib) || n < 1 || n > 64 || mib < 1) {
    *why = "--fake_gpus: expected N:MiB with 1 <= N <= 64 and MiB >= 1, got '" + spec + "'";
    return false;
  }
  out->clear();
  for (uint64_t i = 0; i < n; ++i) {
    char uuid[48];
    std::snprintf(uuid, sizeof uuid, "GPU-fake-0000-0000-0000-%012" PRIu64, i);
    out->push_back({uuid, static_cast<unsigned>(i), mib});
  }
  return true;
}

bool discover_gpus(const std::string& library, std::vector<Gpu>* out, std::string* why) {
  gem::sched::Nvml nvml;
  std::vector<std::string> uuids;
  if (!nvml.open(library, why) || !nvml.uuids(&uuids, why)) return false;
  if (uuids.empty()) {
    *why = "NVML sees no GPU";
    return false;
  }
  out->clear();
  for (size_t i = 0; i < uuids.size(); ++i) {
    nvmlDevice_t dev = nullptr;
    gem::sched::NvmlMemory mem;
    if (!nvml.device(uuids[i], &dev, why) || !nvml.memory(dev, &mem, why)) return false;
    out->push_back({uuids[i], static_cast<unsigned>(i), mem.total >> 20});
  }
  return true;
}

}  // namespace gem::dp
