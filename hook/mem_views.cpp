// The memory views under GPU_MEM (docs/memory.md, "What programs see"): cuMemGetInfo and
// cuDeviceTotalMem report the client's limit and what is left of it; without a limit, the driver's.
#include <algorithm>

#include "mem_common.h"
#include "mem_hooks.h"
#include "mem_tracker.h"
#include "symbols.h"

namespace gem::hook {

namespace {

// The memory figures the client sees: (min(real free, what is left of its limit), limit) when a
// limit applies, the driver's own otherwise. Never more free than the GPU really has.
bool limited_view(CUdevice dev, size_t real_free, size_t* free, size_t* total) {
  uint64_t limit = 0, left = 0;
  if (!MemTracker::active()) return false;
  settle_pools(dev);
  if (!T().view(dev, &limit, &left)) return false;
  *total = static_cast<size_t>(limit);
  *free = static_cast<size_t>(std::min<uint64_t>(left, real_free));
  return true;
}

size_t clamp_uint(size_t v) { return std::min<size_t>(v, 0xffffffffu); }

}  // namespace

CUresult on_cuMemGetInfo_v2(size_t* free, size_t* total) {
  const CUresult r = real::cuMemGetInfo_v2(free, total);
  CUdevice dev = 0;
  if (r != CUDA_SUCCESS || free == nullptr || total == nullptr || !current_device(&dev)) return r;
  limited_view(dev, *free, free, total);
  return r;
}

CUresult on_cuMemGetInfo(unsigned int* free, unsigned int* total) {
  size_t f = 0, t = 0;
  const CUresult r = on_cuMemGetInfo_v2(&f, &t);
  if (r == CUDA_SUCCESS && free != nullptr && total != nullptr) {
    *free = static_cast<unsigned int>(clamp_uint(f));
    *total = static_cast<unsigned int>(clamp_uint(t));
    return r;
  }
  return r == CUDA_SUCCESS ? real::cuMemGetInfo(free, total) : r;
}

CUresult on_cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  const CUresult r = real::cuDeviceTotalMem_v2(bytes, dev);
  uint64_t limit = 0, left = 0;
  if (r == CUDA_SUCCESS && bytes != nullptr && MemTracker::active() && T().view(dev, &limit, &left)) {
    *bytes = static_cast<size_t>(std::min<uint64_t>(limit, *bytes));
  }
  return r;
}

CUresult on_cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) {
  size_t b = 0;
  const CUresult r = on_cuDeviceTotalMem_v2(&b, dev);
  if (r == CUDA_SUCCESS && bytes != nullptr) *bytes = static_cast<unsigned int>(clamp_uint(b));
  return r;
}

}  // namespace gem::hook
