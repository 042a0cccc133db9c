// Residency as the hook carries it out (docs/memory.md, "Residency: moving memory in bulk"): two
// unified-memory clients whose memory does not fit gem-schd's budget together take turns; the one
// not holding the token moves its managed memory to the host when told (Evict), and before its next
// slice prefetches it back in bulk; with --residency demand it does not prefetch back. Observed as a
// user of the stand-in would: the driver's log of cuMemPrefetchAsync calls, in order, and the hook's
// counters.
#include <cuda.h>

#include <sstream>

#include "harness.h"

namespace gemtest {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

struct Prefetch {
  int pid;
  uint64_t bytes;
  int type;  // CUmemLocationType
};

std::vector<Prefetch> prefetches(const std::string& path) {
  std::vector<Prefetch> out;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string op;
    Prefetch p{};
    uint64_t ptr = 0;
    int id = 0;
    f >> op >> p.pid >> ptr >> p.bytes >> p.type >> id;
    if (op == "prefetch") out.push_back(p);
  }
  return out;
}

// `pid`'s prefetches of its 100 MiB, in order: 'D' to the device, 'H' to the host.
std::string moves(const std::string& log, int pid) {
  std::string s;
  for (const Prefetch& p : prefetches(log)) {
    if (p.pid == pid && p.bytes == (uint64_t{100} << 20)) s += p.type == CU_MEM_LOCATION_TYPE_DEVICE ? 'D' : 'H';
  }
  return s;
}

class ResidencyHook : public GemTest {
 protected:
  // Client `name` under the hook: 100 MiB of managed memory, one graph launch (a slice), then, once
  // `go` exists, another launch; the log and counters go to this test's files.
  App& run(const std::string& name, const std::string& go) {
    AppOptions o;
    o.client = name;
    o.mem_steps = {"alloc:100M", "graph_mem:2M", "wait_file:" + path(go), "graph_launch:1"};
    o.env = {{"FAKE_CUDA_UM_LOG", path("um.log")}};
    return start_app(o);
  }
  void start(const std::string& residency) {
    // b has no GPU_MEM: its leases still tell gem-schd what it uses.
    write_config({{"a", 0.5, 1.0, "512MiB um=on"}, {"b", 0.5, 1.0, "0 um=on"}});
    SchedulerOptions so;
    so.extra = {"--mem_budget", "150MiB", "--residency", residency};
    start_scheduler(so);
    start_pod_manager("a");
    start_pod_manager("b");
  }
  static bool wait_steps(const App& a, size_t n) {
    return wait_until(30 * slack(), [&] { return a.steps().size() >= n; });
  }
};

TEST_F(ResidencyHook, TheIdleClientIsEvictedAndPrefetchedBackInBulkBeforeItsNextSlice) {
  start("on");
  App& a = run("a", "a.go");
  ASSERT_TRUE(wait_steps(a, 2)) << tail(a.err_path) << tail(a.out_path);
  App& b = run("b", "b.go");
  ASSERT_TRUE(wait_steps(b, 2)) << tail(b.err_path) << tail(b.out_path);
  // b's grant did not fit both: a (idle) moves its 100 MiB to the host.
  const int pa = a.proc->pid(), pb = b.proc->pid();
  auto of = [&](int pid, int type) {
    int n = 0;
    for (const Prefetch& p : prefetches(path("um.log"))) n += p.pid == pid && p.type == type && p.bytes == 100 * kMiB;
    return n;
  };
  ASSERT_TRUE(wait_until(10 * slack(), [&] { return of(pa, CU_MEM_LOCATION_TYPE_HOST) == 1; })) << read_text(path("um.log"));
  EXPECT_EQ(of(pb, CU_MEM_LOCATION_TYPE_HOST), 0) << "the holder is never evicted";
  // Populated on the GPU in bulk when allocated, then moved to the host.
  EXPECT_EQ(moves(path("um.log"), pa), "DH");
  // a's next slice: its memory comes back to the GPU first, and b (now idle) leaves.
  write_text(path("a.go"), "");
  ASSERT_TRUE(wait_steps(a, 4)) << tail(a.err_path);
  EXPECT_EQ(a.steps()[3].value("result", std::string()), "CUDA_SUCCESS");
  ASSERT_TRUE(wait_until(10 * slack(), [&] { return of(pb, CU_MEM_LOCATION_TYPE_HOST) == 1; })) << read_text(path("um.log"));
  // a: allocated (to the device), evicted (to the host), back before its slice (to the device).
  EXPECT_EQ(moves(path("um.log"), pa), "DHD") << read_text(path("um.log"));
  EXPECT_EQ(moves(path("um.log"), pb), "DH") << read_text(path("um.log"));
  write_text(path("b.go"), "");
  ASSERT_TRUE(a.proc->wait_for(30 * slack()).has_value());
  ASSERT_TRUE(b.proc->wait_for(30 * slack()).has_value());
  const auto ha = a.hook_stats();
  EXPECT_EQ(ha.value("evictions", 0), 1) << ha.dump();
  EXPECT_EQ(ha.value("prefetches", 0), 1) << ha.dump();
  EXPECT_EQ(ha.value("prefetched_bytes", uint64_t{0}), 100 * kMiB) << ha.dump();
}

TEST_F(ResidencyHook, DemandPagingEvictsTheSameWayButNeverPrefetchesBack) {
  start("demand");
  App& a = run("a", "a.go");
  ASSERT_TRUE(wait_steps(a, 2)) << tail(a.err_path);
  App& b = run("b", "b.go");
  ASSERT_TRUE(wait_steps(b, 2)) << tail(b.err_path);
  const int pa = a.proc->pid();
  auto of = [&](int type) {
    int n = 0;
    for (const Prefetch& p : prefetches(path("um.log"))) n += p.pid == pa && p.type == type;
    return n;
  };
  ASSERT_TRUE(wait_until(10 * slack(), [&] { return of(CU_MEM_LOCATION_TYPE_HOST) == 1; })) << read_text(path("um.log"));
  write_text(path("a.go"), "");
  write_text(path("b.go"), "");
  ASSERT_TRUE(a.proc->wait_for(30 * slack()).has_value());
  ASSERT_TRUE(b.proc->wait_for(30 * slack()).has_value());
  EXPECT_EQ(moves(path("um.log"), pa), "DH") << "never prefetched back: " << read_text(path("um.log"));
  EXPECT_EQ(a.hook_stats().value("prefetches", 0), 0) << a.hook_stats().dump();
}

}  // namespace
}  // namespace gemtest
