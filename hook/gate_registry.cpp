#include "gate_registry.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "gate.h"
#include "settings.h"
#include "symbols.h"

namespace gem::hook {

namespace {

constexpr int kMaxDevices = 64;

std::atomic<Gate*> g_gates[kMaxDevices];
std::atomic<bool> g_exiting{false};
std::mutex g_gates_mu;

// initial-exec: the hook is loaded at start-up (LD_PRELOAD), so its two words of TLS sit in the
// static block and each launch reads them without a call to __tls_get_addr.
__attribute__((tls_model("initial-exec"))) thread_local CUcontext tls_ctx = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local Gate* tls_gate = nullptr;

void after_fork_child() {
  for (auto& g : g_gates) {
    if (Gate* gate = g.load()) gate->reset_after_fork();
  }
}

// Under g_gates_mu.
Gate* make_gate(CUdevice dev) {
  // Registered after the driver's own exit handlers, so it runs before them.
  static const bool once = [] {
    std::atexit(stop_gates_at_exit);
    return pthread_atfork(nullptr, nullptr, after_fork_child) == 0;
  }();
  (void)once;
  return new Gate(dev);  // lives for the process: launches may come during exit
}

// The gate of the calling thread's current context; `make`: make it if the device has none yet.
Gate* lookup_gate(bool make) {
  static const bool enabled = settings().enabled && real::cuCtxGetCurrent != nullptr;
  if (!enabled) return nullptr;
  CUcontext ctx = nullptr;
  if (real::cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr) return nullptr;
  if (ctx == tls_ctx) return tls_gate;
  CUdevice dev = 0;
  if (real::cuCtxGetDevice == nullptr || real::cuCtxGetDevice(&dev) != CUDA_SUCCESS || dev < 0 ||
      dev >= kMaxDevices) {
    return nullptr;
  }
  Gate* g = g_gates[dev].load(std::memory_order_acquire);
  if (g == nullptr) {
    if (!make) return nullptr;
    std::lock_guard<std::mutex> lk(g_gates_mu);
    g = g_gates[dev].load(std::memory_order_relaxed);
    if (g == nullptr) {
      g = make_gate(dev);
      g_gates[dev].store(g, std::memory_order_release);
    }
  }
  tls_ctx = ctx;
  tls_gate = g;
  return g;
}

}  // namespace

Gate* current_gate() { return lookup_gate(true); }

Gate* current_gate_if_made() { return lookup_gate(false); }

CUcontext current_gate_context() { return tls_ctx; }

void forget_contexts(CUdevice device, CUcontext ctx) {
  for (int d = 0; d < kMaxDevices; ++d) {
    if (device >= 0 && d != device) continue;
    if (Gate* g = g_gates[d].load(std::memory_order_acquire)) g->forget_context(ctx);
  }
}

bool gates_quiet() {
  for (auto& slot : g_gates) {
    Gate* g = slot.load(std::memory_order_acquire);
    if (g != nullptr && !g->quiet()) return false;
  }
  return true;
}

void stop_gates_at_exit() {
  g_exiting.store(true);
  // Wait for a drain in progress; afterwards the workers see the flag and leave the driver alone.
  for (auto& slot : g_gates) {
    if (Gate* g = slot.load()) g->wait_driver_idle();
  }
}

bool stopping_at_exit() { return g_exiting.load(); }

}  // namespace gem::hook
