// Failures: a client killed while it holds the token, daemons that are dead or never started,
// GEMINI_FAIL_CLOSED=1.
#include <signal.h>

#include <algorithm>

#include "harness.h"

namespace gemtest {
namespace {

class FailureTest : public GemTest {
 protected:
  /// Kernels of `pid` that start at or after `t`.
  static std::vector<Kernel> starting_after(const std::vector<Kernel>& ks, int pid, Micros t) {
    std::vector<Kernel> out;
    for (const Kernel& k : ks) {
      if (k.pid == pid && k.start >= t) out.push_back(k);
    }
    std::sort(out.begin(), out.end(), [](const Kernel& a, const Kernel& b) { return a.start < b.start; });
    return out;
  }

  /// An app with the daemons unreachable in some way: it must finish its 2 s of launches in under
  /// 4 s, running unthrottled, and the hook must say so.
  void expect_runs_unthrottled(const std::string& pmgr_socket) {
    AppOptions a;
    a.client = "orphan";
    a.seconds = 2;
    a.pmgr_socket = pmgr_socket;
    App& app = start_app(a);
    const auto st = app.proc->wait_for(4 * slack());
    const double took = (mono_us() - app.started_us) / 1e6;
    ASSERT_TRUE(st.has_value()) << "fake-cuda-app --seconds 2 still running after " << 4 * slack() << " s";
    EXPECT_TRUE(exited_ok(*st)) << describe_status(*st) << "\n" << tail(app.err_path);
    std::printf("    finished in %.2f s\n", took);
    const auto res = app.result();
    const auto hs = app.hook_stats();
    ASSERT_TRUE(res.contains("launches")) << read_text(app.out_path);
    ASSERT_TRUE(hs.contains("unthrottled_launches")) << "no hook counters in " << app.stats_path;
    std::printf("    launches %lld, hook: %s\n", res["launches"].get<long long>(), hs.dump().c_str());
    EXPECT_GT(res["launches"].get<long long>(), 500);
    EXPECT_GT(hs["unthrottled_launches"].get<long long>(), 0);
    EXPECT_EQ(hs["tokens"].get<long long>(), 0);
    EXPECT_EQ(hs["launches"]["cuLaunchKernel"].get<long long>(), res["launches"].get<long long>());
  }
};

// The holder is SIGKILLed: its pod manager gives the token back for it, and the other client runs
// again within 50 ms and then has the whole GPU.
TEST_F(FailureTest, KillingTheHolderFreesTheTokenAtOnce) {
  write_config({{"victim", 0.8, 1.0}, {"survivor", 0.2, 1.0}});
  // Long slices, so a kill aimed at the victim's running kernels lands inside its slice even when a
  // loaded machine takes milliseconds to read the log: Gemini's 400 ms quotas, not the even ones
  // (--fit_quotas on would give the victim, held to REQUEST 0.8, 200 ms less its drain, and a kill
  // under ASan then sometimes landed on the survivor's turn).
  SchedulerOptions so;
  so.base_quota = 400;
  so.min_quota = 200;
  so.window = 4000;
  so.extra = {"--fit_quotas", "off"};
  start_scheduler(so);
  start_pod_manager("victim");
  start_pod_manager("survivor");
  AppOptions a;
  a.seconds = 6;
  a.client = "victim";
  App& victim = start_app(a);
  a.client = "survivor";
  App& survivor = start_app(a);
  sleep_ms(2000);
  // Kill while the victim is running kernels: its latest kernel ended just now.
  Micros killed = 0;
  const bool holding = wait_until(3, [&] {
    const auto ks = kernels();
    if (ks.empty()) return false;
    const Kernel& last = *std::max_element(ks.begin(), ks.end(), [](const Kernel& x, const Kernel& y) { return x.end < y.end; });
    const Micros now = mono_us();
    if (last.pid != victim.proc->pid() || now - last.end > 5000 * slack()) return false;
    killed = mono_us();
    victim.proc->signal(SIGKILL);
    return true;
  });
  ASSERT_TRUE(holding) << "never caught the victim running kernels";
  ASSERT_TRUE(victim.proc->wait_for(5).has_value());
  auto st = survivor.proc->wait_for(6 + 10 * slack());
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_ok(*st)) << describe_status(*st);

