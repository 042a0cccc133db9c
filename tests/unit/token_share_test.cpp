// gem-pmgr's TokenShare: how the processes of one client share its token (pure, no I/O).
// The charge rule (docs/design.md, "The pod manager"): at least the time held, from the grant to
// finish(); what the hooks report may raise it, never lower it; no input overflows.
#include "../../pod-manager/token_share.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "gem/protocol.h"

namespace gem::pmgr {
namespace {

TEST(TokenShare, NotHeldUntilGranted) {
  TokenShare t;
  EXPECT_FALSE(t.held());
  EXPECT_FALSE(t.valid(0));
  EXPECT_EQ(t.remaining(0), 0);
  EXPECT_FALSE(t.has_holders());
}

TEST(TokenShare, RemainingQuotaCountsFromTheGrant) {
  TokenShare t;
  t.granted(30000, 1000000);
  EXPECT_TRUE(t.held());
  EXPECT_EQ(t.remaining(1000000), 30000);
  EXPECT_EQ(t.remaining(1010000), 20000);
  EXPECT_TRUE(t.valid(1010000));
  EXPECT_EQ(t.remaining(1030000), 0);
  EXPECT_EQ(t.remaining(1040000), 0) << "never negative";
  // Under kMinRemaining left: no longer handed to a process that asks.
  EXPECT_TRUE(t.valid(1030000 - TokenShare::kMinRemaining - 1));
  EXPECT_FALSE(t.valid(1030000 - TokenShare::kMinRemaining));
  EXPECT_FALSE(t.valid(1030000));
}

TEST(TokenShare, LastHolderReturnsTheToken) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.take(2);
  EXPECT_TRUE(t.holds(1));
  EXPECT_TRUE(t.holds(2));
  EXPECT_FALSE(t.holds(3));
  EXPECT_FALSE(t.give_back(1, 5000, 10000, 5000, 10000)) << "process 2 still holds it";
  EXPECT_FALSE(t.holds(1));
  EXPECT_TRUE(t.has_holders());
  EXPECT_TRUE(t.give_back(2, 8000, 12000, 8000, 12000)) << "last holder";
  EXPECT_FALSE(t.has_holders());
}

TEST(TokenShare, AForgingHookReportingNothingIsChargedTheHeldTime) {
  TokenShare t;
  t.granted(30000, 100000);
  t.take(1);
  EXPECT_TRUE(t.give_back(1, 0, 0, 0, 125000)) << "reports no GPU time at all";
  EXPECT_EQ(t.finish(125000).used, 25000) << "held from the grant at 100 ms until 125 ms";
}

TEST(TokenShare, ReportsCanRaiseTheUnionButNotPastTheHeldTime) {
  TokenShare t;
  t.granted(30000, 100000);
  t.take(1);
  // Claims 1 s of work ending in the future: clamped to [grant, now].
  EXPECT_TRUE(t.give_back(1, 1000000, 900000, 7000, 110000));
  const TokenShare::Report r = t.finish(110000);
  EXPECT_EQ(r.used, 10000);
  EXPECT_EQ(r.burst, 7000);
}

TEST(TokenShare, HugeWireValuesNeitherOverflowNorEscapeTheClamp) {
  TokenShare t;
  t.granted(30000, 100000);
  t.take(1);
  t.take(2);
  EXPECT_FALSE(t.give_back(1, UINT64_MAX, UINT64_MAX, UINT64_MAX, 120000));
  EXPECT_TRUE(t.give_back(2, UINT64_MAX, 0, 0, 130000));
  const TokenShare::Report r = t.finish(130000);
  EXPECT_EQ(r.used, 30000);
  EXPECT_GE(r.burst, 0);
  EXPECT_LE(r.burst, proto::kMaxWireMicros);
}

TEST(TokenShare, GiveBackFromANonHolderIsIgnored) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  EXPECT_FALSE(t.give_back(7, 20000, 20000, 20000, 20000));
  EXPECT_TRUE(t.holds(1));
  EXPECT_TRUE(t.give_back(1, 1000, 5000, 1000, 5000));
  const TokenShare::Report r = t.finish(5000);
  EXPECT_EQ(r.used, 5000) << "the held time; the stranger's report adds nothing";
  EXPECT_EQ(r.burst, 1000) << "the stranger's burst is not taken either";
  EXPECT_FALSE(t.give_back(1, 1000, 6000, 1000, 6000)) << "gave back twice";
}

