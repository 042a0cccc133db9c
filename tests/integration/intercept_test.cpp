// Every launch path the hook wraps is gated and counted under its own name, as the CUDA runtime
// reaches the driver (cuGetProcAddress), with per-thread default streams too.
#include "harness.h"

namespace gemtest {
namespace {

struct Path {
  const char* api;
  bool ptsz;
  const char* counter;  // the hook's counter name
  const char* tag;      // the stand-in's api tag in the kernel log
};

const Path kPaths[] = {
    {"launch", false, "cuLaunchKernel", "launch"},
    {"launch", true, "cuLaunchKernel_ptsz", "launch_ptsz"},
    {"ex", false, "cuLaunchKernelEx", "ex"},
    {"ex", true, "cuLaunchKernelEx_ptsz", "ex_ptsz"},
    {"coop", false, "cuLaunchCooperativeKernel", "coop"},
    {"coop", true, "cuLaunchCooperativeKernel_ptsz", "coop_ptsz"},
    {"graph", false, "cuGraphLaunch", "graph"},
    {"graph", true, "cuGraphLaunch_ptsz", "graph_ptsz"},
};

class InterceptTest : public GemTest {
 protected:
  /// The hook counted exactly the app's launches under `counter` (others 0), and the stand-in ran
  /// that many kernels tagged `tag` for this pid.
  void expect_counted(const App& app, const std::vector<Kernel>& ks, const char* counter, const char* tag) {
    const auto res = app.result();
    const auto hs = app.hook_stats();
    ASSERT_TRUE(res.contains("launches")) << "no result line from fake-cuda-app: " << read_text(app.out_path);
    ASSERT_TRUE(hs.contains("launches")) << "no hook counters: " << read_text(app.stats_path);
    const long long launches = res["launches"].get<long long>();
    EXPECT_GT(launches, 0);
    for (const auto& [name, n] : hs["launches"].items()) {
      EXPECT_EQ(n.get<long long>(), name == counter ? launches : 0) << "counter " << name << " for --api "
                                                                    << res.value("api", "?") << " ptsz "
                                                                    << res.value("ptsz", false);
    }
    EXPECT_TRUE(hs["launches"].contains(counter)) << hs.dump();
    long long logged = 0, wrong_tag = 0;
    for (const Kernel& k : kernels_of(ks, app.proc->pid())) {
      ++logged;
      if (k.api != tag) ++wrong_tag;
    }
    EXPECT_EQ(logged, launches) << counter;
    EXPECT_EQ(wrong_tag, 0) << "kernels not tagged " << tag;
    std::printf("    %-32s launches %6lld  hook counted %6lld  logged %6lld  tokens %lld  unthrottled %lld\n", counter,
                launches, hs["launches"].value(counter, -1LL), logged, hs.value("tokens", -1LL),
                hs.value("unthrottled_launches", -1LL));
  }
};

TEST_F(InterceptTest, EveryLaunchPathIsGatedAndCounted) {
  write_config({{"intercept", 1.0, 1.0}});
  start_scheduler();
  start_pod_manager("intercept");
  std::vector<App*> apps;
  for (const Path& p : kPaths) {
    AppOptions a;
    a.client = "intercept";
    a.seconds = 1.5;
    a.threads = 3;
    a.kernel_us = 200;
    a.api = p.api;
    a.ptsz = p.ptsz;
    apps.push_back(&start_app(a));
  }
  wait_apps(1.5 + 15 * slack());
  const auto ks = kernels();
  for (size_t i = 0; i < apps.size(); ++i) {
    SCOPED_TRACE(kPaths[i].counter);
    expect_counted(*apps[i], ks, kPaths[i].counter, kPaths[i].tag);
    const auto hs = apps[i]->hook_stats();
    EXPECT_GT(hs.value("tokens", 0LL), 0) << "launches were not gated by the token";
    EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0);
  }
  std::string ex;
  EXPECT_EQ(count_cross_overlaps(ks, client_by_pid(), &ex), 0) << ex;  // one client: nothing to overlap
  stop_daemons_expect_clean();
}

// Without POD_NAME the hook only counts: no daemon is asked, no token is taken.
TEST_F(InterceptTest, NoPodNamePassesThrough) {
  std::vector<App*> apps;
  for (const Path& p : {kPaths[1], kPaths[2], kPaths[7]}) {
    AppOptions a;
    a.seconds = 1;
    a.threads = 3;
    a.kernel_us = 200;
    a.api = p.api;
    a.ptsz = p.ptsz;
    apps.push_back(&start_app(a));
  }
  wait_apps(1 + 10 * slack());
  const auto ks = kernels();
  const Path expect[] = {kPaths[1], kPaths[2], kPaths[7]};
  for (size_t i = 0; i < apps.size(); ++i) {
    SCOPED_TRACE(expect[i].counter);
    expect_counted(*apps[i], ks, expect[i].counter, expect[i].tag);
    const auto hs = apps[i]->hook_stats();
    EXPECT_EQ(hs.value("tokens", -1LL), 0);
    EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0);
  }
}

}  // namespace
}  // namespace gemtest
