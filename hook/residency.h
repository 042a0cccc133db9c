// Where a unified-memory client's managed memory lives (docs/memory.md, "Residency"): gem-schd
// tells a client that does not hold the token to move its memory to the host (Evict) when the
// resident memory of all clients would exceed its budget; the client's next slice then starts only
// after its memory is back on the GPU, prefetched in bulk (cuMemPrefetchAsync) rather than faulted
// back page by page (nvshare's cost; TGS and MSched prefetch in bulk).
// The ranges it moves are the managed-range registry's (managed_ranges.h), where the allocation
// wrappers note them. One per gate; used by that gate's token worker thread only. Driver calls go through the slice
// timer's context (SliceTimer::run_in_context).
#pragma once

#include <cstdint>

#include "driver_api.h"
#include "gem/clock.h"
#include "slice_timer.h"

namespace gem::hook {

class Residency {
 public:
  Residency(CUdevice device, SliceTimer& timer) : device_(device), timer_(timer) {}

  /// True when the process has managed memory on this device (unified-memory mode): the worker
  /// then also watches for Evict while idle.
  bool has_managed() const;
  /// Evict: starts moving every managed range to the host on the hook's stream (not waited for).
  /// `demand_paging` (gem-schd --residency demand): no bulk prefetch back; pages fault back as
  /// kernels touch them. Returns the bytes asked to move. While a stream capture is in progress no
  /// memory moves (capture_rule.h, HookCall::kMemoryMove): the Evict is kept and acted on by
  /// retry_deferred() once the captures have ended.
  uint64_t evict(bool demand_paging);
  /// An Evict kept back by a capture: acted on now if no capture is in progress any more.
  void retry_deferred();
  /// Before a slice: if evicted, prefetches every managed range back to the GPU and waits for it
  /// (its duration goes to the prefetch counters). While a capture is in progress it stays
  /// evicted (pages fault back as kernels touch them) and prefetches before a later slice.
  void prefetch_back();
  bool evicted() const { return evicted_; }
  /// An Evict is kept back by a capture in progress.
  bool deferred() const { return deferred_; }

 private:
  /// Prefetches every managed range to the device or the host; *ran false when a capture in
  /// progress forbade it (nothing moved).
  uint64_t migrate(bool to_device, bool* ran);

  const CUdevice device_;
  SliceTimer& timer_;
  bool evicted_ = false;
  bool demand_paging_ = false;
  bool deferred_ = false;             // an Evict waits for the captures to end
  bool deferred_demand_ = false;      // its demand_paging
};

}  // namespace gem::hook