TEST(TokenShare, ProcessesSharingTheTokenAreChargedOnceForTheHold) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.take(2);
  t.take(3);
  // Overlapping intervals from three processes: the client is charged the hold, not their sum.
  t.give_back(2, 10000, 15000, 10000, 15000);
  t.give_back(1, 10000, 10000, 4000, 16000);
  EXPECT_TRUE(t.give_back(3, 2000, 22000, 2000, 22000));
  const TokenShare::Report r = t.finish(22000);
  EXPECT_EQ(r.used, 22000);
  EXPECT_EQ(r.burst, 10000) << "the longest burst";
}

TEST(TokenShare, LostHolderIsChargedFromTheGrantUntilNow) {
  TokenShare t;
  t.granted(30000, 100000);
  t.take(1);
  t.take(2);
  EXPECT_FALSE(t.give_back(1, 3000, 104000, 3000, 104000));
  EXPECT_TRUE(t.lost(2, 125000)) << "the lost process was the last holder";
  EXPECT_EQ(t.finish(125000).used, 25000);
}

TEST(TokenShare, LostNonHolderChangesNothing) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  EXPECT_FALSE(t.lost(2, 10000));
  EXPECT_TRUE(t.holds(1));
  EXPECT_TRUE(t.give_back(1, 1000, 2000, 0, 2000));
  EXPECT_EQ(t.finish(2000).used, 2000);
}

TEST(TokenShare, RenewalChargesSoFarAndKeepsTheHolders) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.take(2);
  t.give_back(2, 4000, 4000, 4000, 4000);
  EXPECT_EQ(t.charge_so_far(29000).used, 29000);
  EXPECT_EQ(t.charge_so_far(29000).burst, 4000);
  t.clear_charged();
  t.granted(30000, 29000);
  EXPECT_TRUE(t.holds(1));
  EXPECT_TRUE(t.give_back(1, 0, 0, 0, 40000));
  EXPECT_EQ(t.finish(40000).used, 11000) << "only the hold since the renewal";
}

TEST(TokenShare, FinishResetsForTheNextGrant) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.give_back(1, 9000, 9000, 9000, 9000);
  EXPECT_EQ(t.finish(9000).used, 9000);
  EXPECT_FALSE(t.held());
  EXPECT_EQ(t.remaining(1000), 0);
  t.granted(10000, 50000);
  t.take(1);
  t.give_back(1, 2000, 52000, 0, 52000);
  const TokenShare::Report r = t.finish(52000);
  EXPECT_EQ(r.used, 2000) << "nothing carried over from the last grant";
  EXPECT_EQ(r.burst, 0);
}

TEST(TokenShare, ResetForgetsEverything) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.give_back(1, 5000, 5000, 5000, 5000);
  t.take(2);
  t.reset();
  EXPECT_FALSE(t.held());
  EXPECT_FALSE(t.has_holders());
  EXPECT_FALSE(t.holds(2));
  EXPECT_EQ(t.finish(9000).used, 0) << "not held: nothing to charge";
}

TEST(TokenShare, TimeRunWithoutATokenIsAddedToTheChargeAndNeverLowersIt) {
  // Two processes ran unthrottled through a daemon fault (2 s and 1 s with launches), then held
  // the token 30 ms: the client is charged both, so it claims no catch-up from clients that waited.
  TokenShare t;
  t.granted(30000, 10000000);
  t.take(1);
  t.take(2);
  t.give_back(1, 30000, 10030000, 0, 10030000, 2000000);
  t.give_back(2, 0, 10030000, 0, 10030000, 1000000);
  EXPECT_EQ(t.finish(10030000).used, 3030000);
  // Wire values saturate: no overflow, and the next grant starts from nothing.
  t.granted(30000, 20000000);
  t.take(1);
  t.give_back(1, 0, 20030000, 0, 20030000, UINT64_MAX);
  EXPECT_EQ(t.finish(20030000).used, proto::kMaxWireMicros);
  t.granted(30000, 30000000);
  t.take(1);
  t.give_back(1, 0, 30030000, 0, 30030000);
  EXPECT_EQ(t.finish(30030000).used, 30000);
}

}  // namespace
}  // namespace gem::pmgr
