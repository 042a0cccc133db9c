#include "gate.h"

#include <sched.h>

#include <algorithm>
#include <thread>

#include "capture_state.h"
#include "gate_registry.h"
#include "settings.h"
#include "symbols.h"

namespace gem::hook {

namespace {

uint64_t pace_mask_for(int max_inflight) {
  uint64_t round = 1;
  while (round * 2 < static_cast<uint64_t>(std::max(max_inflight / 2, 1))) round *= 2;
  return round - 1;
}

}  // namespace

Gate::Gate(CUdevice device)
    : pace_mask_(pace_mask_for(settings().max_inflight)), timer_(mu_), worker_(device, *this, timer_) {}

void Gate::reset_after_fork() {
  // The worker thread does not exist in the child; its mutex may be held by a thread that is gone.
  new (&mu_) std::mutex();
  new (&cv_open_) std::condition_variable();
  new (&cv_work_) std::condition_variable();
  open_.store(false);
  entered_.store(0);
  exited_.store(0);
  waiting_ = 0;
  worker_started_ = false;
  timer_.reset_after_fork();
  worker_.reset_after_fork();
  new (&pace_mu_) std::mutex();
  pacing_.store(0);
  program_syncs_.store(0);  // the threads that were syncing are the parent's
  pace_pending_[0] = pace_pending_[1] = false;
}

void Gate::pace(CUstream stream, bool ptsz) {
  // Pacing records an event on the program's stream and waits for an older one, on the program's
  // thread and in its capture mode: a wait is "potentially unsafe" and any use of the legacy stream
  // is illegal while a stream captures (capture_rule.h). Where the rule forbids it the launch goes
  // unpaced (captured launches never get here: gated() lets them through); with_capture_rule()
  // keeps a capture from beginning between the look and the wait.
  auto record = ptsz ? real::cuEventRecord_ptsz : real::cuEventRecord;
  if (record == nullptr || real::cuEventSynchronize == nullptr) return;
  const bool legacy = (stream == nullptr && !ptsz) || stream == CU_STREAM_LEGACY;
  with_capture_rule(legacy ? HookCall::kLegacyStream : HookCall::kUnsafe, [&] {
    if (!stream_captures(stream, ptsz)) pace_locked(stream, record);
  });
}

void Gate::pace_locked(CUstream stream, CUresult (*record)(CUevent, CUstream)) {
  const CUcontext ctx = current_gate_context();  // the context this thread launches in
  std::lock_guard<std::mutex> lk(pace_mu_);
  if (pace_ctx_ == nullptr) {
    pace_ctx_ = ctx;
    for (CUevent& e : pace_events_) {
      if (real::cuEventCreate(&e, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) e = nullptr;
    }
  }
  CUevent e = pace_events_[pace_next_];
  if (pace_ctx_ != ctx || e == nullptr) return;
  if (pace_pending_[pace_next_]) {
    pacing_.fetch_add(1, std::memory_order_relaxed);
    real::cuEventSynchronize(e);
    pacing_.fetch_sub(1, std::memory_order_relaxed);
  }
  pace_pending_[pace_next_] = record(e, stream) == CUDA_SUCCESS;
  pace_next_ ^= 1;
}

void Gate::forget_context(CUcontext ctx) {
  // Under the timer's driver_mu_ and mu_: the pacing events go too if they live in `ctx`.
  timer_.forget_context(ctx, [&] {
    std::lock_guard<std::mutex> plk(pace_mu_);
    if (ctx == nullptr || pace_ctx_ == ctx) {
      pace_ctx_ = nullptr;
      pace_events_[0] = pace_events_[1] = nullptr;
      pace_pending_[0] = pace_pending_[1] = false;
    }
  });
}

void Gate::wait_open() {
  std::unique_lock<std::mutex> lk(mu_);
  timer_.note_context(current_gate_context());
  if (!worker_started_) {
    worker_started_ = true;
    std::thread([this] { worker_.run(); }).detach();
  }
  ++waiting_;
  cv_work_.notify_one();
  cv_open_.wait(lk, [this] { return open_.load(); });
  --waiting_;
}

void Gate::open() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    open_.store(true, std::memory_order_seq_cst);
  }
  cv_open_.notify_all();
}

void Gate::wait_in_flight() const {
  while (entered_.load(std::memory_order_seq_cst) != exited_.load(std::memory_order_seq_cst)) sched_yield();
}

bool Gate::wait_for_demand_for(Micros us) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_work_.wait_for(lk, std::chrono::microseconds(us), [this] { return waiting_ > 0; });
}

bool Gate::quiet() {
  if (open_.load(std::memory_order_seq_cst)) return false;
  if (entered_.load(std::memory_order_seq_cst) != exited_.load(std::memory_order_seq_cst)) return false;
  return !has_waiters();
}

bool Gate::has_waiters() {
  std::lock_guard<std::mutex> lk(mu_);
  return waiting_ > 0;
}

}  // namespace gem::hook
