// Lease sync (hook/lease_sync.*): the process ledger kept in step with the client budget at gem-pmgr,
// against a fake memory session. What a user of GPU_MEM relies on: the limit is respected, leases
// grow by the shortfall plus a chunk and go back when unused, a lost gem-pmgr lets the process live
// on its lease and nothing more, a restarted one learns what the process holds, pushed limits apply
// from the next allocation, and nothing is refused when no limit was ever known (unless
// fail_closed). Time is simulated: every call takes `now`.
#include "../../hook/lease_sync.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace gem::hook {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr Micros kSec = 1000000;
constexpr Micros kT0 = 100 * kSec;  // any time far from 0

MemKey ptr(uint64_t p) { return {MemKind::kPointer, p}; }

struct ReserveCall {
  uint64_t need, want;
  bool existing;
};

// gem-pmgr's side of one memory session, granting as MemBudget does: `want` when it fits, else
// `need` when it fits (or is already held: `existing`), else nothing.
class FakePmgr : public LeaseChannel {
 public:
  // gem-pmgr's state.
  bool up = true;            // reachable
  uint64_t limit = 0;        // the client's GPU_MEM
  uint64_t others = 0;       // held by the client's other processes
  uint64_t lease = 0;        // this session's lease
  uint32_t flags = 0;
  std::optional<proto::MemState> push;
  // What the hook did.
  int opens = 0;
  int queries = 0;
  std::vector<ReserveCall> reserves;
  std::vector<uint64_t> returned;

  proto::MemState state(uint64_t granted) const { return {limit, others + lease, granted, flags}; }
  /// gem-pmgr stops: the session breaks (noticed at its next call) and it is unreachable.
  void stop() {
    up = false;
    broken_ = true;
  }
  /// gem-pmgr comes back, knowing nothing of this process; the old session stays broken.
  void restart() {
    up = true;
    lease = 0;
  }

  bool open(const std::string&, proto::MemState* st, std::string* why) override {
    ++opens;
    if (!up) {
      *why = "connection refused";
      return false;
    }
    open_ = true;
    broken_ = false;
    lease = 0;
    *st = state(0);
    return true;
  }
  bool is_open() const override { return open_; }
  bool reserve(uint64_t need, uint64_t want, bool existing, proto::MemState* st, std::string* why) override {
    reserves.push_back({need, want, existing});
    if (!alive(why)) return false;
    const uint64_t g = fits(want) ? want : (existing || fits(need)) ? need : 0;
    lease += g;
    *st = state(g);
    return true;
  }
  bool give_back(uint64_t bytes) override {
    std::string why;
    if (!alive(&why)) return false;
    returned.push_back(bytes);
    lease -= std::min(lease, bytes);
    return true;
  }
  bool query(proto::MemState* st, std::string* why) override {
    ++queries;
    if (!alive(why)) return false;
    *st = state(0);
    return true;
  }
  std::optional<proto::MemState> take_push() override {
    auto p = push;
    push.reset();
    return p;
  }

 private:
  bool fits(uint64_t b) const { return limit == 0 || others + lease + b <= limit; }
  bool alive(std::string* why) {
    if (open_ && !broken_) return true;
    open_ = false;
    *why = "pod manager connection lost";
    return false;
  }
  bool open_ = false;
  bool broken_ = false;
};

class LeaseSyncTest : public ::testing::Test {
 protected:
  FakePmgr pmgr;
  LeaseSyncShared shared;
  LeaseSync sync{"GPU-test", pmgr, shared};
  Micros now = kT0;

  /// A whole allocation as the wrappers make it: reserve, the real call succeeds, commit.
  bool alloc(uint64_t id, uint64_t bytes) {
    if (!sync.reserve(bytes, now)) return false;
    sync.finish(bytes, true, ptr(id), bytes);
    return true;
  }
};

