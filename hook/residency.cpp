#include "residency.h"

#include "capture_state.h"
#include "gem/log.h"
#include "managed_ranges.h"
#include "stats.h"
#include "symbols.h"

namespace gem::hook {

bool Residency::has_managed() const { return managed_ranges().bytes(device_) > 0; }

uint64_t Residency::migrate(bool to_device, bool* ran) {
  *ran = true;
  if (real::cuMemPrefetchAsync_v2 == nullptr) return 0;
  const auto ranges = managed_ranges().ranges(device_);
  if (ranges.empty()) return 0;
  CUmemLocation where{};
  where.type = to_device ? CU_MEM_LOCATION_TYPE_DEVICE : CU_MEM_LOCATION_TYPE_HOST;
  where.id = to_device ? device_ : 0;
  uint64_t moved = 0;
  // No capture may be in progress (kMemoryMove), and none begins while memory moves. The rule's lock
  // is taken inside the timer's driver_mu_, as SliceTimer::sync_contexts() takes it.
  timer_.run_in_context([&](CUstream stream) { *ran = with_capture_rule(HookCall::kMemoryMove, [&] {
    for (const auto& [ptr, bytes] : ranges) {
      if (real::cuMemPrefetchAsync_v2(ptr, bytes, where, 0, stream) == CUDA_SUCCESS) moved += bytes;
    }
    // Back on the GPU before the slice's first kernel; to the host in the background.
    if (to_device) {
      if (stream != nullptr && real::cuStreamSynchronize != nullptr) {
        real::cuStreamSynchronize(stream);
      } else {
        real::cuCtxSynchronize();  // no capture in progress: kMemoryMove implies it
      }
    }
  }); });
  return moved;
}

uint64_t Residency::evict(bool demand_paging) {
  bool ran = false;
  const uint64_t moved = migrate(false, &ran);
  deferred_ = !ran;
  deferred_demand_ = demand_paging;
  if (moved == 0) return 0;
  evicted_ = true;
  demand_paging_ = demand_paging;
  counters().evictions.fetch_add(1, std::memory_order_relaxed);
  counters().evicted_bytes.fetch_add(moved, std::memory_order_relaxed);
  LOG_INFO("evicted: %llu bytes of managed memory moving to the host", static_cast<unsigned long long>(moved));
  return moved;
}

void Residency::retry_deferred() {
  if (deferred_ && !evicted_) evict(deferred_demand_);
}

void Residency::prefetch_back() {
  deferred_ = false;  // the grant made the client resident: a kept Evict is stale
  if (!evicted_) return;
  if (demand_paging_) {
    evicted_ = false;
    return;
  }
  const Micros t0 = mono_us();
  bool ran = false;
  const uint64_t moved = migrate(true, &ran);
  if (!ran) return;  // a capture in progress: still evicted, prefetched before a later slice
  evicted_ = false;
  const Micros took = mono_us() - t0;
  counters().prefetches.fetch_add(1, std::memory_order_relaxed);
  counters().prefetched_bytes.fetch_add(moved, std::memory_order_relaxed);
  counters().prefetch_us_total.fetch_add(static_cast<uint64_t>(took), std::memory_order_relaxed);
  uint64_t prev = counters().prefetch_us_max.load(std::memory_order_relaxed);
  while (static_cast<uint64_t>(took) > prev &&
         !counters().prefetch_us_max.compare_exchange_weak(prev, static_cast<uint64_t>(took))) {
  }
}

}  // namespace gem::hook
