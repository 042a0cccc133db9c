// REQUEST shares, LIMITs, no overlap between clients, and processes of one client sharing its token:
// real gem-schd + gem-pmgr, fake-cuda-app under the real hook, the stand-in driver's kernel log.
#include <cmath>
#include <cstdlib>

#include <algorithm>

#include "harness.h"

namespace gemtest {
namespace {

constexpr double kRunSeconds = 9;

// Launches a saturating client may keep queued (GEMINI_MAX_INFLIGHT) in the REQUEST share tests.
// The harness's 8 lets a stream hold only 2-4 one-millisecond kernels: whenever the app's launching
// thread, or the stand-in's executor thread, waits longer than that for a CPU, the GPU sits idle
// while the client holds, and is charged for, the token. On a loaded 2-core machine clients ran
// kernels for only 67-96% of their charged time, differently per client, so the kernel-time shares
// drifted from the scheduler's split (charged shares within 0.01 of REQUEST) by up to 0.04 (issue 6:
// c = 0.339 for 0.30). 16 keeps 4-8 ms queued: 90-100% under three busy loops on two cores. Deeper
// is not better here: 32 (8-16 ms) adds up to 16 ms of drain to each 30 ms quota, and slices that
// much longer than the quota gem-schd projects tilt its split (b charged 0.206-0.208 of 0.2, kernel
// shares off by up to 0.014 on an idle machine, against 0.008 with 16).
// The LIMIT tests keep 8: there the drain past a quota is what a 2 s window may exceed the LIMIT by.
constexpr int kSaturatingInflight = 16;

class SharesTest : public GemTest {
 protected:
  /// Starts gem-schd with `clients`, one gem-pmgr per client and `procs` saturating apps per client,
  /// all in parallel; waits for them. Returns the shares over the common run period.
  ShareReport run_saturating(const std::vector<ClientConfig>& clients, double seconds, int procs = 1,
                             int window = 2000, int max_inflight = 8) {
    write_config(clients);
    if (const char* w = std::getenv("GEM_INTEG_WINDOW")) window = std::atoi(w);  // for experiments
    start_scheduler(30, 10, window);
    for (const auto& c : clients) start_pod_manager(c.name);
    for (int p = 0; p < procs; ++p) {
      for (const auto& c : clients) {
        AppOptions a;
        a.client = c.name;
        a.seconds = seconds;
        a.env["GEMINI_MAX_INFLIGHT"] = std::to_string(max_inflight);
        start_app(a);
      }
    }
    wait_apps(seconds + 10 * slack());
    return common_period_shares(kernels(), pids_by_client());
  }

  void expect_shares(const std::vector<ClientConfig>& clients, const ShareReport& r) {
    EXPECT_GT(r.t1 - r.t0, static_cast<Micros>((kRunSeconds - 2) * 1e6)) << "clients ran together too briefly";
    const std::string context = charge_context(r);
    for (const auto& c : clients) {
      EXPECT_NEAR(r.share.at(c.name), c.request, share_tolerance()) << c.name << " " << r.describe() << "\n"
                                                                    << context;
    }
    std::printf("    shares %s\n    %s\n", r.describe().c_str(), context.c_str());
  }

  /// What to tell a scheduler that split the token wrongly from clients that could not use it: the
  /// scheduler's charged shares (its --stats file, whole run up to its last write), each client's
  /// kernel time per charged time up to then, how long the stand-in GPU sat idle in the period and
  /// the longest one client had it.
  std::string charge_context(const ShareReport& r) const {
    const nlohmann::json st = stats();
    const std::vector<Kernel> ks = kernels();
    const auto pids = pids_by_client();
    const Micros stats_time = st.value("time_us", static_cast<Micros>(0));
    Micros charged_total = 0, first = INT64_MAX;
    for (const Kernel& k : ks) first = std::min(first, k.start);
    std::map<std::string, Micros> charged;
    for (const auto& [name, _] : pids) {
      charged[name] = st.contains("clients") && st["clients"].contains(name)
                          ? st["clients"][name].value("used_us_total", static_cast<Micros>(0))
                          : 0;
      charged_total += charged[name];
    }
    std::string s = "charged by gem-schd:";
    for (const auto& [name, ids] : pids) {
      std::vector<Interval> iv;
      for (const Kernel& k : ks) {
        if (std::find(ids.begin(), ids.end(), k.pid) != ids.end()) iv.push_back({k.start, k.end});
      }
      const Micros ran = union_length(iv, first, stats_time);
      char buf[128];
      std::snprintf(buf, sizeof buf, " %s=%.4f (kernels %.2f of it)", name.c_str(),
                    charged_total > 0 ? static_cast<double>(charged[name]) / charged_total : 0.0,
                    charged[name] > 0 ? static_cast<double>(ran) / charged[name] : 0.0);
      s += buf;
    }
    Micros busy = 0;
    for (const auto& [name, b] : r.busy) busy += b;
    // The longest turn: kernels of one client back to back, no other client's in between. Far past
    // quota + drain, a holder kept the gate open (its hook's worker, or the answer to its renewal,
    // starved of CPU); charged, but gem-schd forgets it once it leaves the window.
    const auto group = client_by_pid();
    std::vector<Kernel> sorted = ks;
    std::sort(sorted.begin(), sorted.end(), [](const Kernel& x, const Kernel& y) { return x.start < y.start; });
    Micros longest_turn = 0, turn_start = 0, turn_end = 0;
    std::string turn_of, longest_of;
    for (const Kernel& k : sorted) {
      if (k.end <= r.t0 || k.start >= r.t1) continue;
      const std::string g = group.count(k.pid) != 0 ? group.at(k.pid) : std::to_string(k.pid);
      if (g != turn_of) {
        turn_of = g;
        turn_start = k.start;
        turn_end = k.end;
      }
      turn_end = std::max(turn_end, k.end);
      if (turn_end - turn_start > longest_turn) {
        longest_turn = turn_end - turn_start;
        longest_of = g;
      }
    }
    char buf[192];
    std::snprintf(buf, sizeof buf, "; GPU busy %.3f of the period, longest idle %lld ms, longest turn %lld ms (%s)",
                  r.t1 > r.t0 ? static_cast<double>(busy) / (r.t1 - r.t0) : 0.0,
                  static_cast<long long>(longest_idle(ks, r.t0, r.t1) / 1000),
                  static_cast<long long>(longest_turn / 1000), longest_of.c_str());
    return s + buf;
  }

