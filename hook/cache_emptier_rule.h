// The cache emptier's rules (cache_emptier.h) as pure functions: whether emptying is wanted, what
// to do with a release noted earlier, and when it is due. No thread, lock, driver or clock here:
// cache_emptier.cpp reads the process's state and calls these; tests/unit/cache_emptier_test.cpp
// drives them with made-up facts and a simulated clock.
#pragma once

#include <algorithm>
#include <cstdint>

#include "gem/clock.h"

namespace gem::hook {

/// µs from one emptying to the next, at least (5 a second).
constexpr Micros kEmptyMinGap = 200000;
/// µs between looks while a capture holds a release back.
constexpr Micros kEmptyRetry = 20000;

/// GEMINI_EMPTY_CACHE (`setting`: 1 on, 0 off, -1 unset) and whether the client runs in
/// unified-memory mode: unset empties in unified-memory mode only.
inline bool empty_cache_wanted(int setting, bool unified_memory) {
  return setting == 1 || (setting == -1 && unified_memory);
}

enum class EmptyVerdict { kEmpty, kLater, kDrop };

/// What to do with a release noted when `grants_at_release` tokens had been granted, now that
/// `grants_now` have: dropped when the process exits, emptying is not wanted, a token came since or
/// a gate is not quiet (`gates_quiet()`: the client holds or wants a token); later while a capture
/// is in progress (`active_captures()` > 0); else emptied. The callables are called only when
/// needed, in that order (gates_quiet() takes each gate's lock).
template <typename Quiet, typename Captures>
EmptyVerdict judge_emptying(bool exiting, bool wanted, uint64_t grants_at_release, uint64_t grants_now,
                            Quiet&& gates_quiet, Captures&& active_captures) {
  if (exiting || !wanted) return EmptyVerdict::kDrop;
  if (grants_now != grants_at_release || !gates_quiet()) return EmptyVerdict::kDrop;
  if (active_captures() > 0) return EmptyVerdict::kLater;
  return EmptyVerdict::kEmpty;
}

/// When a release made at `released` may be emptied: GEMINI_EMPTY_CACHE_MS after it, and at least
/// kEmptyMinGap after the last emptying (`last_empty`).
inline Micros emptying_due(Micros released, int empty_cache_ms, Micros last_empty) {
  return std::max(released + static_cast<Micros>(empty_cache_ms) * 1000, last_empty + kEmptyMinGap);
}

}  // namespace gem::hook
