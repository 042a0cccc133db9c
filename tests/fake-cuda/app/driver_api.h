// The driver entry points fake-cuda-app uses, reached the way the CUDA runtime reaches them.
#pragma once

#include <cuda.h>  // no __CUDA_API_VERSION_INTERNAL: names map to the CUDA 13 variants

namespace fakeapp {

// Function pointers obtained through cuGetProcAddress at CUDA_VERSION; types are those of the
// current (CUDA 13) variants, which is what a look-up at that version returns.
struct DriverApi {
  decltype(&::cuGetErrorName) GetErrorName = nullptr;
  decltype(&::cuInit) Init = nullptr;
  decltype(&::cuDeviceGetCount) DeviceGetCount = nullptr;
  decltype(&::cuDeviceGet) DeviceGet = nullptr;
  decltype(&::cuDeviceGetUuid) DeviceGetUuid = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) DevicePrimaryCtxRetain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) DevicePrimaryCtxRelease = nullptr;
  decltype(&::cuCtxSetCurrent) CtxSetCurrent = nullptr;
  decltype(&::cuModuleLoadData) ModuleLoadData = nullptr;
  decltype(&::cuModuleGetFunction) ModuleGetFunction = nullptr;
  decltype(&::cuStreamCreate) StreamCreate = nullptr;
  decltype(&::cuStreamDestroy) StreamDestroy = nullptr;
  decltype(&::cuStreamSynchronize) StreamSynchronize = nullptr;
  decltype(&::cuLaunchKernel) LaunchKernel = nullptr;
  decltype(&::cuLaunchKernelEx) LaunchKernelEx = nullptr;
  decltype(&::cuLaunchCooperativeKernel) LaunchCooperativeKernel = nullptr;
  decltype(&::cuGraphCreate) GraphCreate = nullptr;
  decltype(&::cuGraphAddKernelNode) GraphAddKernelNode = nullptr;
  decltype(&::cuGraphInstantiateWithFlags) GraphInstantiateWithFlags = nullptr;
  decltype(&::cuGraphLaunch) GraphLaunch = nullptr;
  decltype(&::cuGraphExecDestroy) GraphExecDestroy = nullptr;
  decltype(&::cuGraphDestroy) GraphDestroy = nullptr;
};

// dlopen("libcuda.so.1"), dlsym "cuGetProcAddress_v2", ask it for "cuGetProcAddress" and use
// that for every other look-up (with the per-thread flag when ptsz). Exits 1 on failure.
DriverApi load_driver(bool ptsz);

// Exits 1 with "fake-cuda-app: <fn> failed: <name> (<code>)" on stderr unless r is CUDA_SUCCESS.
void check(const DriverApi& api, CUresult r, const char* fn);

}  // namespace fakeapp