  void expect_no_overlap() {
    std::string ex;
    const std::vector<Kernel> ks = kernels();
    const int n = count_cross_overlaps(ks, client_by_pid(), &ex);
    EXPECT_EQ(n, 0) << "kernels of different clients overlapped:\n" << ex;
    std::printf("    %zu kernels, %d overlapping pairs of different clients\n", ks.size(), n);
  }
};

TEST_F(SharesTest, TwoClients30_70) {
  const std::vector<ClientConfig> clients = {{"client1", 0.3, 1.0}, {"client2", 0.7, 1.0}};
  expect_shares(clients, run_saturating(clients, kRunSeconds, 1, 2000, kSaturatingInflight));
  expect_no_overlap();
  stop_daemons_expect_clean();
}

TEST_F(SharesTest, ThreeClients20_30_50) {
  const std::vector<ClientConfig> clients = {{"a", 0.2, 1.0}, {"b", 0.3, 1.0}, {"c", 0.5, 1.0}};
  expect_shares(clients, run_saturating(clients, kRunSeconds, 1, 2000, kSaturatingInflight));
  expect_no_overlap();
  stop_daemons_expect_clean();
}

TEST_F(SharesTest, FourClients10_20_30_40) {
  const std::vector<ClientConfig> clients = {{"a", 0.1, 1.0}, {"b", 0.2, 1.0}, {"c", 0.3, 1.0}, {"d", 0.4, 1.0}};
  expect_shares(clients, run_saturating(clients, kRunSeconds, 1, 2000, kSaturatingInflight));
  expect_no_overlap();
  stop_daemons_expect_clean();
}

// Many launching threads per process, per-thread default streams and every launch path at once:
// still no kernel of one client runs while another client's does.
TEST_F(SharesTest, NoOverlapBetweenClientsWithManyThreads) {
  write_config({{"a", 0.3, 1.0}, {"b", 0.3, 1.0}, {"c", 0.4, 1.0}});
  start_scheduler();
  for (const char* c : {"a", "b", "c"}) start_pod_manager(c);
  const char* apis[] = {"launch", "ex", "graph"};
  for (int i = 0; i < 3; ++i) {
    AppOptions a;
    a.client = std::string(1, static_cast<char>('a' + i));
    a.seconds = 4;
    a.threads = 3;
    a.api = apis[i];
    a.ptsz = i == 1;
    a.kernel_us = 500 + 500 * i;
    start_app(a);
  }
  wait_apps(4 + 10 * slack());
  const auto ks = kernels();
  for (const auto& [client, pids] : pids_by_client()) {
    EXPECT_GT(kernels_of(ks, pids[0]).size(), 100u) << client << " barely ran";
  }
  expect_no_overlap();
  stop_daemons_expect_clean();
}

// A LIMIT 0.25 client alone on the GPU gets a quarter of the wall time, not more.
TEST_F(SharesTest, LimitAlone) {
  write_config({{"capped", 0.0, 0.25}});
  start_scheduler();
  start_pod_manager("capped");
  AppOptions a;
  a.client = "capped";
  a.seconds = 8;
  start_app(a);
  wait_apps(8 + 10 * slack());
  const auto ks = kernels();
  ASSERT_FALSE(ks.empty());
  Micros first = INT64_MAX, last = 0;
  std::vector<Interval> iv;
  for (const Kernel& k : ks) {
    first = std::min(first, k.start);
    last = std::max(last, k.end);
    iv.push_back({k.start, k.end});
  }
  const double share = static_cast<double>(union_length(iv, first, last)) / (last - first);
  std::printf("    LIMIT 0.25 alone: %.4f of %lld ms\n", share, static_cast<long long>((last - first) / 1000));
  EXPECT_NEAR(share, 0.25, share_tolerance());
  // Never above the LIMIT for long either: in each 2 s window (the scheduler's window) after the first.
  double worst = 0;
  for (Micros t = first + 2000000; t + 2000000 <= last; t += 1000000) {
    worst = std::max(worst, static_cast<double>(union_length(iv, t, t + 2000000)) / 2e6);
  }
  std::printf("    largest share in a 2 s window: %.4f\n", worst);
  EXPECT_LE(worst, 0.25 + share_tolerance());
  stop_daemons_expect_clean();
}

// A (REQUEST 0.2, LIMIT 0.4) next to B (0.2, 1.0): both want everything, A stops at 0.4.
TEST_F(SharesTest, LimitWithTwoClients) {
  const std::vector<ClientConfig> clients = {{"A", 0.2, 0.4}, {"B", 0.2, 1.0}};
  const ShareReport r = run_saturating(clients, 8);
  std::printf("    shares %s\n", r.describe().c_str());
  EXPECT_LE(r.share.at("A"), 0.4 + share_tolerance()) << r.describe();
  EXPECT_GE(r.share.at("A"), 0.4 - 0.05) << "A should get up to its LIMIT when B only requests 0.2: " << r.describe();
  // In every 2 s window after the first one.
  const auto ks = kernels();
  const auto pids = pids_by_client();
  double worst = 0;
  for (Micros t = r.t0 + 2000000; t + 2000000 <= r.t1; t += 1000000) {
    const ShareReport w = period_shares(ks, pids, t, t + 2000000);
    worst = std::max(worst, static_cast<double>(w.busy.at("A")) / 2e6);
  }
  std::printf("    A's largest share of the wall time in a 2 s window: %.4f\n", worst);
  EXPECT_LE(worst, 0.4 + share_tolerance());
  expect_no_overlap();
  stop_daemons_expect_clean();
}

// Two processes of one client (one gem-pmgr) share its token: together they get its share.
TEST_F(SharesTest, TwoProcessesOfOneClientShareItsToken) {
  const std::vector<ClientConfig> clients = {{"duo", 0.3, 1.0}, {"solo", 0.7, 1.0}};
  write_config(clients);
  start_scheduler();
  start_pod_manager("duo");
  start_pod_manager("solo");
  AppOptions a;
  a.seconds = kRunSeconds;
  a.env["GEMINI_MAX_INFLIGHT"] = std::to_string(kSaturatingInflight);
  a.client = "duo";
  App& d1 = start_app(a);
  App& d2 = start_app(a);
  a.client = "solo";
  start_app(a);
  wait_apps(kRunSeconds + 10 * slack());
  const auto ks = kernels();
  const ShareReport r = common_period_shares(ks, pids_by_client());
  std::printf("    shares %s\n", r.describe().c_str());
  EXPECT_NEAR(r.share.at("duo"), 0.3, share_tolerance()) << r.describe();
  // Both processes of "duo" got GPU time.
  for (const App* p : {&d1, &d2}) {
    std::vector<Interval> iv;
    for (const Kernel& k : kernels_of(ks, p->proc->pid())) iv.push_back({k.start, k.end});
    const double part = static_cast<double>(union_length(iv, r.t0, r.t1)) / (r.t1 - r.t0);
    std::printf("    duo process %d: %.4f of the period\n", p->proc->pid(), part);
    EXPECT_GT(part, 0.05) << "process " << p->proc->pid() << " of duo barely ran";
  }
  expect_no_overlap();
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest

namespace gemtest {
namespace {

// Alone and under its LIMIT, a client keeps the token from one quota to the next (TokenRenew)
// instead of stopping, draining and asking again: its kernels run back to back.
TEST_F(SharesTest, AnUncontendedClientNeverStops) {
  write_config({{"alone", 0.0, 1.0}});
  start_scheduler();  // 30 ms quotas: about 100 of them in the run
  start_pod_manager("alone");
  AppOptions a;
  a.client = "alone";
  a.seconds = 3;
  // A deep queue, so a gap can only come from the queue running dry at the end of a quota (a drain),
  // not from this process being descheduled on a busy machine.
  a.env["GEMINI_MAX_INFLIGHT"] = "64";
  App& app = start_app(a);
  wait_apps(3 + 10 * slack());
  auto ks = kernels();
  ASSERT_GT(ks.size(), 1000u);
  std::sort(ks.begin(), ks.end(), [](const Kernel& x, const Kernel& y) { return x.start < y.start; });
  int gaps = 0;
  for (size_t i = 1; i < ks.size(); ++i) {
    if (ks[i].start - ks[i - 1].end > 300) ++gaps;
  }
  const auto hs = app.hook_stats();
  std::printf("    %zu kernels, %d gaps over 0.3 ms, %lld token grants and renewals\n", ks.size(), gaps,
              hs.value("tokens", 0LL));
  EXPECT_GT(hs.value("tokens", 0LL), 50) << "the quota should have run out about 100 times";
  EXPECT_LE(gaps, 5) << "a drain at the end of each quota would leave a gap each time";
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
