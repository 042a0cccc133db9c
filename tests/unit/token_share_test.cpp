// gem-pmgr's TokenShare: how the processes of one client share its token (pure, no I/O).
#include "../../pod-manager/token_share.h"

#include <gtest/gtest.h>

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
  EXPECT_FALSE(t.give_back(1, 5000, 10000, 5000)) << "process 2 still holds it";
  EXPECT_FALSE(t.holds(1));
  EXPECT_TRUE(t.has_holders());
  EXPECT_TRUE(t.give_back(2, 8000, 12000, 8000)) << "last holder";
  EXPECT_FALSE(t.has_holders());
}

TEST(TokenShare, GiveBackFromANonHolderIsIgnored) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  EXPECT_FALSE(t.give_back(7, 20000, 20000, 20000));
  EXPECT_TRUE(t.holds(1));
  EXPECT_TRUE(t.give_back(1, 1000, 5000, 1000));
  const TokenShare::Report r = t.finish();
  EXPECT_EQ(r.used, 1000) << "the stranger's 20 ms are not charged";
  EXPECT_EQ(r.burst, 1000);
  EXPECT_FALSE(t.give_back(1, 1000, 6000, 1000)) << "gave back twice";
}

TEST(TokenShare, UsageIsTheUnionOfTheProcessesIntervals) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.take(2);
  t.take(3);
  // [0, 10000] and [5000, 15000] overlap: 15000; [20000, 22000] is apart: 2000 more.
  t.give_back(2, 10000, 15000, 10000);
  t.give_back(1, 10000, 10000, 4000);
  t.give_back(3, 2000, 22000, 2000);
  const TokenShare::Report r = t.finish();
  EXPECT_EQ(r.used, 17000);
  EXPECT_EQ(r.burst, 10000) << "the longest burst";
}

TEST(TokenShare, NestedAndTouchingIntervals) {
  TokenShare t;
  t.granted(30000, 0);
  for (int who = 1; who <= 4; ++who) t.take(who);
  t.give_back(1, 20000, 20000, 0);  // [0, 20000]
  t.give_back(2, 5000, 10000, 0);   // inside it
  t.give_back(3, 5000, 25000, 0);   // [20000, 25000] touches it
  t.give_back(4, 0, 26000, 0);      // no GPU time
  EXPECT_EQ(t.finish().used, 25000);
}

TEST(TokenShare, LostHolderIsChargedFromTheGrantUntilNow) {
  TokenShare t;
  t.granted(30000, 100000);
  t.take(1);
  t.take(2);
  EXPECT_FALSE(t.give_back(1, 3000, 104000, 3000));
  EXPECT_TRUE(t.lost(2, 125000)) << "the lost process was the last holder";
  const TokenShare::Report r = t.finish();
  EXPECT_EQ(r.used, 25000) << "[grant, now] covers process 1's interval";
}

TEST(TokenShare, LostNonHolderChangesNothing) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  EXPECT_FALSE(t.lost(2, 10000));
  EXPECT_TRUE(t.holds(1));
  EXPECT_TRUE(t.give_back(1, 1000, 2000, 0));
  EXPECT_EQ(t.finish().used, 1000);
}

TEST(TokenShare, FinishResetsForTheNextGrant) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.give_back(1, 9000, 9000, 9000);
  EXPECT_EQ(t.finish().used, 9000);
  EXPECT_FALSE(t.held());
  EXPECT_EQ(t.remaining(1000), 0);
  t.granted(10000, 50000);
  t.take(1);
  t.give_back(1, 2000, 52000, 0);
  const TokenShare::Report r = t.finish();
  EXPECT_EQ(r.used, 2000) << "nothing carried over from the last grant";
  EXPECT_EQ(r.burst, 0);
}

TEST(TokenShare, ResetForgetsEverything) {
  TokenShare t;
  t.granted(30000, 0);
  t.take(1);
  t.give_back(1, 5000, 5000, 5000);
  t.take(2);
  t.reset();
  EXPECT_FALSE(t.held());
  EXPECT_FALSE(t.has_holders());
  EXPECT_FALSE(t.holds(2));
  EXPECT_EQ(t.finish().used, 0);
}

}  // namespace
}  // namespace gem::pmgr
