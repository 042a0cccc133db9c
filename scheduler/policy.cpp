#include "policy.h"

#include <algorithm>
#include <cmath>

namespace gem::sched {

namespace {
// next_event() looks for the moment a waiting client drops under its LIMIT to this precision.
constexpr Micros kEventPrecision = 100;
}  // namespace

Policy::Policy(PolicyOptions opts) : opts_(opts) {
  if (opts_.min_quota <= 0) opts_.min_quota = 1;
  if (opts_.base_quota < opts_.min_quota) opts_.base_quota = opts_.min_quota;
  if (opts_.window <= 0) opts_.window = 1;
}

std::vector<std::string> Policy::set_clients(const std::vector<ClientShare>& clients, Micros now) {
  // Merges the new list, sorted by name, into clients_ in place: kept clients are updated where
  // they are (their usage history is not copied), new ones are inserted at a hint, absent ones
  // erased. O(n log n) for the sort, O(n) for the merge: 10^6 clients in about a second, where
  // building a new map of copies took 11 s (issue 6). A name given twice: the last one counts.
  std::vector<const ClientShare*> order;
  order.reserve(clients.size());
  for (const ClientShare& s : clients) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const ClientShare* a, const ClientShare* b) { return a->name < b->name; });
  std::vector<std::string> dropped;
  auto drop_at = [&](std::map<std::string, Client>::iterator at) {
    auto next = std::next(at);
    dropped.push_back(std::move(clients_.extract(at).key()));
    return next;
  };
  auto it = clients_.begin();
  latency_names_.clear();
  for (size_t i = 0; i < order.size(); ++i) {
    const ClientShare& s = *order[i];
    if (i + 1 < order.size() && order[i + 1]->name == s.name) continue;
    int cmp = -1;
    while (it != clients_.end() && (cmp = it->first.compare(s.name)) < 0) it = drop_at(it);
    if (it == clients_.end() || cmp != 0) {
      it = clients_.emplace_hint(it, s.name, Client{});
      it->second.active_since = now;
      it->second.allowance_at = now;
      it->second.decayed_at = now;
    }
    it->second.request = s.request;
    if (s.limit != it->second.limit) {  // a new LIMIT applies from now on, to the allowance as it stands
      it->second.allowance = allowance(it->second, now);
      it->second.allowance_at = now;
    }
    it->second.limit = s.limit;
    it->second.latency = std::max<Micros>(s.latency, 0);
    if (it->second.latency > 0) latency_names_.push_back(s.name);
    ++it;
  }
  while (it != clients_.end()) it = drop_at(it);
  if (!holder_.empty() && clients_.count(holder_) == 0) holder_.clear();
  for (auto c = coruns_.begin(); c != coruns_.end();) c = clients_.count(c->first) == 0 ? coruns_.erase(c) : std::next(c);
  return dropped;
}

bool Policy::has_client(const std::string& name) const { return clients_.count(name) != 0; }

void Policy::set_cold(const std::string& name, bool cold) {
  auto it = clients_.find(name);
  if (it != clients_.end()) it->second.cold = cold;
}

std::vector<std::string> Policy::clients() const {
  std::vector<std::string> names;
  for (const auto& kv : clients_) names.push_back(kv.first);
  return names;
}

std::vector<std::string> Policy::clients_after(const std::string& after, size_t max) const {
  std::vector<std::string> names;
  for (auto it = clients_.upper_bound(after); it != clients_.end() && names.size() < max; ++it) names.push_back(it->first);
  return names;
}

void Policy::request(const std::string& name, Micros last_burst, Micros now) {
  auto it = clients_.find(name);
  if (it == clients_.end() || holds(name)) return;
  Client& c = it->second;
  forget_old(c, now);
  if (last_burst > 0) c.burst = std::min(last_burst, opts_.window);
  if (!c.waiting && (c.busy.empty() || now - c.busy.back().end >= static_cast<Micros>(tau()))) {
    // Arriving (it never ran, or not for half a window): it starts a fresh share history (it is not
    // owed the time it did not want), and the others' time above their REQUEST, time nobody else
    // wanted, is forgiven rather than paid back by seconds of waiting.
    c.active_since = now;
    c.decayed = 0;
    c.decayed_at = now;
    forgive_surplus(name, now);
  }
  if (!c.waiting) {
    c.waiting = true;
    c.waiting_since = now;
  }
}

void Policy::forgive_surplus(const std::string& arriving, Micros now) {
  for (auto& [name, o] : clients_) {
    if (name == arriving || share(o, now) <= o.request) continue;
    o.decayed = o.request * static_cast<double>(span(o, now));
    o.decayed_at = now;
  }
}

void Policy::release(const std::string& name, Micros used, Micros burst, Micros now) {
  const bool holder = !holder_.empty() && holder_ == name;
  auto co = coruns_.find(name);
  if (!holder && co == coruns_.end()) return;
  Client& c = clients_.at(name);
  const Lease& lease = holder ? lease_ : co->second;
  const Micros charged = holder_charge(lease, used, now);
  charge(c, charged, now);
  if (holder) c.overrun = std::clamp<Micros>(charged - lease.quota, 0, opts_.swing);
  if (burst > 0) c.burst = std::min(burst, opts_.window);
  if (holder) {
    holder_.clear();
  } else {
    coruns_.erase(co);
  }
}

