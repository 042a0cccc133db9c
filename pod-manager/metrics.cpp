// gem-pmgr's metrics (metrics.h). Every series has client="ID" (with namespace and pod for a pod's
// "namespace/name"); per-route ones scheduler="...".
#include "metrics.h"

#include "gem/build_info.h"

namespace gem::pmgr {

void PmgrMetrics::asked(HookId h, Micros now) { asked_at_.emplace(h, now); }

void PmgrMetrics::told(HookId h, const proto::Message& m, Micros now) {
  if (const auto* g = std::get_if<proto::TokenGrant>(&m.body)) {
    if (g->quota_us == 0) return;  // a refused renewal
    ++grants_;
    const auto it = asked_at_.find(h);
    if (it != asked_at_.end()) {
      wait_.observe(static_cast<double>(now - it->second) / 1e6);
      asked_at_.erase(it);
    }
  } else if (std::holds_alternative<proto::TokenRevoke>(m.body)) {
    ++revocations_;
  } else if (const auto* e = std::get_if<proto::Error>(&m.body)) {
    if (e->code == proto::ErrorCode::kSchedulerUnavailable) {
      ++unavailable_;
      asked_at_.erase(h);
    }
  }
}

void PmgrMetrics::gone(HookId h) { asked_at_.erase(h); }

std::string PmgrMetrics::render(const PmgrView& v) const {
  prom::Writer w;
  write_build_info(&w);
  const prom::Labels client = prom::client_labels(v.client);
  auto g = [&](const char* name, const char* type, const char* help, double value) {
    w.family(name, type, help);
    w.sample(name, client, value);
  };
  w.family("gem_pmgr_processes", "gauge", "Processes of the client connected, by connection kind.");
  w.sample("gem_pmgr_processes", prom::join(client, {{"kind", "launch"}}), static_cast<double>(v.launch_processes));
  w.sample("gem_pmgr_processes", prom::join(client, {{"kind", "memory"}}), static_cast<double>(v.memory_sessions));
  g("gem_pmgr_connections", "gauge", "Connections open from processes (with those that have not said Hello yet).",
    static_cast<double>(v.connections));
  g("gem_pmgr_grants_total", "counter", "Token grants passed to processes (one per process a grant reaches).",
    static_cast<double>(grants_));
  g("gem_pmgr_revocations_total", "counter", "Token revocations passed to processes.", static_cast<double>(revocations_));
  g("gem_pmgr_scheduler_unavailable_total", "counter",
    "Answers 'scheduler unavailable' to processes (they then run unthrottled, or wait with GEMINI_FAIL_CLOSED=1).",
    static_cast<double>(unavailable_));
  w.family("gem_pmgr_token_wait_seconds", "histogram", "From a process asking for the token to its grant.");
  w.histogram("gem_pmgr_token_wait_seconds", client, wait_);

  struct Series {
    const char* name;
    const char* help;
    double (*value)(const RouteView&);
  };
  static const Series kSeries[] = {
      {"gem_pmgr_scheduler_up", "1 while the scheduler is connected and has answered Hello.",
       [](const RouteView& r) { return r.ready ? 1.0 : 0.0; }},
      {"gem_pmgr_token_held", "1 while the client holds that scheduler's token.",
       [](const RouteView& r) { return r.holding ? 1.0 : 0.0; }},
      {"gem_pmgr_waiting_processes", "Processes queued for that scheduler's next grant.",
       [](const RouteView& r) { return static_cast<double>(r.waiting); }},
      {"gem_pmgr_route_processes", "Processes routed to that scheduler (launch gates and memory sessions).",
       [](const RouteView& r) { return static_cast<double>(r.processes); }},
      {"gem_pmgr_memory_limit_bytes", "GPU_MEM on that scheduler's GPU (0: no limit or not known yet).",
       [](const RouteView& r) { return static_cast<double>(r.mem_limit); }},
      {"gem_pmgr_memory_used_bytes", "Device memory leased to the client's processes on that route.",
       [](const RouteView& r) { return static_cast<double>(r.mem_held); }},
  };
  for (const Series& s : kSeries) {
    w.family(s.name, "gauge", s.help);
    for (const RouteView& r : v.routes) w.sample(s.name, prom::join(client, {{"scheduler", r.scheduler}}), s.value(r));
  }
  // Per process (gemctl ps), at most the connection cap of them.
  w.family("gem_pmgr_process_token_held", "gauge", "Per launch gate (one per process and GPU): 1 while it holds the token.");
  for (const ProcessView& p : v.processes) {
    if (!p.memory) {
      w.sample("gem_pmgr_process_token_held", prom::join(client, {{"pid", std::to_string(p.pid)}, {"scheduler", p.scheduler}}),
               p.holding ? 1 : 0);
    }
  }
  w.family("gem_pmgr_process_memory_bytes", "gauge", "Per memory session (one per process and GPU): device memory leased, bytes.");
  for (const ProcessView& p : v.processes) {
    if (p.memory) {
      w.sample("gem_pmgr_process_memory_bytes", prom::join(client, {{"pid", std::to_string(p.pid)}, {"scheduler", p.scheduler}}),
               static_cast<double>(p.mem_bytes));
    }
  }
  return w.text();
}

}  // namespace gem::pmgr
