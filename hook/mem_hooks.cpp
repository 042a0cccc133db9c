// The allocation wrappers counted against GPU_MEM (docs/memory.md): each charges the ledger the
// size the sizing rules give (mem_sizing.h) and makes the allocation as the unified-memory policy
// says (um_policy.h). The stream-ordered pool wrappers are mem_pools.cpp, the views mem_views.cpp.
#include "mem_hooks.h"

#include <atomic>

#include "capture_state.h"
#include "gem/log.h"
#include "managed_ranges.h"
#include "mem_common.h"
#include "mem_sizing.h"
#include "mem_tracker.h"
#include "symbols.h"
#include "um_policy.h"

namespace gem::hook {

namespace {

template <typename Call, typename Key>
CUresult counted_on(CUdevice dev, uint64_t bytes, Call&& call, Key&& key) {
  if (!reserve_settled(dev, bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
  const CUresult r = call();
  T().finish(dev, bytes, r == CUDA_SUCCESS, r == CUDA_SUCCESS ? key() : MemKey{}, bytes);
  return r;
}

// Runs `call` (the real allocation) counted as `bytes` on the current device; `key` names the
// allocation once made. Without a current context the driver's own error comes back.
template <typename Call, typename Key>
CUresult counted(uint64_t bytes, Call&& call, Key&& key) {
  CUdevice dev = 0;
  if (!MemTracker::active() || !current_device(&dev)) return call();
  return counted_on(dev, bytes, call, key);
}

CUresult plain_alloc(CUdeviceptr* dptr, size_t bytes) { return real::cuMemAlloc_v2(dptr, bytes); }

// A managed allocation on `dev` as um_policy.h says: advised to live there, prefetched there in
// bulk (stream-ordered on the legacy default stream, ahead of the program's kernels there), and
// noted in the managed-range registry for residency.
CUresult managed_alloc(CUdeviceptr* dptr, size_t bytes, CUdevice dev) {
  const CUresult r = real::cuMemAllocManaged(dptr, bytes, CU_MEM_ATTACH_GLOBAL);
  if (plain_after_managed(r)) return plain_alloc(dptr, bytes);
  if (r != CUDA_SUCCESS) return r;
  const CUmemLocation here = managed_home(dev);
  if (real::cuMemAdvise_v2 != nullptr) {
    for (CUmem_advise advice : kManagedAdvice) real::cuMemAdvise_v2(*dptr, bytes, advice, here);
  }
  if (real::cuMemPrefetchAsync_v2 != nullptr) real::cuMemPrefetchAsync_v2(*dptr, bytes, here, 0, nullptr);
  managed_ranges().note(dev, *dptr, bytes);
  return CUDA_SUCCESS;
}

// A device allocation: managed in unified-memory mode, except while a stream captures (the advice
// and the prefetch onto the legacy stream would invalidate the capture, capture_rule.h, and what a
// graph allocates during its capture, PyTorch's private graph pool, is used by every replay): then
// it stays plain device memory, counted against GPU_MEM like any other, and resident.
// with_capture_rule() also keeps a capture from beginning between the look and the prefetch.
CUresult device_alloc(CUdeviceptr* dptr, size_t bytes, CUdevice dev) {
  if (device_alloc_kind(T().unified_memory(dev)) == UmAlloc::kPlain) return plain_alloc(dptr, bytes);
  CUresult r = CUDA_SUCCESS;
  if (with_capture_rule(HookCall::kLegacyStream, [&] { r = managed_alloc(dptr, bytes, dev); })) return r;
  return plain_alloc(dptr, bytes);
}

MemKey pointer_key(CUdeviceptr p) { return {MemKind::kPointer, p}; }

}  // namespace

void warn_resident_once(CUdevice dev, const char* what) {
  static std::atomic<bool> warned{false};
  if (!T().unified_memory(dev)) return;
  if (!warn_stays_resident(true, warned.exchange(true))) return;
  LOG_WARN("unified-memory mode: %s memory cannot be managed; it is counted against GPU_MEM and stays on the GPU",
           what);
}

CUresult released(CUresult r, MemKey key) {
  if (r != CUDA_SUCCESS || !MemTracker::active()) return r;
  T().release(key);
  if (key.kind == MemKind::kPointer) managed_ranges().forget(key.id);
  return r;
}

bool current_device(CUdevice* dev) {
  return real::cuCtxGetDevice != nullptr && real::cuCtxGetDevice(dev) == CUDA_SUCCESS;
}

CUresult on_cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  CUdevice dev = 0;
  auto call = [&] { return device_alloc(dptr, bytesize, dev); };
  if (!MemTracker::active() || !current_device(&dev)) return plain_alloc(dptr, bytesize);
  return counted_on(dev, driver_alloc_bytes(bytesize), call, [&] { return pointer_key(*dptr); });
}

CUresult on_cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  CUdevice dev = 0;
  auto call = [&] {
    const CUresult r = real::cuMemAllocManaged(dptr, bytesize, flags);
    if (r == CUDA_SUCCESS && note_program_managed(T().unified_memory(dev))) managed_ranges().note(dev, *dptr, bytesize);
    return r;
  };
  if (!MemTracker::active() || !current_device(&dev)) return real::cuMemAllocManaged(dptr, bytesize, flags);
  return counted_on(dev, driver_alloc_bytes(bytesize), call, [&] { return pointer_key(*dptr); });
}

CUresult on_cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes, size_t Height,
                               unsigned int ElementSizeBytes) {
  CUdevice dev = 0;
  auto real_call = [&] { return real::cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes); };
  if (!MemTracker::active() || !current_device(&dev)) return real_call();
  // Counted as pitch x height, the pitch as the driver pads it.
  const uint64_t estimate = driver_alloc_bytes(pitched_bytes(pitch_of(WidthInBytes), Height));
  if (!reserve_settled(dev, estimate)) return CUDA_ERROR_OUT_OF_MEMORY;
  const PitchPlan plan = plan_pitch(T().unified_memory(dev), pPitch != nullptr, WidthInBytes, Height);
  CUresult r;
  if (plan.kind == UmAlloc::kManaged) {
    *pPitch = static_cast<size_t>(plan.pitch);
    r = device_alloc(dptr, static_cast<size_t>(plan.bytes), dev);
  } else {
    r = real_call();
  }
  const uint64_t actual = r == CUDA_SUCCESS ? driver_alloc_bytes(pitched_bytes(*pPitch, Height)) : 0;
  T().finish(dev, estimate, r == CUDA_SUCCESS, r == CUDA_SUCCESS ? pointer_key(*dptr) : MemKey{}, actual);
  return r;
}