TEST_F(LeaseSyncTest, NeverReachedRefusesNothingAndRetriesAtMostOncePerSecond) {
  pmgr.stop();
  EXPECT_TRUE(alloc(1, 100 * kGiB)) << "no limit known: nothing is refused";
  EXPECT_FALSE(sync.known());
  EXPECT_TRUE(shared.warned);
  EXPECT_EQ(sync.ledger().used(), 100 * kGiB) << "still counted";
  now += kSec / 2;
  EXPECT_TRUE(sync.within_limit(kGiB, now));
  uint64_t limit = 0, free = 0;
  EXPECT_FALSE(sync.view(now, &limit, &free)) << "no limit applies";
  EXPECT_EQ(pmgr.opens, 1) << "half a second later: no new attempt";
  now += kSec / 2;
  EXPECT_TRUE(alloc(2, kMiB));
  EXPECT_EQ(pmgr.opens, 2);
}

TEST_F(LeaseSyncTest, FailClosedRefusesUntilALimitIsKnown) {
  shared.fail_closed = true;
  pmgr.stop();
  EXPECT_FALSE(sync.reserve(kMiB, now));
  EXPECT_FALSE(sync.within_limit(kMiB, now));
  EXPECT_EQ(sync.ledger().used(), 0u) << "a refused reservation holds nothing";
  pmgr.restart();
  pmgr.limit = kGiB;
  now += kSec;
  EXPECT_TRUE(alloc(1, kMiB));
  EXPECT_TRUE(sync.known());
  EXPECT_FALSE(shared.warned) << "reached again: the next loss is said again";
}

TEST_F(LeaseSyncTest, ALeaseGrowsByTheShortfallPlusAChunkAndTheSlackServesWithoutARoundTrip) {
  pmgr.limit = kGiB;  // chunk: 32 MiB
  ASSERT_TRUE(alloc(1, 10 * kMiB));
  ASSERT_EQ(pmgr.reserves.size(), 1u);
  EXPECT_EQ(pmgr.reserves[0].need, 10 * kMiB);
  EXPECT_EQ(pmgr.reserves[0].want, 42 * kMiB);
  EXPECT_FALSE(pmgr.reserves[0].existing);
  EXPECT_EQ(sync.ledger().lease(), 42 * kMiB);
  EXPECT_TRUE(alloc(2, 32 * kMiB));
  EXPECT_EQ(pmgr.reserves.size(), 1u) << "the slack served it";
  EXPECT_TRUE(alloc(3, kMiB));
  EXPECT_EQ(pmgr.reserves.size(), 2u);
  EXPECT_EQ(pmgr.reserves[1].need, kMiB);
  EXPECT_EQ(sync.ledger().lease(), pmgr.lease) << "both sides agree on the lease";
}

TEST_F(LeaseSyncTest, AnAllocationBeyondTheLimitIsRefusedWithoutAskingAndHoldsNothing) {
  pmgr.limit = 64 * kMiB;
  EXPECT_FALSE(sync.reserve(64 * kMiB + 1, now));
  EXPECT_TRUE(pmgr.reserves.empty());
  EXPECT_EQ(sync.ledger().used(), 0u);
  EXPECT_TRUE(alloc(1, 64 * kMiB)) << "exactly the limit fits";
  EXPECT_FALSE(sync.reserve(1, now));
  EXPECT_TRUE(sync.reserve(0, now)) << "nothing more always fits";
}

TEST_F(LeaseSyncTest, WhatTheClientsOtherProcessesHoldIsNotThisProcesssToUse) {
  pmgr.limit = kGiB;
  pmgr.others = 900 * kMiB;
  EXPECT_FALSE(sync.reserve(200 * kMiB, now)) << "gem-pmgr grants nothing";
  EXPECT_EQ(sync.ledger().used(), 0u);
  EXPECT_EQ(sync.ledger().lease(), 0u);
  EXPECT_TRUE(alloc(1, 100 * kMiB)) << "the need fits though the chunk does not";
  EXPECT_EQ(pmgr.lease, 100 * kMiB);
  EXPECT_EQ(sync.free(), 24 * kMiB);
  EXPECT_TRUE(sync.within_limit(24 * kMiB, now));
  EXPECT_FALSE(sync.within_limit(24 * kMiB + 1, now));
}

