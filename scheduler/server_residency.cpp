// gem-schd's residency edge (docs/memory.md, "Residency"): takes the pod managers' MemUsage reports,
// carries out the pure plan (gpu_residency.h) at each grant by sending Evict, and keeps the policy's
// resident hint (Policy::set_cold) in step with it.
#include "gem/log.h"
#include "server.h"

namespace gem::sched {

namespace {
unsigned long long mib(uint64_t bytes) { return static_cast<unsigned long long>(bytes >> 20); }
}  // namespace

void Server::on_mem_usage(Conn& c, const proto::MemUsage& u) {
  // The report gives bytes only: unified memory and the cap on the charge are the client's config's
  // (residency_terms), so neither flags=0 nor 2^64-1 can change what the others are evicted for.
  const uint64_t bytes = proto::wire_bytes(u.bytes);
  const Terms t = residency_terms(c.client);
  LOG_DEBUG("%s uses %llu MiB of GPU memory%s%s", c.client.c_str(), mib(bytes), t.um ? " (unified)" : "",
            (u.flags & proto::kFlagUnifiedMemory) != 0 && !t.um ? " (reported unified, not so configured)" : "");
  residency_.usage(c.client, bytes, t.um, t.gpu_mem);
}

Server::Terms Server::residency_terms(const std::string& client) const {
  // Unified memory only when the client's settings say so; a latency client is never evicted
  // either: it may co-run beside the holder at any moment.
  const proto::ClientSettings cs = settings_of(client);
  return {cs.gpu_mem_bytes, (cs.flags & proto::kFlagUnifiedMemory) != 0 && cs.latency_us == 0};
}

void Server::reconfigure_residency() {
  for (const auto& [name, fd] : fd_of_client_) {
    if (residency_.client(name) == nullptr) continue;
    const Terms t = residency_terms(name);
    residency_.configure(name, t.gpu_mem, t.um);
  }
}

void Server::plan_residency(const std::string& holder, Micros now) {
  const GpuResidency::Plan plan = residency_.grant(holder, now);
  policy_.set_cold(holder, false);
  if (plan.warn) {
    LOG_WARN("resident GPU memory %llu MiB is above the budget of %llu MiB with nothing left to evict "
             "(the holder '%s' and clients without unified memory stay)",
             mib(plan.resident_bytes), mib(residency_.budget()), holder.c_str());
  }
  for (const std::string& name : plan.evict) {
    policy_.set_cold(name, true);
    auto it = fd_of_client_.find(name);
    if (it == fd_of_client_.end()) continue;  // cannot happen: reports come from connected clients
    LOG_DEBUG("evict %s for %s (resident now %llu MiB of %llu MiB)", name.c_str(), holder.c_str(),
              mib(plan.resident_bytes), mib(residency_.budget()));
    send_or_drop(it->second, {0, proto::Evict{opts_.demand_paging ? proto::kEvictDemandPaging : 0u}});
  }
}

void Server::forget_residency(const std::string& client) {
  residency_.forget(client);
  policy_.set_cold(client, false);
}

}  // namespace gem::sched
