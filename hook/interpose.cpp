// The symbols libgemhook.so.1 exports (gemhook.map): dlsym, the driver's look-up functions and the
// kernel launch paths. Nothing here may throw into the caller or block inside a look-up.
#include <dlfcn.h>

#include <atomic>

#include <cstring>

#include "capture_state.h"
#include "gate.h"
#include "gate_registry.h"
#include "mem_hooks.h"
#include "nvml_hooks.h"
#include "stats.h"
#include "symbols.h"

#define GEM_EXPORT __attribute__((visibility("default")))

namespace gem::hook {
namespace {

// Runs a real launch through the gate of the current device. Any failure of the hook's own
// machinery lets the launch through: a broken hook must never break the program.
// A launch onto a capturing stream is recorded into a graph, not run: it is no GPU work, so it
// passes without the token, is not paced and does not count as the client's activity; the work is
// the graph's launch (docs/design.md, "Stream capture"). Without a capture in progress that costs
// one atomic load.
template <typename F>
CUresult gated(LaunchId id, CUstream stream, bool ptsz, F&& launch) {
  if (__builtin_expect(capture_in_progress(), 0) && stream_captures(stream, ptsz)) {
    counters().captured_launches.fetch_add(1, std::memory_order_relaxed);
    return launch();
  }
  counters().launches[id].fetch_add(1, std::memory_order_relaxed);
  try {
    Gate* g = current_gate();
    if (g != nullptr) return g->run(stream, ptsz, launch);
  } catch (...) {
  }
  return launch();
}

// Set once the driver is resolved and the at-exit report installed: launches then check one flag.
std::atomic<bool> g_ready{false};

bool ready() {
  if (__builtin_expect(g_ready.load(std::memory_order_acquire), 1)) return true;
  if (!resolve(true)) return false;
  install_stats_report();
  g_ready.store(true, std::memory_order_release);
  return true;
}

}  // namespace
}  // namespace gem::hook

using namespace gem::hook;

#define GEM_LAUNCH(name, params, args, stream, ptsz)                                 \
  extern "C" GEM_EXPORT CUresult name params {                                       \
    if (!ready() || real::name == nullptr) return CUDA_ERROR_NOT_INITIALIZED;        \
    return gated(kId_##name, stream, ptsz, [&] { return real::name args; });         \
  }
#include "cuda_hooks.def"

// A context about to be destroyed must not be in a gate's hands: the worker could be draining it.
#define GEM_CTX_END(name, params, args, device, ctx)                                 \
  extern "C" GEM_EXPORT CUresult name params {                                       \
    if (!resolve(true) || real::name == nullptr) return CUDA_ERROR_NOT_INITIALIZED;  \
    forget_contexts(device, ctx);                                                    \
    return real::name args;                                                          \
  }
#include "cuda_hooks.def"

// Memory accounting and views: the bodies are in mem_hooks.cpp.
#define GEM_WRAP(name, params, args)                                                 \
  extern "C" GEM_EXPORT CUresult name params {                                       \
    if (!ready() || real::name == nullptr) return CUDA_ERROR_NOT_INITIALIZED;        \
    return on_##name args;                                                           \
  }
#include "cuda_hooks.def"

// CUDA 12+ runtimes and PyTorch find every driver function through these; the hook hands back
// its wrapper wherever the driver hands back a function it wraps, itself included (CUDA Programming Guide,
// "Driver Entry Point Access"; CUDA Driver API, cuGetProcAddress).
extern "C" GEM_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion,
                                                   cuuint64_t flags, CUdriverProcAddressQueryResult* symbolStatus) {
  if (!resolve(true) || real::cuGetProcAddress_v2 == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  const CUresult r = real::cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, symbolStatus);
  if (r == CUDA_SUCCESS && pfn != nullptr) *pfn = wrap(*pfn);
  return r;
}

extern "C" GEM_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  if (!resolve(true) || real::cuGetProcAddress == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  const CUresult r = real::cuGetProcAddress(symbol, pfn, cudaVersion, flags);
  if (r == CUDA_SUCCESS && pfn != nullptr) *pfn = wrap(*pfn);
  return r;
}

// The CUDA runtime dlopen()s libcuda.so.1 and dlsym()s cuGetProcAddress_v2 on that handle, so an
// exported cuGetProcAddress_v2 alone is never called; PyTorch, cuBLAS and cuDNN dlsym launch
// functions directly too. Only "cu*" names are looked at, and nothing here blocks.
// RTLD_NEXT means "after the caller's object", which glibc reads from the return address: that
// case jumps straight to the real dlsym (a sibling call) so it sees our caller's address, not ours.
// Not instrumented: sanitizer runtimes call dlsym(RTLD_NEXT, ...) before their own set-up.
extern "C" GEM_EXPORT __attribute__((no_sanitize("address", "undefined"), optimize("optimize-sibling-calls")))
void* dlsym(void* handle, const char* name) {
  if (handle == RTLD_NEXT) return real_dlsym_fn()(handle, name);
  void* p = real_dlsym(handle, name);
  // Driver API names are "cu" + an upper-case letter; "cuda*" runtime names are not ours.
  if (p != nullptr && name[0] == 'c' && name[1] == 'u' && name[2] >= 'A' && name[2] <= 'Z') return wrap(p);
  // NVML's memory figures (nvml_hooks.cpp).
  if (p != nullptr && name[0] == 'n' && name[1] == 'v' && name[2] == 'm' && name[3] == 'l') return nvml_wrapper(name, p);
  return p;
}
