#include "mem_tracker.h"

#include "gem/clock.h"
#include "locked.h"
#include "settings.h"

namespace gem::hook {

MemTracker::MemTracker() {
  shared_.fail_closed = settings().fail_closed;
  shared_.pod_manager = settings().pod_manager.to_string();
}

MemTracker& MemTracker::get() { return PerProcess<MemTracker>::get(); }

bool MemTracker::active() { return settings().enabled; }

MemTracker::Gpu* MemTracker::gpu_by_uuid(const std::string& uuid) {
  auto& slot = gpus_[uuid];
  if (!slot) slot = std::make_unique<Gpu>(uuid, shared_, settings());
  return slot.get();
}

MemTracker::Gpu* MemTracker::gpu(CUdevice dev) {
  auto it = by_device_.find(dev);
  if (it != by_device_.end()) return it->second;
  const std::string uuid = device_uuid(dev);
  if (uuid.empty()) return nullptr;
  Gpu* g = gpu_by_uuid(uuid);
  by_device_[dev] = g;
  return g;
}

void MemTracker::note_um(const Gpu& g) {
  if (g.sync.unified_memory()) any_um_.store(true, std::memory_order_relaxed);
}

bool MemTracker::reserve(CUdevice dev, uint64_t bytes) {
  return locked(mu_, true, [&] {
    Gpu* g = gpu(dev);
    if (g == nullptr) return true;  // the driver will refuse the call itself
    const bool ok = g->sync.reserve(bytes, mono_us());
    note_um(*g);
    return ok;
  });
}

void MemTracker::finish(CUdevice dev, uint64_t reserved, bool ok, MemKey key, uint64_t actual) {
  locked(mu_, [&] {
    if (Gpu* g = gpu(dev)) g->sync.finish(reserved, ok, key, actual);
  });
}

void MemTracker::release(MemKey key) {
  locked(mu_, [&] {
    for (auto& [uuid, g] : gpus_) {
      if (g->sync.release(key, mono_us())) {
        note_um(*g);
        return;
      }
    }
  });
}

void MemTracker::settle(CUdevice dev, MemKey key, uint64_t bytes) {
  locked(mu_, [&] {
    if (Gpu* g = gpu(dev)) g->sync.settle(key, bytes);
  });
}

bool MemTracker::within_limit(CUdevice dev, uint64_t bytes) {
  return locked(mu_, true, [&] {
    Gpu* g = gpu(dev);
    if (g == nullptr) return true;
    const bool ok = g->sync.within_limit(bytes, mono_us());
    note_um(*g);
    return ok;
  });
}

bool MemTracker::view(CUdevice dev, uint64_t* limit, uint64_t* free) {
  return locked(mu_, false, [&] {
    Gpu* g = gpu(dev);
    if (g == nullptr) return false;
    const bool limited = g->sync.view(mono_us(), limit, free);
    note_um(*g);
    return limited;
  });
}

bool MemTracker::view_uuid(const std::string& uuid, uint64_t* limit, uint64_t* free) {
  return locked(mu_, false, [&] {
    Gpu* g = gpu_by_uuid(uuid);
    const bool limited = g->sync.view(mono_us(), limit, free);
    note_um(*g);
    return limited;
  });
}

bool MemTracker::unified_memory(CUdevice dev) {
  return locked(mu_, false, [&] {
    Gpu* g = gpu(dev);
    return g != nullptr && g->sync.unified_memory();
  });
}

}  // namespace gem::hook
