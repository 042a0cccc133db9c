#include "lease_sync.h"

#include <algorithm>

#include "gem/log.h"

namespace gem::hook {

void LeaseSync::apply(const proto::MemState& st) {
  const uint64_t before = ledger_.limit();
  ledger_.set_limit(proto::wire_bytes(st.limit_bytes));
  client_held_ = proto::wire_bytes(st.client_held_bytes);
  known_ = true;
  um_ = (st.flags & proto::kFlagUnifiedMemory) != 0;
  ledger_.set_tracking(um_);
  if (before != ledger_.limit()) {
    LOG_INFO("GPU_MEM on %s is now %llu bytes", uuid_.c_str(), static_cast<unsigned long long>(ledger_.limit()));
  }
}

void LeaseSync::connect(Micros now) {
  if (ch_.is_open() || now < retry_at_) return;
  retry_at_ = now + kMemRetryPeriod;
  proto::MemState st;
  std::string why;
  if (!ch_.open(uuid_, &st, &why)) {
    if (!shared_.warned) {
      shared_.warned = true;
      LOG_WARN("memory session for %s: pod manager %s: %s; %s", uuid_.c_str(), shared_.pod_manager.c_str(),
               why.c_str(), known_ ? "keeping the last lease" : (shared_.fail_closed ? "refusing allocations" : "not limiting"));
    }
    return;
  }
  shared_.warned = false;
  apply(st);
  // A new session holds nothing at gem-pmgr: declare what this process already holds.
  ledger_.remove_lease(ledger_.lease());
  const uint64_t held = ledger_.used();
  if (held > 0 && ch_.reserve(held, held, true, &st, &why)) {
    apply(st);
    ledger_.add_lease(proto::wire_bytes(st.granted_bytes));
  }
}

void LeaseSync::check_pushes(Micros now) {
  if (!ch_.is_open() || now - push_checked_ < kPushCheckPeriod) return;
  push_checked_ = now;
  if (auto st = ch_.take_push()) {
    apply(*st);
    give_back_surplus(0);
  }
}

void LeaseSync::give_back_surplus(uint64_t keep) {
  if (!ledger_.leasing() || !ch_.is_open()) return;
  const uint64_t s = ledger_.surplus(keep);
  if (s == 0) return;
  if (ch_.give_back(s)) ledger_.remove_lease(s);
}

bool LeaseSync::grow_lease(uint64_t bytes) {
  const LeaseAsk a = ledger_.ask(bytes);
  if (a.need == 0) return true;
  if (ledger_.beyond_limit(bytes) || !ch_.is_open()) return false;
  proto::MemState st;
  std::string why;
  if (!ch_.reserve(a.need, a.want, false, &st, &why)) {
    LOG_WARN("memory session for %s: %s; keeping the last lease", uuid_.c_str(), why.c_str());
    return false;
  }
  apply(st);
  ledger_.add_lease(proto::wire_bytes(st.granted_bytes));
  return ledger_.shortfall(bytes) == 0;
}

bool LeaseSync::reserve(uint64_t bytes, Micros now) {
  connect(now);
  check_pushes(now);
  if (!known_ && shared_.fail_closed) return false;
  if (ledger_.limited()) {
    if (!grow_lease(bytes)) return false;
  } else if (ledger_.leasing()) {
    grow_lease(bytes);  // no limit to enforce: the lease only tells gem-pmgr what is used
  }
  ledger_.reserve(bytes);
  return true;
}

void LeaseSync::finish(uint64_t reserved, bool ok, MemKey key, uint64_t actual) {
  ledger_.rollback(reserved);
  if (!ok) return;
  ledger_.reserve(actual);
  ledger_.commit(key, actual);
}

bool LeaseSync::release(MemKey key, Micros now) {
  if (!ledger_.release(key)) return false;
  check_pushes(now);
  give_back_surplus(MemLedger::chunk_for(ledger_.limit()));
  return true;
}

void LeaseSync::settle(MemKey key, uint64_t bytes) {
  const uint64_t before = ledger_.settle(key, bytes);
  if (bytes < before) give_back_surplus(MemLedger::chunk_for(ledger_.limit()));
}

bool LeaseSync::within_limit(uint64_t bytes, Micros now) {
  connect(now);
  if (!known_) return !shared_.fail_closed;
  return !ledger_.limited() || bytes <= free();
}

bool LeaseSync::view(Micros now, uint64_t* limit, uint64_t* free_bytes) {
  connect(now);
  proto::MemState st;
  std::string why;
  if (ch_.is_open() && ch_.query(&st, &why)) apply(st);
  if (!known_ || !ledger_.limited()) return false;
  *limit = ledger_.limit();
  *free_bytes = free();
  return true;
}

uint64_t LeaseSync::free() const {
  // What the other processes of the client hold is not ours to use; our own unused lease is.
  const uint64_t lim = ledger_.limit();
  const uint64_t others = client_held_ > ledger_.lease() ? client_held_ - ledger_.lease() : 0;
  return lim - std::min(lim, others + ledger_.used());
}

}  // namespace gem::hook
