// One simulated GPU of the stand-in driver: a serial executor fed by a bounded FIFO.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace fakecuda {

using Nanos = int64_t;

// Timing state of one CUevent; shared with the queued record ops so destroying the event while a
// record is still queued is harmless.
struct EventTiming {
  std::atomic<int> device{-1};        // device of the latest record, -1 if never recorded
  std::atomic<uint64_t> seq{0};       // sequence number of the latest record on that device
  std::atomic<Nanos> time_ns{0};      // CLOCK_MONOTONIC time the executor reached the record
};

// A unit of work on a device's FIFO.
struct Op {
  enum class Kind { kKernel, kEventRecord };
  Kind kind = Kind::kKernel;
  uint64_t seq = 0;                   // assigned by DeviceSim::enqueue
  Nanos enqueue_ns = 0;               // assigned by DeviceSim::enqueue
  Nanos duration_ns = 0;              // kernels: time the device is busy (graphs: sum of nodes)
  const char* api = "";               // entry point that launched it, for the log (static string)
  std::shared_ptr<EventTiming> event; // event records only
};

// A serial device: every stream of every context on this device feeds one FIFO, run in order by
// one executor thread. An op starts when it was enqueued or when the previous kernel ended,
// whichever is later, so the simulated timeline does not drift with the executor's wake-up
// latency. Completed kernels are appended to the FAKE_CUDA_LOG file.
// Thread-safe. Never destroyed (the executor is detached), so process exit cannot hang on it.
class DeviceSim {
 public:
  static constexpr size_t kMaxQueued = 1024;

  DeviceSim(int index, int log_fd);
  DeviceSim(const DeviceSim&) = delete;
  DeviceSim& operator=(const DeviceSim&) = delete;

  // Appends op, blocking while kMaxQueued ops are waiting. Returns its sequence number (> 0).
  uint64_t enqueue(Op op);
  // Blocks until every op with sequence <= seq has completed.
  void wait(uint64_t seq);
  // True once every op with sequence <= seq has completed.
  bool done(uint64_t seq) const { return completed_.load(std::memory_order_acquire) >= seq; }
  // Sequence number of the most recently enqueued op (0 if none).
  uint64_t last_enqueued();

 private:
  void run();
  void log_kernel(const Op& op, Nanos start, Nanos end);

  const int index_;
  const int log_fd_;  // -1: no log
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_, progress_;
  std::deque<Op> queue_;
  uint64_t next_seq_ = 1;
  bool started_ = false;
  std::atomic<uint64_t> completed_{0};
  Nanos busy_until_ns_ = 0;  // executor thread only
};

Nanos mono_ns();

}  // namespace fakecuda
