// The state both resource plugins of one gem-device-plugin share: the node's GPUs (fixed at start),
// their health (changed by the health watch, runner.h), a version that ListAndWatch streams follow,
// and the placement hint that steers a container's share and memory onto one GPU (docs/kubernetes-device-plugin.md, "Same GPU"). Thread-safe: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "gpus.h"

namespace gem::dp {

class Inventory {
 public:
  using Clock = std::chrono::steady_clock;

  /// `unit_mib`: MiB per gpu-memory device (>= 1).
  Inventory(std::vector<Gpu> gpus, uint64_t unit_mib);

  /// The GPUs, in NVML index order; never changes.
  const std::vector<Gpu>& gpus() const { return gpus_; }
  uint64_t unit_mib() const { return unit_mib_; }
  /// The GPU with this UUID, or nullptr.
  const Gpu* find(const std::string& uuid) const;

  /// Marks a GPU (un)healthy. On a change: bumps the version and wakes every wait_change(). False
  /// for an unknown UUID or no change.
  bool set_healthy(const std::string& uuid, bool healthy);
  bool healthy(const std::string& uuid) const;
  /// Health of every GPU (index order) and the version it belongs to.
  std::vector<bool> health(uint64_t* version) const;
  /// Blocks until the version differs from `seen`, wake() is called, or `deadline` passes; returns
  /// the version then. Starts at 1, so seen = 0 returns at once.
  uint64_t wait_change(uint64_t seen, Clock::time_point deadline);
  /// Wakes every wait_change() (a stream that is being stopped).
  void wake();

  /// Placement hint: a container was just given devices of GPU `uuid` (Allocate of either
  /// resource). recent_gpu() returns it for `window` afterwards, else "".
  void note_allocation(const std::string& uuid);
  std::string recent_gpu(std::chrono::milliseconds window) const;

 private:
  const std::vector<Gpu> gpus_;
  const uint64_t unit_mib_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> healthy_;
  uint64_t version_ = 1;
  std::string last_uuid_;
  Clock::time_point last_at_{};
};

}  // namespace gem::dp
