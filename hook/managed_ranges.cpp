#include "managed_ranges.h"

#include <algorithm>

#include "locked.h"
#include "mem_ledger.h"

namespace gem::hook {

bool ManagedRanges::forget_locked(uint64_t ptr) {
  for (auto& [dev, d] : devices_) {
    auto it = d.ranges.find(ptr);
    if (it == d.ranges.end()) continue;
    d.bytes -= std::min(d.bytes, it->second);
    d.ranges.erase(it);
    return true;
  }
  return false;
}

void ManagedRanges::note(CUdevice dev, uint64_t ptr, uint64_t bytes) {
  locked(mu_, [&] {
    forget_locked(ptr);
    Device& d = devices_[dev];
    d.ranges[ptr] = bytes;
    d.bytes = std::min(d.bytes + std::min(bytes, MemLedger::kMaxBytes), MemLedger::kMaxBytes);
  });
}

bool ManagedRanges::forget(uint64_t ptr) {
  return locked(mu_, false, [&] { return forget_locked(ptr); });
}

std::vector<std::pair<uint64_t, uint64_t>> ManagedRanges::ranges(CUdevice dev) {
  using Out = std::vector<std::pair<uint64_t, uint64_t>>;
  return locked(mu_, Out{}, [&] {
    auto it = devices_.find(dev);
    return it == devices_.end() ? Out{} : Out(it->second.ranges.begin(), it->second.ranges.end());
  });
}

uint64_t ManagedRanges::bytes(CUdevice dev) {
  return locked(mu_, uint64_t{0}, [&] {
    auto it = devices_.find(dev);
    return it == devices_.end() ? uint64_t{0} : it->second.bytes;
  });
}

ManagedRanges& managed_ranges() { return PerProcess<ManagedRanges>::get(); }

}  // namespace gem::hook
