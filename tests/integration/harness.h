// Shared pieces of the integration tests: a temp dir per test, the real gem-schd and gem-pmgr
// started on Unix sockets in it, fake-cuda-app run under the real libgemhook.so.1 against the
// stand-in driver, and readers for the stand-in's kernel log, the scheduler's stats and the hook's
// counters. Binaries come from $GEM_BUILD (default ./build).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gem/clock.h"
#include "process.h"

namespace gemtest {

using gem::Micros;
using gem::mono_us;

/// True when the test binary runs under AddressSanitizer (make SANITIZE=1 integration-test).
bool sanitized();
/// Time-to-react bounds are multiplied by this (2 under SANITIZE=1, else 1).
double slack();
/// How far a measured share may be from its target: the 2 points; 6 under the sanitizers,
/// which slow the processes several times over on a 2-core machine (that run is for memory and UB
/// errors, the plain run holds the 2 points).
double share_tolerance();

void sleep_ms(int ms);
std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text);
/// Writes to path.tmp and renames it over path.
void write_text_rename(const std::string& path, const std::string& text);
/// The last `n` lines of a file, for failure messages.
std::string tail(const std::string& path, int n = 30);

/// Polls `pred` every 5 ms until it is true or `seconds` pass; returns its last value.
template <typename F>
bool wait_until(double seconds, F&& pred) {
  const Micros deadline = mono_us() + static_cast<Micros>(seconds * 1e6);
  for (;;) {
    if (pred()) return true;
    if (mono_us() >= deadline) return false;
    sleep_ms(5);
  }
}

/// True if a stream connection to the Unix socket `path` succeeds (closed at once).
bool can_connect_unix(const std::string& path);

// ---- What a user checks on a daemon: /proc ----
/// utime + stime of `pid` in seconds (/proc/<pid>/stat); -1 if unreadable.
double cpu_seconds(int pid);
/// VmRSS of `pid` in KiB (/proc/<pid>/status); -1 if unreadable.
long vm_rss_kib(int pid);
/// Open file descriptors of `pid` (entries of /proc/<pid>/fd); -1 if unreadable.
int fd_count(int pid);

// ---- The stand-in driver's kernel log ----
struct Kernel {
  int pid = 0;
  int device = 0;
  Micros start = 0, end = 0;
  std::string api;
};
std::vector<Kernel> read_kernels(const std::string& path);
std::vector<Kernel> kernels_of(const std::vector<Kernel>& all, int pid);

struct Interval {
  Micros start, end;
};
/// Total length of the union of the intervals, clipped to [from, to].
Micros union_length(std::vector<Interval> iv, Micros from, Micros to);

/// Shares of GPU time over the period in which every group ran: [latest first-kernel start,
/// earliest last-kernel end]. A group is a client (one or more pids); its busy time is the union of
/// its processes' kernels inside the period.
struct ShareReport {
  Micros t0 = 0, t1 = 0;
  std::map<std::string, Micros> busy;
  std::map<std::string, double> share;
  std::string describe() const;
};
ShareReport common_period_shares(const std::vector<Kernel>& all,
                                 const std::map<std::string, std::vector<int>>& pids_of_client);
/// Shares over a fixed period [from, to] (busy time of each group / total busy time).
ShareReport period_shares(const std::vector<Kernel>& all,
                          const std::map<std::string, std::vector<int>>& pids_of_client, Micros from, Micros to);

/// The longest stretch inside [t0, t1] without a kernel of `pids`: gaps between the union of their
/// kernels, clipped to [t0, t1] (a wait that began before t0 counts from t0; a client that never
/// ran again pauses until t1). Optionally where that gap starts.
Micros longest_gap(const std::vector<Kernel>& all, const std::vector<int>& pids, Micros t0, Micros t1,
                   Micros* gap_start = nullptr);
/// The longest stretch of [from, to] in which no kernel of `all` ran (the stand-in GPU sat idle).
Micros longest_idle(const std::vector<Kernel>& all, Micros from, Micros to);

/// Pairs of kernels of different groups (pid sets) that overlap in time; `examples` gets a few.
int count_cross_overlaps(const std::vector<Kernel>& all, const std::map<int, std::string>& group_of_pid,
                         std::string* examples);

// ---- The test fixture ----
/// How start_scheduler starts gem-schd.
struct SchedulerOptions {
  int base_quota = 30, min_quota = 10, window = 2000;
  std::vector<std::string> extra;    // more flags
  bool stats = true;                 // --stats path("stats.json"); users run without it
  std::vector<std::string> wrapper;  // run through this, e.g. {"/usr/bin/prlimit", "--nofile=64:64", "--"}
  std::string socket;                // default path("schd.sock")
  std::map<std::string, std::string> env;  // more environment (e.g. the stand-in NVML's)
};

