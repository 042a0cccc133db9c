// The memory sessions of one gem-pmgr route (docs/memory.md): which hook connections hold leases on
// which GPU, when their Hello is answered, and what each memory message is answered with. Pure like
// Route (it owns one): events in, Actions out, time passed in by the caller. Not thread-safe.
//
// A session's Hello is answered (MemState with the Hello's request id) once the route knows the
// client's limit: at once when it knew it before, else when the scheduler's ClientSettings arrive or
// the scheduler is found unreachable (the route then passes its last known or declared limit). Until
// then the session gets a Heartbeat every heartbeat period, and the memory messages it sends are
// kept (at most kMaxDeferred) and handled in order right after the answer. The route has one
// MemBudget, shared by every device UUID its sessions name: a route is one gem-schd, and gem-schd
// is one per GPU, so GPU_MEM (the limit that gem-schd hands out) bounds the client's memory under
// that scheduler however many UUIDs its hooks report (docs/design.md, "Memory accounting": 20 made-up
// UUIDs share one GPU_MEM, they do not multiply it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "action.h"
#include "gem/clock.h"
#include "gem/protocol.h"
#include "mem_budget.h"

namespace gem::pmgr {

class MemSessions {
 public:
  /// Memory messages kept per session while its Hello waits for the limit; one more is a protocol
  /// error (Error kProtocol, the session dropped).
  static constexpr size_t kMaxDeferred = 16;

  /// `heartbeat_period`: µs between Heartbeats to sessions whose Hello waits.
  explicit MemSessions(Micros heartbeat_period);

  /// Session `h` said Hello (role kHookMemory) for GPU `uuid` (non-empty; checked by the edge) with
  /// request id `rid`: answered now when the limit is known, else later (see above).
  void hello(HookId h, const std::string& uuid, uint64_t rid, Micros now, Actions* out);
  /// The route knows the client's limit (bytes, 0 = none): from the scheduler's ClientSettings, or
  /// its last known / declared one when the scheduler cannot be reached. The first call answers the
  /// waiting Hellos, then their kept messages; later calls that change the limit push an unsolicited
  /// MemState (request id 0) to every session. Leases are never taken back.
  /// `flags`: ClientSettings.flags, sent in every MemState; a change is pushed like a limit change.
  void set_limit(uint64_t limit, Actions* out, uint32_t flags = 0);
  /// MemReserve: answered with MemState (rid) whose granted_bytes is what the lease grew by.
  void reserve(HookId h, uint64_t rid, const proto::MemReserve& m, Actions* out);
  /// MemReturn: lowers only h's own lease, saturating at 0; no answer.
  void give_back(HookId h, uint64_t rid, const proto::MemReturn& m, Actions* out);
  /// MemQuery: answered with MemState (rid), granted_bytes 0.
  void query(HookId h, uint64_t rid, Actions* out);
  /// h's connection closed: its lease is released at once (no message to anyone). A no-op for an
  /// unknown h (a launch-gate connection).
  void gone(HookId h);

  /// Heartbeats to sessions whose Hello waits.
  void tick(Micros now, Actions* out);
  /// The next time tick() has something to do; kNever when nothing is due.
  Micros next_deadline() const { return hb_due_; }

  bool has(HookId h) const { return sessions_.count(h) != 0; }
  size_t count() const { return sessions_.size(); }
  /// True once set_limit() was called: Hellos are then answered at once.
  bool known() const { return known_; }
  uint64_t limit() const { return limit_; }
  /// The leases of all sessions of the route, bytes: what the route reports to its scheduler
  /// (MemUsage), at most the limit unless the limit was lowered below it.
  uint64_t held_total() const { return budget_.held(); }
  /// The route's budget (every device UUID of the route shares it).
  const MemBudget& budget() const { return budget_; }

 private:
  struct Session {
    std::string uuid;
    uint64_t hello_rid = 0;
    std::vector<proto::Message> deferred;  // memory messages received before the Hello's answer
  };

  /// Keeps m until the limit is known; false (and h refused) past kMaxDeferred.
  bool defer(HookId h, uint64_t rid, proto::Body body, Actions* out);
  void replay(HookId h, std::vector<proto::Message> msgs, Actions* out);
  void send_state(HookId h, uint64_t rid, uint64_t granted, Actions* out);

  Micros heartbeat_period_;
  bool known_ = false;
  uint64_t limit_ = 0;
  uint32_t flags_ = 0;  // ClientSettings.flags
  Micros hb_due_ = kNever;
  std::map<HookId, Session> sessions_;
  MemBudget budget_;  // the route's one budget: all sessions, all device UUIDs
};

}  // namespace gem::pmgr