TEST_F(LeaseSyncTest, AFailedRealCallGivesBackItsReservationAndASuccessChargesWhatTheDriverTook) {
  pmgr.limit = kGiB;
  ASSERT_TRUE(sync.reserve(10 * kMiB, now));
  EXPECT_EQ(sync.ledger().pending(), 10 * kMiB);
  sync.finish(10 * kMiB, false, ptr(1), 10 * kMiB);
  EXPECT_EQ(sync.ledger().used(), 0u);
  EXPECT_EQ(sync.ledger().allocations(), 0u);
  ASSERT_TRUE(sync.reserve(10 * kMiB, now));
  sync.finish(10 * kMiB, true, ptr(2), 12 * kMiB);
  EXPECT_EQ(sync.ledger().used(), 12 * kMiB);
  EXPECT_EQ(sync.ledger().pending(), 0u);
}

TEST_F(LeaseSyncTest, FreesOfUnknownPointersAndDoubleFreesChangeNothing) {
  pmgr.limit = kGiB;
  ASSERT_TRUE(alloc(1, 10 * kMiB));
  EXPECT_FALSE(sync.release(ptr(2), now));
  EXPECT_FALSE(sync.release({MemKind::kHandle, 1}, now)) << "same value, other kind";
  EXPECT_EQ(sync.ledger().used(), 10 * kMiB);
  EXPECT_TRUE(sync.release(ptr(1), now));
  EXPECT_FALSE(sync.release(ptr(1), now));
  EXPECT_EQ(sync.ledger().used(), 0u);
}

TEST_F(LeaseSyncTest, AFreeGivesTheUnusedLeaseAboveOneChunkBack) {
  pmgr.limit = 2 * kGiB;  // chunk: 64 MiB
  ASSERT_TRUE(alloc(1, 500 * kMiB));
  ASSERT_TRUE(alloc(2, 20 * kMiB));
  ASSERT_EQ(sync.ledger().lease(), 564 * kMiB);
  EXPECT_TRUE(sync.release(ptr(2), now));
  EXPECT_TRUE(pmgr.returned.empty()) << "44 MiB unused: within one chunk";
  EXPECT_TRUE(sync.release(ptr(1), now));
  ASSERT_EQ(pmgr.returned.size(), 1u);
  EXPECT_EQ(pmgr.returned[0], 500 * kMiB);
  EXPECT_EQ(sync.ledger().lease(), 64 * kMiB);
  EXPECT_EQ(pmgr.lease, 64 * kMiB);
}

TEST_F(LeaseSyncTest, ALostPmgrLeavesTheProcessItsLeaseAndNothingMore) {
  pmgr.limit = kGiB;
  ASSERT_TRUE(alloc(1, 10 * kMiB));  // lease 42 MiB
  pmgr.stop();
  now += kSec / 10;
  EXPECT_TRUE(alloc(2, 32 * kMiB)) << "within the lease: no round trip needed";
  EXPECT_FALSE(sync.reserve(kMiB, now)) << "more needs gem-pmgr";
  EXPECT_FALSE(pmgr.is_open());
  EXPECT_EQ(sync.ledger().pending(), 0u);
  EXPECT_TRUE(sync.known()) << "the last limit still applies";
  EXPECT_FALSE(sync.reserve(kMiB, now + kSec / 2));
  EXPECT_EQ(pmgr.opens, 1) << "no reconnection before a second has passed since the last attempt";
}

