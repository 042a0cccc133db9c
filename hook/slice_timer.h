// The GPU time of one gate's slices: the contexts launched on through the gate, the drain at the end
// of a slice (cuCtxSynchronize on each of them, which covers every stream of a context,
// non-blocking and per-thread ones included) and the measurement of the slice's GPU time with two
// events on a stream of the hook's own, recorded at the slice's start and after the drain.
//
// Units: Micros (µs on gem/clock.h's monotonic clock); the events' milliseconds are converted here.
// Ownership: one per Gate (a member), living as long as the gate (the process). The stream and
// events are made in the first context launched on and belong to it: when that context is
// forgotten they are dropped (the driver destroys them with the context), and made again in the
// next first context at the next slice.
// Threads and locks: start(), started(), sync_contexts() and drain_and_measure() are the token
// worker's (one thread); note_context() is called by launching threads holding the gate's mutex;
// forget_context() and wait_driver_idle() by any thread; reset_after_fork() in a fork()ed child.
// driver_mu_ is held while the contexts are used in the driver (so forget_context() waits for a
// drain in progress) and is always taken before the gate's mutex. The list of contexts is guarded
// by the gate's mutex, borrowed rather than owned: wait_open() notes a context in the critical
// section in which it asks the worker for the token, so the worker's drain always sees it.
// From stop_gates_at_exit() on, nothing here calls into the driver.
#pragma once

#include <mutex>
#include <vector>

#include "driver_api.h"
#include "gem/clock.h"

namespace gem::hook {

class SliceTimer {
 public:
  /// `gate_mu`: the gate's mutex, which guards the list of contexts.
  explicit SliceTimer(std::mutex& gate_mu) : gate_mu_(gate_mu) {}
  SliceTimer(const SliceTimer&) = delete;
  SliceTimer& operator=(const SliceTimer&) = delete;

  /// Adds `ctx` (nullptr: nothing) to the contexts launched on. The caller holds the gate's mutex.
  void note_context(CUcontext ctx);

  /// A slice starts at `now`: records the start event on the hook's stream (made here, in the
  /// first context launched on, if there is none yet).
  void start(Micros now);
  /// When the slice in progress started (the last start()).
  Micros started() const { return slice_start_; }

  /// Waits for the GPU: cuCtxSynchronize on each context launched on. False (nothing waited for)
  /// while a stream capture is in progress: synchronising a context then invalidates the capture
  /// in every capture mode (capture_rule.h), and at exit.
  bool sync_contexts();

  /// Drains the GPU (sync_contexts()) and measures the slice: *end is now, *used the slice's GPU
  /// time from the events (at most *end - started() + 1 ms), or *end - started() when the events
  /// cannot say or the drain could not wait (a capture in progress: the slice is charged its wall
  /// time, and what is still queued runs on, bounded by the pacing). The caller has shut the gate
  /// and waited for launches inside the driver.
  void drain_and_measure(Micros* used, Micros* end);

  /// The context `ctx` (nullptr: every context) is about to be destroyed: waits for a drain in
  /// progress, then drops it and the hook's stream and events if they live in it. `also()` runs
  /// last, with driver_mu_ and the gate's mutex still held (the gate drops its pacing events).
  template <typename F>
  void forget_context(CUcontext ctx, F&& also) {
    std::lock_guard<std::mutex> dlk(driver_mu_);
    std::lock_guard<std::mutex> lk(gate_mu_);
    forget_locked(ctx);
    also();
  }

  /// Runs f(stream) with the first context launched on pushed current, under driver_mu_ (so no
  /// drain or context destruction runs meanwhile); `stream` is the hook's own stream in it, or
  /// nullptr before the first slice. False (f not run) when no context is known or at exit.
  template <typename F>
  bool run_in_context(F&& f) {
    std::lock_guard<std::mutex> dlk(driver_mu_);
    CUcontext ctx = nullptr;
    if (!push_first_context(&ctx)) return false;
    f(stream_);
    pop_context();
    return true;
  }

  /// Returns once no drain is in progress.
  void wait_driver_idle() { std::lock_guard<std::mutex> lk(driver_mu_); }

  /// In a fork()ed child: no contexts, no start recorded (the gate has re-made its mutex).
  void reset_after_fork();

 private:
  void forget_locked(CUcontext ctx);
  bool push_first_context(CUcontext* ctx);
  void pop_context();
  void record_start();
  /// The contexts launched on, copied under the gate's mutex.
  std::vector<CUcontext> contexts();

  std::mutex& gate_mu_;
  std::vector<CUcontext> contexts_;  // contexts launched on (under gate_mu_), the first one holds stream_
  // Held while contexts_ are used in the driver, and by forget_context().
  std::mutex driver_mu_;
  // Worker-thread state, also reset by forget_context() under driver_mu_.
  CUstream stream_ = nullptr;
  CUevent start_event_ = nullptr, end_event_ = nullptr;
  bool start_recorded_ = false;
  Micros slice_start_ = 0;
};

}  // namespace gem::hook