/// gem-schd's own default quotas and window (--base_quota 250, --min_quota 100, --window 10000:
/// kDefaultBaseQuota, kDefaultMinQuota, kDefaultWindow in scheduler/policy.h), as users run it; the
/// rest as SchedulerOptions' defaults (--stats on: set `stats` false for the flags users pass).
SchedulerOptions users_scheduler_options();

/// How start_pod_manager starts gem-pmgr.
struct PodManagerOptions {
  std::vector<std::string> extra;  // more flags
  bool default_scheduler = true;   // --scheduler path("schd.sock")
};

struct ClientConfig {
  std::string name;
  double request = 0;
  double limit = 1;
  std::string gpu_mem = "0";  // GPU_MEM as written in the file ("64MiB"; 0 = no limit)
  std::string options;        // options after GPU_MEM as written ("latency=5 um=on"; empty: none)
};

struct AppOptions {
  double seconds = 8;
  int kernel_us = 1000;
  int threads = 1;
  std::string api;  // empty: the app's default (launch)
  bool ptsz = false;
  int sync_every = 0;
  int idle_every = 0, idle_ms = 0;  // --idle_ms_every idle_every:idle_ms (0: never pause)
  int device = 0;      // --device
  int alternate = 0;   // --alternate N: one thread, N launches on device 0 then on device 1, ... (0: off)
  std::string client;  // POD_NAME; empty: unset (the hook passes everything through)
  std::map<std::string, std::string> env;  // extra environment
  std::string pmgr_socket;                 // default: the pod manager of `client`
  /// Non-empty: run fake-mem-app with these steps instead of fake-cuda-app (tests/fake-cuda/memapp).
  std::vector<std::string> mem_steps;
  /// Non-empty: run this command line (argv[0] a full path) instead, in the same environment.
  std::vector<std::string> command;
};

struct App {
  std::unique_ptr<Process> proc;
  std::string client;
  std::string out_path, err_path, stats_path;
  Micros started_us = 0;
  /// The JSON line the app prints at the end ("launches", "pid", ...); empty object if none.
  nlohmann::json result() const;
  /// fake-mem-app's step lines printed so far (one JSON object each).
  std::vector<nlohmann::json> steps() const;
  /// The hook's counters file (GEMINI_STATS_FILE); empty object if none.
  nlohmann::json hook_stats() const;
};

class GemTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string bin(const std::string& rel) const { return build_ + "/" + rel; }

  static std::string config_text(const std::vector<ClientConfig>& clients);
  void write_config(const std::vector<ClientConfig>& clients);

  /// gem-schd on path("schd.sock") with config path("resource-config.txt"), stats path("stats.json"),
  /// stderr path("schd.log"). Waits until it accepts connections.
  Process& start_scheduler(int base_quota = 30, int min_quota = 10, int window = 2000,
                           std::vector<std::string> extra = {});
  Process& start_scheduler(const SchedulerOptions& o);
  /// gem-pmgr --name `client` on path("pmgr-<client>.sock"), scheduler at path("schd.sock").
  Process& start_pod_manager(const std::string& client);
  Process& start_pod_manager(const std::string& client, const PodManagerOptions& o);
  std::string pmgr_socket(const std::string& client) const { return path("pmgr-" + client + ".sock"); }

  /// fake-cuda-app under the hook, FAKE_CUDA_LOG = path("kernels.log"), GEMINI_MAX_INFLIGHT=8.
  App& start_app(const AppOptions& o);
  /// Waits for every app (each up to `seconds`) and expects exit 0.
  void wait_apps(double seconds);

  std::vector<Kernel> kernels() const { return read_kernels(path("kernels.log")); }
  nlohmann::json stats() const;  // the scheduler's --stats file; empty object if unreadable
  /// pids of each client's apps.
  std::map<std::string, std::vector<int>> pids_by_client() const;
  std::map<int, std::string> client_by_pid() const;

  /// Asserts that the daemons are still running, then stops them and expects exit 0.
  void stop_daemons_expect_clean();

  std::string dir_;
  std::string build_;
  std::unique_ptr<Process> schd_;
  std::map<std::string, std::unique_ptr<Process>> pmgrs_;
  std::vector<std::unique_ptr<App>> apps_;
  int app_seq_ = 0;
};

}  // namespace gemtest
