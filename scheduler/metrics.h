// gem-schd's Prometheus metrics (docs/interfaces.md, "Metrics"): the token events the poll loop
// reports (requests, grants, the token coming free, config reloads), turned into counters and
// latency histograms, and render(), which writes them with a snapshot of the policy's
// and residency's state (SchedView) in the text format. Pure: no I/O, times are µs on the caller's
// monotonic clock. Not thread-safe: the poll loop owns it; a snapshot for the HTTP endpoint is a copy
// (copyable), rendered by the endpoint's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gem/clock.h"
#include "gem/prom.h"
#include "refusals.h"

namespace gem::sched {

/// What gem-schd knows about its GPU's health (gpu_health.h); `watched` false when NVML is absent.
struct GpuHealthView {
  bool watched = false;   // NVML found and the device opened
  bool lost = false;      // NVML says the GPU is lost or gone (NVML_ERROR_GPU_IS_LOST, not found)
  uint64_t xid_errors = 0;  // XID events seen since start (critical ones)
  uint64_t last_xid = 0;    // the latest XID number, 0 if none
  std::string reason;       // why unhealthy or unwatched, for status; "" when healthy
  int index = -1;           // the GPU's NVML index (dcgm-exporter's `gpu` label); -1: unknown
};

/// One client's state at one moment (from Policy::stats, the config and GpuResidency): the one record
/// both the --stats file (stats_record(), stats.h) and the metrics (SchedMetrics::render) show, built
/// by one function (Server::client_view, server_metrics.cpp).
struct ClientView {
  std::string name;
  double request = 0, limit = 1;
  double share = 0;            // achieved over the window
  Micros used_total = 0;       // µs charged since it was added
  Micros used_window = 0;      // µs charged inside the window (the GPU's busy ratio sums them)
  uint64_t grants = 0;         // grants and renewals (co-run tokens included)
  uint64_t coruns = 0;         // co-run tokens among them (a latency client beside the holder)
  uint64_t revocations = 0;    // tokens taken back past quota + --lease_grace
  Micros latency = 0;          // latency=MS target, µs (0: not a latency client)
  bool connected = false;      // its pod manager is connected
  bool waiting = false, holding = false;
  bool corun = false;          // holds a co-run token
  uint64_t gpu_mem = 0;        // GPU_MEM, bytes (0: no limit)
  uint64_t mem_bytes = 0;      // its latest MemUsage, bytes
  bool resident = true;        // false while an evicted UM client's memory is on the host
  uint64_t evictions = 0;
};

struct SchedView {
  std::string gpu;             // --gpu UUID ("" when not given)
  Micros window = 0;           // µs
  Micros uptime = 0;           // µs since gem-schd started
  Micros busy_window = 0;      // µs charged to all clients inside the window
  std::string holder;          // "" when the token is free
  uint64_t mem_budget = 0, resident_bytes = 0;
  GpuHealthView health;
  std::vector<ClientView> clients;
  std::vector<Refused> refused;                    // Refusals::recent(): refused lately, held
  std::map<std::string, uint64_t> refusal_totals;  // Refusals::totals(): per reason label
};

class SchedMetrics {
 public:
  /// `client` asked for the token (a TokenRequest, or a TokenRelease with `again`).
  void requested(const std::string& client, Micros now);
  /// The token was granted to `client` (not a renewal): observes its token wait (from its request)
  /// and, when it already waited when the token last came free, the hand-off (from that moment).
  void granted(const std::string& client, Micros now);
  /// The current holder ("" = none), once per loop turn before scheduling: the moment it turns
  /// empty is when the token came free (release, disconnection, revocation or removal).
  void holder_is(const std::string& holder, Micros now);
  /// A config (re)load: ok, or refused and the last good one kept.
  void config_loaded(bool ok);
  /// Forgets the events of clients for which `known` is false (gone from the config). O(clients
  /// with events).
  void keep_only(const std::function<bool(const std::string&)>& known);

  /// The whole exposition for `view`, with this object's counters and histograms.
  std::string render(const SchedView& view) const;

 private:
  struct Events {
    Micros requested_at = -1;  // -1: not waiting
    prom::Histogram wait;
    prom::Histogram handoff;
  };
  std::map<std::string, Events> events_;
  std::string last_holder_;
  Micros freed_at = -1;  // when the token last came free; -1: held or never
  uint64_t reloads_ = 0, reload_errors_ = 0;
};

}  // namespace gem::sched
