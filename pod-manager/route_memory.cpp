// Route's memory-session events (route.h, docs/memory.md): they join the route's scheduler
// connection, whose ClientSettings carry the limit; the sessions themselves are MemSessions'.
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
}

void Route::mem_return(HookId h, uint64_t rid, const proto::MemReturn& m, Actions* out) {
  mem_.give_back(h, rid, m, out);
}

void Route::mem_query(HookId h, uint64_t rid, Micros now, Actions* out) {
  mem_.query(h, rid, out);
  ensure_link(now, out);
}

}  // namespace gem::pmgr