  const auto ks = kernels();
  const int vpid = victim.proc->pid(), spid = survivor.proc->pid();
  Micros victim_last = 0;
  for (const Kernel& k : kernels_of(ks, vpid)) victim_last = std::max(victim_last, k.end);
  // The victim held the token: the survivor ran nothing between the victim's last kernel and the kill.
  Micros survivor_before = 0;
  for (const Kernel& k : kernels_of(ks, spid)) {
    if (k.start < killed) survivor_before = std::max(survivor_before, k.end);
  }
  ASSERT_LT(survivor_before, victim_last) << "the survivor, not the victim, held the token at the kill";
  const auto next = starting_after(ks, spid, killed);
  ASSERT_FALSE(next.empty()) << "the survivor never ran again after the kill";
  const double resume_ms = (next.front().start - killed) / 1000.0;
  std::printf("    victim's last kernel ended %.1f ms before the kill; survivor resumed %.1f ms after it\n",
              (killed - victim_last) / 1000.0, resume_ms);
  EXPECT_LE(resume_ms, 50 * slack());
  // Then the survivor has the GPU to itself.
  Micros last_end = 0;
  std::vector<Interval> iv;
  for (const Kernel& k : next) {
    iv.push_back({k.start, k.end});
    last_end = std::max(last_end, k.end);
  }
  const Micros from = killed + 100000;
  ASSERT_GT(last_end - from, 2000000);
  const double share = static_cast<double>(union_length(iv, from, last_end)) / (last_end - from);
  std::printf("    survivor's share of the GPU after the kill: %.4f over %lld ms\n", share,
              static_cast<long long>((last_end - from) / 1000));
  EXPECT_GE(share, 1.0 - 2.5 * share_tolerance()) << "the token stayed with the dead client";
  stop_daemons_expect_clean();
}

TEST_F(FailureTest, SchedulerNeverStarted) {
  write_config({{"orphan", 0.5, 1.0}});
  start_pod_manager("orphan");  // its scheduler socket does not exist
  expect_runs_unthrottled(pmgr_socket("orphan"));
  stop_daemons_expect_clean();
}

TEST_F(FailureTest, PodManagerNotRunning) {
  expect_runs_unthrottled(path("no-such-pmgr.sock"));
}

TEST_F(FailureTest, SchedulerKilledMidRun) {
  write_config({{"orphan", 0.5, 1.0}});
  start_scheduler();
  start_pod_manager("orphan");
  AppOptions a;
  a.client = "orphan";
  a.seconds = 3;
  App& app = start_app(a);
  sleep_ms(1000);
  const Micros killed = mono_us();
  schd_->signal(SIGKILL);
  const auto st = app.proc->wait_for(2 + 2 * slack());
  ASSERT_TRUE(st.has_value()) << "the client hangs after its scheduler died";
  EXPECT_TRUE(exited_ok(*st)) << describe_status(*st) << "\n" << tail(app.err_path);
  std::printf("    finished %.2f s after the start\n", (mono_us() - app.started_us) / 1e6);
  const auto ks = kernels_of(kernels(), app.proc->pid());
  size_t before = 0, after = 0;
  for (const Kernel& k : ks) (k.start < killed ? before : after)++;
  std::printf("    kernels before the kill %zu, after %zu; hook: %s\n", before, after, app.hook_stats().dump().c_str());
  EXPECT_GT(before, 300u);
  EXPECT_GT(after, 1000u) << "the client made little progress after the scheduler died";
  const auto hs = app.hook_stats();
  ASSERT_TRUE(hs.contains("tokens"));
  EXPECT_GT(hs["tokens"].get<long long>(), 0);
  EXPECT_GT(hs["unthrottled_launches"].get<long long>(), 0);
  EXPECT_TRUE(pmgrs_["orphan"]->alive()) << "gem-pmgr died with its scheduler";
  schd_.reset();
  stop_daemons_expect_clean();
}

// GEMINI_FAIL_CLOSED=1 and no daemon: launches wait; once the daemons come up, they run.
TEST_F(FailureTest, FailClosedWaitsForTheDaemons) {
  write_config({{"careful", 1.0, 1.0}});
  AppOptions a;
  a.client = "careful";
  a.seconds = 4;
  a.env["GEMINI_FAIL_CLOSED"] = "1";
  App& app = start_app(a);
  sleep_ms(1000);
  EXPECT_TRUE(app.proc->alive()) << describe_status(*app.proc->status()) << "\n" << tail(app.err_path);
  EXPECT_EQ(kernels().size(), 0u) << "kernels ran without a token under GEMINI_FAIL_CLOSED=1";
  start_scheduler();
  start_pod_manager("careful");
  const Micros up = mono_us();
  const bool ran = wait_until(3 * slack(), [&] { return !kernels().empty(); });
  EXPECT_TRUE(ran) << "no kernels after the daemons came up";
  std::printf("    first kernel %.0f ms after the daemons came up\n", (mono_us() - up) / 1000.0);
  app.proc->signal(SIGKILL);
  app.proc->wait_for(5);
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