TEST_F(LeaseSyncTest, AReconnectionDeclaresWhatTheProcessAlreadyHolds) {
  pmgr.limit = kGiB;
  ASSERT_TRUE(alloc(1, 10 * kMiB));
  ASSERT_TRUE(alloc(2, 20 * kMiB));
  pmgr.stop();
  ASSERT_FALSE(sync.reserve(100 * kMiB, now));
  pmgr.restart();
  now += kSec;
  ASSERT_TRUE(alloc(3, kMiB));
  EXPECT_EQ(pmgr.opens, 2);
  ASSERT_GE(pmgr.reserves.size(), 3u);
  const ReserveCall redeclare = pmgr.reserves[pmgr.reserves.size() - 2];
  EXPECT_TRUE(redeclare.existing);
  EXPECT_EQ(redeclare.need, 30 * kMiB);
  EXPECT_EQ(sync.ledger().lease(), pmgr.lease) << "in step with the restarted gem-pmgr";
  EXPECT_GE(pmgr.lease, 31 * kMiB);
}

TEST_F(LeaseSyncTest, ARestartedPmgrWithALowerLimitStillLearnsWhatIsHeldButGrantsNothingNew) {
  pmgr.limit = kGiB;
  ASSERT_TRUE(alloc(1, 600 * kMiB));
  pmgr.stop();
  ASSERT_FALSE(sync.reserve(100 * kMiB, now));
  pmgr.restart();
  pmgr.limit = 512 * kMiB;
  now += kSec;
  EXPECT_FALSE(sync.reserve(kMiB, now));
  EXPECT_EQ(pmgr.lease, 600 * kMiB) << "what is held is declared even above the new limit";
  EXPECT_EQ(sync.ledger().limit(), 512 * kMiB);
  EXPECT_EQ(sync.free(), 0u);
  EXPECT_EQ(sync.ledger().used(), 600 * kMiB) << "a lower limit frees nothing";
}

TEST_F(LeaseSyncTest, APushedLimitAppliesFromTheNextAllocationAndTheUnusedLeaseGoesBack) {
  pmgr.limit = kGiB;
  ASSERT_TRUE(alloc(1, 10 * kMiB));  // lease 42 MiB
  pmgr.limit = 20 * kMiB;
  pmgr.push = pmgr.state(0);
  now += LeaseSync::kPushCheckPeriod / 2;
  EXPECT_TRUE(alloc(2, 20 * kMiB)) << "pushes are looked for at most once per millisecond";
  now += LeaseSync::kPushCheckPeriod;
  EXPECT_FALSE(sync.reserve(kMiB, now)) << "30 MiB used under a 20 MiB limit";
  EXPECT_EQ(sync.ledger().limit(), 20 * kMiB);
  ASSERT_EQ(pmgr.returned.size(), 1u);
  EXPECT_EQ(pmgr.returned[0], 12 * kMiB) << "all of the unused lease";
  EXPECT_EQ(sync.ledger().used(), 30 * kMiB);
}

TEST_F(LeaseSyncTest, APushedRaiseLetsTheNextAllocationThrough) {
  pmgr.limit = 64 * kMiB;
  ASSERT_TRUE(alloc(1, 60 * kMiB));
  EXPECT_FALSE(sync.reserve(10 * kMiB, now));
  pmgr.limit = kGiB;
  pmgr.push = pmgr.state(0);
  now += LeaseSync::kPushCheckPeriod;
  EXPECT_TRUE(alloc(2, 10 * kMiB));
  EXPECT_EQ(sync.ledger().limit(), kGiB);
}

TEST_F(LeaseSyncTest, UnifiedMemoryWithoutALimitLeasesSoUseIsKnownButRefusesNothing) {
  pmgr.flags = proto::kFlagUnifiedMemory;
  ASSERT_TRUE(alloc(1, 100 * kMiB));
  EXPECT_TRUE(sync.unified_memory());
  ASSERT_EQ(pmgr.reserves.size(), 1u);
  EXPECT_EQ(pmgr.lease, 164 * kMiB) << "the shortfall and a 64 MiB chunk";
  pmgr.stop();
  EXPECT_TRUE(alloc(2, 10 * kGiB)) << "no limit to enforce, even with gem-pmgr gone";
  uint64_t limit = 0, free = 0;
  EXPECT_FALSE(sync.view(now, &limit, &free));
}

