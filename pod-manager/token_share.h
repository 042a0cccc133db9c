// How the processes of one client share its token on one GPU: the pure part of gem-pmgr.
// The client holds the scheduler's token from its grant until every process that took it has given
// it back; a process asking while the token is still valid gets it at once with the quota that is
// left. The GPU time charged to the client is the union of the processes' busy intervals
// (CLOCK_MONOTONIC µs, comparable across processes of one host). Not thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "gem/clock.h"

namespace gem::pmgr {

class TokenShare {
 public:
  /// Processes below this much remaining quota (µs) wait for the next grant instead.
  static constexpr Micros kMinRemaining = 1000;

  /// The scheduler granted the token for quota µs at `now`.
  void granted(Micros quota, Micros now);
  bool valid(Micros now) const { return held_ && now + kMinRemaining < grant_at_ + quota_; }
  /// µs of quota left; 0 when not held.
  Micros remaining(Micros now) const { return held_ ? std::max<Micros>(grant_at_ + quota_ - now, 0) : 0; }
  bool held() const { return held_; }

  /// Process `who` (a connection id) takes the token.
  void take(int who) { holders_.insert(who); }
  bool holds(int who) const { return holders_.count(who) != 0; }

  /// `who` gives it back, having been busy on the GPU over [end - used, end] with a last burst of
  /// `burst` µs. Returns true when that was the last holder: the caller returns the token then.
  bool give_back(int who, Micros used, Micros end, Micros burst);

  /// `who` is gone while holding: charged from the grant until now.
  bool lost(int who, Micros now) { return give_back(who, now - grant_at_, now, 0); }

  /// Usage to report to the scheduler (union of intervals, µs) and the longest burst; then resets.
  struct Report {
    Micros used = 0;
    Micros burst = 0;
  };
  Report finish();
  /// The scheduler connection is gone: forget the token without reporting.
  void reset();
  bool has_holders() const { return !holders_.empty(); }
  size_t holder_count() const { return holders_.size(); }

 private:
  struct Interval {
    Micros start, end;
  };
  bool held_ = false;
  Micros grant_at_ = 0;
  Micros quota_ = 0;
  std::set<int> holders_;
  std::vector<Interval> busy_;
  Micros burst_ = 0;
};

}  // namespace gem::pmgr
