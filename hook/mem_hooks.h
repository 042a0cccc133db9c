// Bodies of the GEM_WRAP lines of cuda_hooks.def: the allocation paths counted against GPU_MEM and
// the memory views that show it (docs/memory.md), defined in mem_hooks.cpp, and the stream capture
// record (capture_state.h), defined in capture_hooks.cpp, and the host's waits for the GPU, defined
// in sync_hooks.cpp. Each is called by the exported wrapper of the same name once the real driver is
// resolved; each calls the real function at most once and never throws.
#pragma once

#include "driver_api.h"

namespace gem::hook {

#define GEM_WRAP(name, params, args) CUresult on_##name params;
#include "cuda_hooks.def"

}  // namespace gem::hook
