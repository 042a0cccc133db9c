// The managed-range registry of the hook's residency unit (docs/memory.md, "Residency"): in
// unified-memory mode every managed allocation of the process is noted here when made (address and
// bytes, on its CUDA device) and forgotten when freed; Residency (residency.h) moves these ranges to
// the host on Evict and back before the next slice.
// Pure: no driver calls, no I/O. Thread-safe (one lock; every call is short). Never throws: a
// failure to note a range (out of memory) leaves it unnoted, and it then simply stays resident.
// Byte totals saturate at kMaxBytes (2^50, MemLedger::kMaxBytes).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "driver_api.h"

namespace gem::hook {

class ManagedRanges {
 public:
  /// Notes the managed allocation at `ptr` of `bytes` on `dev`; a range already noted at `ptr` (a
  /// free the hook missed) is replaced, on whichever device it was.
  void note(CUdevice dev, uint64_t ptr, uint64_t bytes);
  /// Forgets the range at `ptr` (on any device: addresses are unified); false when none was noted.
  bool forget(uint64_t ptr);
  /// The ranges of `dev` as (address, bytes), by address.
  std::vector<std::pair<uint64_t, uint64_t>> ranges(CUdevice dev);
  /// Bytes of managed memory noted on `dev` (no copy of the ranges).
  uint64_t bytes(CUdevice dev);

 private:
  struct Device {
    std::map<uint64_t, uint64_t> ranges;  // address -> bytes
    uint64_t bytes = 0;
  };
  bool forget_locked(uint64_t ptr);

  std::mutex mu_;
  std::map<CUdevice, Device> devices_;
};

/// The process's registry (PerProcess: a fork()ed child starts with none).
ManagedRanges& managed_ranges();

}  // namespace gem::hook
