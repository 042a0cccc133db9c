// gem-pmgr's metrics (metrics.h) from the manager's state; rendered on the poll loop's thread when
// a scrape asks for them (gem::MetricsEndpoint).
#include "manager.h"

namespace gem::pmgr {

PmgrView Manager::metrics_view() const {
  PmgrView v;
  v.client = opts_.client;
  v.connections = hooks_.size();
  for (const auto& [id, h] : hooks_) {
    if (!h.hello) continue;
    ++(h.memory ? v.memory_sessions : v.launch_processes);
    ProcessView p;
    p.pid = h.pid;
    p.scheduler = h.route;
    p.memory = h.memory;
    if (const auto s = scheds_.find(h.route); s != scheds_.end()) {
      p.holding = !h.memory && s->second.route.token().holds(id);
      if (h.memory) p.mem_bytes = s->second.route.memory().budget().held_by(id);
    }
    v.processes.push_back(std::move(p));
  }
  for (const auto& [key, s] : scheds_) {
    RouteView r;
    r.scheduler = key;
    r.ready = s.route.state() == Route::State::kReady;
    r.holding = s.route.token().held();
    r.waiting = s.route.waiter_count();
    r.processes = s.route.hook_count();
    r.mem_limit = s.route.memory().known() ? s.route.memory().limit() : 0;
    r.mem_held = s.route.memory().held_total();
    v.routes.push_back(std::move(r));
  }
  return v;
}

void Manager::publish_metrics() { endpoint_->publish(metrics_.render(metrics_view())); }

}  // namespace gem::pmgr
