// NVML interposition (hook/nvml_hooks.cpp): the memory figures under GPU_MEM.
#pragma once

#include "gem/nvml_api.h"

namespace gem::hook {

/// For dlsym: if `name` is an NVML function the hook wraps, remembers `real` as the real one and
/// returns the wrapper; else returns `real`. Never blocks, never loads anything.
void* nvml_wrapper(const char* name, void* real);

}  // namespace gem::hook
