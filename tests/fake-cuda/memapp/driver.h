// The driver entry points fake-mem-app uses, reached the way the CUDA runtime reaches them.
#pragma once

#include <cuda.h>  // no __CUDA_API_VERSION_INTERNAL: names map to the CUDA 13 variants

namespace memapp {

// The legacy 32-bit forms (what cuGetProcAddress returns for a cudaVersion below 3020).
using MemGetInfoV1 = CUresult(CUDAAPI*)(unsigned int* free, unsigned int* total);
using DeviceTotalMemV1 = CUresult(CUDAAPI*)(unsigned int* bytes, CUdevice dev);

// Function pointers from cuGetProcAddress at CUDA_VERSION (the _v1 ones at 3010); with ptsz the
// per-thread-default-stream variants where cuda.h has them.
struct MemApi {
#define MEMAPP_FN(name) decltype(&::cu##name) name = nullptr;
#include "driver_fns.def"
#undef MEMAPP_FN
  MemGetInfoV1 MemGetInfo_v1 = nullptr;
  DeviceTotalMemV1 DeviceTotalMem_v1 = nullptr;
};

// dlopen("libcuda.so.1"), dlsym "cuGetProcAddress_v2", ask it for "cuGetProcAddress" and use that
// for every other look-up. Exits 1 on failure.
MemApi load_driver(bool ptsz);

// "CUDA_ERROR_OUT_OF_MEMORY" etc. through cuGetErrorName; "CUresult <n>" if unknown.
const char* error_name(const MemApi& api, CUresult r);

}  // namespace memapp
