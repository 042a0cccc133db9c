// The policy's residency tie-breaker (Policy::set_cold, docs/memory.md "Residency"): a client whose
// memory is resident goes first only among clients the rules rank equal; REQUEST and LIMIT decide
// as before.
#include "../../scheduler/policy.h"

#include <gtest/gtest.h>

namespace gem::sched {
namespace {

constexpr Micros kMs = 1000;

// 100 ms quotas over a 10 s window.
PolicyOptions Opts() { return PolicyOptions{100 * kMs, 100 * kMs, 10000 * kMs}; }

TEST(PolicyResidency, AmongEqualsTheResidentClientGoesFirst) {
  for (bool a_cold : {false, true}) {
    Policy p(Opts());
    p.set_clients({{"a", 0, 1}, {"b", 0, 1}}, 0);
    p.set_cold("a", a_cold);
    p.request("a", 0, 10 * kMs);  // a has waited longer
    p.request("b", 0, 20 * kMs);
    const auto g = p.schedule(30 * kMs);
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->client, a_cold ? "b" : "a") << (a_cold ? "b is resident" : "both resident: the longest wait");
  }
}

TEST(PolicyResidency, ALargerRequestOutranksResidency) {
  Policy p(Opts());
  p.set_clients({{"a", 0.6, 1}, {"b", 0.2, 1}}, 0);
  p.set_cold("a", true);
  p.request("b", 0, 0);
  p.request("a", 0, 0);
  const auto g = p.schedule(10 * kMs);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->client, "a") << "a is further below its REQUEST; its memory coming back does not matter";
}

TEST(PolicyResidency, ASmallerShareOutranksResidency) {
  Policy p(Opts());
  p.set_clients({{"a", 0, 1}, {"b", 0, 1}}, 0);
  // Both ask; equal shares, so the resident b runs first and its share is then above a's.
  p.set_cold("a", true);
  p.request("a", 0, 0);
  p.request("b", 0, 0);
  ASSERT_EQ(p.schedule(0)->client, "b");
  p.release("b", 100 * kMs, 100 * kMs, 100 * kMs);
  p.request("b", 0, 200 * kMs);
  EXPECT_EQ(p.schedule(300 * kMs)->client, "a") << "least share first, resident or not";
}

TEST(PolicyResidency, ResidencyNeverLiftsALimit) {
  Policy p(Opts());
  p.set_clients({{"a", 0, 1}, {"b", 0, 0.01}}, 0);
  p.request("b", 0, 0);
  ASSERT_EQ(p.schedule(0)->client, "b");
  p.release("b", 100 * kMs, 100 * kMs, 100 * kMs);  // b is now at its LIMIT
  p.set_cold("a", true);
  p.request("a", 0, 200 * kMs);
  p.request("b", 0, 200 * kMs);
  EXPECT_EQ(p.schedule(300 * kMs)->client, "a") << "b is at its LIMIT: the cold client runs";
  p.release("a", 0, 0, 400 * kMs);
  EXPECT_FALSE(p.schedule(400 * kMs).has_value()) << "b alone, still at its LIMIT, waits";
}

TEST(PolicyResidency, WarmAgainAndUnknownClients) {
  Policy p(Opts());
  p.set_clients({{"a", 0, 1}, {"b", 0, 1}}, 0);
  p.set_cold("nobody", true);  // no effect
  p.set_cold("a", true);
  p.set_cold("a", false);
  p.request("a", 0, 0);
  p.request("b", 0, 10 * kMs);
  EXPECT_EQ(p.schedule(20 * kMs)->client, "a") << "warm again: the longest wait decides";
}

}  // namespace
}  // namespace gem::sched
