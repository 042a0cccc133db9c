#include "pool_registry.h"

#include <algorithm>

#include "locked.h"

namespace gem::hook {

bool PoolRegistry::note(CUdevice dev, uint64_t pool) {
  return locked(mu_, false, [&] {
    auto& v = pools_[dev];
    if (std::find(v.begin(), v.end(), pool) != v.end() || v.size() >= kMaxPools) return false;
    v.push_back(pool);
    return true;
  });
}

std::vector<uint64_t> PoolRegistry::pools(CUdevice dev) {
  return locked(mu_, std::vector<uint64_t>{}, [&] {
    auto it = pools_.find(dev);
    return it == pools_.end() ? std::vector<uint64_t>{} : it->second;
  });
}

PoolRegistry& pool_registry() { return PerProcess<PoolRegistry>::get(); }

}  // namespace gem::hook
