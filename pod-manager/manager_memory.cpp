// gem-pmgr's memory sessions (docs/memory.md): one handler per message type; the budget itself is
// the route's (Route::mem_*, MemSessions, MemBudget). A session carries only memory messages.
#include "manager.h"

namespace gem::pmgr {

void Manager::on_mem_message(HookId id, Hook& h, const proto::Message& m) {
  if (const auto* r = std::get_if<proto::MemReserve>(&m.body)) {
    on_mem_reserve(h, id, m.request_id, *r);
  } else if (const auto* g = std::get_if<proto::MemReturn>(&m.body)) {
    on_mem_return(h, id, m.request_id, *g);
  } else if (std::holds_alternative<proto::MemQuery>(m.body)) {
    on_mem_query(h, id, m.request_id);
  } else {
    refuse_hook(id, h, m.request_id, proto::ErrorCode::kProtocol,
                std::string("unexpected ") + proto::type_name(m.body) + " on a memory session");
  }
}

void Manager::on_mem_reserve(Hook& h, HookId id, uint64_t rid, const proto::MemReserve& m) {
  Actions acts;
  sched_of(h)->route.mem_reserve(id, rid, m, mono_us(), &acts);
  push(h.route, std::move(acts));
}

void Manager::on_mem_return(Hook& h, HookId id, uint64_t rid, const proto::MemReturn& m) {
  Actions acts;
  sched_of(h)->route.mem_return(id, rid, m, mono_us(), &acts);
  push(h.route, std::move(acts));
}

void Manager::on_mem_query(Hook& h, HookId id, uint64_t rid) {
  Actions acts;
  sched_of(h)->route.mem_query(id, rid, mono_us(), &acts);
  push(h.route, std::move(acts));
}

}  // namespace gem::pmgr
