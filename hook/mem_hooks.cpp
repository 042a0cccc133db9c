#include "mem_hooks.h"

#include <algorithm>
#include <atomic>

#include "capture_state.h"
#include "gem/log.h"
#include "mem_common.h"
#include "mem_tracker.h"
#include "symbols.h"

namespace gem::hook {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// A stream-ordered pool grows in 32 MiB steps (measured on an H200: 1 MiB -> 32 MiB reserved,
// 40 MiB -> 64 MiB, 300 MiB -> 320 MiB; docs/memory.md).
constexpr uint64_t kPoolStep = 32 * kMiB;
// Arrays take whole 2 MiB pages (1000x1000 float4 took 16 MiB on an H200).
constexpr uint64_t kArrayPage = 2 * kMiB;



// Reserves `bytes` on `dev`; before refusing, re-reads what the device's pools and graph memory
// hold (they shrink at synchronisations the hook does not see) and tries once more.
void warn_resident_once(CUdevice dev, const char* what);
bool reserve(CUdevice dev, uint64_t bytes) {
  if (T().reserve(dev, bytes)) return true;
  settle_pools(dev);
  return T().reserve(dev, bytes);
}

template <typename Call, typename Key>
CUresult counted_on(CUdevice dev, uint64_t bytes, Call&& call, Key&& key) {
  if (!reserve(dev, bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
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

CUresult released(CUresult r, MemKey key) {
  if (r == CUDA_SUCCESS && MemTracker::active()) T().release(key);
  return r;
}

uint64_t pool_attr(CUmemoryPool pool, CUmemPool_attribute attr) {
  cuuint64_t v = 0;
  if (real::cuMemPoolGetAttribute == nullptr || real::cuMemPoolGetAttribute(pool, attr, &v) != CUDA_SUCCESS) return 0;
  return v;
}

MemKey pool_key(CUmemoryPool pool) { return {MemKind::kPool, reinterpret_cast<uint64_t>(pool)}; }

}  // namespace

void settle_pools(CUdevice dev) {
  // The pool and graph-memory reads wait for nothing, but nothing is read while a stream captures:
  // the ledger keeps the last figures and settles at the first allocation or query after it.
  if (capture_in_progress()) return;
  for (uint64_t p : T().pools(dev)) {
    auto* pool = reinterpret_cast<CUmemoryPool>(p);
    T().settle(dev, pool_key(pool), pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  }
  cuuint64_t graph = 0;
  if (real::cuDeviceGetGraphMemAttribute != nullptr &&
      real::cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &graph) == CUDA_SUCCESS) {
    T().settle(dev, {MemKind::kGraphPool, static_cast<uint64_t>(dev)}, graph);
  }
}

namespace {

// A stream-ordered allocation from `pool` (nullptr: the device's current pool). The pool is charged
// what it reserves (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), not what is asked of it: before the
// call, the growth it may need (the request, in 32 MiB steps) is reserved unless the pool's free
// part covers it; after the call the pool is settled to what it reserves now. Allocations made
// while the stream is being captured become graph memory nodes (counted as graph memory).
// While another stream captures, the pool is not read (settle_pools): the whole request, in steps,
// must fit the limit, and the pool is settled after the capture.
template <typename Call>
CUresult pool_alloc(size_t bytesize, CUmemoryPool pool, CUstream stream, bool ptsz, Call&& call) {
  CUdevice dev = 0;
  if (!MemTracker::active() || !current_device(&dev) || stream_captures(stream, ptsz)) return call();
  if (capture_in_progress()) {
    const uint64_t growth = round_up_bytes(bytesize, kPoolStep);
    if (!T().reserve(dev, growth)) return CUDA_ERROR_OUT_OF_MEMORY;
    const CUresult r = call();
    T().finish(dev, growth, false, {}, 0);
    return r;
  }
  if (pool == nullptr && (real::cuDeviceGetMemPool == nullptr || real::cuDeviceGetMemPool(&pool, dev) != CUDA_SUCCESS)) {
    return call();
  }
  T().note_pool(dev, reinterpret_cast<uint64_t>(pool));
  warn_resident_once(dev, "stream-ordered (cudaMallocAsync) pool");
  const uint64_t reserved = pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
  const uint64_t used = pool_attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT);
  T().settle(dev, pool_key(pool), reserved);
  const uint64_t idle = reserved > used ? reserved - used : 0;
  const uint64_t growth = idle >= bytesize ? 0 : round_up_bytes(bytesize, kPoolStep);
  if (growth > 0 && !reserve(dev, growth)) return CUDA_ERROR_OUT_OF_MEMORY;
  const CUresult r = call();
  if (growth > 0) T().finish(dev, growth, false, {}, 0);
  T().settle(dev, pool_key(pool), pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  return r;
}

uint64_t format_bytes(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
      return 4;
    default:
      return 16;  // other and block-compressed formats: counted as the widest element, never less
  }
}

// Bytes of a w x h x d array of `channels` elements of format `f` (0 extents count as 1), in
// whole 2 MiB pages; saturating.
uint64_t array_bytes(size_t w, size_t h, size_t d, unsigned channels, CUarray_format f) {
  const uint64_t cap = MemLedger::kMaxBytes;
  uint64_t b = format_bytes(f) * std::max(1u, channels);
  for (uint64_t e : {uint64_t{w}, uint64_t{h}, uint64_t{d}}) {
    e = std::max<uint64_t>(e, 1);
    b = b > cap / e ? cap : b * e;
  }
  return round_up_bytes(b, kArrayPage);
}

uint64_t mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR& a, unsigned levels) {
  uint64_t total = 0;
  size_t w = a.Width, h = a.Height, d = a.Depth;
  for (unsigned i = 0; i < std::max(1u, levels) && i < 32; ++i) {
    const bool layered = (a.Flags & CUDA_ARRAY3D_LAYERED) != 0;
    total = std::min(MemLedger::kMaxBytes, total + array_bytes(w, h, d, a.NumChannels, a.Format));
    w = std::max<size_t>(1, w / 2);
    h = h == 0 ? 0 : std::max<size_t>(1, h / 2);
    if (!layered) d = d == 0 ? 0 : std::max<size_t>(1, d / 2);
  }
  return total;
}

}  // namespace

namespace {

// Unified-memory mode (docs/memory.md, "Unified memory"): a device allocation becomes managed
// memory on `dev`, preferring to live there and mapped for it (CU_MEM_ADVISE_SET_PREFERRED_LOCATION
// and SET_ACCESSED_BY: pages stay on the GPU until evicted and the GPU keeps a mapping while they
// are on the host, so nothing faults back by accident). A driver without managed memory on this
// device gets the plain allocation.
CUresult plain_alloc(CUdeviceptr* dptr, size_t bytes) { return real::cuMemAlloc_v2(dptr, bytes); }

CUresult managed_alloc(CUdeviceptr* dptr, size_t bytes, CUdevice dev) {
  const CUresult r = real::cuMemAllocManaged(dptr, bytes, CU_MEM_ATTACH_GLOBAL);
  if (r == CUDA_ERROR_NOT_SUPPORTED) return plain_alloc(dptr, bytes);
  if (r != CUDA_SUCCESS) return r;
  CUmemLocation here{};
  here.type = CU_MEM_LOCATION_TYPE_DEVICE;
  here.id = dev;
  if (real::cuMemAdvise_v2 != nullptr) {
    real::cuMemAdvise_v2(*dptr, bytes, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, here);
    real::cuMemAdvise_v2(*dptr, bytes, CU_MEM_ADVISE_SET_ACCESSED_BY, here);
  }
  // Populate it on the GPU in bulk now (stream-ordered on the legacy default stream, ahead of the
  // program's kernels there) rather than page by page at its first touch: fresh managed memory
  // faults in at a seventh of the prefetch bandwidth (docs/memory.md).
  if (real::cuMemPrefetchAsync_v2 != nullptr) real::cuMemPrefetchAsync_v2(*dptr, bytes, here, 0, nullptr);
  T().note_managed(dev, *dptr, bytes);
  return CUDA_SUCCESS;
}

// Memory that cannot become managed stays resident; said once so nothing changes silently.
void warn_resident_once(CUdevice dev, const char* what) {
  static std::atomic<bool> warned{false};
  if (!T().unified_memory(dev) || warned.exchange(true)) return;
  LOG_WARN("unified-memory mode: %s memory cannot be managed; it is counted against GPU_MEM and stays on the GPU",
           what);
}

// In unified-memory mode a device allocation becomes managed, except while a stream captures: the
// advice and the prefetch onto the legacy stream that follow a managed allocation would invalidate
// the capture (capture_rule.h), and what a graph allocates during its capture (PyTorch's private
// graph pool) is used by every replay. Such an allocation stays plain device memory, counted
// against GPU_MEM like any other, and resident.
// with_capture_rule() also keeps a capture from beginning between the look and the prefetch.
CUresult device_alloc(CUdeviceptr* dptr, size_t bytes, CUdevice dev) {
  if (!T().unified_memory(dev)) return plain_alloc(dptr, bytes);
  CUresult r = CUDA_SUCCESS;
  if (with_capture_rule(HookCall::kLegacyStream, [&] { r = managed_alloc(dptr, bytes, dev); })) return r;
  return plain_alloc(dptr, bytes);
}

}  // namespace

bool current_device(CUdevice* dev) {
  return real::cuCtxGetDevice != nullptr && real::cuCtxGetDevice(dev) == CUDA_SUCCESS;
}

CUresult on_cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  CUdevice dev = 0;
  auto call = [&] { return device_alloc(dptr, bytesize, dev); };
  if (!MemTracker::active() || !current_device(&dev)) return plain_alloc(dptr, bytesize);
  return counted_on(dev, driver_alloc_bytes(bytesize), call, [&] { return MemKey{MemKind::kPointer, *dptr}; });
}

