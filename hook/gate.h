// The token gate of one GPU in this process: kernel launches on that GPU pass only while the gate is
// open, which is while the client holds the GPU's time-slice token (or while no daemon answers and
// the gate runs unthrottled; see token_worker.h).
//
// Fast path (gate open): two atomic increments and one atomic load, no system call, no lock.
// Launching threads that find the gate shut wait on a condition variable of this gate only, so
// allocations and queries on other threads never wait for a token; the first of them starts the
// gate's worker thread. Every pace_mask_ + 1 launches a launching thread paces its stream (pace())
// so the work queued on the GPU, which the drain at the end of a slice waits for, stays bounded
// (GEMINI_MAX_INFLIGHT).
//
// The parts, one job each:
//   gate.h            this class: the launch fast path, waiting at a shut gate, pacing, open/shut
//   token_worker.h    the worker thread: the token protocol with the pod manager
//   slice_timer.h     the contexts launched on, the drain, the slice's GPU time (events)
//   gate_registry.h   one gate per device, current_gate(), fork and exit, contexts ending
//   settings.h        the process's settings, read once from the environment
//
// Ownership: a Gate is made by the registry, once per device, and never destroyed; it owns its
// SliceTimer and TokenWorker. Thread-safety: run() and forget_context() are thread-safe; the
// worker-side calls are the TokenWorker's; reset_after_fork() runs in a fork()ed child only.
// Locks, always taken in this order: the SliceTimer's driver_mu_, then mu_, then pace_mu_; none
// is held while a launch runs. pace() holds the capture rule's lock (shared, capture_state.h)
// around pace_mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "driver_api.h"
#include "slice_timer.h"
#include "token_worker.h"

namespace gem::hook {

class Gate {
 public:
  /// `device`: CUDA device ordinal. Made once per device by the registry and never destroyed.
  explicit Gate(CUdevice device);
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  /// Runs `launch` (a call into the real driver) when the token allows; `stream` is the stream it
  /// launches onto (`ptsz`: stream 0 is the per-thread default stream). Thread-safe.
  template <typename F>
  CUresult run(CUstream stream, bool ptsz, F&& launch) {
    for (;;) {
      const uint64_t n = entered_.fetch_add(1, std::memory_order_seq_cst);
      if (open_.load(std::memory_order_seq_cst)) {
        const CUresult r = launch();
        exited_.fetch_add(1, std::memory_order_release);
        if ((n & pace_mask_) == pace_mask_) pace(stream, ptsz);
        return r;
      }
      exited_.fetch_add(1, std::memory_order_release);
      wait_open();
    }
  }

  /// Forget threads and connections after fork(): the child starts with a shut gate and no worker.
  void reset_after_fork();

  /// The context `ctx` (nullptr: every context of this device) is about to be destroyed: waits for
  /// a drain in progress, then drops it and the hook's own stream and events in it. Thread-safe.
  void forget_context(CUcontext ctx);

  /// Returns once no drain is in progress.
  void wait_driver_idle() { timer_.wait_driver_idle(); }

  // Worker side: called by the gate's TokenWorker only.

  /// Opens the gate and wakes the launching threads waiting at it.
  void open();
  /// Shuts the gate: launches from now on wait (those already past it go on).
  void shut() { open_.store(false, std::memory_order_seq_cst); }
  /// Returns once every launch that passed the gate has left the driver.
  void wait_in_flight() const;
  /// The same, waiting at most `us` µs: true when a thread waits at the gate.
  bool wait_for_demand_for(Micros us);
  /// Whether a launching thread waits at the gate now.
  bool has_waiters();
  /// Launches that reached the gate / left it so far (each attempt counts, even one that waited).
  uint64_t entered() const { return entered_.load(); }
  uint64_t exited() const { return exited_.load(); }
  /// Whether a launching thread waits in pace() (busy, not idle).
  bool pacing() const { return pacing_.load(std::memory_order_relaxed) > 0; }

  // Program side: a thread of the program enters / leaves a call that waits for the GPU
  // (cuCtxSynchronize, cuStreamSynchronize, cuEventSynchronize; sync_hooks.cpp). Thread-safe.

  /// Before the real call.
  void program_sync_begin() { program_syncs_.fetch_add(1, std::memory_order_seq_cst); }
  /// After it returned; `now_us`: mono_us() then. The time is stored before the count drops, so a
  /// reader that sees no sync in progress (program_syncing(), read first) sees its time.
  void program_sync_end(Micros now_us) {
    program_synced_at_.store(now_us, std::memory_order_relaxed);
    program_syncs_.fetch_sub(1, std::memory_order_release);
  }

  // Worker side: whether a program thread waits for the GPU now; when one last returned (µs, 0: never).
  bool program_syncing() const { return program_syncs_.load(std::memory_order_acquire) > 0; }
  Micros program_synced_at() const { return program_synced_at_.load(std::memory_order_relaxed); }

  /// Whether the gate is shut with no launch inside the driver and none waiting at it: the client
  /// neither holds nor wants this device's token. For the cache emptier (cache_emptier.h); takes
  /// mu_ briefly. Thread-safe.
  bool quiet();

 private:
  void wait_open();
  void pace(CUstream stream, bool ptsz);
  /// pace()'s record and wait, once the capture rule allowed them.
  void pace_locked(CUstream stream, CUresult (*record)(CUevent, CUstream));

  // Every pace_mask_ + 1 launches the launching thread records an event on its stream and waits for
  // the one recorded two rounds before, so at most about 2 * (pace_mask_ + 1) launches of a stream
  // are queued on the GPU: that is the most the drain at the end of a slice can take.
  const uint64_t pace_mask_;
  std::mutex pace_mu_;
  std::atomic<int> pacing_{0};  // threads waiting in pace(): busy, not idle
  CUcontext pace_ctx_ = nullptr;
  CUevent pace_events_[2] = {nullptr, nullptr};
  bool pace_pending_[2] = {false, false};
  int pace_next_ = 0;
  std::atomic<bool> open_{false};
  std::atomic<uint64_t> entered_{0};
  std::atomic<uint64_t> exited_{0};
  std::atomic<int> program_syncs_{0};        // program threads inside a synchronize call
  std::atomic<Micros> program_synced_at_{0};  // mono_us() when the last one returned

  std::mutex mu_;
  std::condition_variable cv_open_;  // launching threads wait here
  std::condition_variable cv_work_;  // the worker waits here for demand
  int waiting_ = 0;                  // launching threads waiting for the gate (under mu_)
  bool worker_started_ = false;      // under mu_

  SliceTimer timer_;    // its contexts are guarded by mu_
  TokenWorker worker_;  // its thread is started by wait_open()
};

}  // namespace gem::hook
