// Modules, functions and kernel launches. A function named "sleep_<us>" occupies its device for
// <us> microseconds; that is the only kind of kernel the stand-in knows.
#include <cstdlib>
#include <cstring>

#include "capture_rules.h"
#include "fake_driver.h"

using fakecuda::Driver;
using fakecuda::HandleKind;

namespace fakecuda {

namespace {

CUresult submit_target(int device, CUstream s, bool ptsz, StreamTarget* t) {
  CUcontext c = current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (CUresult r = resolve_stream(s, ptsz, t)) return r;
  if (t->device != device || c->device != device) return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}

}  // namespace

CUresult check_submit(int device, CUstream s, bool ptsz, const char* api) {
  StreamTarget t;
  if (CUresult r = submit_target(device, s, ptsz, &t)) return r;
  CUgraph g = nullptr;
  return capture_enqueue(t, api, &g);
}

CUresult submit_kernel(int device, Nanos duration_ns, CUstream s, bool ptsz, const char* api, uint64_t* seq_out) {
  StreamTarget t;
  if (CUresult r = submit_target(device, s, ptsz, &t)) return r;
  CUgraph g = nullptr;
  if (CUresult r = capture_enqueue(t, api, &g)) return r;
  if (g != nullptr) {  // captured into the graph, not run
    CUgraphNode node = nullptr;
    add_node(g, duration_ns, &node);
    if (seq_out != nullptr) *seq_out = 0;
    return CUDA_SUCCESS;
  }
  Op op;
  op.kind = Op::Kind::kKernel;
  op.duration_ns = duration_ns;
  op.api = api;
  uint64_t seq = Driver::get().sim(device).enqueue(std::move(op));
  note_enqueued(t, seq);
  if (seq_out != nullptr) *seq_out = seq;
  return CUDA_SUCCESS;
}

}  // namespace fakecuda

namespace {

bool parse_sleep_name(const char* name, fakecuda::Nanos* ns) {
  static const char kPrefix[] = "sleep_";
  if (strncmp(name, kPrefix, sizeof kPrefix - 1) != 0) return false;
  const char* digits = name + sizeof kPrefix - 1;
  if (*digits < '0' || *digits > '9') return false;
  char* end = nullptr;
  unsigned long long us = strtoull(digits, &end, 10);
  if (*end != '\0' || us > 3600ull * 1000000) return false;  // at most an hour: no overflow
  *ns = static_cast<fakecuda::Nanos>(us) * 1000;
  return true;
}

bool valid_dims(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz) {
  return gx && gy && gz && bx && by && bz;
}

CUresult launch_fn(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   CUstream s, bool ptsz, const char* api) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (fakecuda::current_ctx() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (!Driver::get().valid_handle(f, HandleKind::kFunction)) return CUDA_ERROR_INVALID_HANDLE;
  if (!valid_dims(gx, gy, gz, bx, by, bz)) return CUDA_ERROR_INVALID_VALUE;
  return fakecuda::submit_kernel(f->device, f->duration_ns, s, ptsz, api);
}

CUresult launch_ex(const CUlaunchConfig* config, CUfunction f, bool ptsz, const char* api) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (config->numAttrs != 0 && config->attrs == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return launch_fn(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX, config->blockDimY,
                   config->blockDimZ, config->hStream, ptsz, api);
}

}  // namespace

FAKE_API CUresult CUDAAPI cuModuleLoadData(CUmodule* module, const void* image) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto* m = new CUmod_st();
  m->device = c->device;
  Driver::get().add_handle(m, HandleKind::kModule);
  *module = m;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuModuleUnload(CUmodule hmod) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Driver::get().remove_handle(hmod, HandleKind::kModule) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

FAKE_API CUresult CUDAAPI cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (hfunc == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_handle(hmod, HandleKind::kModule)) return CUDA_ERROR_INVALID_HANDLE;
  fakecuda::Nanos ns = 0;
  if (!parse_sleep_name(name, &ns)) return CUDA_ERROR_NOT_FOUND;
  std::lock_guard<std::mutex> lk(hmod->mu);
  CUfunction& f = hmod->functions[name];
  if (f == nullptr) {
    f = new CUfunc_st{hmod->device, ns};
    Driver::get().add_handle(f, HandleKind::kFunction);
  }
  *hfunc = f;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                         unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                         unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                         void** kernelParams, void** extra) {
  (void)sharedMemBytes;
  (void)kernelParams;
  (void)extra;
  return launch_fn(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, false, "launch");
}

FAKE_API CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                              unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                              unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                              void** kernelParams, void** extra) {
  (void)sharedMemBytes;
  (void)kernelParams;
  (void)extra;
  return launch_fn(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, true, "launch_ptsz");
}

FAKE_API CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                           void** extra) {
  (void)kernelParams;
  (void)extra;
  return launch_ex(config, f, false, "ex");
}

FAKE_API CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                                void** extra) {
  (void)kernelParams;
  (void)extra;
  return launch_ex(config, f, true, "ex_ptsz");
}

FAKE_API CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                    unsigned int gridDimZ, unsigned int blockDimX,
                                                    unsigned int blockDimY, unsigned int blockDimZ,
                                                    unsigned int sharedMemBytes, CUstream hStream,
                                                    void** kernelParams) {
  (void)sharedMemBytes;
  (void)kernelParams;
  return launch_fn(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, false, "coop");
}

FAKE_API CUresult CUDAAPI cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                         unsigned int gridDimZ, unsigned int blockDimX,
                                                         unsigned int blockDimY, unsigned int blockDimZ,
                                                         unsigned int sharedMemBytes, CUstream hStream,
                                                         void** kernelParams) {
  (void)sharedMemBytes;
  (void)kernelParams;
  return launch_fn(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, true, "coop_ptsz");
}

FAKE_ALIAS(cuModuleLoadData)
FAKE_ALIAS(cuModuleUnload)
FAKE_ALIAS(cuModuleGetFunction)
FAKE_ALIAS(cuLaunchKernel)
FAKE_ALIAS(cuLaunchKernel_ptsz)
FAKE_ALIAS(cuLaunchKernelEx)
FAKE_ALIAS(cuLaunchKernelEx_ptsz)
FAKE_ALIAS(cuLaunchCooperativeKernel)
FAKE_ALIAS(cuLaunchCooperativeKernel_ptsz)
