// gem-pmgr's UsageReport (pod-manager/usage_report.h), the pace of MemUsage, over random figures
// with a simulated clock (the scripted cases are tests/unit/testdata/route/residency_*.txt).
#include "../../pod-manager/usage_report.h"

#include <gtest/gtest.h>

#include <random>

namespace gem::pmgr {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// Driven like the route drives it: update() at every change and at next_deadline().
TEST(UsageReport, RandomFiguresArePacedAndNeverLeftStale) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 100; ++round) {
    UsageReport r;
    uint64_t bytes = 0;
    uint32_t flags = 0;
    Micros now = 0, last_sent = -1000000;
    for (int step = 0; step < 300; ++step) {
      now += static_cast<Micros>(rng() % 120000);
      if (r.next_deadline() <= now) {  // the route's tick at the deadline comes first
        const Micros at = r.next_deadline();
        if (auto u = r.update(bytes, flags, at)) {
          ASSERT_GE(at - last_sent, 200000) << "at most one report per 200 ms";
          last_sent = at;
          ASSERT_EQ(u->bytes, bytes);
        }
      }
      switch (rng() % 5) {
        case 0: bytes = 0; break;
        case 1: flags ^= 1; break;
        default: bytes = (rng() % 1024) * kMiB; break;
      }
      if (auto u = r.update(bytes, flags, now)) {
        ASSERT_GE(now - last_sent, 200000) << "at most one report per 200 ms";
        last_sent = now;
        ASSERT_EQ(u->bytes, bytes);
        ASSERT_EQ(u->flags, flags);
      }
      // Either the scheduler's figure is within a step of the truth, or a report is on its way.
      const uint64_t told = r.sent_bytes();
      const uint64_t off = bytes > told ? bytes - told : told - bytes;
      if (r.next_deadline() == kNever) {
        ASSERT_LT(off, proto::kUsageStep) << "a change of a step or more is never left unsent";
        ASSERT_TRUE(told == 0 || bytes != 0) << "a fall to 0 is never left unsent";
      } else {
        ASSERT_LE(r.next_deadline(), last_sent + 200000);
      }
    }
  }
}

TEST(UsageReport, HostileSizesAreClampedOnTheWire) {
  UsageReport r;
  const auto u = r.update(UINT64_MAX, 1, 0);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->bytes, proto::kMaxWireBytes);
  EXPECT_FALSE(r.update(UINT64_MAX - 1, 1, 1000000).has_value()) << "the same clamped figure";
}

}  // namespace
}  // namespace gem::pmgr
