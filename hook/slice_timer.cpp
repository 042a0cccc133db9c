#include "slice_timer.h"

#include <algorithm>

#include "capture_state.h"
#include "gate_registry.h"
#include "stats.h"
#include "symbols.h"

namespace gem::hook {

void SliceTimer::note_context(CUcontext ctx) {
  if (ctx != nullptr && std::find(contexts_.begin(), contexts_.end(), ctx) == contexts_.end()) {
    contexts_.push_back(ctx);
  }
}

std::vector<CUcontext> SliceTimer::contexts() {
  std::lock_guard<std::mutex> lk(gate_mu_);
  return contexts_;
}

void SliceTimer::forget_locked(CUcontext ctx) {
  const bool all = ctx == nullptr;
  const bool had_first = !contexts_.empty() && (all || contexts_.front() == ctx);
  contexts_.erase(std::remove_if(contexts_.begin(), contexts_.end(),
                                 [&](CUcontext c) { return all || c == ctx; }),
                  contexts_.end());
  if (had_first) {  // the hook's stream and events lived in that context
    stream_ = nullptr;
    start_event_ = end_event_ = nullptr;
    start_recorded_ = false;
  }
}

void SliceTimer::reset_after_fork() {
  contexts_.clear();
  start_recorded_ = false;
}

void SliceTimer::start(Micros now) {
  slice_start_ = now;
  record_start();
}

bool SliceTimer::sync_contexts() {
  std::lock_guard<std::mutex> dlk(driver_mu_);
  if (stopping_at_exit()) return false;
  return with_capture_rule(HookCall::kContextSync, [&] {
    for (CUcontext c : contexts()) {
      if (real::cuCtxPushCurrent_v2(c) != CUDA_SUCCESS) continue;
      real::cuCtxSynchronize();
      CUcontext popped;
      real::cuCtxPopCurrent_v2(&popped);
    }
  });
}

bool SliceTimer::push_first_context(CUcontext* ctx) {
  if (stopping_at_exit()) return false;
  const std::vector<CUcontext> ctxs = contexts();
  if (ctxs.empty() || real::cuCtxPushCurrent_v2(ctxs.front()) != CUDA_SUCCESS) return false;
  *ctx = ctxs.front();
  return true;
}

void SliceTimer::pop_context() {
  CUcontext popped;
  real::cuCtxPopCurrent_v2(&popped);
}

void SliceTimer::record_start() {
  std::lock_guard<std::mutex> dlk(driver_mu_);
  start_recorded_ = false;
  if (stopping_at_exit()) return;
  const std::vector<CUcontext> ctxs = contexts();
  if (ctxs.empty() || real::cuEventRecord == nullptr) return;
  if (real::cuCtxPushCurrent_v2(ctxs.front()) != CUDA_SUCCESS) return;
  if (stream_ == nullptr) {
    if (real::cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS ||
        real::cuEventCreate(&start_event_, CU_EVENT_DEFAULT) != CUDA_SUCCESS ||
        real::cuEventCreate(&end_event_, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
      stream_ = nullptr;
    }
  }
  if (stream_ != nullptr) start_recorded_ = real::cuEventRecord(start_event_, stream_) == CUDA_SUCCESS;
  CUcontext popped;
  real::cuCtxPopCurrent_v2(&popped);
}

void SliceTimer::drain_and_measure(Micros* used, Micros* end) {
  const bool drained = sync_contexts();
  std::lock_guard<std::mutex> dlk(driver_mu_);
  *end = mono_us();
  *used = *end - slice_start_;
  if (!drained && !stopping_at_exit()) counters().capture_drains.fetch_add(1, std::memory_order_relaxed);
  if (!drained || stopping_at_exit()) return;
  const std::vector<CUcontext> ctxs = contexts();
  if (start_recorded_ && !ctxs.empty() && real::cuCtxPushCurrent_v2(ctxs.front()) == CUDA_SUCCESS) {
    float ms = 0;
    if (real::cuEventRecord(end_event_, stream_) == CUDA_SUCCESS &&
        real::cuEventSynchronize(end_event_) == CUDA_SUCCESS &&
        real::cuEventElapsedTime_v2(&ms, start_event_, end_event_) == CUDA_SUCCESS && ms >= 0) {
      *used = std::min<Micros>(static_cast<Micros>(ms * 1000.0f), *end - slice_start_ + 1000);
    }
    CUcontext popped;
    real::cuCtxPopCurrent_v2(&popped);
  }
}

}  // namespace gem::hook
