#include "policy.h"

#include <algorithm>
#include <cmath>

namespace gem::sched {

namespace {
// A LIMIT this close to 1 means "no limit": a lone client may use the whole GPU.
constexpr double kFullShare = 1.0 - 1e-9;
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
  for (size_t i = 0; i < order.size(); ++i) {
    const ClientShare& s = *order[i];
    if (i + 1 < order.size() && order[i + 1]->name == s.name) continue;
    int cmp = -1;
    while (it != clients_.end() && (cmp = it->first.compare(s.name)) < 0) it = drop_at(it);
    if (it == clients_.end() || cmp != 0) {
      it = clients_.emplace_hint(it, s.name, Client{});
      it->second.active_since = now;
    }
    it->second.request = s.request;
    it->second.limit = s.limit;
    ++it;
  }
  while (it != clients_.end()) it = drop_at(it);
  if (!holder_.empty() && clients_.count(holder_) == 0) holder_.clear();
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

void Policy::request(const std::string& name, Micros last_burst, Micros now) {
  auto it = clients_.find(name);
  if (it == clients_.end() || holder_ == name) return;
  Client& c = it->second;
  forget_old(c, now);
  // A client back after a whole idle window starts a fresh share history.
  if (c.busy.empty() && !c.waiting && now - c.active_since > opts_.window) c.active_since = now;
  if (last_burst > 0) c.burst = std::min(last_burst, opts_.window);
  if (!c.waiting) {
    c.waiting = true;
    c.waiting_since = now;
  }
}

void Policy::release(const std::string& name, Micros used, Micros burst, Micros now) {
  if (holder_.empty() || holder_ != name) return;
  Client& c = clients_.at(name);
  charge(c, holder_charge(used, now), now);
  if (burst > 0) c.burst = std::min(burst, opts_.window);
  holder_.clear();
}

Micros Policy::holder_charge(Micros reported, Micros now) const {
  const Micros observed = std::max<Micros>(now - grant_time_, 0);
  return std::max(observed, std::clamp<Micros>(reported, 0, opts_.window));
}

std::optional<Revocation> Policy::expire_lease(Micros now) {
  if (holder_.empty() || now < grant_time_ + grant_quota_ + opts_.lease_grace) return std::nullopt;
  Revocation r{holder_, std::max<Micros>(now - grant_time_, 0)};
  charge(clients_.at(holder_), r.held, now);
  holder_.clear();
  return r;
}

void Policy::disconnect(const std::string& name, Micros now) {
  auto it = clients_.find(name);
  if (it == clients_.end()) return;
  Client& c = it->second;
  c.waiting = false;
  if (holder_ == name) {
    charge(c, std::max<Micros>(now - grant_time_, 0), now);
    holder_.clear();
  }
}

std::optional<Grant> Policy::schedule(Micros now) {
  if (!holder_.empty()) return std::nullopt;
  const std::string* best = pick(now);
  if (best == nullptr) return std::nullopt;
  Client& c = clients_.at(*best);
  c.waiting = false;
  ++c.grants;
  holder_ = *best;
  grant_time_ = now;
  grant_quota_ = quota_for(c);
  return Grant{holder_, grant_quota_};
}

const std::string* Policy::pick(Micros now) {
  const std::string* best = nullptr;
  bool best_under_request = false;
  double best_key = 0;
  Micros best_since = 0;
  for (auto& [name, c] : clients_) {
    if (!c.waiting) continue;
    forget_old(c, now);
    if (!under_limit(c, now)) continue;
    const double s = share(c, now);
    const bool under_request = s < c.request;
    // Larger key wins. Under REQUEST: the deficit the client would still have after one more quota,
    // relative to its REQUEST (weighted fair queueing's "smallest virtual finish time"); shares move in
    // steps of quota / window, and comparing plain deficits lets those steps bias the split by up
    // to half a step. Above REQUEST: the least share above REQUEST ("least usage first" when the
    // REQUESTs are equal, without favouring a client sitting at its REQUEST over one far above it).
    const double key = under_request ? 1.0 - (s + projected_step(c, now)) / c.request : c.request - s;
    bool better;
    if (best == nullptr) {
      better = true;
    } else if (under_request != best_under_request) {
      better = under_request;
    } else if (std::abs(key - best_key) > 1e-12) {
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
  const Micros charged = holder_charge(used, now);
  const Client saved = c;
  charge(c, charged, now);
  if (burst > 0) c.burst = std::min(burst, opts_.window);
  c.waiting = true;
  c.waiting_since = now;
  const std::string* best = pick(now);
  if (best == nullptr || *best != name) {
    c = saved;
    return std::nullopt;
  }
  c.waiting = false;
  ++c.grants;
  grant_time_ = now;
  grant_quota_ = quota_for(c);
  return grant_quota_;
}

Micros Policy::next_event(Micros now) const {
  if (!holder_.empty()) return grant_time_ + grant_quota_ + opts_.lease_grace;
  Micros earliest = kNever;
  for (const auto& [name, c] : clients_) {
    if (!c.waiting) continue;
    if (under_limit(c, now)) return now;
    // While a client waits its usage only slides out of the window and its share only falls, so
    // the first moment it is back under its LIMIT can be found by bisection.
    Micros lo = now, hi = now + opts_.window;
    if (under_limit(c, hi)) {
      while (hi - lo > kEventPrecision) {
        const Micros mid = lo + (hi - lo) / 2;
        (under_limit(c, mid) ? hi : lo) = mid;
      }
      earliest = std::min(earliest, hi);
    }
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
  s.waiting = c.waiting;
  s.holding = holder_ == name;
  return s;
}

void Policy::charge(Client& c, Micros used, Micros now) {
  if (used <= 0) return;
  // A charge covers [now - used, now] but never reaches back before the client's previous charge
  // or before it became active: intervals stay disjoint, so a report larger than the hold (which a
  // hook never makes; a forger might) raises the client's usage at most to the whole span, and a
  // share stays within [0, 1].
  Micros start = now - used;
  if (!c.busy.empty()) start = std::max(start, c.busy.back().end);
  start = std::max(start, c.active_since);
  if (start >= now) return;
  c.busy.push_back({start, now});
  c.used_total += now - start;
  forget_old(c, now);
}

void Policy::forget_old(Client& c, Micros now) const {
  while (!c.busy.empty() && c.busy.front().end <= now - opts_.window) c.busy.pop_front();
}

Micros Policy::usage_in_window(const Client& c, Micros now) const {
  const Micros from = now - opts_.window;
  Micros total = 0;
  for (const Interval& i : c.busy) {
    const Micros start = std::max(i.start, from);
    const Micros end = std::min(i.end, now);
    if (end > start) total += end - start;
  }
  return total;
}

double Policy::share(const Client& c, Micros now) const {
  return static_cast<double>(usage_in_window(c, now)) / static_cast<double>(span(c, now));
}

bool Policy::under_limit(const Client& c, Micros now) const {
  return c.limit >= kFullShare || share(c, now) < c.limit;
}

double Policy::projected_step(const Client& c, Micros now) const {
  return static_cast<double>(quota_for(c)) / static_cast<double>(span(c, now));
}

Micros Policy::span(const Client& c, Micros now) const {
  return std::min(opts_.window, std::max<Micros>(now - c.active_since, opts_.min_quota));
}

Micros Policy::quota_for(const Client& c) const {
  if (c.burst <= 0) return opts_.base_quota;
  return std::clamp(c.burst, opts_.min_quota, opts_.base_quota);
}

}  // namespace gem::sched
