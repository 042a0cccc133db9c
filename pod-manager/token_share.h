// How the processes of one client share its token on one GPU: the pure part of gem-pmgr.
// The client holds the scheduler's token from its grant until every process that took it has given
// it back; a process asking while the token is still valid gets it at once with the quota that is
// left. Times are CLOCK_MONOTONIC µs (comparable across processes of one host). Not thread-safe.
//
// Charging (docs/design.md, "The pod manager"): the hooks are not trusted. The client is charged at
// least the time gem-pmgr itself observed the token held, from the grant to finish(); the busy
// intervals the hooks report are clamped to [grant, now] and merged, and may only raise the charge:
//   charge = max(union of the reported intervals clamped to [grant, now], now - grant).
// Every value from a hook goes through proto::wire_micros() and clamped arithmetic, so no input can
// overflow (a TokenRelease with end_us = used_us = UINT64_MAX is just clamped).
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "gem/clock.h"

namespace gem::pmgr {

class TokenShare {
 public:
  /// Identifies a process (one hook connection) holding the token.
  using Holder = uint64_t;
  /// Processes below this much remaining quota (µs) wait for the next grant instead.
  static constexpr Micros kMinRemaining = 1000;
  /// Reported intervals kept per grant, at most (one per give_back; holders are capped by the
  /// connection cap, this is a second bound). Beyond it intervals are dropped: they cannot lower
  /// the charge anyway.
  static constexpr size_t kMaxIntervals = 4096;

  /// The scheduler granted the token for quota µs, counted from `at` (µs, CLOCK_MONOTONIC).
  void granted(Micros quota, Micros at);
  bool valid(Micros now) const { return held_ && now + kMinRemaining < grant_at_ + quota_; }
  /// µs of quota left; 0 when not held.
  Micros remaining(Micros now) const;
  bool held() const { return held_; }
  /// The quota of the current grant (µs); meaningful only while held().
  Micros quota() const { return quota_; }
  /// When the current grant (or renewal) started; meaningful only while held().
  Micros grant_at() const { return grant_at_; }

  /// The charge's floor counts from `t` instead of the grant when t is earlier (µs): a gang's token
  /// is charged from its gang's first grant (gang.h, rule 3). Only raises the charge.
  void charge_from(Micros t) { charge_from_ = std::min(charge_from_, t); }

  /// Process `who` takes the token.
  void take(Holder who) { holders_.insert(who); }
  bool holds(Holder who) const { return holders_.count(who) != 0; }

  /// `who` gives it back, reporting (raw wire values, untrusted) that it was busy on the GPU over
  /// [end_us - used_us, end_us] with a last burst of burst_us µs; `now` is gem-pmgr's clock.
  /// Returns true when that was the last holder: the caller returns the token then. A non-holder
  /// (e.g. after a revoke) changes nothing and returns false.
  /// unthrottled_us: TokenRelease.unthrottled_us, added to the charge (never lowers it).
  bool give_back(Holder who, uint64_t used_us, uint64_t end_us, uint64_t burst_us, Micros now,
                 uint64_t unthrottled_us = 0);

  /// `who` is gone while holding: charged from the grant until now. Returns give_back's value.
  bool lost(Holder who, Micros now);

  /// What to report to the scheduler: the charge (µs, the rule above) and the longest burst.
  struct Report {
    Micros used = 0;
    Micros burst = 0;
  };
  /// The report for the token held until `now`; then forgets the token (holders included).
  Report finish(Micros now);
  /// The charge so far at `now` (for a renewal), by the rule above; changes nothing. A granted
  /// renewal is charged by the scheduler: the caller then calls clear_charged() and granted(). A
  /// refused one charges nothing, and finish() later charges the whole hold.
  Report charge_so_far(Micros now) const;
  /// Clears the intervals and burst already charged by a granted renewal.
  void clear_charged();
  /// Forget the token without reporting (scheduler connection gone, or token revoked).
  void reset();
  bool has_holders() const { return !holders_.empty(); }
  size_t holder_count() const { return holders_.size(); }
  /// The processes holding the token now (ascending).
  std::vector<Holder> holders() const { return {holders_.begin(), holders_.end()}; }

 private:
  struct Interval {
    Micros start, end;
  };
  bool held_ = false;
  Micros grant_at_ = 0;
  Micros quota_ = 0;
  Micros charge_from_ = 0;  // the charge's floor counts from here (<= grant_at_)
  std::set<Holder> holders_;
  std::vector<Interval> busy_;
  Micros burst_ = 0;
  Micros unthrottled_ = 0;  // µs reported run without a token, added to the charge
};

}  // namespace gem::pmgr