TEST_F(LeaseSyncTest, TheViewAsksForTheLatestLimitAndCountsTheOwnUnusedLeaseAsFree) {
  pmgr.limit = kGiB;
  uint64_t limit = 0, free = 0;
  ASSERT_TRUE(sync.view(now, &limit, &free));
  EXPECT_EQ(limit, kGiB);
  EXPECT_EQ(free, kGiB);
  ASSERT_TRUE(alloc(1, 10 * kMiB));  // lease 42 MiB
  pmgr.limit = 2 * kGiB;             // changed, not pushed yet
  pmgr.others = 300 * kMiB;
  ASSERT_TRUE(sync.view(now, &limit, &free));
  EXPECT_EQ(pmgr.queries, 2);
  EXPECT_EQ(limit, 2 * kGiB);
  EXPECT_EQ(free, 2 * kGiB - 300 * kMiB - 10 * kMiB);
}

TEST_F(LeaseSyncTest, FreeNeverWrapsWhateverGemPmgrReports) {
  pmgr.limit = kGiB;
  pmgr.others = 2 * kGiB;  // more than the limit (a lowered limit)
  EXPECT_TRUE(sync.within_limit(0, now));
  EXPECT_EQ(sync.free(), 0u);
  EXPECT_FALSE(sync.within_limit(1, now));
  pmgr.limit = UINT64_MAX;
  pmgr.others = UINT64_MAX;
  uint64_t limit = 0, free = 0;
  ASSERT_TRUE(sync.view(now, &limit, &free));
  EXPECT_EQ(limit, proto::kMaxWireBytes) << "sizes from the wire are clamped";
  EXPECT_EQ(free, 0u);
}

TEST_F(LeaseSyncTest, WithinLimitTakesNoLease) {
  pmgr.limit = kGiB;
  EXPECT_TRUE(sync.within_limit(kGiB, now));
  EXPECT_FALSE(sync.within_limit(kGiB + 1, now));
  EXPECT_TRUE(pmgr.reserves.empty());
  EXPECT_EQ(sync.ledger().lease(), 0u);
  EXPECT_EQ(sync.ledger().used(), 0u);
}

TEST_F(LeaseSyncTest, AShrunkPoolGivesItsUnusedLeaseBackAndAGrownOneIsCharged) {
  pmgr.limit = 2 * kGiB;  // chunk: 64 MiB
  const MemKey pool{MemKind::kPool, 0x70};
  ASSERT_TRUE(sync.reserve(300 * kMiB, now));
  sync.finish(300 * kMiB, true, pool, 300 * kMiB);  // lease 364 MiB
  sync.settle(pool, 400 * kMiB);
  EXPECT_EQ(sync.ledger().used(), 400 * kMiB);
  EXPECT_TRUE(pmgr.returned.empty());
  sync.settle(pool, 100 * kMiB);
  EXPECT_EQ(sync.ledger().used(), 100 * kMiB);
  ASSERT_EQ(pmgr.returned.size(), 1u);
  EXPECT_EQ(pmgr.returned[0], 200 * kMiB) << "364 leased, 100 used, one 64 MiB chunk kept";
  sync.settle(pool, 0);
  EXPECT_EQ(sync.ledger().allocations(), 0u);
}

TEST_F(LeaseSyncTest, AnUnreachablePmgrIsSaidOnceForAllGpusUntilItIsReached) {
  FakePmgr other;
  LeaseSync sync2{"GPU-other", other, shared};
  pmgr.stop();
  other.stop();
  EXPECT_TRUE(sync.reserve(kMiB, now));
  EXPECT_TRUE(shared.warned);
  EXPECT_TRUE(sync2.reserve(kMiB, now));
  EXPECT_TRUE(shared.warned);
  other.restart();
  other.limit = kGiB;
  EXPECT_TRUE(sync2.reserve(kMiB, now + kSec));
  EXPECT_FALSE(shared.warned);
  EXPECT_TRUE(sync2.known());
  EXPECT_FALSE(sync.known()) << "each GPU learns its own limit";
}

}  // namespace
}  // namespace gem::hook
