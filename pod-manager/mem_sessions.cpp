// MemSessions: see mem_sessions.h. Every answer goes out as an Action; the budgets do the arithmetic.
#include "mem_sessions.h"

#include <utility>

namespace gem::pmgr {

MemSessions::MemSessions(Micros heartbeat_period) : heartbeat_period_(heartbeat_period) {}

void MemSessions::hello(HookId h, const std::string& uuid, uint64_t rid, Micros now, Actions* out) {
  Session& s = sessions_[h];
  s.uuid = uuid;
  s.hello_rid = rid;
  budget_.join(h);
  if (known_) {
    send_state(h, rid, 0, out);
  } else if (hb_due_ == kNever) {
    hb_due_ = now + heartbeat_period_;
  }
}

void MemSessions::set_limit(uint64_t limit, Actions* out, uint32_t flags) {
  limit_ = proto::wire_bytes(limit);
  const bool flags_changed = flags != flags_;
  flags_ = flags;
  if (known_) {
    const bool limit_changed = !budget_.set_limit(limit_).empty();
    if (limit_changed || flags_changed) {
      for (auto& [h, s] : sessions_) send_state(h, 0, 0, out);
    }
    return;
  }
  known_ = true;
  hb_due_ = kNever;
  budget_.set_limit(limit_);
  // Answer every Hello first, then what each session sent meanwhile (the Hello's answer comes first
  // on each connection either way).
  std::vector<std::pair<HookId, std::vector<proto::Message>>> kept;
  for (auto& [h, s] : sessions_) {
    send_state(h, s.hello_rid, 0, out);
    if (!s.deferred.empty()) kept.emplace_back(h, std::move(s.deferred));
    s.deferred.clear();
  }
  for (auto& [h, msgs] : kept) replay(h, std::move(msgs), out);
}

void MemSessions::reserve(HookId h, uint64_t rid, const proto::MemReserve& m, Actions* out) {
  if (!has(h)) return;
  if (!known_) {
    defer(h, rid, m, out);
    return;
  }
  const uint64_t granted = budget_.reserve(h, m.need_bytes, m.want_bytes, m.existing);
  send_state(h, rid, granted, out);
}

void MemSessions::give_back(HookId h, uint64_t rid, const proto::MemReturn& m, Actions* out) {
  if (!has(h)) return;
  if (!known_) {
    defer(h, rid, m, out);
    return;
  }
  budget_.give_back(h, m.bytes);
}

void MemSessions::query(HookId h, uint64_t rid, Actions* out) {
  if (!has(h)) return;
  if (!known_) {
    defer(h, rid, proto::MemQuery{}, out);
    return;
  }
  send_state(h, rid, 0, out);
}

void MemSessions::gone(HookId h) {
  auto it = sessions_.find(h);
  if (it == sessions_.end()) return;
  budget_.drop(h);
  sessions_.erase(it);
  if (sessions_.empty()) hb_due_ = kNever;
}

void MemSessions::tick(Micros now, Actions* out) {
  if (now < hb_due_) return;
  if (known_ || sessions_.empty()) {
    hb_due_ = kNever;
    return;
  }
  for (const auto& [h, s] : sessions_) out->push_back({Action::Kind::kToHook, h, {0, proto::Heartbeat{}}, {}});
  hb_due_ = now + heartbeat_period_;
}

bool MemSessions::defer(HookId h, uint64_t rid, proto::Body body, Actions* out) {
  Session& s = sessions_.at(h);
  if (s.deferred.size() >= kMaxDeferred) {
    out->push_back({Action::Kind::kToHook, h,
                    {rid, proto::Error{proto::ErrorCode::kProtocol, "too many memory requests before the Hello's answer"}},
                    {}});
    out->push_back({Action::Kind::kDropHook, h, {}, "too many memory requests before the Hello's answer"});
    return false;
  }
  s.deferred.push_back({rid, std::move(body)});
  return true;
}

void MemSessions::replay(HookId h, std::vector<proto::Message> msgs, Actions* out) {
  for (const proto::Message& m : msgs) {
    if (const auto* r = std::get_if<proto::MemReserve>(&m.body)) {
      reserve(h, m.request_id, *r, out);
    } else if (const auto* g = std::get_if<proto::MemReturn>(&m.body)) {
      give_back(h, m.request_id, *g, out);
    } else {
      query(h, m.request_id, out);
    }
  }
}

void MemSessions::send_state(HookId h, uint64_t rid, uint64_t granted, Actions* out) {
  out->push_back({Action::Kind::kToHook, h, {rid, proto::MemState{limit_, budget_.held(), granted, flags_}}, {}});
}

}  // namespace gem::pmgr
