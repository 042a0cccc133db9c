// The cache emptier's rules (hook/cache_emptier_rule.h; cache_emptier.h says when PyTorch's cache is
// emptied): whether emptying is wanted, what becomes of a release noted earlier, and when it is
// due, with made-up facts and a simulated clock.
#include "../../hook/cache_emptier_rule.h"

#include <gtest/gtest.h>

#include "../../hook/settings.h"

namespace gem::hook {
namespace {

TEST(CacheEmptier, GeminiEmptyCacheDecidesAndUnsetMeansUnifiedMemoryOnly) {
  EXPECT_TRUE(empty_cache_wanted(1, false));
  EXPECT_TRUE(empty_cache_wanted(1, true));
  EXPECT_FALSE(empty_cache_wanted(0, true));
  EXPECT_FALSE(empty_cache_wanted(0, false));
  EXPECT_TRUE(empty_cache_wanted(-1, true));
  EXPECT_FALSE(empty_cache_wanted(-1, false));
}

// The facts a release is judged by, all favourable to emptying unless a test changes one.
struct Facts {
  bool exiting = false;
  bool wanted = true;
  uint64_t grants_at_release = 7;
  uint64_t grants_now = 7;
  bool quiet = true;
  int captures = 0;
  // How often each look that takes a lock or reads shared state was made.
  int quiet_looks = 0;
  int capture_looks = 0;

  EmptyVerdict judge() {
    return judge_emptying(exiting, wanted, grants_at_release, grants_now,
                          [this] { ++quiet_looks; return quiet; },
                          [this] { ++capture_looks; return captures; });
  }
};

TEST(CacheEmptier, AQuietIdleClientWithoutCaptureIsEmptied) {
  Facts f;
  EXPECT_EQ(f.judge(), EmptyVerdict::kEmpty);
  EXPECT_EQ(f.quiet_looks, 1);
  EXPECT_EQ(f.capture_looks, 1);
}

TEST(CacheEmptier, ATokenSinceTheReleaseOrAGateInUseDropsIt) {
  Facts granted;
  granted.grants_now = 8;  // the client took the token again: the release is stale
  EXPECT_EQ(granted.judge(), EmptyVerdict::kDrop);
  EXPECT_EQ(granted.quiet_looks, 0) << "no gate's lock is taken for a stale release";
  Facts busy;
  busy.quiet = false;  // a launch waits at a gate or is inside the driver
  EXPECT_EQ(busy.judge(), EmptyVerdict::kDrop);
  EXPECT_EQ(busy.capture_looks, 0);
  // Even with a capture in progress: a release that is dropped is not kept for later.
  busy.captures = 1;
  EXPECT_EQ(busy.judge(), EmptyVerdict::kDrop);
}

TEST(CacheEmptier, ExitOrEmptyingNotWantedDropsItWithoutLookingAtTheGates) {
  Facts exiting;
  exiting.exiting = true;
  exiting.captures = 1;
  EXPECT_EQ(exiting.judge(), EmptyVerdict::kDrop);
  Facts off;
  off.wanted = false;
  EXPECT_EQ(off.judge(), EmptyVerdict::kDrop);
  EXPECT_EQ(exiting.quiet_looks + exiting.capture_looks + off.quiet_looks + off.capture_looks, 0);
}

TEST(CacheEmptier, ACaptureInProgressKeepsTheReleaseForLater) {
  Facts f;
  f.captures = 2;
  EXPECT_EQ(f.judge(), EmptyVerdict::kLater);
  // Looked at again once the captures ended, with nothing else changed: emptied.
  f.captures = 0;
  EXPECT_EQ(f.judge(), EmptyVerdict::kEmpty);
  // A token granted while the capture held it back: dropped after all.
  f.captures = 1;
  f.grants_now = 9;
  EXPECT_EQ(f.judge(), EmptyVerdict::kDrop);
}

TEST(CacheEmptier, DueGeminiEmptyCacheMsAfterTheReleaseAndNeverCloserThanTheGap) {
  // The first release of the process: only GEMINI_EMPTY_CACHE_MS (50 ms by default) counts.
  const Micros never = -kEmptyMinGap;
  EXPECT_EQ(emptying_due(1000, kDefaultEmptyCacheMs, never), 1000 + 50000);
  EXPECT_EQ(emptying_due(0, 0, never), 0) << "GEMINI_EMPTY_CACHE_MS=0: at once";
  EXPECT_EQ(emptying_due(5000000, kMaxEmptyCacheMs, never), 5000000 + 60000000);
  // Emptied 10 ms ago: the next emptying waits for the 200 ms gap (5 a second at most).
  EXPECT_EQ(emptying_due(1000000, 50, 990000), 990000 + kEmptyMinGap);
  EXPECT_EQ(emptying_due(1000000, 0, 990000), 1190000);
  // Emptied long ago: the release's own delay decides.
  EXPECT_EQ(emptying_due(1000000, 50, 0), 1050000);
  // At the boundary both give the same time.
  EXPECT_EQ(emptying_due(1000000, 50, 850000), 1050000);
}

TEST(CacheEmptier, ABusyClientIsEmptiedAtMostFiveTimesASecond) {
  // A client going idle every 10 ms for a simulated second, GEMINI_EMPTY_CACHE_MS=0: each release
  // is emptied when due, if no later release came first (a later one replaces it).
  Micros last_empty = -kEmptyMinGap;
  int empties = 0;
  Micros pending = -1;
  for (Micros now = 0; now <= 1000000; now += 1000) {
    if (now % 10000 == 0) pending = now;  // an idle release
    if (pending >= 0 && now >= emptying_due(pending, 0, last_empty)) {
      ++empties;
      last_empty = now;
      pending = -1;
    }
  }
  EXPECT_EQ(empties, 6);  // at 0, 200, 400, 600, 800 and 1000 ms
}

}  // namespace
}  // namespace gem::hook
