#include "mem_figures.h"

#include <algorithm>

namespace gem::hook {

MemFigures limited_mem_info(uint64_t limit, uint64_t left, uint64_t real_free) {
  return {limit, std::min(left, real_free)};
}

uint64_t limited_total_mem(uint64_t limit, uint64_t real_total) { return std::min(limit, real_total); }

NvmlFigures limited_nvml_info(uint64_t limit, uint64_t left, uint64_t nvml_free) {
  NvmlFigures f;
  f.total = limit;
  f.free = std::min(left, nvml_free);
  f.used = limit - std::min(limit, f.free);
  return f;
}

unsigned int legacy_bytes(uint64_t bytes) { return static_cast<unsigned int>(std::min<uint64_t>(bytes, 0xffffffffu)); }

}  // namespace gem::hook
