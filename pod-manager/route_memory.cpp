// Route's memory-session events (route.h, docs/memory.md): they join the route's scheduler
// connection, whose ClientSettings carry the limit; the sessions themselves are MemSessions'.
// Residency (docs/memory.md, "Residency"): the sessions' total goes to the scheduler as MemUsage,
// and the scheduler's Evict to the route's launch gates.
#include "route.h"

namespace gem::pmgr {

void Route::mem_hello(HookId h, const std::string& uuid, uint64_t rid, Micros now, Actions* out) {
  mem_.hello(h, uuid, rid, now, out);
  // Programs allocate before they launch: connect now. A scheduler already known to be unreachable
  // leaves the last known (or declared) limit, which fail() handed to mem_ already.
  if (ensure_link(now, out) == Link::kUnavailable && !mem_.known()) mem_.set_limit(settings_.gpu_mem_bytes, out, settings_.flags);
}

void Route::mem_reserve(HookId h, uint64_t rid, const proto::MemReserve& m, Micros now, Actions* out) {
  mem_.reserve(h, rid, m, out);
  ensure_link(now, out);
  report_usage(now, out);
}

void Route::mem_return(HookId h, uint64_t rid, const proto::MemReturn& m, Micros now, Actions* out) {
  mem_.give_back(h, rid, m, out);
  report_usage(now, out);
}

void Route::mem_query(HookId h, uint64_t rid, Micros now, Actions* out) {
  mem_.query(h, rid, out);
  ensure_link(now, out);
}

void Route::report_usage(Micros now, Actions* out) {
  if (state_ != State::kReady) return;
  if (auto u = usage_.update(mem_.held_total(), settings_.flags, now)) to_sched({0, *u}, out);
}

void Route::on_evict(const proto::Evict& e, Actions* out) {
  // Every launch gate of the client on this route moves its managed memory to the host (with the
  // scheduler's flags: kEvictDemandPaging); memory sessions only count leases and are not told.
  for (HookId h : hooks_) to_hook(h, {0, e}, out);
}

}  // namespace gem::pmgr
