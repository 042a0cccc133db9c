// gem-schd's metrics (metrics.h) from the server's state; rendered on the poll loop's thread when a
// scrape asks for them (gem::MetricsEndpoint), so the numbers are consistent with one another.
#include <set>

#include "server.h"

namespace gem::sched {

void Server::set_observers(MetricsEndpoint* endpoint, const GpuHealth* health) {
  endpoint_ = endpoint;
  health_ = health;
}

ClientView Server::client_view(const std::string& name, Micros now) const {
  const auto s = policy_.stats(name, now);
  const auto* r = residency_.client(name);
  ClientView c;
  c.name = name;
  c.request = s->request;
  c.limit = s->limit;
  c.share = s->share;
  c.used_total = s->used_total;
  c.used_window = s->used_window;
  c.grants = s->grants;
  c.coruns = s->coruns;
  c.revocations = s->revocations;
  c.latency = s->latency;
  c.waiting = s->waiting;
  c.holding = s->holding;
  c.corun = s->corun;
  c.connected = fd_of_client_.count(name) != 0;
  c.gpu_mem = settings_of(name).gpu_mem_bytes;
  c.mem_bytes = r != nullptr ? r->bytes : 0;
  c.resident = r == nullptr || r->resident || !r->um;
  c.evictions = r != nullptr ? r->evictions : 0;
  return c;
}

SchedView Server::metrics_view(Micros now) const {
  SchedView v;
  v.gpu = opts_.gpu_uuid;
  v.window = policy_.options().window;
  v.uptime = now - started_;
  v.holder = policy_.holder();
  v.mem_budget = residency_.enabled() ? residency_.budget() : 0;
  v.resident_bytes = residency_.resident_bytes();
  if (health_ != nullptr) v.health = health_->view();
  for (const std::string& name : policy_.clients()) {
    v.clients.push_back(client_view(name, now));
    v.busy_window += v.clients.back().used_window;
  }
  v.refused = refusals_.recent(now);
  v.refusal_totals = refusals_.totals();
  return v;
}

void Server::publish_metrics() {
  const SchedView v = metrics_view(mono_us());
  std::set<std::string> names;
  for (const ClientView& c : v.clients) names.insert(c.name);
  metrics_.keep_only(names);
  endpoint_->publish(metrics_.render(v));
}

}  // namespace gem::sched
