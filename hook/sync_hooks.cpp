// The GEM_WRAP bodies of the host's waits for the GPU in cuda_hooks.def: each tells the gate of the
// calling thread's device that a program thread waits for its GPU work while the real call runs
// (Gate::program_sync_begin/end), so the token worker does not take the moment that work finishes
// for an idle program (token_machine.h, on_sync). A device no launch has reached has no gate and
// nothing is counted. Never throws; the real function is called exactly once.
#include "gate.h"
#include "gate_registry.h"
#include "mem_hooks.h"  // declares every GEM_WRAP body
#include "symbols.h"

namespace gem::hook {

namespace {

template <typename Call>
CUresult program_sync(Call&& call) {
  Gate* g = nullptr;
  try {
    g = current_gate_if_made();
  } catch (...) {
  }
  if (g == nullptr) return call();
  g->program_sync_begin();
  const CUresult r = call();
  g->program_sync_end(mono_us());
  return r;
}

}  // namespace

CUresult on_cuCtxSynchronize() { return program_sync([] { return real::cuCtxSynchronize(); }); }

CUresult on_cuCtxSynchronize_v2(CUcontext ctx) {
  return program_sync([&] { return real::cuCtxSynchronize_v2(ctx); });
}

CUresult on_cuStreamSynchronize(CUstream hStream) {
  return program_sync([&] { return real::cuStreamSynchronize(hStream); });
}

CUresult on_cuStreamSynchronize_ptsz(CUstream hStream) {
  return program_sync([&] { return real::cuStreamSynchronize_ptsz(hStream); });
}

CUresult on_cuEventSynchronize(CUevent hEvent) {
  return program_sync([&] { return real::cuEventSynchronize(hEvent); });
}

}  // namespace gem::hook
