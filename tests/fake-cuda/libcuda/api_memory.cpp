// Device memory: cuMemAlloc and its kin, cuMemFree, cuMemGetInfo. What is counted: mem_model.h.
// All of them are "potentially unsafe" during stream capture (capture_check_unsafe, capture_rules.h):
// refused, they do nothing.
#include "capture_rules.h"
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Memory;

namespace {

// The current context's device, after the capture rules for the potentially unsafe call `api`.
CUresult ctx_device(int* device, const char* api) {
  if (CUresult r = fakecuda::check_init()) return r;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (CUresult r = fakecuda::capture_check_unsafe(api)) return r;
  *device = c->device;
  return CUDA_SUCCESS;
}

CUresult mem_info(size_t* free, size_t* total, const char* api) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev, api)) return r;
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *total = Memory::get().total();
  *free = *total - Memory::get().used(dev);
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev, "cuMemAlloc")) return r;
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  return Memory::get().alloc_plain(dev, fakecuda::current_ctx(), bytesize, dptr);
}

// Frees what any allocation function returned (cuMemAlloc*, stream-ordered, graph allocations).
FAKE_API CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev, "cuMemFree")) return r;
  if (dptr == 0) return CUDA_SUCCESS;
  return Memory::get().free(dptr);
}

FAKE_API CUresult CUDAAPI cuMemGetInfo_v2(size_t* free, size_t* total) { return mem_info(free, total, "cuMemGetInfo"); }

// The other ways to get device memory, accounted the same way, so a hook's memory limit can be
// tested against them too.
FAKE_API CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev, "cuMemAllocManaged")) return r;
  if (dptr == nullptr || bytesize == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return Memory::get().alloc_plain(dev, fakecuda::current_ctx(), bytesize, dptr);
}

FAKE_API CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes, size_t Height,
                                             unsigned int ElementSizeBytes) {
  int dev = 0;
  if (CUresult r = ctx_device(&dev, "cuMemAllocPitch")) return r;
  if (dptr == nullptr || pPitch == nullptr || WidthInBytes == 0 || Height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) return CUDA_ERROR_INVALID_VALUE;
  // Rows padded to 512 bytes (the real driver's pitch alignment on current GPUs); counted pitch * Height.
  if (WidthInBytes > ~size_t{0} - 511) return CUDA_ERROR_OUT_OF_MEMORY;
  size_t pitch = (WidthInBytes + 511) & ~size_t{511};
  if (Height > Memory::get().total() / pitch) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = Memory::get().alloc_plain(dev, fakecuda::current_ctx(), pitch * Height, dptr);
  if (r == CUDA_SUCCESS) *pPitch = pitch;
  return r;
}

// Legacy 32-bit forms (cudaVersion < 3020). Addresses above 4 GiB cannot be expressed in them.
FAKE_API CUresult CUDAAPI cuMemAlloc(CUdeviceptr_v1* dptr, unsigned int bytesize) {
  (void)dptr;
  (void)bytesize;
  if (CUresult r = fakecuda::capture_check_unsafe("cuMemAlloc")) return r;
  return CUDA_ERROR_NOT_SUPPORTED;
}

FAKE_API CUresult CUDAAPI cuMemAllocPitch(CUdeviceptr_v1* dptr, unsigned int* pPitch, unsigned int WidthInBytes,
                                          unsigned int Height, unsigned int ElementSizeBytes) {
  (void)dptr;
  (void)pPitch;
  (void)WidthInBytes;
  (void)Height;
  (void)ElementSizeBytes;
  if (CUresult r = fakecuda::capture_check_unsafe("cuMemAllocPitch")) return r;
  return CUDA_ERROR_NOT_SUPPORTED;
}

FAKE_API CUresult CUDAAPI cuMemFree(CUdeviceptr_v1 dptr) {
  (void)dptr;
  if (CUresult r = fakecuda::capture_check_unsafe("cuMemFree")) return r;
  return CUDA_ERROR_NOT_SUPPORTED;
}

FAKE_API CUresult CUDAAPI cuMemGetInfo(unsigned int* free, unsigned int* total) {
  size_t f = 0, t = 0;
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mem_info(&f, &t, "cuMemGetInfo")) return r;
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
FAKE_ALIAS(cuMemAllocPitch)
