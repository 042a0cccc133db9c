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
  // Unified memory only when the client's settings say so and its pod manager runs with them: a
  // client claiming it against its config is counted as resident and never evicted.
  // A latency client is never evicted either: it may co-run beside the holder at any moment.
  const proto::ClientSettings cs = settings_of(c.client);
  const bool um = (u.flags & proto::kFlagUnifiedMemory) != 0 && (cs.flags & proto::kFlagUnifiedMemory) != 0 &&
                  cs.latency_us == 0;
  const uint64_t bytes = proto::wire_bytes(u.bytes);
  LOG_DEBUG("%s uses %llu MiB of GPU memory%s", c.client.c_str(), mib(bytes), um ? " (unified)" : "");
  residency_.usage(c.client, bytes, um);
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
