// GpuResidency: see gpu_residency.h for the rule. Sizes are clamped on entry (2^50); a million clients of
// 2^50 bytes each would still overflow 64 bits, so sums are taken in 128 bits.
#include "gpu_residency.h"

#include <algorithm>

#include "gem/protocol.h"

namespace gem::sched {

namespace {
constexpr uint64_t kMinReserve = uint64_t{2} << 30;  // 2 GiB

using Sum = unsigned __int128;

uint64_t clamp64(Sum s) { return s > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(s); }
}  // namespace

uint64_t default_mem_budget(uint64_t total) {
  const uint64_t reserve = std::max(kMinReserve, total / 20);
  return total > reserve ? total - reserve : 0;
}

GpuResidency::GpuResidency(uint64_t budget, bool enabled) : budget_(budget), enabled_(enabled && budget > 0) {}

void GpuResidency::usage(const std::string& client, uint64_t bytes, bool um, uint64_t gpu_mem) {
  clients_[client].reported = proto::wire_bytes(bytes);
  configure(client, gpu_mem, um);
}

void GpuResidency::configure(const std::string& client, uint64_t gpu_mem, bool um) {
  Client& c = clients_[client];
  c.gpu_mem = proto::wire_bytes(gpu_mem);
  c.bytes = c.gpu_mem == 0 ? c.reported : std::min(c.reported, c.gpu_mem);
  // A client that stops being UM cannot be moved any more: it counts as resident from now on.
  if (!um) c.resident = true;
  c.um = um;
}

GpuResidency::Plan GpuResidency::grant(const std::string& holder, Micros now) {
  Client& h = clients_[holder];
  h.resident = true;
  h.ran = true;
  h.last_run = now;
  Plan plan;
  Sum resident = resident_sum();
  plan.resident_bytes = clamp64(resident);
  if (!enabled_ || resident <= budget_) {
    over_ = false;
    return plan;
  }
  // Evictable: resident UM clients other than the holder that hold something, LRU first.
  std::vector<std::pair<const std::string*, Client*>> order;
  for (auto& [name, c] : clients_) {
    if (c.um && c.resident && c.bytes > 0 && name != holder) order.emplace_back(&name, &c);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if (a.second->ran != b.second->ran) return !a.second->ran;  // never run: first
    return a.second->ran && a.second->last_run < b.second->last_run;
  });
  for (auto& [name, c] : order) {
    if (resident <= budget_) break;
    c->resident = false;
    ++c->evictions;
    resident -= c->bytes;  // it was counted in the sum
    plan.evict.push_back(*name);
  }
  plan.resident_bytes = clamp64(resident);
  plan.over_budget = resident > budget_;
  plan.warn = plan.over_budget && !over_;
  over_ = plan.over_budget;
  return plan;
}

void GpuResidency::forget(const std::string& client) { clients_.erase(client); }

unsigned __int128 GpuResidency::resident_sum() const {
  Sum sum = 0;
  for (const auto& [name, c] : clients_) {
    if (counts(c)) sum += c.bytes;
  }
  return sum;
}

uint64_t GpuResidency::resident_bytes() const { return clamp64(resident_sum()); }

const GpuResidency::Client* GpuResidency::client(const std::string& name) const {
  auto it = clients_.find(name);
  return it == clients_.end() ? nullptr : &it->second;
}

}  // namespace gem::sched