CUresult on_cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  CUdevice dev = 0;
  auto call = [&] {
    const CUresult r = real::cuMemAllocManaged(dptr, bytesize, flags);
    if (r == CUDA_SUCCESS && T().unified_memory(dev)) T().note_managed(dev, *dptr, bytesize);
    return r;
  };
  if (!MemTracker::active() || !current_device(&dev)) return real::cuMemAllocManaged(dptr, bytesize, flags);
  return counted_on(dev, driver_alloc_bytes(bytesize), call, [&] { return MemKey{MemKind::kPointer, *dptr}; });
}

CUresult on_cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes, size_t Height,
                               unsigned int ElementSizeBytes) {
  CUdevice dev = 0;
  // Rows are padded to 512 bytes (an H200 gave a pitch of 1024 for 1000); counted as pitch x height.
  const uint64_t rows = std::max<uint64_t>(Height, 1);
  const uint64_t pitch = round_up_bytes(WidthInBytes, 512);
  auto call = [&] {
    if (!T().unified_memory(dev) || pPitch == nullptr || WidthInBytes == 0 || Height == 0 ||
        pitch > MemLedger::kMaxBytes / rows) {
      return real::cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    }
    *pPitch = static_cast<size_t>(pitch);  // managed memory has no pitch of its own: rows padded as above
    return device_alloc(dptr, static_cast<size_t>(pitch * rows), dev);
  };
  if (!MemTracker::active() || !current_device(&dev)) {
    return real::cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
  }
  const uint64_t estimate = driver_alloc_bytes(pitch > MemLedger::kMaxBytes / rows ? MemLedger::kMaxBytes : pitch * rows);
  if (!reserve(dev, estimate)) return CUDA_ERROR_OUT_OF_MEMORY;
  const CUresult r = call();
  const uint64_t actual =
      r == CUDA_SUCCESS ? driver_alloc_bytes(*pPitch > MemLedger::kMaxBytes / rows ? MemLedger::kMaxBytes : *pPitch * rows) : 0;
  T().finish(dev, estimate, r == CUDA_SUCCESS, r == CUDA_SUCCESS ? MemKey{MemKind::kPointer, *dptr} : MemKey{}, actual);
  return r;
}

