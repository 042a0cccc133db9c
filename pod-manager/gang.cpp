#include "gang.h"

#include <algorithm>

#include "route.h"

namespace gem::pmgr {

bool Gang::member(const Route& r, Micros now) const {
  if (window_ <= 0 || r.gate_count() == 0) return false;  // no process left to use its token
  return r.busy() || (r.used_ever() && now - r.last_used() <= window_);
}

void Gang::update(const std::vector<Member>& routes, Micros now, std::vector<std::pair<std::string, Action>>* out) const {
  std::vector<const Member*> members;
  for (const Member& m : routes) {
    if (member(*m.second, now)) members.push_back(&m);
  }
  const bool on = members.size() >= 2;
  const bool any_busy = on && std::any_of(members.begin(), members.end(), [](const Member* m) { return m->second->busy(); });
  auto emit = [out](const std::string& key, Actions&& acts) {
    for (Action& a : acts) out->emplace_back(key, std::move(a));
  };
  for (const Member& m : routes) {
    const bool in = on && std::find(members.begin(), members.end(), &m) != members.end();
    Actions acts;
    if (!in) {
      m.second->set_gang(false, kNever, kNever, false, now, &acts);
      emit(m.first, std::move(acts));
      continue;
    }
    Micros align_end = kNever, first_grant = kNever;
    bool split = false;
    for (const Member* o : members) {
      if (o == &m) continue;
      if (o->second->token().held()) {
        align_end = std::min(align_end, o->second->token_end());
        first_grant = std::min(first_grant, o->second->token().grant_at());
      }
      if (!o->second->token().has_holders()) split = true;
    }
    m.second->set_gang(true, align_end, first_grant, split, now, &acts);
    if (any_busy) {
      m.second->gang_ask(now, &acts);
    } else {
      m.second->unpark(now, &acts);
    }
    emit(m.first, std::move(acts));
  }
}

}  // namespace gem::pmgr
