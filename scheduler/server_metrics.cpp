// gem-schd's metrics (metrics.h) from the server's state: the poll loop copies them into a snapshot
// when a scrape asks (gem::MetricsEndpoint), a slice of clients per turn; the endpoint's thread
// renders it.
#include <memory>
#include <utility>

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
  v.refused = refusals_.recent(now);  // bounded: kMaxRefusedShown
  v.refusal_totals = refusals_.totals();
  return v;
}

// A snapshot is built kMetricsSliceClients clients per loop turn (the loop comes back at once while
// one is under way: next_wakeup()), then handed to the endpoint, whose thread renders it. So a
// scrape costs the loop at most one slice per turn, whatever the number of clients (issue 21).
void Server::publish_metrics() {
  const Micros now = mono_us();
  if (snapshot_ == nullptr) {
    snapshot_ = std::make_unique<SchedView>(metrics_view(now));
    snapshot_cursor_.clear();
  }
  const std::vector<std::string> names = policy_.clients_after(snapshot_cursor_, kMetricsSliceClients);
  for (const std::string& name : names) {
    snapshot_->clients.push_back(client_view(name, now));
    snapshot_->busy_window += snapshot_->clients.back().used_window;
  }
  if (names.size() == kMetricsSliceClients) {
    snapshot_cursor_ = names.back();
    return;
  }
  metrics_.keep_only([this](const std::string& name) { return policy_.has_client(name); });
  auto snap = std::make_shared<const std::pair<SchedMetrics, SchedView>>(metrics_, std::move(*snapshot_));
  snapshot_.reset();
  endpoint_->publish(MetricsEndpoint::Renderer([snap] { return snap->first.render(snap->second); }));
}

}  // namespace gem::sched