CUresult on_cuMemFree_v2(CUdeviceptr dptr) {
  return released(real::cuMemFree_v2(dptr), {MemKind::kPointer, dptr});
}

CUresult on_cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return pool_alloc(bytesize, nullptr, hStream, false, [&] { return real::cuMemAllocAsync(dptr, bytesize, hStream); });
}

CUresult on_cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return pool_alloc(bytesize, nullptr, hStream, true,
                    [&] { return real::cuMemAllocAsync_ptsz(dptr, bytesize, hStream); });
}

CUresult on_cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream) {
  return pool_alloc(bytesize, pool, hStream, false,
                    [&] { return real::cuMemAllocFromPoolAsync(dptr, bytesize, pool, hStream); });
}

CUresult on_cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream) {
  return pool_alloc(bytesize, pool, hStream, true,
                    [&] { return real::cuMemAllocFromPoolAsync_ptsz(dptr, bytesize, pool, hStream); });
}

CUresult on_cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  const CUresult r = real::cuMemPoolTrimTo(pool, minBytesToKeep);
  CUdevice dev = 0;
  if (r == CUDA_SUCCESS && MemTracker::active() && current_device(&dev)) {
    T().settle(dev, pool_key(pool), pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
  }
  return r;
}

CUresult on_cuMemPoolDestroy(CUmemoryPool pool) {
  return released(real::cuMemPoolDestroy(pool), pool_key(pool));
}

CUresult on_cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                        unsigned long long flags) {
  auto call = [&] { return real::cuMemCreate(handle, size, prop, flags); };
  // Only device-located memory counts; host-located (CU_MEM_LOCATION_TYPE_HOST*) is not GPU memory.
  if (!MemTracker::active() || prop == nullptr || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return call();
  warn_resident_once(prop->location.id, "cuMemCreate (expandable segments)");
  return counted_on(prop->location.id, round_up_bytes(size, 2 * kMiB), call,
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
  if (!T().within_limit(dev, round_up_bytes(nodeParams->bytesize, 2 * kMiB))) return CUDA_ERROR_OUT_OF_MEMORY;
  return call();
}

CUresult on_cuDeviceGraphMemTrim(CUdevice device) {
  const CUresult r = real::cuDeviceGraphMemTrim(device);
  if (r == CUDA_SUCCESS && MemTracker::active()) settle_pools(device);
  return r;
}

}  // namespace gem::hook
