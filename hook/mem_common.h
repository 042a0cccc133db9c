// Helpers shared by the memory wrappers (mem_hooks.cpp, mem_pools.cpp) and views (mem_views.cpp).
#pragma once

#include "driver_api.h"
#include "mem_tracker.h"

namespace gem::hook {

inline MemTracker& T() { return MemTracker::get(); }

/// The device of the calling thread's current context; false when there is none.
bool current_device(CUdevice* dev);

/// Re-reads what `dev`'s pools (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) and graph memory
/// (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) hold and settles the ledger to it (mem_pools.cpp).
void settle_pools(CUdevice dev);

/// Reserves `bytes` on `dev` (MemTracker::reserve); before refusing, re-reads what the device's
/// pools and graph memory hold (they shrink at synchronisations the hook does not see) and tries
/// once more.
bool reserve_settled(CUdevice dev, uint64_t bytes);

/// After a free that returned `r`: on success, `key` is released from the ledger (and, for a
/// pointer, from the managed-range registry). Returns `r`.
CUresult released(CUresult r, MemKey key);

/// Says once per process, in unified-memory mode on `dev`, that `what` memory cannot be managed
/// and stays on the GPU (um_policy.h).
void warn_resident_once(CUdevice dev, const char* what);

}  // namespace gem::hook
