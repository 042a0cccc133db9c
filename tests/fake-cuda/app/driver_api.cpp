#include "driver_api.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>

namespace fakeapp {

namespace {

[[noreturn]] void fail(const char* msg, const char* detail) {
  fprintf(stderr, "fake-cuda-app: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
  fflush(stderr);
  _exit(1);  // other threads may be inside the driver: skip static destructors
}

using GetProcAddressFn = decltype(&::cuGetProcAddress);  // the 5-argument _v2 form

template <typename Fn>
void resolve(GetProcAddressFn gpa, const char* name, cuuint64_t flags, Fn* out) {
  void* p = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult r = gpa(name, &p, CUDA_VERSION, flags, &status);
  if (r != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS || p == nullptr) {
    fprintf(stderr, "fake-cuda-app: cuGetProcAddress(\"%s\") failed: CUresult %d, status %d\n", name,
            static_cast<int>(r), static_cast<int>(status));
    fflush(stderr);
    _exit(1);
  }
  *out = reinterpret_cast<Fn>(p);
}

}  // namespace

DriverApi load_driver(bool ptsz) {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (h == nullptr) fail("dlopen(libcuda.so.1) failed", dlerror());
  auto first = reinterpret_cast<GetProcAddressFn>(dlsym(h, "cuGetProcAddress_v2"));
  if (first == nullptr) fail("dlsym(cuGetProcAddress_v2) failed", dlerror());

  // As the runtime does: the pointer handed back for "cuGetProcAddress" serves every later
  // look-up, so a hook that wraps it sees all of them.
  GetProcAddressFn gpa = nullptr;
  void* p = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult r = first("cuGetProcAddress", &p, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  if (r != CUDA_SUCCESS || p == nullptr) {
    fprintf(stderr, "fake-cuda-app: cuGetProcAddress_v2(\"cuGetProcAddress\") failed: CUresult %d, status %d\n",
            static_cast<int>(r), static_cast<int>(status));
    _exit(1);
  }
  gpa = reinterpret_cast<GetProcAddressFn>(p);

  const cuuint64_t flags = ptsz ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_DEFAULT;
  DriverApi a;
  resolve(gpa, "cuGetErrorName", flags, &a.GetErrorName);
  resolve(gpa, "cuInit", flags, &a.Init);
  resolve(gpa, "cuDeviceGetCount", flags, &a.DeviceGetCount);
  resolve(gpa, "cuDeviceGet", flags, &a.DeviceGet);
  resolve(gpa, "cuDeviceGetUuid", flags, &a.DeviceGetUuid);
  resolve(gpa, "cuDevicePrimaryCtxRetain", flags, &a.DevicePrimaryCtxRetain);
  resolve(gpa, "cuDevicePrimaryCtxRelease", flags, &a.DevicePrimaryCtxRelease);
  resolve(gpa, "cuCtxSetCurrent", flags, &a.CtxSetCurrent);
  resolve(gpa, "cuModuleLoadData", flags, &a.ModuleLoadData);
  resolve(gpa, "cuModuleGetFunction", flags, &a.ModuleGetFunction);
  resolve(gpa, "cuStreamCreate", flags, &a.StreamCreate);
  resolve(gpa, "cuStreamDestroy", flags, &a.StreamDestroy);
  resolve(gpa, "cuStreamSynchronize", flags, &a.StreamSynchronize);
  resolve(gpa, "cuLaunchKernel", flags, &a.LaunchKernel);
  resolve(gpa, "cuLaunchKernelEx", flags, &a.LaunchKernelEx);
  resolve(gpa, "cuLaunchCooperativeKernel", flags, &a.LaunchCooperativeKernel);
  resolve(gpa, "cuGraphCreate", flags, &a.GraphCreate);
  resolve(gpa, "cuGraphAddKernelNode", flags, &a.GraphAddKernelNode);
  resolve(gpa, "cuGraphInstantiateWithFlags", flags, &a.GraphInstantiateWithFlags);
  resolve(gpa, "cuGraphLaunch", flags, &a.GraphLaunch);
  resolve(gpa, "cuGraphExecDestroy", flags, &a.GraphExecDestroy);
  resolve(gpa, "cuGraphDestroy", flags, &a.GraphDestroy);
  return a;
}

void check(const DriverApi& api, CUresult r, const char* fn) {
  if (r == CUDA_SUCCESS) return;
  const char* name = nullptr;
  if (api.GetErrorName == nullptr || api.GetErrorName(r, &name) != CUDA_SUCCESS || name == nullptr) {
    name = "unknown CUresult";
  }
  fprintf(stderr, "fake-cuda-app: %s failed: %s (%d)\n", fn, name, static_cast<int>(r));
  fflush(stderr);
  _exit(1);
}

}  // namespace fakeapp
