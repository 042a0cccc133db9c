// CUDA graphs captured and replayed under the hook (issue 17; docs/design.md, "Stream capture"):
// fake-capture-app captures graphs (each capture allocating as PyTorch's caching allocator does, in
// RELAXED mode) and replays them for several seconds, beside a saturating second client, under a
// LIMIT and GPU_MEM, with the cache emptier on, so that grants, revocations, quota ends and idle
// releases fall inside captures; and in unified-memory mode across evictions and prefetches. The
// stand-in driver enforces CUDA's capture rules (tests/fake-cuda/libcuda/capture_rules.h) and
// logs every capture it invalidates to FAKE_CUDA_CAPTURE_LOG: a user's check is that the program
// ran clean and nothing was invalidated.
#include <sstream>

#include "harness.h"

namespace gemtest {
namespace {

class CaptureTest : public GemTest, public ::testing::WithParamInterface<const char*> {
 protected:
  /// fake-capture-app under the hook as client `client`, with `args` after the common ones.
  App& start_capture(const std::string& client, const std::vector<std::string>& args, double seconds) {
    AppOptions a;
    a.client = client;
    a.command = {bin("fake-cuda/fake-capture-app"), "--seconds", std::to_string(seconds)};
    a.command.insert(a.command.end(), args.begin(), args.end());
    a.env["FAKE_CUDA_CAPTURE_LOG"] = path("capture.log");
    a.env["GEMINI_EMPTY_CACHE"] = "1";  // the cache emptier on (it finds no CPython here and stops)
    return start_app(a);
  }

  /// The stand-in's invalidation log: one line per capture it invalidated.
  std::vector<std::string> invalidations() const {
    std::vector<std::string> out;
    std::istringstream in(read_text(path("capture.log")));
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  std::string joined(const std::vector<std::string>& v) const {
    std::string s;
    for (const auto& l : v) s += "  " + l + "\n";
    return s;
  }

  /// Waits for `a` and expects it finished clean (exit 0) with its JSON line.
  void expect_clean(App& a, double seconds) {
    auto st = a.proc->wait_for(seconds * slack());
    ASSERT_TRUE(st.has_value()) << "fake-capture-app hangs\n" << tail(a.err_path);
    EXPECT_EQ(*st, 0) << describe_status(*st) << "\n" << tail(a.err_path) << "\ninvalidated:\n" << joined(invalidations());
  }
};

// A capture, its allocation and its replays in each mode, beside a saturating client that takes the
// token whenever the capturing client lets it go, under LIMIT 0.5 and GPU_MEM.
TEST_P(CaptureTest, CapturesAndReplaysUnderALimitBesideASecondClient) {
  const std::string mode = GetParam();
  write_config({{"cap", 0.3, 0.5, "256MiB"}, {"busy", 0.7, 1.0}});
  start_scheduler();
  start_pod_manager("cap");
  start_pod_manager("busy");
  AppOptions b;
  b.client = "busy";
  b.seconds = 6;
  b.kernel_us = 1000;
  App& busy = start_app(b);
  // 8 nodes 1 ms apart: each capture lasts ~8 ms of CPU time, longer than the idle grace (0.5 + 2 ms)
  // and than a quota's tail, so the token changes hands while graphs are being recorded. Two
  // threads capture and replay: one's replays (gated, paced by the hook on that thread) run while
  // the other captures, and captures begin while the hook paces or drains (with a look-then-call,
  // a capture begun in between was invalidated). The eager thread launches real work meanwhile (in
  // GLOBAL mode it switches itself to RELAXED, as CUDA asks).
  App& cap = start_capture("cap", {"--mode", mode, "--kernel_us", "500", "--nodes", "8", "--replays", "10",
                                   "--gap_ms", "1", "--alloc_bytes", "2097152", "--threads", "2", "--eager_thread"},
                           4);
  expect_clean(cap, 60);
  expect_clean(busy, 60);
  EXPECT_TRUE(invalidations().empty()) << "captures invalidated:\n" << joined(invalidations());
  const nlohmann::json r = cap.result();
  EXPECT_GE(r.value("captures", 0), 5) << r.dump();
  EXPECT_GE(r.value("replays", 0), 50) << r.dump();
  // What the hook saw: the recorded launches passed ungated and uncounted as work; the graph
  // launches and the eager kernels were gated (tokens); slices ended while captures were in progress.
  const nlohmann::json h = cap.hook_stats();
  EXPECT_GE(h.value("captured_launches", 0), 8 * r.value("captures", 0)) << h.dump();
  EXPECT_GE(h.value("launches", nlohmann::json::object()).value("cuGraphLaunch", 0), r.value("replays", 0)) << h.dump();
  EXPECT_GE(h.value("tokens", 0), 5) << h.dump();
  EXPECT_GE(h.value("capture_drains", 0), 1) << "no slice ended during a capture: the test did not test that\n"
                                             << h.dump();
  EXPECT_EQ(h.value("unthrottled_launches", 0), 0) << h.dump();
  // The LIMIT held: the capturing client (graph replays and eager kernels, wanting the whole GPU)
  // kept the stand-in GPU busy at most its LIMIT of the time both clients ran.
  const ShareReport rep = common_period_shares(kernels(), pids_by_client());
  ASSERT_GT(rep.t1 - rep.t0, 1000000) << rep.describe();
  const double cap_busy = static_cast<double>(rep.busy.at("cap")) / static_cast<double>(rep.t1 - rep.t0);
  EXPECT_LE(cap_busy, 0.5 + share_tolerance()) << rep.describe();
  EXPECT_GE(cap_busy, 0.1) << "the capturing client hardly ran\n" << rep.describe();
  stop_daemons_expect_clean();
}

INSTANTIATE_TEST_SUITE_P(Modes, CaptureTest, ::testing::Values("global", "thread_local", "relaxed"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

class CaptureUnifiedMemoryTest : public CaptureTest {};

// Unified-memory mode: two capturing clients whose memory does not fit gem-schd's budget together
// take turns; the one without the token is told to move its managed memory to the host. An Evict
// that arrives during a capture is kept until the capture ends, and the prefetch back before a slice
// waits for none: nothing is invalidated, and memory still moves both ways.
TEST_F(CaptureUnifiedMemoryTest, EvictionsAndPrefetchesAroundCaptures) {
  write_config({{"a", 0.5, 1.0, "512MiB", "um=on"}, {"b", 0.5, 1.0, "512MiB", "um=on"}});
  SchedulerOptions so;
  so.extra = {"--mem_budget", "150MiB", "--residency", "on"};
  start_scheduler(so);
  start_pod_manager("a");
  start_pod_manager("b");
  const std::vector<std::string> args = {"--mode", "global", "--kernel_us", "2000", "--nodes", "6", "--replays", "10",
                                         "--gap_ms", "1", "--resident_bytes", "104857600"};
  App& a = start_capture("a", args, 4);
  App& b = start_capture("b", args, 4);
  expect_clean(a, 60);
  expect_clean(b, 60);
  EXPECT_TRUE(invalidations().empty()) << "captures invalidated:\n" << joined(invalidations());
  int evictions = 0, prefetches = 0;
  for (App* x : {&a, &b}) {
    const nlohmann::json h = x->hook_stats();
    EXPECT_GE(h.value("captured_launches", 0), 6) << h.dump();
    evictions += h.value("evictions", 0);
    prefetches += h.value("prefetches", 0);
  }
  EXPECT_GE(evictions, 2) << a.hook_stats().dump() << "\n" << b.hook_stats().dump();
  EXPECT_GE(prefetches, 1) << a.hook_stats().dump() << "\n" << b.hook_stats().dump();
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
