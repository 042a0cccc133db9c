// The memory views under GPU_MEM (docs/memory.md, "What programs see"): cuMemGetInfo and
// cuDeviceTotalMem report the client's limit and what is left of it (mem_figures.h); without a
// limit, the driver's.
#include <algorithm>

#include "mem_common.h"
#include "mem_figures.h"
#include "mem_hooks.h"
#include "mem_tracker.h"
#include "symbols.h"

namespace gem::hook {

namespace {

// The memory figures the client sees (limited_mem_info()) when a limit applies, the driver's own
// otherwise.
bool limited_view(CUdevice dev, size_t real_free, size_t* free, size_t* total) {
  uint64_t limit = 0, left = 0;
  if (!MemTracker::active()) return false;
  settle_pools(dev);
  if (!T().view(dev, &limit, &left)) return false;
  const MemFigures f = limited_mem_info(limit, left, real_free);
  *total = static_cast<size_t>(f.total);
  *free = static_cast<size_t>(f.free);
  return true;
}

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
    *free = legacy_bytes(f);
    *total = legacy_bytes(t);
    return r;
  }
  return r == CUDA_SUCCESS ? real::cuMemGetInfo(free, total) : r;
}

CUresult on_cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  const CUresult r = real::cuDeviceTotalMem_v2(bytes, dev);
  uint64_t limit = 0, left = 0;
  if (r == CUDA_SUCCESS && bytes != nullptr && MemTracker::active() && T().view(dev, &limit, &left)) {
    *bytes = static_cast<size_t>(limited_total_mem(limit, *bytes));
  }
  return r;
}

CUresult on_cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) {
  size_t b = 0;
  const CUresult r = on_cuDeviceTotalMem_v2(&b, dev);
  if (r == CUDA_SUCCESS && bytes != nullptr) *bytes = legacy_bytes(b);
  return r;
}

}  // namespace gem::hook