Micros Policy::holder_charge(const Lease& lease, Micros reported, Micros now) const {
  const Micros observed = std::max<Micros>(now - lease.start, 0);
  return std::max(observed, std::clamp<Micros>(reported, 0, opts_.window));
}

std::optional<Revocation> Policy::expire_lease(Micros now) {
  auto expired = [&](const Lease& l) { return now >= l.start + l.quota + opts_.lease_grace; };
  auto revoke = [&](const std::string& name, const Lease& l) {
    Revocation r{name, std::max<Micros>(now - l.start, 0)};
    Client& c = clients_.at(name);
    charge(c, r.held, now);
    ++c.revocations;
    return r;
  };
  if (!holder_.empty() && expired(lease_)) {
    const Revocation r = revoke(holder_, lease_);
    holder_.clear();
    return r;
  }
  for (auto it = coruns_.begin(); it != coruns_.end(); ++it) {
    if (!expired(it->second)) continue;
    const Revocation r = revoke(it->first, it->second);
    coruns_.erase(it);
    return r;
  }
  return std::nullopt;
}

void Policy::disconnect(const std::string& name, Micros now) {
  auto it = clients_.find(name);
  if (it == clients_.end()) return;
  Client& c = it->second;
  c.waiting = false;
  if (holder_ == name) {
    charge(c, std::max<Micros>(now - lease_.start, 0), now);
    holder_.clear();
  }
  if (auto co = coruns_.find(name); co != coruns_.end()) {
    charge(c, std::max<Micros>(now - co->second.start, 0), now);
    coruns_.erase(co);
  }
}

std::optional<Grant> Policy::schedule(Micros now) {
  if (!holder_.empty()) {
    // Co-run tokens: a waiting latency client within its REQUEST runs beside the holder, oldest first.
    const std::string* best = nullptr;
    Micros best_since = 0;
    for (const std::string& name : latency_names_) {
      Client& c = clients_.at(name);
      if (!c.waiting) continue;
      forget_old(c, now);
      if (!may_corun(c, now) || (best != nullptr && c.waiting_since >= best_since)) continue;
      best = &name;
      best_since = c.waiting_since;
    }
    if (best == nullptr) return std::nullopt;
    Client& c = clients_.at(*best);
    c.waiting = false;
    ++c.grants;
    ++c.coruns;
    start_allowance(c, now);
    // A co-runner launches beside the holder and keeps no one waiting: it is held to its LIMIT only
    // (an even REQUEST quota would add hand-offs in the middle of its requests and spare no one).
    const Lease l{now, grant_quota(c, demand(), 1)};
    coruns_[*best] = l;
    return Grant{*best, l.quota, true};
  }
  // Counted once: the grantee is counted while it waits and, after the grant, as the holder.
  const size_t wanting = demand(), contending = contenders(now);
  const std::string* best = pick(now, wanting, contending);
  if (best == nullptr) return std::nullopt;
  Client& c = clients_.at(*best);
  c.waiting = false;
  ++c.grants;
  holder_ = *best;
  start_allowance(c, now);
  lease_ = {now, grant_quota(c, wanting, contending)};
  return Grant{holder_, lease_.quota};
}

bool Policy::may_corun(const Client& c, Micros now) const {
  return c.latency > 0 && under_limit(c, now) && share(c, now) < c.request;
}

size_t Policy::demand() const {
  size_t n = coruns_.size() + (holder_.empty() ? 0 : 1);
  for (const auto& [name, c] : clients_) n += c.waiting ? 1 : 0;
  return n;
}

Micros Policy::fitted(Micros quota) const { return fitted(quota, demand()); }

Micros Policy::fitted(Micros quota, size_t demand) const {
  if (!opts_.fit_quotas) return quota;
  // 90% of an equal split of the window: the drain at the end of each slice and the hand-off to the
  // next holder (measured ~1-3 ms a grant on an H200 with 64 clients) must fit in the window too.
  const Micros fair = opts_.window * 9 / 10 / static_cast<Micros>(std::max<size_t>(demand, 1));
  return std::min(quota, std::max(fair, opts_.quota_floor));
}

std::vector<std::string> Policy::corunners() const {
  std::vector<std::string> names;
  for (const auto& kv : coruns_) names.push_back(kv.first);
  return names;
}

