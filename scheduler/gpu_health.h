// gem-schd's watch on its GPU's health (issue 10): a thread of its own opens NVML (nvml_probe.h),
// registers the GPU for critical XID events and waits on them, and looks the GPU up again at every
// turn, so a lost GPU (NVML_ERROR_GPU_IS_LOST, or its UUID gone) is noticed within `period_ms`.
// What it finds goes to the metrics and to `gemctl status` (GpuHealthView, metrics.h). It never
// touches the scheduling: clients are granted as before, each one's own CUDA calls fail with the
// driver's error and the lease (--lease_grace) bounds a holder that stops answering, so a lost
// GPU never leaves a client waiting on gem-schd.
// Without NVML (no library, no driver) the view says unwatched and why; gem-schd runs as before.
// Thread-safety: view() from any thread; start() and stop() from the owner.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "metrics.h"
#include "nvml_probe.h"

namespace gem::sched {

/// The longest wait for an XID event between two look-ups of the GPU, ms: a lost GPU is noticed
/// within this (docs/operations.md, "GPU health").
inline constexpr unsigned kHealthPeriodMs = 500;

struct GpuHealthOptions {
  std::string uuid;                    // --gpu; empty: device 0
  std::string library = kNvmlLibrary;  // libnvidia-ml.so.1 (the stand-in in tests)
  unsigned int period_ms = kHealthPeriodMs;  // longest wait for an event between two look-ups
};

class GpuHealth {
 public:
  GpuHealth() = default;
  ~GpuHealth();  // stop()
  GpuHealth(const GpuHealth&) = delete;
  GpuHealth& operator=(const GpuHealth&) = delete;

  /// Starts the watching thread; returns at once (NVML is opened on that thread).
  void start(const GpuHealthOptions& opts);
  /// A copy of what is known now.
  GpuHealthView view() const;
  /// Stops the thread (within period_ms) and joins it. Idempotent.
  void stop();

 private:
  void run();
  /// One turn: looks the GPU up, then waits for an event up to period_ms. False when NVML is unusable.
  void turn(Nvml& nvml);
  void set(const GpuHealthView& v);

  GpuHealthOptions opts_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;     // guarded by mu_
  GpuHealthView view_;    // guarded by mu_
};

}  // namespace gem::sched
