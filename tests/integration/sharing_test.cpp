// Sharing without waste (issue 9), with the daemons' default quotas and window (as users run them):
// a light client costs the others only its GPU time plus a bounded hand-off (work conservation), and
// a latency client (latency=MS) starts its kernels soon beside a saturating one, within its REQUEST.
// Real gem-schd + gem-pmgr, fake-cuda-app under the real hook, the stand-in driver's kernel log.
#include <algorithm>

#include "harness.h"

namespace gemtest {
namespace {

constexpr double kSeconds = 10;
constexpr int kPeriodMs = 20;  // the light client: one 1 ms kernel, then a 19 ms pause

class SharingTest : public GemTest {
 protected:
  /// A saturating client "train" (1 ms kernels, a synchronise every 20) beside a light client
  /// "infer" (one 1 ms kernel every 20 ms), both REQUEST 0.5 LIMIT 1.0; `infer_options` after its
  /// GPU_MEM. gem-schd with its default quotas and window (250/100 ms, 10 s); its --stats file is
  /// how the test reads the charges (it changes nothing else).
  void run_pair(const std::string& infer_options) {
    write_config({{"train", 0.5, 1.0, "0", ""}, {"infer", 0.5, 1.0, "0", infer_options}});
    start_scheduler(users_scheduler_options());
    start_pod_manager("train");
    start_pod_manager("infer");
    AppOptions t;
    t.client = "train";
    t.seconds = kSeconds;
    t.sync_every = 20;
    t.env["GEMINI_MAX_INFLIGHT"] = "16";
    start_app(t);
    AppOptions i;
    i.client = "infer";
    i.seconds = kSeconds;
    i.sync_every = 1;
    i.idle_every = 1;
    i.idle_ms = kPeriodMs - 1;
    start_app(i);
    wait_apps(kSeconds + 10 * slack());
  }

  /// How long each of infer's kernels waited: the gap from the end of its previous kernel to its
  /// start, less the app's 19 ms pause (µs; the first two seconds are left out as warm-up).
  std::vector<Micros> infer_waits() const {
    const auto pids = pids_by_client();
    std::vector<Kernel> ks = kernels_of(kernels(), pids.at("infer").at(0));
    std::vector<Micros> waits;
    if (ks.empty()) return waits;
    const Micros from = ks.front().start + 2000000;
    for (size_t n = 1; n < ks.size(); ++n) {
      if (ks[n].start < from) continue;
      waits.push_back(std::max<Micros>(ks[n].start - ks[n - 1].end - (kPeriodMs - 1) * 1000, 0));
    }
    std::sort(waits.begin(), waits.end());
    return waits;
  }

  /// train's kernel time over the period both ran, as a fraction of that period.
  double train_busy() const {
    const ShareReport r = common_period_shares(kernels(), pids_by_client());
    return static_cast<double>(r.busy.at("train")) / static_cast<double>(r.t1 - r.t0);
  }
};

Micros percentile(const std::vector<Micros>& sorted, double p) {
  if (sorted.empty()) return -1;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())))];
}

// Before issue 9 the light client kept the token through its whole 250 ms quota (it launches every
// 20 ms, so the idle check never fired): the saturating client kept about 65% of the stand-in GPU.
TEST_F(SharingTest, ALightClientCostsOthersOnlyItsGpuTimeAndAHandOff) {
  run_pair("");
  const nlohmann::json st = stats();
  ASSERT_TRUE(st.contains("clients")) << tail(path("schd.log"));
  const nlohmann::json& inf = st["clients"]["infer"];
  const double grants = inf.value("grants", 0.0);
  const double charged_ms = inf.value("used_us_total", 0.0) / 1000.0;
  ASSERT_GT(grants, 5) << inf.dump();
  // Its 1 ms kernel, the 0.5 ms look plus GEMINI_IDLE_MS (2 ms) of grace, the drain and the hand-off.
  EXPECT_LT(charged_ms / grants, 12 * slack()) << "charged per grant; " << inf.dump();
  const double busy = train_busy();
  std::printf("    infer charged %.1f ms per grant over %.0f grants; train busy %.3f of the period\n",
              charged_ms / grants, grants, busy);
  EXPECT_GT(busy, sanitized() ? 0.6 : 0.85) << "the saturating client's kernel time over the common period";
}

// A latency client co-runs beside the holder: its kernels start within a few ms instead of waiting
// for the holder's 250 ms quota, while it stays within its REQUEST and the holder keeps the token.
TEST_F(SharingTest, ALatencyClientStartsSoonBesideASaturatingOne) {
  run_pair("latency=5");
  const std::vector<Micros> waits = infer_waits();
  ASSERT_GT(waits.size(), 100u) << "infer ran " << waits.size() << " kernels after its warm-up";
  const Micros p50 = percentile(waits, 0.5), p90 = percentile(waits, 0.9), p99 = percentile(waits, 0.99);
  const nlohmann::json st = stats();
  const nlohmann::json& inf = st["clients"]["infer"];
  std::printf("    infer waits p50 %.2f ms p90 %.2f ms p99 %.2f ms over %zu kernels; co-runs %d of %d grants; "
              "train busy %.3f\n",
              p50 / 1000.0, p90 / 1000.0, p99 / 1000.0, waits.size(), inf.value("coruns", 0), inf.value("grants", 0), train_busy());
  // The stand-in's launch and the pod manager's round trips on a loaded 2-core machine: a few ms;
  // without co-running the wait is the holder's quota (up to 250 ms).
  // The stand-in's launch and the pod manager's round trips take well under a millisecond; on a
  // loaded 2-core machine a few kernels wait for a CPU for tens of ms (seen: p99 0.8-82 ms), so the
  // bounds are on the median and the 90th percentile. Without co-running the wait is what is left
  // of the holder's 250 ms quota: a median near 125 ms.
  EXPECT_LT(p50, 5000 * slack());
  EXPECT_LT(p90, 25000 * slack());
  EXPECT_GT(inf.value("coruns", 0), 0) << inf.dump();
  EXPECT_LE(inf.value("share_window", 1.0), 0.5 + 0.05) << "a latency client stays within its REQUEST";
  // A latency client looks for its idle end every 0.2 ms with 0.2 ms of grace: its 1 ms kernel and
  // the round trips, where an ordinary client holds 2.5 ms more.
  const double per_grant_ms = inf.value("used_us_total", 0.0) / 1000.0 / std::max(inf.value("grants", 1.0), 1.0);
  std::printf("    infer charged %.2f ms per co-run\n", per_grant_ms);
  EXPECT_LT(per_grant_ms, 6 * slack());
  EXPECT_GT(train_busy(), sanitized() ? 0.6 : 0.85);
  std::string examples;
  EXPECT_GT(count_cross_overlaps(kernels(), client_by_pid(), &examples), 0) << "no kernel ran beside the holder's";
}