const std::string* Policy::pick(Micros now, size_t wanting, size_t contending) {
  const std::string* best = nullptr;
  bool best_under_request = false;
  double best_key = 0, best_eps = 0;
  Micros best_since = 0;
  for (auto& [name, c] : clients_) {
    if (!c.waiting) continue;
    forget_old(c, now);
    if (!under_limit(c, now)) continue;
    const double s = share(c, now);
    const bool under_request = s < c.request;
    // The step the client's share takes with its next (fitted) quota, in units of its key.
    const double step = projected_step(c, now, wanting, contending);
    // Larger key wins. Under REQUEST: the deficit the client would still have after one more quota,
    // relative to its REQUEST (weighted fair queueing's "smallest virtual finish time"); shares move in
    // steps of quota / window, and comparing plain deficits lets those steps bias the split by up
    // to half a step. Above REQUEST: the least share above REQUEST ("least usage first" when the
    // REQUESTs are equal, without favouring a client sitting at its REQUEST over one far above it).
    const double key = under_request ? 1.0 - (s + step) / c.request : c.request - s;
    // Keys within a tenth of a step are a tie: slices overrun their quota by a varying drain, and
    // ranking by those few ms rather than by waiting time let clients with shorter slices pass the
    // others again and again (64 clients: some waited past a window; PolicyMany).
    const double eps = 0.1 * (under_request ? step / c.request : step);
    bool better;
    if (best == nullptr) {
      better = true;
    } else if (under_request != best_under_request) {
      better = under_request;
    } else if (std::abs(key - best_key) > std::max({eps, best_eps, 1e-12})) {
      better = key > best_key;
    } else if (c.request != clients_.at(*best).request) {
      // Equal surplus: the larger REQUEST's step is the smaller part of its share.
      better = c.request > clients_.at(*best).request;
    } else if (c.cold != clients_.at(*best).cold) {
      better = !c.cold;  // resident memory: no fetch back before it runs
    } else {
      better = c.waiting_since < best_since;
    }
    if (better) {
      best = &name;
      best_under_request = under_request;
      best_key = key;
      best_eps = eps;
      best_since = c.waiting_since;
    }
  }
  return best;
}

std::optional<Micros> Policy::renew(const std::string& name, Micros used, Micros burst, Micros now) {
  if (holder_.empty() || holder_ != name) return std::nullopt;
  // Only without contention: the holder's work still queued on the GPU is charged with its next
  // slice, which would tilt a close choice between clients towards the holder.
  for (const auto& [other, oc] : clients_) {
    if (oc.waiting && other != name) return std::nullopt;
  }
  Client& c = clients_.at(name);
  // Would the rules give the token straight back to the holder once charged (its LIMIT)? Then it
  // keeps it without the drain; otherwise nothing changes and it drains and releases as usual.
  const Micros charged = holder_charge(lease_, used, now);
  const Client saved = c;
  charge(c, charged, now);
  if (burst > 0) c.burst = std::min(burst, opts_.window);
  c.waiting = true;
  c.waiting_since = now;
  const std::string* best = pick(now, demand(), contenders(now));
  if (best == nullptr || *best != name) {
    c = saved;
    return std::nullopt;
  }
  c.waiting = false;
  ++c.grants;
  start_allowance(c, now);
  lease_ = {now, grant_quota(c, now)};
  return lease_.quota;
}

template <typename P>
Micros Policy::first_time(Micros now, P&& pred) const {
  // While a client waits its usage only slides out of the window and its share only falls, so the
  // first moment a share-based condition holds can be found by bisection.
  if (pred(now)) return now;
  Micros lo = now, hi = now + opts_.window;
  if (!pred(hi)) return kNever;
  while (hi - lo > kEventPrecision) {
    const Micros mid = lo + (hi - lo) / 2;
    (pred(mid) ? hi : lo) = mid;
  }
  return hi;
}

Micros Policy::next_event(Micros now) const {
  Micros earliest = kNever;
  if (!holder_.empty()) earliest = lease_.start + lease_.quota + opts_.lease_grace;
  for (const auto& [name, l] : coruns_) earliest = std::min(earliest, l.start + l.quota + opts_.lease_grace);
  if (holder_.empty()) {
    // The token is free: when a waiting client's allowance is back to 0 (under its LIMIT).
    for (const auto& kv : clients_) {
      const Client& c = kv.second;
      if (!c.waiting) continue;
      earliest = std::min(earliest, limit_ready_at(c, now));
      if (earliest <= now) return now;
    }
    return earliest;
  }
  // Held: only a waiting latency client can be granted (a co-run token), when its share allows.
  for (const std::string& name : latency_names_) {
    const Client& c = clients_.at(name);
    if (!c.waiting) continue;
    const Micros ready = limit_ready_at(c, now);  // LIMIT first, then the share under REQUEST
    if (ready == kNever) continue;
    earliest = std::min(earliest, first_time(ready, [&](Micros t) { return may_corun(c, t); }));
    if (earliest <= now) return now;
  }
  return earliest;
}

std::optional<ClientStats> Policy::stats(const std::string& name, Micros now) const {
  auto it = clients_.find(name);
  if (it == clients_.end()) return std::nullopt;
  const Client& c = it->second;
  ClientStats s;
  s.request = c.request;
  s.limit = c.limit;
  s.share = share(c, now);
  s.used_total = c.used_total;
  s.used_window = usage_in_window(c, now);
  s.grants = c.grants;
  s.coruns = c.coruns;
  s.revocations = c.revocations;
  s.latency = c.latency;
  s.waiting = c.waiting;
  s.holding = holds(name);
  s.corun = coruns_.count(name) != 0;
  return s;
}

}  // namespace gem::sched
