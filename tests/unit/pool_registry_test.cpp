// The pool registry (hook/pool_registry.*): the pools re-read before an allocation is refused are
// the ones the program allocated from on that device, each once, in the order first used, and a
// program creating pools without end cannot grow the hook past kMaxPools a device.
#include "../../hook/pool_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace gem::hook {
namespace {

TEST(PoolRegistry, PoolsAreNotedOncePerDeviceInTheOrderFirstUsed) {
  PoolRegistry r;
  EXPECT_TRUE(r.note(0, 0xb0));
  EXPECT_TRUE(r.note(0, 0xa0));
  EXPECT_FALSE(r.note(0, 0xb0)) << "known already";
  EXPECT_EQ(r.pools(0), (std::vector<uint64_t>{0xb0, 0xa0}));
}

TEST(PoolRegistry, DevicesAreSeparate) {
  PoolRegistry r;
  EXPECT_TRUE(r.note(0, 0xa0));
  EXPECT_TRUE(r.note(1, 0xa0)) << "known on another device only";
  EXPECT_TRUE(r.note(1, 0xc0));
  EXPECT_EQ(r.pools(0), (std::vector<uint64_t>{0xa0}));
  EXPECT_EQ(r.pools(1), (std::vector<uint64_t>{0xa0, 0xc0}));
  EXPECT_TRUE(r.pools(5).empty()) << "a device never used has none";
}

TEST(PoolRegistry, ADeviceKeepsAtMostMaxPools) {
  PoolRegistry r;
  for (uint64_t p = 1; p <= PoolRegistry::kMaxPools; ++p) ASSERT_TRUE(r.note(0, p));
  EXPECT_FALSE(r.note(0, PoolRegistry::kMaxPools + 1)) << "past the cap: charged, not re-read";
  EXPECT_FALSE(r.note(0, 1)) << "a known pool is still known";
  const auto pools = r.pools(0);
  ASSERT_EQ(pools.size(), PoolRegistry::kMaxPools);
  EXPECT_EQ(pools.front(), 1u) << "the first pools keep their slots";
  EXPECT_EQ(pools.back(), PoolRegistry::kMaxPools);
  EXPECT_TRUE(r.note(1, PoolRegistry::kMaxPools + 1)) << "the cap is per device";
}

TEST(PoolRegistry, ConcurrentNotesKeepEachPoolOnceAndTheCap) {
  PoolRegistry r;
  std::atomic<int> fresh{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (uint64_t p = 1; p <= 100; ++p) {
        if (r.note(0, p)) fresh.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  const auto pools = r.pools(0);
  EXPECT_EQ(pools.size(), PoolRegistry::kMaxPools);
  EXPECT_EQ(fresh.load(), static_cast<int>(PoolRegistry::kMaxPools)) << "each slot taken by one note";
  EXPECT_EQ(std::set<uint64_t>(pools.begin(), pools.end()).size(), pools.size()) << "no pool twice";
}

TEST(PoolRegistry, TheProcessHasOneRegistry) { EXPECT_EQ(&pool_registry(), &pool_registry()); }

}  // namespace
}  // namespace gem::hook
