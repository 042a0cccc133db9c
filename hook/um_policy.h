// The unified-memory allocation policy (docs/memory.md, "Unified memory"): in unified-memory mode
// (ClientSettings.flags from gem-pmgr) the device allocations of the program become managed memory,
// which gem-schd can have moved to the host (Evict) while the client does not run. This unit says
// which allocation becomes managed and how; the wrappers (mem_hooks.cpp) make the driver calls:
//  - cuMemAlloc_v2 becomes cuMemAllocManaged(CU_MEM_ATTACH_GLOBAL) of the same size; a pitched
//    allocation (cuMemAllocPitch_v2) too, with its rows padded as the driver pads them
//    (pitch_of(), mem_sizing.h), unless it is empty or its size would saturate (then plain).
//  - a managed allocation is advised to live on its device and stay mapped there (kManagedAdvice:
//    pages stay on the GPU until evicted and the GPU keeps a mapping while they are on the host, so
//    nothing faults back by accident), then prefetched there in bulk: fresh managed memory faults
//    in at a seventh of the prefetch bandwidth.
//  - a driver without managed memory on the device (CUDA_ERROR_NOT_SUPPORTED) gets the plain one.
//  - a program's own cuMemAllocManaged is noted for residency in unified-memory mode only.
//  - memory that cannot be managed (stream-ordered pools, cuMemCreate) stays resident, counted
//    against GPU_MEM; said once per process.
//  - while a stream captures, nothing becomes managed (capture_rule.h, HookCall::kLegacyStream):
//    decided by the capture rule at the call, not here.
// Pure: no driver calls, no state.
#pragma once

#include <cstdint>

#include "driver_api.h"

namespace gem::hook {

/// How the hook makes an allocation the program asked of the device.
enum class UmAlloc { kPlain, kManaged };

/// cuMemAlloc_v2 in unified-memory mode (`um`) or not.
UmAlloc device_alloc_kind(bool um);

/// A pitched allocation (cuMemAllocPitch_v2) as the hook makes it.
struct PitchPlan {
  UmAlloc kind = UmAlloc::kPlain;  // kPlain: the program's own call, unchanged
  uint64_t pitch = 0;              // kManaged: the pitch reported to the program (bytes)
  uint64_t bytes = 0;              // kManaged: bytes allocated (pitch x height)
};
/// The plan for a pitched allocation of `width` bytes x `height` rows; `pitch_out` false when the
/// program passed no place for the pitch (the driver's call reports the error).
PitchPlan plan_pitch(bool um, bool pitch_out, uint64_t width, uint64_t height);

/// True when a managed allocation the driver answered with `r` is to be made plain instead.
bool plain_after_managed(CUresult r);

/// Where a managed allocation on `dev` is advised to live and is prefetched to: the device itself.
CUmemLocation managed_home(CUdevice dev);
/// The advice given for a managed allocation, in this order, each with managed_home().
constexpr CUmem_advise kManagedAdvice[] = {CU_MEM_ADVISE_SET_PREFERRED_LOCATION, CU_MEM_ADVISE_SET_ACCESSED_BY};

/// True when a program's own managed allocation is noted for residency (moved on Evict).
bool note_program_managed(bool um);

/// True when the warning "this memory cannot be managed and stays on the GPU" is due: in
/// unified-memory mode, and not said before in this process.
bool warn_stays_resident(bool um, bool warned_before);

}  // namespace gem::hook
