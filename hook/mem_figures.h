// The memory views under GPU_MEM (docs/memory.md, "What programs see"): what cuMemGetInfo,
// cuDeviceTotalMem and NVML's nvmlDeviceGetMemoryInfo report to a client with a limit, from the
// limit and what the process may still allocate (`left`, LeaseSync::free()) and the real figures.
// The wrappers (mem_views.cpp, nvml_hooks.cpp) apply these only when a limit applies; without
// one every figure is the driver's or NVML's own.
// Pure: no driver calls, no state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gem::hook {

/// Total and free bytes as cuMemGetInfo_v2 reports them.
struct MemFigures {
  uint64_t total = 0;
  uint64_t free = 0;
};
/// Under a limit: total = the limit, free = what is left of it, never more than the GPU really has
/// free (`real_free`).
MemFigures limited_mem_info(uint64_t limit, uint64_t left, uint64_t real_free);

/// cuDeviceTotalMem under a limit: the limit, never more than the device has.
uint64_t limited_total_mem(uint64_t limit, uint64_t real_total);

/// Total, free and used bytes as nvmlDeviceGetMemoryInfo (and _v2) report them.
struct NvmlFigures {
  uint64_t total = 0;
  uint64_t free = 0;
  uint64_t used = 0;
};
/// Under a limit: total = the limit, free = what is left of it (never more than NVML says is free),
/// used = the rest of the limit. (The _v2 form also reports 0 reserved: the driver's reservation is
/// not the client's to see; nvml_hooks.cpp.)
NvmlFigures limited_nvml_info(uint64_t limit, uint64_t left, uint64_t nvml_free);

/// A byte count for the legacy 32-bit forms (cuMemGetInfo, cuDeviceTotalMem): at most 4 GiB - 1.
unsigned int legacy_bytes(uint64_t bytes);

}  // namespace gem::hook
