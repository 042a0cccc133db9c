// The token gate of one GPU in this process: kernel launches on that GPU pass only while the
// client holds the GPU's time-slice token.
//
// Fast path (token held, quota left): two atomic increments and one atomic load, no system call,
// no lock. A worker thread per GPU does everything else: it asks the pod manager for the token,
// opens the gate, closes it when the quota is spent or no launch came for GEMINI_IDLE_MS, waits
// for launches already inside the driver, drains the GPU (cuCtxSynchronize covers every stream of
// the context, non-blocking and per-thread ones included), measures the GPU time the slice took
// with events on a stream of its own, and gives the token back with that time. Launching threads
// that find the gate shut wait on a condition variable of this gate only, so allocations and
// queries on other threads never wait for a token.
// If the pod manager or scheduler cannot be reached, or the pod manager falls silent for
// GEMINI_PMGR_TIMEOUT_MS while a request waits, the gate stays open ("unthrottled") and the worker
// asks again every second *with the gate open*, so a stopped daemon costs the program one timeout
// at most; with GEMINI_FAIL_CLOSED=1 launches wait instead. While holding the token the worker
// watches the pod manager's connection: a TokenRevoke (the scheduler took the token back) shuts
// the gate at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "driver_api.h"
#include "gem/clock.h"
#include "pmgr_client.h"

namespace gem::hook {

class Gate {
 public:
  /// `device`: CUDA device ordinal. Created once per device and never destroyed.
  explicit Gate(CUdevice device);

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

  /// Returns once no drain is in progress (the worker holds driver_mu_ while it drains).
  void wait_driver_idle() { std::lock_guard<std::mutex> lk(driver_mu_); }

 private:
  enum class Outcome { kGranted, kUnthrottled, kRetryLater };

  void wait_open();
  void pace(CUstream stream, bool ptsz);
  void worker_loop();
  Outcome obtain(Micros* quota);
  Outcome answer(PmgrClient::Answer a, Micros granted, Micros* quota);
  Outcome degraded() const;
  /// Keeps the gate open without a token until one is granted (asking again every second while
  /// the program launches); returns with the gate shut, the unthrottled work drained and *quota
  /// set to what is left of the grant.
  void run_unthrottled(Micros* quota);
  /// Keeps the gate open until `until` (returns true), until the client is idle (false), or until
  /// the token is revoked or the pod manager lost (true); at `until` the token is renewed if the
  /// scheduler allows.
  bool hold(Micros until);
  bool renew(Micros now, Micros* until);
  void sync_contexts();
  void drain_and_measure(Micros* used, Micros* end);
  void note_context(CUcontext ctx);
  void record_start();

  const CUdevice device_;
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

  std::mutex mu_;
  std::condition_variable cv_open_;  // launching threads wait here
  std::condition_variable cv_work_;  // the worker waits here for demand
  int waiting_ = 0;                  // launching threads waiting for the gate (under mu_)
  bool worker_started_ = false;
  std::vector<CUcontext> contexts_;  // contexts launched on (under mu_)
  // Held by the worker while it uses contexts_ in the driver, and by forget_context().
  std::mutex driver_mu_;

  // Worker-thread state.
  PmgrClient pmgr_;
  std::string uuid_;
  Micros retry_at_ = 0;
  bool warned_ = false;
  std::string why_;  // why the last request got no token
  Micros burst_ = 0;       // µs of the burst in progress (slices since the last idle release)
  Micros last_burst_ = 0;  // µs of the last finished burst
  CUstream stream_ = nullptr;
  CUevent start_event_ = nullptr, end_event_ = nullptr;
  bool start_recorded_ = false;
  Micros slice_start_ = 0;
};

/// Calls forget_context on the gate of `device` (-1: every gate). Thread-safe.
void forget_contexts(CUdevice device, CUcontext ctx);

/// From the process's exit on, gates stop calling into the driver (it is being torn down).
void stop_gates_at_exit();

/// The gate of the device of the calling thread's current context; nullptr when there is no
/// current context or gating is off. Thread-safe; cached per thread.
Gate* current_gate();

}  // namespace gem::hook
