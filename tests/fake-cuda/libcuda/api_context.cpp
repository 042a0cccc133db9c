// Contexts: primary contexts are per-device singletons; the current context is per thread.
#include <algorithm>

#include "capture_rules.h"
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Driver;
using fakecuda::HandleKind;

namespace {

bool valid_ctx(CUcontext c) { return Driver::get().valid_handle(c, HandleKind::kContext); }

// As on the real driver, a context's end frees the memory allocated in it (cuMemAlloc*, arrays).
void free_context_memory(CUcontext ctx) {
  for (const void* h : fakecuda::Memory::get().on_context_destroyed(ctx)) {
    if (!Driver::get().remove_handle(h, HandleKind::kArray)) Driver::get().remove_handle(h, HandleKind::kMipmappedArray);
  }
}

CUresult create_ctx(CUcontext* pctx, CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  CUcontext c = new CUctx_st{dev, false};
  Driver::get().add_handle(c, HandleKind::kContext);
  fakecuda::ctx_stack().push_back(c);  // cuCtxCreate makes the new context current
  *pctx = c;
  return CUDA_SUCCESS;
}

CUresult destroy_ctx(CUcontext ctx) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (ctx == nullptr || ctx->primary || !Driver::get().remove_handle(ctx, HandleKind::kContext)) {
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  // Other threads may still hold it as current; their calls then fail on the handle check
  // rather than touching freed memory (the object is retired, not freed).
  auto& s = fakecuda::ctx_stack();
  s.erase(std::remove(s.begin(), s.end(), ctx), s.end());
  free_context_memory(ctx);
  return CUDA_SUCCESS;
}

CUresult push_ctx(CUcontext ctx) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!valid_ctx(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  fakecuda::ctx_stack().push_back(ctx);
  return CUDA_SUCCESS;
}

CUresult pop_ctx(CUcontext* pctx) {
  if (CUresult r = fakecuda::check_init()) return r;
  auto& s = fakecuda::ctx_stack();
  if (s.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx != nullptr) *pctx = s.back();
  s.pop_back();
  return CUDA_SUCCESS;
}

CUresult release_primary(CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!Driver::get().valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  // The primary context object itself stays: a later retain hands back the same handle. Released
  // to 0 it is destroyed, with the memory allocated in it.
  bool now_zero = false;
  if (!Driver::get().release_primary(dev, &now_zero)) return CUDA_ERROR_INVALID_CONTEXT;
  if (now_zero) free_context_memory(Driver::get().primary(dev));
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!Driver::get().valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  Driver::get().retain_primary(dev);
  *pctx = Driver::get().primary(dev);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev) { return release_primary(dev); }
FAKE_API CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) { return release_primary(dev); }

FAKE_API CUresult CUDAAPI cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  (void)flags;
  return create_ctx(pctx, dev);
}

FAKE_API CUresult CUDAAPI cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  (void)flags;
  return create_ctx(pctx, dev);
}

FAKE_API CUresult CUDAAPI cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* paramsArray, int numParams,
                                         unsigned int flags, CUdevice dev) {
  (void)paramsArray;
  (void)numParams;
  (void)flags;
  return create_ctx(pctx, dev);
}

FAKE_API CUresult CUDAAPI cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* ctxCreateParams, unsigned int flags,
                                         CUdevice dev) {
  (void)ctxCreateParams;
  (void)flags;
  return create_ctx(pctx, dev);
}

FAKE_API CUresult CUDAAPI cuCtxDestroy_v2(CUcontext ctx) { return destroy_ctx(ctx); }
FAKE_API CUresult CUDAAPI cuCtxDestroy(CUcontext ctx) { return destroy_ctx(ctx); }

FAKE_API CUresult CUDAAPI cuCtxGetCurrent(CUcontext* pctx) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pctx = fakecuda::current_ctx();
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
  if (CUresult r = fakecuda::check_init()) return r;
  auto& s = fakecuda::ctx_stack();
  if (ctx == nullptr) {  // documented as popping the top, a no-op on an empty stack
    if (!s.empty()) s.pop_back();
    return CUDA_SUCCESS;
  }
  if (!valid_ctx(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  if (s.empty()) {
    s.push_back(ctx);
  } else {
    s.back() = ctx;
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuCtxPushCurrent_v2(CUcontext ctx) { return push_ctx(ctx); }
FAKE_API CUresult CUDAAPI cuCtxPushCurrent(CUcontext ctx) { return push_ctx(ctx); }
FAKE_API CUresult CUDAAPI cuCtxPopCurrent_v2(CUcontext* pctx) { return pop_ctx(pctx); }
FAKE_API CUresult CUDAAPI cuCtxPopCurrent(CUcontext* pctx) { return pop_ctx(pctx); }

FAKE_API CUresult CUDAAPI cuCtxGetDevice(CUdevice* device) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *device = c->device;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuCtxSynchronize(void) {
  if (CUresult r = fakecuda::check_init()) return r;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr || !valid_ctx(c)) return CUDA_ERROR_INVALID_CONTEXT;
  // Illegal while any capture is in progress on the device (capture_rules.h).
  if (CUresult r = fakecuda::capture_check_device_sync(c->device, "cuCtxSynchronize")) return r;
  // A serial device: waiting for everything queued on it covers every stream of the context.
  fakecuda::DeviceSim& sim = Driver::get().sim(c->device);
  sim.wait(sim.last_enqueued());
  fakecuda::Memory::get().on_synchronize(c->device);
  return CUDA_SUCCESS;
}

FAKE_ALIAS(cuDevicePrimaryCtxRetain)
FAKE_ALIAS(cuDevicePrimaryCtxRelease_v2)
FAKE_ALIAS(cuDevicePrimaryCtxRelease)
FAKE_ALIAS(cuCtxCreate)
FAKE_ALIAS(cuCtxCreate_v2)
FAKE_ALIAS(cuCtxCreate_v3)
FAKE_ALIAS(cuCtxCreate_v4)
FAKE_ALIAS(cuCtxDestroy_v2)
FAKE_ALIAS(cuCtxDestroy)
FAKE_ALIAS(cuCtxGetCurrent)
FAKE_ALIAS(cuCtxSetCurrent)
FAKE_ALIAS(cuCtxPushCurrent_v2)
FAKE_ALIAS(cuCtxPushCurrent)
FAKE_ALIAS(cuCtxPopCurrent_v2)
FAKE_ALIAS(cuCtxPopCurrent)
FAKE_ALIAS(cuCtxGetDevice)
FAKE_ALIAS(cuCtxSynchronize)
