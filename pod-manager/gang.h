// Gang tokens: a client whose processes use several GPUs gets its tokens on them together (issue 19,
// item 3; docs/scheduling.md, "Gang tokens"). The pure part of gem-pmgr that looks across its routes
// (one per GPU's gem-schd); each Route keeps its own protocol state and takes the gang's orders
// through set_gang(), gang_ask() (route_gang.cpp). No socket, log or clock: the edge (manager.cpp)
// calls update() after every batch of events with its routes and the time, and executes the Actions.
//
// Why: every GPU has its own gem-schd, and their grants are independent. A process that launches on
// GPU 0 then GPU 1 step by step (pipeline or model-parallel inference) gave GPU 0's token back when it
// moved to GPU 1 and waited a whole quota of the other clients there, then again on GPU 0: it got
// 0.009 of each GPU beside a client at REQUEST 0.7 (docs/gpu-results.md, issue 12). Gang scheduling
// (Ousterhout, "Scheduling Techniques for Concurrent Systems", ICDCS 1982; Feitelson & Rudolph,
// "Gang Scheduling Performance Benefits for Fine-Grain Synchronization", JPDC 1992) runs the parts
// of one job at the same time.
//
// Rules, for the routes used within the last `window` µs (a hook asked for, renewed or held their
// token) that still have a launch gate (`members`), when there are at least two of them:
// 1. Ask together: while a member is busy (a hook holds, waits for or renews its token), every member
//    with no token and no request asks its scheduler (Route::gang_ask).
// 2. Keep: a member's token that no hook holds is kept (parked) until its quota ends, so the process
//    finds it there when it comes back; it is charged as held (the scheduler's LIMIT still holds).
//    When no member is busy any more, parked tokens go back at once.
// 3. Together: a grant is cut to end with the members' tokens already held (when that leaves at
//    least kGangMinQuota) and is charged from the earliest of their grants, so every member's
//    scheduler sees the same hold and decides alike the next time; a holder's renewal is answered
//    "no" while another member's token is held by no hook (the gang is split), so the tokens end,
//    and are asked for, at the same time.
// A route that is no member (or a gang of one) behaves exactly as without gangs.
// Thread-safety: none (gem-pmgr's loop only).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "action.h"
#include "gem/clock.h"

namespace gem::pmgr {

class Route;

/// --gang_window's default (µs): 0, gangs are opt-in (docs/scheduling.md, "Gang tokens": at its LIMIT a
/// ganged client pays for its parked tokens).
inline constexpr Micros kDefaultGangWindow = 0;
/// The window the docs suggest (µs): a GPU whose token a hook of the client used this recently is in its gang.
inline constexpr Micros kSuggestedGangWindow = 1000000;
/// A grant is cut to end with the gang's other tokens only when that leaves it at least this (µs).
inline constexpr Micros kGangMinQuota = 10000;

class Gang {
 public:
  /// window: µs (0 turns gangs off: every route on its own).
  explicit Gang(Micros window) : window_(window) {}

  /// A route with its key (the edge's name for it, used to address its Actions).
  using Member = std::pair<std::string, Route*>;
  /// Applies the rules above to `routes` at `now` (µs); Actions for each route go to `out` with the
  /// route's key, in order. Routes are not owned; none may be null.
  void update(const std::vector<Member>& routes, Micros now, std::vector<std::pair<std::string, Action>>* out) const;

  /// Whether `r` is a member at `now` (used within the window, or busy).
  bool member(const Route& r, Micros now) const;
  Micros window() const { return window_; }

 private:
  Micros window_;
};

}  // namespace gem::pmgr
