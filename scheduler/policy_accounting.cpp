// The per-client accounting of gem-schd's policy (policy.h): charges, decayed shares, the LIMIT
// allowance and the quota of a grant. Pure arithmetic on a Client; the decisions that use it (pick,
// schedule, renew) are in policy.cpp. Same contract as policy.h: µs, an injected clock, one owner.
#include <algorithm>
#include <cmath>

#include "policy.h"

namespace gem::sched {

namespace {
// A LIMIT this close to 1 means "no limit": a lone client may use the whole GPU.
constexpr double kFullShare = 1.0 - 1e-9;
}  // namespace

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
  // The interval's weight today: the integral of e^(-(now - t) / tau) over [start, now].
  c.decayed = decayed(c, now) + tau() * -std::expm1(-static_cast<double>(now - start) / tau());
  c.decayed_at = now;
  // Accrued since the grant (not capped: the hold itself earns LIMIT per µs), less the charge.
  c.allowance += static_cast<double>(std::max<Micros>(now - c.allowance_at, 0)) * c.limit - static_cast<double>(now - start);
  c.allowance = std::min(c.allowance, bank());
  c.allowance_at = now;
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

double Policy::decayed(const Client& c, Micros now) const {
  return c.decayed * std::exp(-static_cast<double>(std::max<Micros>(now - c.decayed_at, 0)) / tau());
}

double Policy::share(const Client& c, Micros now) const {
  return std::min(1.0, decayed(c, now) / static_cast<double>(span(c, now)));
}

bool Policy::under_limit(const Client& c, Micros now) const {
  if (c.limit >= kFullShare) return true;
  return c.limit > 0 && allowance(c, now) >= 0;
}

double Policy::allowance(const Client& c, Micros now) const {
  const double grown = c.allowance + static_cast<double>(std::max<Micros>(now - c.allowance_at, 0)) * c.limit;
  return std::min(grown, bank());
}

void Policy::start_allowance(Client& c, Micros now) const {
  c.allowance = allowance(c, now);  // what accrued while it waited or idled, at most bank()
  c.allowance_at = now;
}

Micros Policy::limit_ready_at(const Client& c, Micros now) const {
  if (under_limit(c, now)) return now;
  if (c.limit <= 0) return kNever;
  const double wait = std::ceil(-allowance(c, now) / c.limit);
  return wait >= static_cast<double>(kNever - now) ? kNever : now + static_cast<Micros>(wait);
}

size_t Policy::contenders(Micros now) const {
  // demand() and the recent ones in one pass.
  size_t n = coruns_.size() + (holder_.empty() ? 0 : 1);
  for (const auto& [name, c] : clients_) {
    if (c.waiting) {
      ++n;
    } else if (!holds(name) && !c.busy.empty() && now - c.busy.back().end < kContentionMemory) {
      ++n;
    }
  }
  return n;
}

Micros Policy::grant_quota(const Client& c, Micros now) const { return grant_quota(c, demand(), contenders(now)); }

Micros Policy::grant_quota(const Client& c, size_t demand, size_t contenders) const {
  const Micros q = fitted(quota_for(c), demand);
  if (!opts_.fit_quotas) return q;  // Gemini's quotas
  // The share the client is held to: its LIMIT; while others want the GPU too (now or within
  // kContentionMemory), its REQUEST when it has one (a client without a REQUEST keeps the burst-based
  // quota: no hand-offs for evenness).
  const double held_to = contenders > 1 && c.request > 0 ? std::min(c.request, c.limit) : c.limit;
  if (held_to >= kFullShare) return q;
  // Less what its last slice ran past its quota, so that the hold itself (quota + drain) is the even
  // one: otherwise a small share's turns run long relatively (7 ms on 57 against 7 on 133 for
  // 0.3/0.7) and the REQUEST rules make it up by skipping one of its turns now and then, a second
  // of 0.25 beside one of 0.36 (H100, run E4).
  const double cap = static_cast<double>(opts_.swing) / (1.0 - held_to) - static_cast<double>(c.overrun);
  return std::min(q, std::max(static_cast<Micros>(cap), opts_.quota_floor));
}

double Policy::projected_step(const Client& c, Micros now, size_t demand, size_t contenders) const {
  return static_cast<double>(grant_quota(c, demand, contenders)) / static_cast<double>(span(c, now));
}

Micros Policy::span(const Client& c, Micros now) const {
  // What the client's decayed usage would be had it run all the time since it became active (at
  // least min_quota): the share's denominator. tau (1 - e^(-age / tau)); about the age while young.
  const double age = static_cast<double>(std::max<Micros>(now - c.active_since, opts_.min_quota));
  return std::max<Micros>(static_cast<Micros>(tau() * -std::expm1(-age / tau())), 1);
}

Micros Policy::quota_for(const Client& c) const {
  if (c.burst <= 0) return opts_.base_quota;
  return std::clamp(c.burst, opts_.min_quota, opts_.base_quota);
}

}  // namespace gem::sched
