// Initialisation and device queries.
#include <cstdio>
#include <cstring>

#include "fake_driver.h"
#include "fake_env.h"
#include "mem_model.h"

using fakecuda::Driver;

FAKE_API CUresult CUDAAPI cuInit(unsigned int Flags) {
  if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return Driver::get().init();
}

FAKE_API CUresult CUDAAPI cuDriverGetVersion(int* driverVersion) {
  if (driverVersion == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *driverVersion = 13000;  // CUDA 13.0, the toolkit the project builds against
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuDeviceGetCount(int* count) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = Driver::get().device_count();
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuDeviceGet(CUdevice* device, int ordinal) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuDeviceGetName(char* name, int len, CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  snprintf(name, static_cast<size_t>(len), "Fake CUDA GPU %d", dev);
  return CUDA_SUCCESS;
}

namespace {

// UUID of device d: fa 4e 00 .. 00 d (big-endian in the last bytes, for d > 255 too; fake_env.h).
CUresult device_uuid(CUuuid* uuid, CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  unsigned char b[16];
  fakecuda::device_uuid_bytes(dev, b);
  memcpy(uuid->bytes, b, sizeof b);
  return CUDA_SUCCESS;
}

CUresult total_mem(size_t* bytes, CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  *bytes = fakecuda::Memory::get().total();
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return device_uuid(uuid, dev); }
FAKE_API CUresult CUDAAPI cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) { return device_uuid(uuid, dev); }

FAKE_API CUresult CUDAAPI cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) { return total_mem(bytes, dev); }

// Legacy 32-bit form: saturates like a 4 GiB-limited API would have to.
FAKE_API CUresult CUDAAPI cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) {
  size_t b = 0;
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = total_mem(&b, dev)) return r;
  *bytes = b > 0xffffffffu ? 0xffffffffu : static_cast<unsigned int>(b);
  return CUDA_SUCCESS;
}

FAKE_ALIAS(cuInit)
FAKE_ALIAS(cuDriverGetVersion)
FAKE_ALIAS(cuDeviceGetCount)
FAKE_ALIAS(cuDeviceGet)
FAKE_ALIAS(cuDeviceGetName)
FAKE_ALIAS(cuDeviceGetUuid)
FAKE_ALIAS(cuDeviceGetUuid_v2)
FAKE_ALIAS(cuDeviceTotalMem_v2)
FAKE_ALIAS(cuDeviceTotalMem)