// A program that waits for each step in a synchronize call keeps the token through its quota: the
// idle look that catches the step's work finishing while the program waits for it too is not an
// idle release (issue 19: on the H100 a PyTorch loop lost its turn that way ten times in 30 s).
// One 2.9 ms kernel per step: the look, a poll and the 2 ms grace after the launch, lands on the
// kernel's last 200 µs in about 2 steps of 5; each such idle release was a grant more.
TEST_F(SharingTest, AProgramWaitingForItsStepKeepsTheToken) {
  write_config({{"step", 0.5, 1.0, "0", ""}});
  start_scheduler(users_scheduler_options());
  start_pod_manager("step");
  AppOptions a;
  a.client = "step";
  a.seconds = 4;
  a.kernel_us = 2900;
  a.sync_every = 1;
  start_app(a);
  wait_apps(4 + 10 * slack());
  const nlohmann::json st = stats();
  ASSERT_TRUE(st.contains("clients")) << tail(path("schd.log"));
  const double grants = st["clients"]["step"].value("grants", 0.0);
  std::printf("    %.0f grants and renewals in 4 s of 2.9 ms steps\n", grants);
  // Alone at the 250 ms quota: one renewal every 250 ms, 16 in 4 s; a loaded machine that
  // deschedules the program between its wait and its next launch may cost a few idle releases.
  EXPECT_LT(grants, 40) << st["clients"]["step"].dump();
}

// A client that runs one short step now and then (a 5 %-duty client: a 1 ms kernel, a synchronize,
// 30 ms of sleep) stops holding the token idle for the whole grace after each step once its think
// times show it does not come back within it (anticipation, hook/token_machine.h): its turns,
// charged by the time held, shrink from the kernel, a poll and the 2 ms grace to about the kernel
// and a poll. Issue 19: that idle time was 2 points of its saturating neighbour's throughput.
TEST_F(SharingTest, AnOccasionalClientGivesTheTokenBackSoonAfterItsStep) {
  write_config({{"light", 0.5, 1.0, "0", ""}});
  start_scheduler(users_scheduler_options());
  start_pod_manager("light");
  AppOptions a;
  a.client = "light";
  a.seconds = 4;
  a.kernel_us = 1000;
  a.sync_every = 1;
  a.idle_every = 1;
  a.idle_ms = 30;
  start_app(a);
  wait_apps(4 + 10 * slack());
  const nlohmann::json st = stats();
  ASSERT_TRUE(st.contains("clients")) << tail(path("schd.log"));
  const nlohmann::json& c = st["clients"]["light"];
  const double grants = c.value("grants", 0.0), used_ms = c.value("used_us_total", 0.0) / 1000.0;
  ASSERT_GT(grants, 20) << c.dump();
  const double per_turn = used_ms / grants;
  std::printf("    %.0f turns, %.2f ms held per turn (1 ms kernel; GEMINI_IDLE_MS 2)\n", grants, per_turn);
  // Held for the whole grace every turn: 1 ms + 0.5..1 ms of poll + 2 ms, at least 3.5 ms. The first
  // kLongThinksToShorten turns get it; the rest about 1 ms + a poll. A loaded machine that wakes
  // the worker late lengthens some turns, not the mean past the grace.
  EXPECT_LT(per_turn, 3.0) << c.dump();
}

// Urgency buys nothing past the LIMIT: a latency client that saturates is held to its LIMIT.
TEST_F(SharingTest, ALatencyClientIsHeldToItsLimit) {
  write_config({{"lat", 0.2, 0.3, "0", "latency=5"}});
  SchedulerOptions so = users_scheduler_options();
  so.window = 2000;  // short, so the LIMIT bites within the run
  start_scheduler(so);
  start_pod_manager("lat");
  AppOptions a;
  a.client = "lat";
  a.seconds = 6;
  start_app(a);
  wait_apps(6 + 10 * slack());
  const auto pids = pids_by_client();
  const std::vector<Kernel> ks = kernels_of(kernels(), pids.at("lat").at(0));
  ASSERT_FALSE(ks.empty());
  const Micros from = ks.front().start + 2000000, to = ks.back().end;
  std::vector<Interval> iv;
  for (const Kernel& k : ks) iv.push_back({k.start, k.end});
  const double share = static_cast<double>(union_length(iv, from, to)) / static_cast<double>(to - from);
  std::printf("    latency client alone at LIMIT 0.3: %.3f of the GPU after its first window\n", share);
  EXPECT_LT(share, 0.3 + 0.06) << "LIMIT 0.3";
  EXPECT_GT(share, 0.15);
}

}  // namespace
}  // namespace gemtest
