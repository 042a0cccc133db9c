// Stream-ordered allocation: cuMemAllocAsync / cuMemAllocFromPoolAsync / cuMemFreeAsync and the
// memory pool functions. Pool behaviour: mem_pool.cpp.
#include "capture_rules.h"
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Driver;
using fakecuda::Memory;

namespace {

CUresult alloc_async(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool, CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  CUgraph captured = nullptr;  // not a memory node here: allocated now, as outside a capture
  if (CUresult r = fakecuda::capture_enqueue(t, "cuMemAllocAsync", &captured)) return r;
  // cuMemAllocAsync: the current pool of the stream's device; FromPool: any pool, any device.
  if (pool == nullptr) pool = Memory::get().current_pool(t.device);
  return Memory::get().pool_alloc(pool, bytesize, dptr);
}

CUresult free_async(CUdeviceptr dptr, CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  CUgraph captured = nullptr;
  if (CUresult r = fakecuda::capture_enqueue(t, "cuMemFreeAsync", &captured)) return r;
  return Memory::get().free_async(dptr);
}

CUresult device_check(CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Driver::get().valid_device(dev) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

// The CUDA 13 location-based forms: device-located pinned pools only.
CUresult location_device(const CUmemLocation* loc, CUmemAllocationType type, int* dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (loc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (type != CU_MEM_ALLOCATION_TYPE_PINNED || loc->type != CU_MEM_LOCATION_TYPE_DEVICE) {
    return type == CU_MEM_ALLOCATION_TYPE_MANAGED || loc->type == CU_MEM_LOCATION_TYPE_HOST ||
                   loc->type == CU_MEM_LOCATION_TYPE_HOST_NUMA
               ? CUDA_ERROR_NOT_SUPPORTED
               : CUDA_ERROR_INVALID_VALUE;
  }
  if (!Driver::get().valid_device(loc->id)) return CUDA_ERROR_INVALID_DEVICE;
  *dev = loc->id;
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return alloc_async(dptr, bytesize, nullptr, hStream, false);
}
FAKE_API CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return alloc_async(dptr, bytesize, nullptr, hStream, true);
}

FAKE_API CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                                  CUstream hStream) {
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return alloc_async(dptr, bytesize, pool, hStream, false);
}
FAKE_API CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                                       CUstream hStream) {
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return alloc_async(dptr, bytesize, pool, hStream, true);
}

FAKE_API CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) { return free_async(dptr, hStream, false); }
FAKE_API CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  return free_async(dptr, hStream, true);
}

FAKE_API CUresult CUDAAPI cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* poolProps) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Memory::get().pool_create(poolProps, pool);
}

FAKE_API CUresult CUDAAPI cuMemPoolDestroy(CUmemoryPool pool) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Memory::get().pool_destroy(pool);
}

FAKE_API CUresult CUDAAPI cuDeviceGetDefaultMemPool(CUmemoryPool* pool_out, CUdevice dev) {
  if (CUresult r = device_check(dev)) return r;
  if (pool_out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pool_out = Memory::get().default_pool(dev);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  if (CUresult r = device_check(dev)) return r;
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pool = Memory::get().current_pool(dev);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
  if (CUresult r = device_check(dev)) return r;
  return Memory::get().set_current_pool(dev, pool);
}

FAKE_API CUresult CUDAAPI cuMemGetDefaultMemPool(CUmemoryPool* pool_out, CUmemLocation* location,
                                                 CUmemAllocationType type) {
  int dev = 0;
  if (CUresult r = location_device(location, type, &dev)) return r;
  if (pool_out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pool_out = Memory::get().default_pool(dev);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemGetMemPool(CUmemoryPool* pool, CUmemLocation* location, CUmemAllocationType type) {
  int dev = 0;
  if (CUresult r = location_device(location, type, &dev)) return r;
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pool = Memory::get().current_pool(dev);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemSetMemPool(CUmemLocation* location, CUmemAllocationType type, CUmemoryPool pool) {
  int dev = 0;
  if (CUresult r = location_device(location, type, &dev)) return r;
  return Memory::get().set_current_pool(dev, pool);
}

FAKE_API CUresult CUDAAPI cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Memory::get().pool_get(pool, attr, value);
}

FAKE_API CUresult CUDAAPI cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Memory::get().pool_set(pool, attr, value);
}

FAKE_API CUresult CUDAAPI cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  if (CUresult r = fakecuda::check_init()) return r;
  // Potentially unsafe during stream capture (capture_rules.h).
  if (CUresult r = fakecuda::capture_check_unsafe("cuMemPoolTrimTo")) return r;
  return Memory::get().pool_trim(pool, minBytesToKeep);
}

FAKE_ALIAS(cuMemAllocAsync)
FAKE_ALIAS(cuMemAllocAsync_ptsz)
FAKE_ALIAS(cuMemAllocFromPoolAsync)
FAKE_ALIAS(cuMemAllocFromPoolAsync_ptsz)
FAKE_ALIAS(cuMemFreeAsync)
FAKE_ALIAS(cuMemFreeAsync_ptsz)
FAKE_ALIAS(cuMemPoolCreate)
FAKE_ALIAS(cuMemPoolDestroy)
FAKE_ALIAS(cuDeviceGetDefaultMemPool)
FAKE_ALIAS(cuDeviceGetMemPool)
FAKE_ALIAS(cuDeviceSetMemPool)
FAKE_ALIAS(cuMemGetDefaultMemPool)
FAKE_ALIAS(cuMemGetMemPool)
FAKE_ALIAS(cuMemSetMemPool)
FAKE_ALIAS(cuMemPoolGetAttribute)
FAKE_ALIAS(cuMemPoolSetAttribute)
FAKE_ALIAS(cuMemPoolTrimTo)
