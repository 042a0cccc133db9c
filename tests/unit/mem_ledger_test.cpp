// The hook's per-GPU memory ledger (hook/mem_ledger.*): what a user of GPU_MEM relies on — an
// allocation past the lease asks for exactly the shortfall, two reservations in flight cannot both
// take the last bytes, frees and failures give back exactly what was taken, and no sequence of
// calls wraps a counter.
#include "../../hook/mem_ledger.h"

#include <gtest/gtest.h>

namespace gem::hook {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
MemKey ptr(uint64_t p) { return {MemKind::kPointer, p}; }

TEST(MemLedger, ChunkIsAThirtySecondOfTheLimitWithinTwoAndSixtyFourMiB) {
  EXPECT_EQ(MemLedger::chunk_for(2 * kGiB), 64 * kMiB);
  EXPECT_EQ(MemLedger::chunk_for(kGiB), 32 * kMiB);
  EXPECT_EQ(MemLedger::chunk_for(16 * kMiB), 2 * kMiB);
  EXPECT_EQ(MemLedger::chunk_for(80 * kGiB), 64 * kMiB);
}

TEST(MemLedger, WithoutALimitEverythingFitsAndIsStillCounted) {
  MemLedger l;
  EXPECT_EQ(l.shortfall(100 * kGiB), 0u);
  EXPECT_FALSE(l.beyond_limit(100 * kGiB));
  l.reserve(3 * kGiB);
  l.commit(ptr(1), 3 * kGiB);
  EXPECT_EQ(l.used(), 3 * kGiB);
  EXPECT_EQ(l.release(ptr(1)), 3 * kGiB);
  EXPECT_EQ(l.used(), 0u);
}

TEST(MemLedger, UnifiedMemoryWithoutALimitStillLeasesSoItsUseIsKnownButRefusesNothing) {
  MemLedger l;
  l.set_tracking(true);
  EXPECT_TRUE(l.leasing());
  EXPECT_FALSE(l.limited());
  const LeaseAsk a = l.ask(10 * kMiB);
  EXPECT_EQ(a.need, 10 * kMiB);
  EXPECT_EQ(a.want, 74 * kMiB) << "a 64 MiB chunk without a limit";
  EXPECT_FALSE(l.beyond_limit(kGiB * 1024));
}

TEST(MemLedger, AllocationPastTheLeaseAsksForTheShortfallAndAChunk) {
  MemLedger l;
  l.set_limit(2 * kGiB);
  EXPECT_EQ(l.shortfall(10 * kMiB), 10 * kMiB);
  const LeaseAsk a = l.ask(10 * kMiB);
  EXPECT_EQ(a.need, 10 * kMiB);
  EXPECT_EQ(a.want, 74 * kMiB);
  l.add_lease(a.want);
  EXPECT_EQ(l.shortfall(10 * kMiB), 0u);
  l.reserve(10 * kMiB);
  l.commit(ptr(0x1000), 10 * kMiB);
  // The slack left serves the next allocations without asking.
  EXPECT_EQ(l.shortfall(64 * kMiB), 0u);
  EXPECT_EQ(l.shortfall(65 * kMiB), kMiB);
  EXPECT_EQ(l.ask(0).need, 0u);
}

TEST(MemLedger, TwoReservationsInFlightCannotBothTakeTheLastBytes) {
  MemLedger l;
  l.set_limit(kGiB);
  l.add_lease(kGiB);
  l.reserve(kGiB - 4 * kMiB);
  l.commit(ptr(1), kGiB - 4 * kMiB);
  ASSERT_EQ(l.shortfall(4 * kMiB), 0u);
  l.reserve(4 * kMiB);                    // thread A, before its real call returns
  EXPECT_EQ(l.shortfall(4 * kMiB), 4 * kMiB);  // thread B sees no room
  EXPECT_TRUE(l.beyond_limit(4 * kMiB));
  l.rollback(4 * kMiB);                   // A's real call failed: the bytes are back
  EXPECT_EQ(l.shortfall(4 * kMiB), 0u);
  EXPECT_EQ(l.used(), kGiB - 4 * kMiB);
}

TEST(MemLedger, FreeingGivesBackExactlyWhatWasCountedAndUnknownFreesChangeNothing) {
  MemLedger l;
  l.set_limit(kGiB);
  l.add_lease(kGiB);
  l.reserve(6 * kMiB);
  l.commit(ptr(7), 6 * kMiB);
  EXPECT_EQ(l.release(ptr(8)), std::nullopt);
  EXPECT_EQ(l.release({MemKind::kHandle, 7}), std::nullopt);  // same value, other kind
  EXPECT_EQ(l.used(), 6 * kMiB);
  EXPECT_EQ(l.release(ptr(7)), 6 * kMiB);
  EXPECT_EQ(l.release(ptr(7)), std::nullopt);  // a double free is not counted twice
  EXPECT_EQ(l.used(), 0u);
  EXPECT_EQ(l.allocations(), 0u);
}

TEST(MemLedger, PoolsAreSettledToWhatTheyReserve) {
  MemLedger l;
  l.set_limit(kGiB);
  l.add_lease(kGiB);
  const MemKey pool{MemKind::kPool, 0xabc};
  EXPECT_EQ(l.settle(pool, 32 * kMiB), 0u);
  EXPECT_EQ(l.used(), 32 * kMiB);
  EXPECT_EQ(l.settle(pool, 96 * kMiB), 32 * kMiB);
  EXPECT_EQ(l.used(), 96 * kMiB);
  EXPECT_EQ(l.settle(pool, 0), 96 * kMiB);  // trimmed to nothing
  EXPECT_EQ(l.used(), 0u);
  EXPECT_EQ(l.allocations(), 0u);
}

TEST(MemLedger, LoweringTheLimitBelowUseRefusesNewAllocationsAndFreesNothing) {
  MemLedger l;
  l.set_limit(kGiB);
  l.add_lease(kGiB);
  l.reserve(512 * kMiB);
  l.commit(ptr(1), 512 * kMiB);
  l.set_limit(256 * kMiB);
  EXPECT_TRUE(l.beyond_limit(2 * kMiB));
  EXPECT_EQ(l.used(), 512 * kMiB);
  EXPECT_EQ(l.surplus(0), 512 * kMiB);  // the unused lease can go back to gem-pmgr
}

TEST(MemLedger, SurplusKeepsOneChunk) {
  MemLedger l;
  l.set_limit(2 * kGiB);
  l.add_lease(300 * kMiB);
  l.reserve(100 * kMiB);
  l.commit(ptr(1), 100 * kMiB);
  EXPECT_EQ(l.surplus(64 * kMiB), 136 * kMiB);
  l.remove_lease(136 * kMiB);
  EXPECT_EQ(l.surplus(64 * kMiB), 0u);
  l.remove_lease(UINT64_MAX);  // saturates at 0
  EXPECT_EQ(l.lease(), 0u);
}

TEST(MemLedger, NoSequenceWrapsACounter) {
  MemLedger l;
  l.set_limit(UINT64_MAX);
  EXPECT_EQ(l.limit(), MemLedger::kMaxBytes);
  l.rollback(UINT64_MAX);
  l.remove_lease(5);
  EXPECT_EQ(l.used(), 0u);
  l.reserve(UINT64_MAX);
  l.reserve(UINT64_MAX);
  EXPECT_EQ(l.used(), MemLedger::kMaxBytes);
  l.commit(ptr(1), UINT64_MAX);
  l.commit(ptr(2), UINT64_MAX);
  EXPECT_LE(l.used(), MemLedger::kMaxBytes);
  l.release(ptr(1));
  l.release(ptr(2));
  EXPECT_EQ(l.used(), 0u);
  l.add_lease(UINT64_MAX);
  l.add_lease(UINT64_MAX);
  EXPECT_EQ(l.lease(), MemLedger::kMaxBytes);
}


TEST(MemLedger, ChunkAtTheExtremes) {
  EXPECT_EQ(MemLedger::chunk_for(0), 64 * kMiB) << "no limit";
  EXPECT_EQ(MemLedger::chunk_for(1), 2 * kMiB);
  EXPECT_EQ(MemLedger::chunk_for(64 * kMiB), 2 * kMiB);
  EXPECT_EQ(MemLedger::chunk_for(96 * kMiB), 3 * kMiB);
  EXPECT_EQ(MemLedger::chunk_for(UINT64_MAX), 64 * kMiB);
}

TEST(MemLedger, AReusedAddressIsReplacedNotCountedTwice) {
  MemLedger l;
  l.reserve(8 * kMiB);
  l.commit(ptr(0x1000), 8 * kMiB);
  l.reserve(2 * kMiB);
  l.commit(ptr(0x1000), 2 * kMiB);  // the free of the first was missed
  EXPECT_EQ(l.used(), 2 * kMiB);
  EXPECT_EQ(l.held(ptr(0x1000)), 2 * kMiB);
  EXPECT_EQ(l.allocations(), 1u);
  EXPECT_EQ(l.pending(), 0u);
  EXPECT_EQ(l.release(ptr(0x1000)), 2 * kMiB);
  EXPECT_EQ(l.used(), 0u);
}

TEST(MemLedger, HeldIsPerKeyAndKind) {
  MemLedger l;
  l.reserve(3 * kMiB);
  l.commit(ptr(5), 3 * kMiB);
  l.reserve(kMiB);
  l.commit({MemKind::kArray, 5}, kMiB);
  EXPECT_EQ(l.held(ptr(5)), 3 * kMiB);
  EXPECT_EQ(l.held({MemKind::kArray, 5}), kMiB);
  EXPECT_EQ(l.held({MemKind::kHandle, 5}), 0u);
  EXPECT_EQ(l.held(ptr(6)), 0u);
  EXPECT_EQ(l.used(), 4 * kMiB);
}

TEST(MemLedger, CommittingMoreThanWasReservedChargesWhatWasTaken) {
  MemLedger l;
  l.set_limit(kGiB);
  l.add_lease(kGiB);
  l.reserve(kMiB);
  l.commit(ptr(1), 2 * kMiB);  // the driver rounded up
  EXPECT_EQ(l.pending(), 0u) << "the reservation is used up, not negative";
  EXPECT_EQ(l.used(), 2 * kMiB);
  l.commit(ptr(2), kMiB);  // memory the driver already gave, never reserved
  EXPECT_EQ(l.used(), 3 * kMiB);
}

TEST(MemLedger, SettlingAnUnknownKeyToZeroChangesNothing) {
  MemLedger l;
  l.reserve(kMiB);
  l.commit(ptr(1), kMiB);
  const MemKey graph{MemKind::kGraphPool, 0};
  EXPECT_EQ(l.settle(graph, 0), 0u);
  EXPECT_EQ(l.allocations(), 1u);
  EXPECT_EQ(l.used(), kMiB);
  EXPECT_EQ(l.settle(graph, 64 * kMiB), 0u);
  EXPECT_EQ(l.used(), 65 * kMiB);
  EXPECT_EQ(l.settle(graph, 0), 64 * kMiB);
  EXPECT_EQ(l.used(), kMiB) << "what the pointer holds is untouched";
  EXPECT_EQ(l.settle(graph, UINT64_MAX), 0u);
  EXPECT_EQ(l.held(graph), MemLedger::kMaxBytes) << "a hostile figure is clamped";
  EXPECT_EQ(l.used(), MemLedger::kMaxBytes);
}

TEST(MemLedger, AsksAndSurplusesSaturate) {
  MemLedger l;
  l.set_limit(UINT64_MAX);
  const LeaseAsk a = l.ask(UINT64_MAX);
  EXPECT_EQ(a.need, MemLedger::kMaxBytes);
  EXPECT_EQ(a.want, MemLedger::kMaxBytes) << "need plus a chunk, saturated";
  EXPECT_GE(a.want, a.need);
  EXPECT_FALSE(l.beyond_limit(UINT64_MAX)) << "the clamped request is exactly the clamped limit";
  l.add_lease(kGiB);
  EXPECT_EQ(l.surplus(UINT64_MAX), 0u);
  EXPECT_EQ(l.surplus(0), kGiB);
}

}  // namespace
}  // namespace gem::hook
