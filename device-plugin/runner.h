// gem-device-plugin's supervisor: serves both resources (endpoint.h), registers them with kubelet,
// and keeps them registered across kubelet restarts; a second thread watches the GPUs' health
// through NVML. Kubelet restart: kubelet removes every socket in its device-plugin folder and
// creates kubelet.sock anew; the runner polls (every watch_interval) the identity of kubelet.sock
// (device, inode, change time) and its own sockets, and on a change serves again and re-registers.
// run() blocks; stop() may be called from any thread (a signal handler must not: use a flag).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "endpoint.h"

namespace gem::dp {

/// Defaults of gem-device-plugin's --watch_interval_ms, --register_timeout_ms, --health_interval_ms.
constexpr int64_t kDefaultWatchIntervalMs = 1000;
constexpr int64_t kDefaultRegisterTimeoutMs = 5000;
constexpr int64_t kDefaultHealthIntervalMs = 5000;

struct RunnerOptions {
  /// Kubelet's device-plugin folder (k8s.io/kubelet deviceplugin/v1beta1 DevicePluginPath) and its
  /// registration socket's file name there (KubeletSocket).
  std::string plugin_dir = "/var/lib/kubelet/device-plugins";
  std::string kubelet_socket = "kubelet.sock";
  /// Our sockets: <prefix>share.sock and <prefix>memory.sock in plugin_dir.
  std::string socket_prefix = "gemini-";
  std::chrono::milliseconds watch_interval{kDefaultWatchIntervalMs};
  /// Deadline of one Register call; failures are retried every watch_interval.
  std::chrono::milliseconds register_timeout{kDefaultRegisterTimeoutMs};
  /// NVML library for the health watch ("" = none: every GPU stays healthy).
  std::string nvml_library;
  std::chrono::milliseconds health_interval{kDefaultHealthIntervalMs};
  std::chrono::milliseconds hint_window{kDefaultHintWindowMs};
  AllocateOptions alloc;
};

class Runner {
 public:
  /// `inv` outlives the runner.
  Runner(Inventory* inv, RunnerOptions opts);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// Serves and registers until stop(); then stops the servers and removes the sockets.
  void run();
  /// Makes run() return within about one watch_interval. Thread-safe.
  void stop();
  /// Completed registrations of both resources (each kubelet start adds one). Thread-safe.
  int registrations() const { return registrations_.load(); }

 private:
  struct Identity {
    bool present = false;
    unsigned long long dev = 0, ino = 0;
    long long ctime_ns = 0;
    bool operator==(const Identity& o) const {
      return present == o.present && dev == o.dev && ino == o.ino && ctime_ns == o.ctime_ns;
    }
  };
  Identity kubelet_identity() const;
  bool serve_and_register();  // true when both are served and registered
  void health_loop();
  bool wait_for(std::chrono::milliseconds d);  // false once stopped

  Inventory* const inv_;
  const RunnerOptions opts_;
  std::unique_ptr<Endpoint> share_, memory_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<int> registrations_{0};
  std::thread health_;
};

}  // namespace gem::dp
