// Issue 19: a LIMIT and a REQUEST split hold in every second, not only over the run, with gem-schd's
// default flags (window 10 s, base quota 250 ms, min quota 100 ms, even quotas) and no --stats, as
// users run it. Real gem-schd + gem-pmgr, fake-cuda-app under the real hook, per-second kernel time
// from the stand-in driver's kernel log. docs/scheduling.md, "LIMIT as a rate".
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"

namespace gemtest {
namespace {

constexpr double kRunSeconds = 9;

// How far one second's share may be from its target here. The GPU goal is 0.05 (issue 19); the
// stand-in on a loaded 2-core machine measured within 0.04 (docs/scheduling.md), and before issue 19
// seconds ranged 0.00-0.46 (LIMIT 0.25) and 0.21-0.49 (REQUEST 0.3). Under the sanitizers, which
// slow every process several times over, hand-offs come late and seconds swing more.
double second_tolerance() { return sanitized() ? 0.2 : 0.1; }

/// The app as issue 19's benchmark runs it: saturating, a synchronize every 8 launches (so that a
/// slice often ends while the program waits inside one: its release then asks nothing more, and its
/// next request is a message of its own).
AppOptions saturating(const std::string& client) {
  AppOptions a;
  a.client = client;
  a.seconds = kRunSeconds;
  a.sync_every = 8;
  a.env["GEMINI_MAX_INFLIGHT"] = "16";
  return a;
}

SchedulerOptions users_flags() {
  SchedulerOptions s = users_scheduler_options();
  s.stats = false;
  return s;
}

std::string list(const std::vector<double>& v) {
  std::string s;
  char buf[16];
  for (double x : v) {
    std::snprintf(buf, sizeof buf, "%s%.2f", s.empty() ? "" : " ", x);
    s += buf;
  }
  return s;
}

class EvennessTest : public GemTest {};

// LIMIT 0.25 alone: every whole second after the first within 0.25 +- second_tolerance(), no pause
// longer than two base quotas (issue 19: "no pause longer than 2 quotas").
TEST_F(EvennessTest, ALimitHoldsInEverySecond) {
  write_config({{"capped", 0.0, 0.25}});
  start_scheduler(users_flags());
  start_pod_manager("capped");
  start_app(saturating("capped"));
  wait_apps(kRunSeconds + 10 * slack());
  const auto ks = kernels();
  ASSERT_FALSE(ks.empty());
  const auto pids = pids_by_client();
  const ShareReport whole = common_period_shares(ks, pids);
  std::vector<double> seconds;
  for (Micros t = whole.t0 + 1000000; t + 1000000 <= whole.t1; t += 1000000) {
    seconds.push_back(static_cast<double>(period_shares(ks, pids, t, t + 1000000).busy.at("capped")) / 1e6);
  }
  const Micros gap = longest_gap(ks, pids.at("capped"), whole.t0, whole.t1);
  std::printf("    LIMIT 0.25, per second after the first: %s; longest pause %lld ms\n", list(seconds).c_str(),
              static_cast<long long>(gap / 1000));
  ASSERT_GE(seconds.size(), 6u) << "the client ran too briefly";
  for (size_t i = 0; i < seconds.size(); ++i) {
    EXPECT_NEAR(seconds[i], 0.25, second_tolerance()) << "second " << i + 2 << " of " << list(seconds);
  }
  EXPECT_LE(gap, 500000 * slack()) << "paused longer than two base quotas";
  stop_daemons_expect_clean();
}

// REQUEST 0.3 / 0.7, both saturating: the 0.3 client's part of the kernel time in every whole second
// after the first within 0.3 +- second_tolerance() (the whole run's split is SharesTest's). The
// stand-in rarely ends a slice between a release and its client's next request, the race that gave
// an H100 a second of 0.38 (Policy::contenders): that one is pinned by the policy's scenario
// (tests/unit/testdata/policy/evenness.txt).
TEST_F(EvennessTest, ARequestSplitHoldsInEverySecond) {
  write_config({{"r30", 0.3, 1.0}, {"r70", 0.7, 1.0}});
  start_scheduler(users_flags());
  start_pod_manager("r30");
  start_pod_manager("r70");
  start_app(saturating("r30"));
  start_app(saturating("r70"));
  wait_apps(kRunSeconds + 10 * slack());
  const auto ks = kernels();
  const auto pids = pids_by_client();
  const ShareReport whole = common_period_shares(ks, pids);
  std::vector<double> seconds;
  for (Micros t = whole.t0 + 1000000; t + 1000000 <= whole.t1; t += 1000000) {
    const ShareReport s = period_shares(ks, pids, t, t + 1000000);
    seconds.push_back(s.share.at("r30"));
  }
  std::printf("    0.3's part per second after the first: %s; whole %s\n", list(seconds).c_str(),
              whole.describe().c_str());
  ASSERT_GE(seconds.size(), 6u) << "the clients ran together too briefly";
  for (size_t i = 0; i < seconds.size(); ++i) {
    EXPECT_NEAR(seconds[i], 0.3, second_tolerance()) << "second " << i + 2 << " of " << list(seconds);
  }
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
