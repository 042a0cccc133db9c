#include "driver.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>

namespace capapp {

namespace {

[[noreturn]] void fail(const char* what, const char* detail, int r = 0, int status = 0) {
  fprintf(stderr, "fake-capture-app: %s%s%s (CUresult %d, status %d)\n", what, detail ? ": " : "",
          detail ? detail : "", r, status);
  fflush(stderr);
  _exit(1);
}

using GetProcAddressFn = decltype(&::cuGetProcAddress);  // the 5-argument _v2 form

template <typename Fn>
void resolve(GetProcAddressFn gpa, const char* name, int version, Fn* out) {
  void* p = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult r = gpa(name, &p, version, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  if (r != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS || p == nullptr) {
    fail("cuGetProcAddress failed", name, r, status);
  }
  *out = reinterpret_cast<Fn>(p);
}

}  // namespace

CaptureApi load_driver() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (h == nullptr) fail("dlopen(libcuda.so.1) failed", dlerror());
  auto first = reinterpret_cast<GetProcAddressFn>(dlsym(h, "cuGetProcAddress_v2"));
  if (first == nullptr) fail("dlsym(cuGetProcAddress_v2) failed", dlerror());
  // The pointer handed back for "cuGetProcAddress" serves every later look-up, so a hook that
  // wraps it sees all of them.
  GetProcAddressFn gpa = nullptr;
  resolve(first, "cuGetProcAddress", 12000, &gpa);
  CaptureApi a;
#define CAPAPP_FN(name) resolve(gpa, "cu" #name, CUDA_VERSION, &a.name);
#include "driver_fns.def"
#undef CAPAPP_FN
  return a;
}

const char* error_name(const CaptureApi& api, CUresult r) {
  const char* name = nullptr;
  if (api.GetErrorName(r, &name) == CUDA_SUCCESS && name != nullptr) return name;
  static thread_local char buf[32];
  snprintf(buf, sizeof buf, "CUresult %d", static_cast<int>(r));
  return buf;
}

void check(const CaptureApi& api, CUresult r, const char* fn) {
  if (r == CUDA_SUCCESS) return;
  fprintf(stderr, "fake-capture-app: %s failed: %s (%d)\n", fn, error_name(api, r), static_cast<int>(r));
  fflush(stderr);
  _exit(1);
}

}  // namespace capapp
