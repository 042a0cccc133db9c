// The pool registry of the memory wrappers (mem_pools.cpp; docs/memory.md, "Stream-ordered
// pools"): the stream-ordered memory pools (CUmemoryPool) the process has allocated from, per CUDA
// device, so that what they reserve (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) can be read again before
// an allocation is refused: pools shrink at synchronisations the hook does not see.
// At most kMaxPools pools a device are kept (a program creating pools without end must not grow the
// hook's memory); a pool past the cap is still charged at its allocations, only not re-read.
// A destroyed pool stays noted (reading it then fails, which settles it to 0) and keeps its slot.
// Pure: no driver calls. Thread-safe (one lock). Never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "driver_api.h"

namespace gem::hook {

class PoolRegistry {
 public:
  static constexpr size_t kMaxPools = 64;

  /// Notes that the program allocated from `pool` on `dev`; false when it was known already or the
  /// device holds kMaxPools.
  bool note(CUdevice dev, uint64_t pool);
  /// The pools of `dev`, in the order first noted.
  std::vector<uint64_t> pools(CUdevice dev);

 private:
  std::mutex mu_;
  std::map<CUdevice, std::vector<uint64_t>> pools_;
};

/// The process's registry (PerProcess: a fork()ed child starts with none).
PoolRegistry& pool_registry();

}  // namespace gem::hook