CUresult on_cuMemFree_v2(CUdeviceptr dptr) { return released(real::cuMemFree_v2(dptr), pointer_key(dptr)); }

CUresult on_cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                        unsigned long long flags) {
  auto call = [&] { return real::cuMemCreate(handle, size, prop, flags); };
  // Only device-located memory counts; host-located (CU_MEM_LOCATION_TYPE_HOST*) is not GPU memory.
  if (!MemTracker::active() || prop == nullptr || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return call();
  warn_resident_once(prop->location.id, "cuMemCreate (expandable segments)");
  return counted_on(prop->location.id, handle_bytes(size), call,
                    [&] { return MemKey{MemKind::kHandle, static_cast<uint64_t>(*handle)}; });
}

CUresult on_cuMemRelease(CUmemGenericAllocationHandle handle) {
  return released(real::cuMemRelease(handle), {MemKind::kHandle, static_cast<uint64_t>(handle)});
}

CUresult on_cuArrayCreate_v2(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR* a) {
  auto call = [&] { return real::cuArrayCreate_v2(pHandle, a); };
  if (a == nullptr) return call();
  return counted(array_bytes(a->Width, a->Height, 1, a->NumChannels, a->Format), call,
                 [&] { return MemKey{MemKind::kArray, reinterpret_cast<uint64_t>(*pHandle)}; });
}

CUresult on_cuArray3DCreate_v2(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* a) {
  auto call = [&] { return real::cuArray3DCreate_v2(pHandle, a); };
  if (a == nullptr) return call();
  return counted(array_bytes(a->Width, a->Height, a->Depth, a->NumChannels, a->Format), call,
                 [&] { return MemKey{MemKind::kArray, reinterpret_cast<uint64_t>(*pHandle)}; });
}

CUresult on_cuArrayDestroy(CUarray hArray) {
  return released(real::cuArrayDestroy(hArray), {MemKind::kArray, reinterpret_cast<uint64_t>(hArray)});
}

CUresult on_cuMipmappedArrayCreate(CUmipmappedArray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* a, unsigned int levels) {
  auto call = [&] { return real::cuMipmappedArrayCreate(pHandle, a, levels); };
  if (a == nullptr) return call();
  return counted(mipmap_bytes(*a, levels), call,
                 [&] { return MemKey{MemKind::kMipmappedArray, reinterpret_cast<uint64_t>(*pHandle)}; });
}

CUresult on_cuMipmappedArrayDestroy(CUmipmappedArray h) {
  return released(real::cuMipmappedArrayDestroy(h), {MemKind::kMipmappedArray, reinterpret_cast<uint64_t>(h)});
}

// Graph memory is reserved by the driver when the graph is instantiated or launched, outside any
// call the hook could refuse; so a node that could never fit is refused where it is added, and the
// device's graph memory (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) is charged as it is read (before
// refusing anything, at memory queries and at cuDeviceGraphMemTrim).
CUresult on_cuGraphAddMemAllocNode(CUgraphNode* phGraphNode, CUgraph hGraph, const CUgraphNode* dependencies,
                                   size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS* nodeParams) {
  auto call = [&] { return real::cuGraphAddMemAllocNode(phGraphNode, hGraph, dependencies, numDependencies, nodeParams); };
  if (!MemTracker::active() || nodeParams == nullptr || nodeParams->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
    return call();
  }
  const CUdevice dev = nodeParams->poolProps.location.id;
  settle_pools(dev);
  if (!T().within_limit(dev, handle_bytes(nodeParams->bytesize))) return CUDA_ERROR_OUT_OF_MEMORY;
  return call();
}

CUresult on_cuDeviceGraphMemTrim(CUdevice device) {
  const CUresult r = real::cuDeviceGraphMemTrim(device);
  if (r == CUDA_SUCCESS && MemTracker::active()) settle_pools(device);
  return r;
}

}  // namespace gem::hook
