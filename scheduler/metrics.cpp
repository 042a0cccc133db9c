// gem-schd's metrics (metrics.h). The names follow Prometheus' conventions: base units (seconds,
// bytes, ratios in [0, 1]), `_total` for counters; every series names its GPU as dcgm-exporter does
// (gpu="NVML index", UUID="GPU-...") and the per-client ones client="ID" (with namespace and pod for a
// pod's "namespace/name"). The list is in docs/interfaces.md ("Metrics").
#include "metrics.h"

#include <algorithm>

#include "gem/build_info.h"

namespace gem::sched {

namespace {
double secs(Micros us) { return static_cast<double>(us) / 1e6; }
}  // namespace

void SchedMetrics::requested(const std::string& client, Micros now) {
  Events& e = events_[client];
  if (e.requested_at < 0) e.requested_at = now;
}

void SchedMetrics::granted(const std::string& client, Micros now) {
  Events& e = events_[client];
  if (e.requested_at >= 0) {
    e.wait.observe(secs(now - e.requested_at));
    if (freed_at >= 0 && e.requested_at <= freed_at) e.handoff.observe(secs(now - freed_at));
  }
  e.requested_at = -1;
  freed_at = -1;
  last_holder_ = client;
}

void SchedMetrics::holder_is(const std::string& holder, Micros now) {
  if (holder.empty() && !last_holder_.empty()) freed_at = now;
  if (!holder.empty()) freed_at = -1;
  last_holder_ = holder;
}


void SchedMetrics::config_loaded(bool ok) { ++(ok ? reloads_ : reload_errors_); }

void SchedMetrics::keep_only(const std::function<bool(const std::string&)>& known) {
  for (auto it = events_.begin(); it != events_.end();) {
    it = known(it->first) ? std::next(it) : events_.erase(it);
  }
}

std::string SchedMetrics::render(const SchedView& v) const {
  prom::Writer w;
  write_build_info(&w);
  const prom::Labels gpu = prom::gpu_labels(v.health.index, v.gpu);
  prom::Labels scratch;  // one client's labels, its storage reused across clients
  auto g = [&](const char* name, const char* type, const char* help, double value) {
    w.family(name, type, help);
    w.sample(name, gpu, value);
  };
  const Micros span = std::max<Micros>(1, std::min(v.window, v.uptime));
  g("gem_gpu_busy_ratio", "gauge", "Fraction of the window (or of the uptime, when shorter) charged to clients.",
    std::min(1.0, static_cast<double>(v.busy_window) / static_cast<double>(span)));
  g("gem_gpu_window_seconds", "gauge", "The sliding window over which shares are measured (--window).",
    secs(v.window));
  g("gem_gpu_token_held", "gauge", "1 while a client holds the GPU's token.", v.holder.empty() ? 0 : 1);
  w.family("gem_gpu_token_holder", "gauge", "1 for the client holding the token (no sample while it is free).");
  if (!v.holder.empty()) w.sample("gem_gpu_token_holder", prom::join(gpu, prom::client_labels(v.holder)), 1);
  g("gem_config_reloads_total", "counter", "Changes of resource-config.txt applied since gem-schd started.",
    static_cast<double>(reloads_));
  g("gem_config_reload_errors_total", "counter", "Changes of resource-config.txt refused since start (the last good config kept).",
    static_cast<double>(reload_errors_));
  g("gem_gpu_health_watched", "gauge", "1 when gem-schd watches the GPU through NVML.", v.health.watched ? 1 : 0);
  g("gem_gpu_healthy", "gauge", "1 unless the GPU is lost or had a critical XID error (0 also when unwatched).",
    v.health.watched && !v.health.lost && v.health.xid_errors == 0 ? 1 : 0);
  g("gem_gpu_lost", "gauge", "1 when NVML reports the GPU lost or gone.", v.health.lost ? 1 : 0);
  g("gem_gpu_xid_errors_total", "counter", "Critical XID events NVML reported for the GPU since gem-schd started.",
    static_cast<double>(v.health.xid_errors));
  g("gem_gpu_last_xid", "gauge", "The number of the latest XID event (0: none).", static_cast<double>(v.health.last_xid));
  g("gem_memory_budget_bytes", "gauge", "Device memory for all clients' resident memory (0: residency off).",
    static_cast<double>(v.mem_budget));
  g("gem_memory_resident_bytes", "gauge", "Memory gem-schd counts on the GPU (non-UM and resident UM clients).",
    static_cast<double>(v.resident_bytes));
  size_t connected = 0;
  for (const ClientView& c : v.clients) connected += c.connected ? 1 : 0;
  g("gem_clients", "gauge", "Clients known (config and --dynamic_clients).", static_cast<double>(v.clients.size()));
  g("gem_clients_connected", "gauge", "Clients whose pod manager is connected.", static_cast<double>(connected));
  w.family("gem_client_refusals_total", "counter",
           "Pod managers refused at their Hello or removed, per reason; their processes are held, not run unthrottled.");
  for (const char* reason : {"unknown_client", "removed", "denied", "busy", "protocol"}) {
    const auto it = v.refusal_totals.find(reason);
    w.sample("gem_client_refusals_total", prom::join(gpu, {{"reason", reason}}),
             it == v.refusal_totals.end() ? 0.0 : static_cast<double>(it->second));
  }
  w.family("gem_client_refused", "gauge",
           "1 for a client refused within the last minute (at most 64 shown); its processes wait until it is admitted.");
  for (const Refused& r : v.refused) w.sample("gem_client_refused", prom::join(gpu, prom::client_labels(r.client), {{"reason", r.kind}}), 1);

  struct Series {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const ClientView&);
  };
  static const Series kSeries[] = {
      {"gem_client_request_ratio", "gauge", "Configured REQUEST (minimum share of GPU time).",
       [](const ClientView& c) { return c.request; }},
      {"gem_client_limit_ratio", "gauge", "Configured LIMIT (maximum share of GPU time).",
       [](const ClientView& c) { return c.limit; }},
      {"gem_client_share_ratio", "gauge", "Achieved share of GPU time over the window.",
       [](const ClientView& c) { return c.share; }},
      {"gem_client_gpu_seconds_total", "counter", "GPU time charged to the client (at least the time it held the token).",
       [](const ClientView& c) { return secs(c.used_total); }},
      {"gem_client_grants_total", "counter", "Grants of the token, renewals included.",
       [](const ClientView& c) { return static_cast<double>(c.grants); }},
      {"gem_client_coruns_total", "counter", "Co-run tokens: grants beside the holder to a latency client (docs/scheduling.md).",
       [](const ClientView& c) { return static_cast<double>(c.coruns); }},
      {"gem_client_latency_target_seconds", "gauge", "The latency=MS target (0: not a latency client).",
       [](const ClientView& c) { return secs(c.latency); }},
      {"gem_client_connected", "gauge", "1 while the client's pod manager is connected.",
       [](const ClientView& c) { return c.connected ? 1.0 : 0.0; }},
      {"gem_client_waiting", "gauge", "1 while the client waits for the token.",
       [](const ClientView& c) { return c.waiting ? 1.0 : 0.0; }},
      {"gem_client_memory_limit_bytes", "gauge", "GPU_MEM (0: no limit).",
       [](const ClientView& c) { return static_cast<double>(c.gpu_mem); }},
      {"gem_client_memory_used_bytes", "gauge", "Device memory the client's processes hold (its latest MemUsage).",
       [](const ClientView& c) { return static_cast<double>(c.mem_bytes); }},
      {"gem_client_memory_resident", "gauge", "0 while an evicted unified-memory client's memory is on the host.",
       [](const ClientView& c) { return c.resident ? 1.0 : 0.0; }},
      {"gem_client_evictions_total", "counter", "Evicts sent to the client since it connected.",
       [](const ClientView& c) { return static_cast<double>(c.evictions); }},
      {"gem_client_revocations_total", "counter", "Tokens taken back past quota + --lease_grace.",
       [](const ClientView& c) { return static_cast<double>(c.revocations); }},
  };
  for (const Series& s : kSeries) {
    w.family(s.name, s.type, s.help);
    for (const ClientView& c : v.clients) {
      prom::client_labels_into(gpu, c.name, &scratch);
      w.sample(s.name, scratch, s.value(c));
    }
  }
  // Histograms only for clients that asked for the token at least once (a config of 10^6 idle
  // clients would otherwise write 30 lines each).
  w.family("gem_client_token_wait_seconds", "histogram", "From asking for the token to its grant.");
  for (const ClientView& c : v.clients) {
    const auto it = events_.find(c.name);
    if (it == events_.end()) continue;
    prom::client_labels_into(gpu, c.name, &scratch);
    w.histogram("gem_client_token_wait_seconds", scratch, it->second.wait);
  }
  w.family("gem_client_handoff_seconds", "histogram",
           "From the token coming free to its grant to this client, which was already waiting then.");
  for (const ClientView& c : v.clients) {
    const auto it = events_.find(c.name);
    if (it == events_.end()) continue;
    prom::client_labels_into(gpu, c.name, &scratch);
    w.histogram("gem_client_handoff_seconds", scratch, it->second.handoff);
  }
  return w.text();
}

}  // namespace gem::sched
