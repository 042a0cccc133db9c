// The stream-ordered pool wrappers (docs/memory.md, "Stream-ordered pools"): cuMemAllocAsync and
// cuMemAllocFromPoolAsync (and their _ptsz forms), cuMemPoolTrimTo, cuMemPoolDestroy, and the
// settling of what the pools and the graph pool hold. A pool is charged what it reserves
// (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), not what is asked of it; the growth an allocation may
// cause is pool_growth() (mem_sizing.h); the pools seen are kept in the pool registry
// (pool_registry.h).
#include <atomic>

#include "capture_state.h"
#include "mem_common.h"
#include "mem_hooks.h"
#include "mem_sizing.h"
#include "pool_registry.h"
#include "symbols.h"

namespace gem::hook {

namespace {

uint64_t pool_attr(CUmemoryPool pool, CUmemPool_attribute attr) {
  cuuint64_t v = 0;
  if (real::cuMemPoolGetAttribute == nullptr || real::cuMemPoolGetAttribute(pool, attr, &v) != CUDA_SUCCESS) return 0;
  return v;
}

MemKey pool_key(CUmemoryPool pool) { return {MemKind::kPool, reinterpret_cast<uint64_t>(pool)}; }

void settle_pool(CUdevice dev, CUmemoryPool pool) {
  T().settle(dev, pool_key(pool), pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT));
}

// A stream-ordered allocation from `pool` (nullptr: the device's current pool): before the call,
// the growth it may need is reserved (pool_growth()); after the call the pool is settled to what it
// reserves now. Allocations made while the stream is being captured become graph memory nodes
// (counted as graph memory). While another stream captures, the pool is not read (settle_pools):
// the whole request, in steps, must fit the limit, and the pool is settled after the capture.
template <typename Call>
CUresult pool_alloc(size_t bytesize, CUmemoryPool pool, CUstream stream, bool ptsz, Call&& call) {
  CUdevice dev = 0;
  if (!MemTracker::active() || !current_device(&dev) || stream_captures(stream, ptsz)) return call();
  if (capture_in_progress()) {
    const uint64_t growth = pool_growth_unread(bytesize);
    if (!T().reserve(dev, growth)) return CUDA_ERROR_OUT_OF_MEMORY;
    const CUresult r = call();
    T().finish(dev, growth, false, {}, 0);
    return r;
  }
  if (pool == nullptr && (real::cuDeviceGetMemPool == nullptr || real::cuDeviceGetMemPool(&pool, dev) != CUDA_SUCCESS)) {
    return call();
  }
  pool_registry().note(dev, reinterpret_cast<uint64_t>(pool));
  warn_resident_once(dev, "stream-ordered (cudaMallocAsync) pool");
  const uint64_t reserved = pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
  const uint64_t used = pool_attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT);
  T().settle(dev, pool_key(pool), reserved);
  const uint64_t growth = pool_growth(bytesize, reserved, used);
  if (growth > 0 && !reserve_settled(dev, growth)) return CUDA_ERROR_OUT_OF_MEMORY;
  const CUresult r = call();
  if (growth > 0) T().finish(dev, growth, false, {}, 0);
  settle_pool(dev, pool);
  return r;
}

}  // namespace

void settle_pools(CUdevice dev) {
  // The pool and graph-memory reads wait for nothing, but nothing is read while a stream captures:
  // the ledger keeps the last figures and settles at the first allocation or query after it.
  if (capture_in_progress()) return;
  for (uint64_t p : pool_registry().pools(dev)) settle_pool(dev, reinterpret_cast<CUmemoryPool>(p));
  cuuint64_t graph = 0;
  if (real::cuDeviceGetGraphMemAttribute != nullptr &&
      real::cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &graph) == CUDA_SUCCESS) {
    T().settle(dev, {MemKind::kGraphPool, static_cast<uint64_t>(dev)}, graph);
  }
}

bool reserve_settled(CUdevice dev, uint64_t bytes) {
  if (T().reserve(dev, bytes)) return true;
  settle_pools(dev);
  return T().reserve(dev, bytes);
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
  if (r == CUDA_SUCCESS && MemTracker::active() && current_device(&dev)) settle_pool(dev, pool);
  return r;
}

CUresult on_cuMemPoolDestroy(CUmemoryPool pool) {
  return released(real::cuMemPoolDestroy(pool), pool_key(pool));
}

}  // namespace gem::hook
