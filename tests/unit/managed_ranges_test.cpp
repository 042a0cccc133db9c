// The managed-range registry (hook/managed_ranges.*): what Residency moves on Evict is exactly the
// managed memory the process holds on that device now — every range noted once, a freed range gone
// from every device, a reused address counted once, and no sequence of notes and frees wrapping the
// byte total.
#include "../../hook/managed_ranges.h"

#include <gtest/gtest.h>

#include <thread>
#include <utility>
#include <vector>

#include "../../hook/mem_ledger.h"

namespace gem::hook {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kMax = MemLedger::kMaxBytes;
using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

TEST(ManagedRanges, RangesAreKeptPerDeviceByAddress) {
  ManagedRanges r;
  r.note(0, 0x3000, 2 * kMiB);
  r.note(0, 0x1000, kMiB);
  r.note(1, 0x2000, 4 * kMiB);
  EXPECT_EQ(r.ranges(0), (Ranges{{0x1000, kMiB}, {0x3000, 2 * kMiB}}));
  EXPECT_EQ(r.ranges(1), (Ranges{{0x2000, 4 * kMiB}}));
  EXPECT_EQ(r.bytes(0), 3 * kMiB);
  EXPECT_EQ(r.bytes(1), 4 * kMiB);
}

TEST(ManagedRanges, AnUnknownDeviceHasNothing) {
  ManagedRanges r;
  EXPECT_TRUE(r.ranges(7).empty());
  EXPECT_EQ(r.bytes(7), 0u);
  r.note(0, 0x1000, kMiB);
  EXPECT_TRUE(r.ranges(7).empty());
  EXPECT_EQ(r.bytes(7), 0u);
}

TEST(ManagedRanges, AFreedRangeIsForgottenOnWhicheverDeviceItWas) {
  ManagedRanges r;
  r.note(0, 0x1000, kMiB);
  r.note(1, 0x2000, 2 * kMiB);
  EXPECT_TRUE(r.forget(0x2000)) << "addresses are unified: the caller need not know the device";
  EXPECT_TRUE(r.ranges(1).empty());
  EXPECT_EQ(r.bytes(1), 0u);
  EXPECT_EQ(r.bytes(0), kMiB) << "the other device keeps its ranges";
}

TEST(ManagedRanges, UnknownAndDoubleFreesChangeNothing) {
  ManagedRanges r;
  EXPECT_FALSE(r.forget(0x1000)) << "nothing noted yet";
  r.note(0, 0x1000, kMiB);
  EXPECT_FALSE(r.forget(0x1001)) << "only the start of a range names it";
  EXPECT_EQ(r.bytes(0), kMiB);
  EXPECT_TRUE(r.forget(0x1000));
  EXPECT_FALSE(r.forget(0x1000));
  EXPECT_EQ(r.bytes(0), 0u);
}

TEST(ManagedRanges, AReusedAddressReplacesTheMissedRangeAndIsCountedOnce) {
  ManagedRanges r;
  r.note(0, 0x1000, 8 * kMiB);
  r.note(0, 0x1000, 2 * kMiB);  // the free of the first was missed
  EXPECT_EQ(r.ranges(0), (Ranges{{0x1000, 2 * kMiB}}));
  EXPECT_EQ(r.bytes(0), 2 * kMiB);
  r.note(1, 0x1000, 4 * kMiB);  // reused on another device
  EXPECT_TRUE(r.ranges(0).empty());
  EXPECT_EQ(r.bytes(0), 0u);
  EXPECT_EQ(r.bytes(1), 4 * kMiB);
}

TEST(ManagedRanges, ByteTotalsSaturateAndNeverWrap) {
  ManagedRanges r;
  r.note(0, 0x1000, UINT64_MAX);
  r.note(0, 0x2000, UINT64_MAX);
  EXPECT_EQ(r.bytes(0), kMax);
  r.note(0, 0x3000, kMiB);
  EXPECT_EQ(r.bytes(0), kMax);
  EXPECT_TRUE(r.forget(0x1000));
  EXPECT_LE(r.bytes(0), kMax);
  EXPECT_TRUE(r.forget(0x2000));
  EXPECT_TRUE(r.forget(0x3000));
  EXPECT_EQ(r.bytes(0), 0u) << "all freed: nothing left, not 2^64 - something";
}

TEST(ManagedRanges, AZeroByteRangeIsNotedButHoldsNothing) {
  ManagedRanges r;
  r.note(0, 0x1000, 0);
  EXPECT_EQ(r.bytes(0), 0u);
  EXPECT_EQ(r.ranges(0).size(), 1u);
  EXPECT_TRUE(r.forget(0x1000));
}

TEST(ManagedRanges, ConcurrentNotesAndFreesKeepAnExactTotal) {
  ManagedRanges r;
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&r, t] {
      for (int i = 0; i < kEach; ++i) {
        const uint64_t p = (uint64_t(t) << 32) | (uint64_t(i) << 12);
        r.note(t % 2, p, 4096);
        if (i % 2 == 1) r.forget(p);  // every other one freed again
      }
    });
  }
  for (auto& t : ts) t.join();
  const uint64_t per_device = 2 * (kEach / 2) * 4096;
  EXPECT_EQ(r.bytes(0), per_device);
  EXPECT_EQ(r.bytes(1), per_device);
  EXPECT_EQ(r.ranges(0).size(), size_t{kEach});
}

TEST(ManagedRanges, TheProcessHasOneRegistry) {
  EXPECT_EQ(&managed_ranges(), &managed_ranges());
}

}  // namespace
}  // namespace gem::hook
