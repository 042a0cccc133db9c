// MemBudget: see mem_budget.h for the rules. Every size from the wire is clamped before any sum.
#include "mem_budget.h"

#include <algorithm>

#include "gem/protocol.h"

namespace gem::pmgr {

MemBudget::MemBudget(uint64_t limit) : limit_(proto::wire_bytes(limit)) {}

void MemBudget::join(Session s) { leases_.emplace(s, 0); }

bool MemBudget::fits(uint64_t bytes) const {
  // held_ <= kMaxHeld and bytes <= 2^50: no overflow; and limit_ - bytes only when bytes <= limit_.
  return limit_ == 0 || (bytes <= limit_ && held_ <= limit_ - bytes);
}

uint64_t MemBudget::grow(Session s, uint64_t bytes) {
  uint64_t& lease = leases_[s];
  const uint64_t room = kMaxHeld - std::max(held_, lease);  // lease <= held_ <= kMaxHeld
  const uint64_t add = std::min(bytes, room);
  lease += add;
  held_ += add;
  return add;
}

uint64_t MemBudget::reserve(Session s, uint64_t need, uint64_t want, bool existing) {
  join(s);
  need = proto::wire_bytes(need);
  want = std::max(proto::wire_bytes(want), need);
  if (fits(want)) return grow(s, want);
  if (fits(need)) return grow(s, need);
  // Declared holdings never take the total beyond the limit (limit_ > 0 here: with none all fits).
  if (existing && held_ < limit_) return grow(s, limit_ - held_);
  return 0;
}

uint64_t MemBudget::give_back(Session s, uint64_t bytes) {
  auto it = leases_.find(s);
  if (it == leases_.end()) return 0;
  const uint64_t back = std::min(proto::wire_bytes(bytes), it->second);
  it->second -= back;
  held_ -= back;
  return back;
}

uint64_t MemBudget::drop(Session s) {
  auto it = leases_.find(s);
  if (it == leases_.end()) return 0;
  const uint64_t freed = it->second;
  held_ -= freed;
  leases_.erase(it);
  return freed;
}

std::vector<MemBudget::Session> MemBudget::set_limit(uint64_t bytes) {
  const uint64_t limit = proto::wire_bytes(bytes);
  std::vector<Session> notify;
  if (limit == limit_) return notify;
  limit_ = limit;
  notify.reserve(leases_.size());
  for (const auto& [s, lease] : leases_) notify.push_back(s);
  return notify;
}

uint64_t MemBudget::held_by(Session s) const {
  auto it = leases_.find(s);
  return it == leases_.end() ? 0 : it->second;
}

}  // namespace gem::pmgr
