#include "device_sim.h"

#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <thread>

namespace fakecuda {

Nanos mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {

void sleep_until_ns(Nanos t) {
  timespec ts{static_cast<time_t>(t / 1000000000), static_cast<long>(t % 1000000000)};
  // Absolute deadline: an interrupted sleep resumes toward the same end instead of drifting.
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace

DeviceSim::DeviceSim(int index, int log_fd) : index_(index), log_fd_(log_fd) {}

uint64_t DeviceSim::enqueue(Op op) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!started_) {
    // Started lazily so a process that never launches has no extra thread; detached because the
    // simulator is leaked on purpose and must not block exit.
    std::thread([this] { run(); }).detach();
    started_ = true;
  }
  not_full_.wait(lk, [&] { return queue_.size() < kMaxQueued; });
  op.seq = next_seq_++;
  op.enqueue_ns = mono_ns();
  uint64_t seq = op.seq;
  queue_.push_back(std::move(op));
  lk.unlock();
  not_empty_.notify_one();
  return seq;
}

void DeviceSim::wait(uint64_t seq) {
  if (done(seq)) return;
  std::unique_lock<std::mutex> lk(mu_);
  progress_.wait(lk, [&] { return done(seq); });
}

uint64_t DeviceSim::last_enqueued() {
  std::lock_guard<std::mutex> lk(mu_);
  return next_seq_ - 1;
}

void DeviceSim::run() {
  for (;;) {
    Op op;
    {
      std::unique_lock<std::mutex> lk(mu_);
      not_empty_.wait(lk, [&] { return !queue_.empty(); });
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    not_full_.notify_one();

    Nanos start = op.enqueue_ns > busy_until_ns_ ? op.enqueue_ns : busy_until_ns_;
    if (op.kind == Op::Kind::kKernel) {
      Nanos end = start + op.duration_ns;
      sleep_until_ns(end);
      busy_until_ns_ = end;
      // Logged before completion is published, so a synchronised caller finds its line written.
      log_kernel(op, start, end);
    } else {
      op.event->time_ns.store(start, std::memory_order_release);
    }

    {
      // Published under the mutex so a waiter cannot miss the notification between its
      // predicate check and its sleep.
      std::lock_guard<std::mutex> lk(mu_);
      completed_.store(op.seq, std::memory_order_release);
    }
    progress_.notify_all();
  }
}

void DeviceSim::log_kernel(const Op& op, Nanos start, Nanos end) {
  if (log_fd_ < 0) return;
  char line[128];
  int n = snprintf(line, sizeof line, "%d %d %" PRId64 " %" PRId64 " %s\n", static_cast<int>(getpid()),
                   index_, start / 1000, end / 1000, op.api);
  if (n <= 0) return;
  // One write() on an O_APPEND descriptor: lines from several processes never interleave.
  ssize_t w = write(log_fd_, line, static_cast<size_t>(n));
  (void)w;
}

}  // namespace fakecuda
