// Helpers shared by the memory wrappers (mem_hooks.cpp) and views (mem_views.cpp).
#pragma once

#include "driver_api.h"
#include "mem_tracker.h"

namespace gem::hook {

inline MemTracker& T() { return MemTracker::get(); }

/// The device of the calling thread's current context; false when there is none.
bool current_device(CUdevice* dev);

/// Re-reads what `dev`'s pools (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) and graph memory
/// (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) hold and settles the ledger to it.
void settle_pools(CUdevice dev);

}  // namespace gem::hook
