// Policy::set_clients as a merge (issue 6): kept clients keep their usage and waiting state, new
// ones start fresh, absent ones are dropped in name order, a repeated name counts once (the last),
// and 10^6 clients go through (its time is in bench/config_bench.cpp, not asserted here).
#include "../../scheduler/policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gem::sched {
namespace {

TEST(PolicySetClients, MergeKeepsUsageDropsAbsentAndLastDuplicateWins) {
  Policy p{PolicyOptions{}};
  p.set_clients({{"m", 0.1, 1}, {"c", 0.1, 1}, {"x", 0.1, 1}, {"a", 0.1, 1}}, 0);
  p.request("m", 0, 0);
  ASSERT_EQ(p.schedule(0)->client, "m");
  p.release("m", 1000, 1000, 5000);
  p.request("x", 0, 5000);
  const auto dropped = p.set_clients(
      {{"z", 0.2, 0.9}, {"m", 0.3, 0.8}, {"b", 0, 1}, {"x", 0.1, 1}, {"b", 0.05, 0.5}}, 6000);
  EXPECT_EQ(dropped, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(p.clients(), (std::vector<std::string>{"b", "m", "x", "z"}));
  const auto m = p.stats("m", 6000);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->used_total, 5000);  // kept (held from 0 to 5000: charged the observed hold, not the 1000 reported)
  EXPECT_DOUBLE_EQ(m->request, 0.3);
  EXPECT_DOUBLE_EQ(m->limit, 0.8);
  EXPECT_TRUE(p.stats("x", 6000)->waiting);  // kept
  EXPECT_DOUBLE_EQ(p.stats("b", 6000)->request, 0.05);  // the last "b"
  EXPECT_DOUBLE_EQ(p.stats("b", 6000)->limit, 0.5);
  EXPECT_EQ(p.stats("z", 6000)->used_total, 0);
  EXPECT_EQ(p.set_clients({}, 7000), (std::vector<std::string>{"b", "m", "x", "z"}));
  EXPECT_TRUE(p.clients().empty());
}

TEST(PolicySetClients, DroppedHolderLosesTheToken) {
  Policy p{PolicyOptions{}};
  p.set_clients({{"a", 0.5, 1}, {"b", 0.5, 1}}, 0);
  p.request("b", 0, 0);
  ASSERT_EQ(p.schedule(0)->client, "b");
  EXPECT_EQ(p.set_clients({{"a", 0.5, 1}}, 10), std::vector<std::string>{"b"});
  EXPECT_TRUE(p.holder().empty());
  EXPECT_FALSE(p.has_client("b"));
}

TEST(PolicySetClients, MillionClients) {
  std::vector<ClientShare> shares;
  const size_t n = 1000000;
  shares.reserve(n);
  for (size_t i = 0; i < n; ++i) shares.push_back({"pod-" + std::to_string(n - i), 0, 1});
  Policy p{PolicyOptions{}};
  EXPECT_TRUE(p.set_clients(shares, 0).empty());
  EXPECT_TRUE(p.has_client("pod-1"));
  EXPECT_TRUE(p.has_client("pod-1000000"));
  shares.pop_back();  // "pod-1"
  shares.push_back({"new", 0, 1});
  EXPECT_EQ(p.set_clients(shares, 1), std::vector<std::string>{"pod-1"});
  EXPECT_TRUE(p.has_client("new"));
  EXPECT_EQ(p.clients().size(), n);
}

}  // namespace
}  // namespace gem::sched
