#include "mem_ledger.h"

#include <algorithm>

namespace gem::hook {

namespace {

constexpr uint64_t kMax = MemLedger::kMaxBytes;
constexpr uint64_t kMiB = uint64_t{1} << 20;

uint64_t clamp(uint64_t v) { return std::min(v, kMax); }
uint64_t add(uint64_t a, uint64_t b) { return std::min(clamp(a) + clamp(b), kMax); }
uint64_t sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

uint64_t MemLedger::chunk_for(uint64_t limit) {
  return limit == 0 ? 64 * kMiB : std::clamp<uint64_t>(clamp(limit) / 32, 2 * kMiB, 64 * kMiB);
}

void MemLedger::set_limit(uint64_t bytes) { limit_ = clamp(bytes); }

uint64_t MemLedger::shortfall(uint64_t bytes) const {
  if (!leasing()) return 0;
  return sub(add(used(), bytes), lease_);
}

LeaseAsk MemLedger::ask(uint64_t bytes) const {
  LeaseAsk a;
  a.need = shortfall(bytes);
  if (a.need > 0) a.want = add(a.need, chunk_for(limit_));
  return a;
}

bool MemLedger::beyond_limit(uint64_t bytes) const { return limited() && add(used(), bytes) > limit_; }

void MemLedger::reserve(uint64_t bytes) { pending_ = add(pending_, bytes); }

void MemLedger::rollback(uint64_t bytes) { pending_ = sub(pending_, clamp(bytes)); }

void MemLedger::commit(MemKey key, uint64_t bytes) {
  bytes = clamp(bytes);
  pending_ = sub(pending_, bytes);
  auto [it, fresh] = sizes_.try_emplace(key, bytes);
  if (!fresh) {
    committed_ = sub(committed_, it->second);
    it->second = bytes;
  }
  committed_ = add(committed_, bytes);
}

std::optional<uint64_t> MemLedger::release(MemKey key) {
  auto it = sizes_.find(key);
  if (it == sizes_.end()) return std::nullopt;
  const uint64_t bytes = it->second;
  committed_ = sub(committed_, bytes);
  sizes_.erase(it);
  return bytes;
}

uint64_t MemLedger::settle(MemKey key, uint64_t bytes) {
  bytes = clamp(bytes);
  const uint64_t before = held(key);
  if (bytes == 0) {
    release(key);
  } else {
    committed_ = add(sub(committed_, before), bytes);
    sizes_[key] = bytes;
  }
  return before;
}

uint64_t MemLedger::held(MemKey key) const {
  auto it = sizes_.find(key);
  return it == sizes_.end() ? 0 : it->second;
}

void MemLedger::add_lease(uint64_t bytes) { lease_ = add(lease_, bytes); }

void MemLedger::remove_lease(uint64_t bytes) { lease_ = sub(lease_, clamp(bytes)); }

uint64_t MemLedger::surplus(uint64_t keep) const { return sub(lease_, add(used(), keep)); }

}  // namespace gem::hook
