// Device memory: accounted per device (16 GiB each), addresses are fake and never dereferenced,
// so tests can "allocate" far more than the host has.
#include "fake_driver.h"

using fakecuda::Driver;

namespace {

CUresult ctx_device(int* device) {
  if (CUresult r = fakecuda::check_init()) return r;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *device = c->device;
  return CUDA_SUCCESS;
}

CUresult mem_info(size_t* free, size_t* total) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev)) return r;
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *total = Driver::kDeviceMemBytes;
  *free = Driver::kDeviceMemBytes - Driver::get().mem_used(dev);
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev)) return r;
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  return Driver::get().mem_alloc(dev, bytesize, dptr);
}

FAKE_API CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev)) return r;
  if (dptr == 0) return CUDA_SUCCESS;
  return Driver::get().mem_free(dptr);
}

FAKE_API CUresult CUDAAPI cuMemGetInfo_v2(size_t* free, size_t* total) { return mem_info(free, total); }

// The other ways to get device memory, accounted the same way, so a hook's memory limit can be
// tested against them too.
FAKE_API CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev)) return r;
  if (dptr == nullptr || bytesize == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return Driver::get().mem_alloc(dev, bytesize, dptr);
}

FAKE_API CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes, size_t Height,
                                             unsigned int ElementSizeBytes) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev)) return r;
  if (dptr == nullptr || pPitch == nullptr || WidthInBytes == 0 || Height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) return CUDA_ERROR_INVALID_VALUE;
  size_t pitch = (WidthInBytes + 511) & ~size_t{511};
  if (Height > Driver::kDeviceMemBytes / pitch) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = Driver::get().mem_alloc(dev, pitch * Height, dptr);
  if (r == CUDA_SUCCESS) *pPitch = pitch;
  return r;
}

namespace {

// Stream-ordered forms complete at once: the fake has no pool to defer into.
CUresult alloc_async(CUdeviceptr* dptr, size_t bytesize, CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  return Driver::get().mem_alloc(t.device, bytesize, dptr);
}

CUresult free_async(CUdeviceptr dptr, CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  return Driver::get().mem_free(dptr);
}

}  // namespace

FAKE_API CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return alloc_async(dptr, bytesize, hStream, false);
}
FAKE_API CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  return alloc_async(dptr, bytesize, hStream, true);
}
FAKE_API CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) { return free_async(dptr, hStream, false); }
FAKE_API CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  return free_async(dptr, hStream, true);
}

// Legacy 32-bit forms (cudaVersion < 3020). Addresses above 4 GiB cannot be expressed in them.
FAKE_API CUresult CUDAAPI cuMemAlloc(CUdeviceptr_v1* dptr, unsigned int bytesize) {
  (void)dptr;
  (void)bytesize;
  return CUDA_ERROR_NOT_SUPPORTED;
}

FAKE_API CUresult CUDAAPI cuMemFree(CUdeviceptr_v1 dptr) {
  (void)dptr;
  return CUDA_ERROR_NOT_SUPPORTED;
}

FAKE_API CUresult CUDAAPI cuMemGetInfo(unsigned int* free, unsigned int* total) {
  size_t f = 0, t = 0;
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mem_info(&f, &t)) return r;
  *free = f > 0xffffffffu ? 0xffffffffu : static_cast<unsigned int>(f);
  *total = t > 0xffffffffu ? 0xffffffffu : static_cast<unsigned int>(t);
  return CUDA_SUCCESS;
}

FAKE_ALIAS(cuMemAlloc_v2)
FAKE_ALIAS(cuMemFree_v2)
FAKE_ALIAS(cuMemGetInfo_v2)
FAKE_ALIAS(cuMemAlloc)
FAKE_ALIAS(cuMemFree)
FAKE_ALIAS(cuMemGetInfo)
FAKE_ALIAS(cuMemAllocManaged)
FAKE_ALIAS(cuMemAllocPitch_v2)
FAKE_ALIAS(cuMemAllocAsync)
FAKE_ALIAS(cuMemAllocAsync_ptsz)
FAKE_ALIAS(cuMemFreeAsync)
FAKE_ALIAS(cuMemFreeAsync_ptsz)
