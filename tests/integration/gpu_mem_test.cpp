// GPU_MEM enforced by the hook on every allocation path (docs/memory.md), as a user checks it:
// fake-mem-app under the real hook, against the stand-in driver, with the real gem-pmgr and
// gem-schd. Each test reads the app's own step results (the CUresult each driver call returned
// and the memory figures it saw).
#include <cuda.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace gemtest {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

class GpuMem : public GemTest {
 protected:
  // gem-schd and the pod manager of "c" (and of "n", no limit) with GPU_MEM `mem` for "c".
  void start(const std::string& mem) {
    write_config({{"c", 0.5, 1.0, mem}, {"n", 0.5, 1.0, "0"}});
    start_scheduler();
    start_pod_manager("c");
    start_pod_manager("n");
  }
  App& run(const std::string& client, std::vector<std::string> steps, std::map<std::string, std::string> env = {}) {
    AppOptions o;
    o.client = client;
    o.mem_steps = std::move(steps);
    o.env = std::move(env);
    return start_app(o);
  }
  // Runs to the end and returns the step lines.
  std::vector<nlohmann::json> run_all(const std::string& client, std::vector<std::string> steps,
                                      std::map<std::string, std::string> env = {}) {
    App& a = run(client, std::move(steps), std::move(env));
    const auto st = a.proc->wait_for(60 * slack());
    EXPECT_TRUE(st.has_value()) << "fake-mem-app did not finish";
    const auto out = a.steps();
    if (::testing::Test::HasFailure()) ADD_FAILURE() << tail(a.err_path) << tail(a.out_path);
    return out;
  }
  // Waits until the app has printed `n` step lines.
  static bool wait_steps(const App& a, size_t n, double seconds = 30) {
    return wait_until(seconds * slack(), [&] { return a.steps().size() >= n; });
  }
};

std::string result(const nlohmann::json& j) { return j.value("result", std::string("?")); }
uint64_t u64(const nlohmann::json& j, const char* k) { return j.value(k, uint64_t{0}); }

TEST_F(GpuMem, EveryPathIsCountedAgainstTheLimitAndGivenBackWhenFreed) {
  start("256MiB");
  const auto s = run_all("c", {"info", "alloc:10M", "info", "managed:10M", "info", "pitch:1000x1000", "info",
                               "async:1M", "info", "vmm:4M", "info", "array:1024x1024:f32x4", "info",
                               "mipmap:512x512:2:u8", "info", "pool_alloc:40M", "info", "free_all", "sync", "info",
                               "nvml_info"});
  ASSERT_EQ(s.size(), 21u);
  for (const auto& j : s) EXPECT_EQ(result(j).rfind("CUDA_SUCCESS", 0) == 0 || result(j) == "NVML_SUCCESS", true) << j;
  EXPECT_EQ(u64(s[0], "total"), 256 * kMiB);
  EXPECT_EQ(u64(s[0], "free"), 256 * kMiB);
  EXPECT_EQ(u64(s[0], "device_total"), 256 * kMiB);
  // What each allocation takes off the client's free memory: the driver's granularity (10 MiB;
  // pitch 1024 x 1000 rows; the pool's first 32 MiB step; the VMM size; whole 2 MiB pages per
  // array and per mipmap level; the pool's next 32 MiB step, since 1 + 40 MiB need 64 reserved).
  const uint64_t expect[] = {10 * kMiB, 10 * kMiB, 1024 * 1000, 32 * kMiB, 4 * kMiB, 16 * kMiB, 4 * kMiB, 32 * kMiB};
  for (int i = 0; i < 8; ++i) {
    const uint64_t before = u64(s[2 * i], "free"), after = u64(s[2 * i + 2], "free");
    EXPECT_EQ(before - after, expect[i])
        << s[2 * i + 1].value("step", "") << ": free " << before << " -> " << after;
  }
  EXPECT_EQ(u64(s[19], "free"), 256 * kMiB) << "everything freed and the pools released at the synchronise";
  EXPECT_EQ(s[20]["v1"].value("total", uint64_t{0}), 256 * kMiB) << "nvidia-smi's figures show the limit";
  EXPECT_EQ(s[20]["v2"].value("free", uint64_t{0}), 256 * kMiB);
}

TEST_F(GpuMem, PastTheLimitEveryPathReturnsExactlyOutOfMemoryAndNothingLeaks) {
  start("128MiB");
  const auto s = run_all("c", {"alloc:100M", "alloc:40M", "managed:40M", "pitch:8192x5000", "async:40M",
                               "pool_alloc:40M", "vmm:40M", "array:4096x4096:f32", "mipmap:4096x4096:2:f32",
                               "graph_mem:40M", "info", "free:0", "alloc:120M", "info"});
  ASSERT_EQ(s.size(), 14u);
  EXPECT_EQ(result(s[0]), "CUDA_SUCCESS");
  for (int i = 1; i <= 9; ++i) EXPECT_EQ(result(s[i]), "CUDA_ERROR_OUT_OF_MEMORY") << s[i];
  EXPECT_EQ(u64(s[10], "free"), 28 * kMiB) << "refused calls took nothing";
  EXPECT_EQ(result(s[12]), "CUDA_SUCCESS") << "freed memory is usable again";
  EXPECT_EQ(u64(s[13], "free"), 8 * kMiB);
}

TEST_F(GpuMem, TwoProcessesOfOneClientRacingForTheLastBytesCannotBothPass) {
  start("256MiB");
  App& a = run("c", {"wait_file:" + path("go"), "alloc:150M", "hold:3s"});
  App& b = run("c", {"wait_file:" + path("go"), "alloc:150M", "hold:3s"});
  write_text(path("go"), "");
  ASSERT_TRUE(wait_steps(a, 2) && wait_steps(b, 2)) << tail(a.err_path) << tail(b.err_path);
  const std::string ra = result(a.steps()[1]), rb = result(b.steps()[1]);
  EXPECT_TRUE((ra == "CUDA_SUCCESS") != (rb == "CUDA_SUCCESS")) << ra << " / " << rb;
  EXPECT_TRUE(ra == "CUDA_ERROR_OUT_OF_MEMORY" || rb == "CUDA_ERROR_OUT_OF_MEMORY") << ra << " / " << rb;
  a.proc->wait_for(30);
  b.proc->wait_for(30);
}

TEST_F(GpuMem, AKilledProcessGivesItsMemoryBackAtOnce) {
  start("256MiB");
  App& a = run("c", {"alloc:200M", "hold:60s"});
  ASSERT_TRUE(wait_steps(a, 1)) << tail(a.err_path);
  ASSERT_EQ(result(a.steps()[0]), "CUDA_SUCCESS");
  App& b = run("c", {"alloc:200M", "wait_file:" + path("killed"), "alloc:200M"});
  ASSERT_TRUE(wait_steps(b, 1)) << tail(b.err_path);
  EXPECT_EQ(result(b.steps()[0]), "CUDA_ERROR_OUT_OF_MEMORY");
  a.proc->signal(SIGKILL);
  a.proc->wait_for(10);
  write_text(path("killed"), "");
  ASSERT_TRUE(wait_steps(b, 3)) << tail(b.err_path);
  EXPECT_EQ(result(b.steps()[2]), "CUDA_SUCCESS") << "the killed process's 200 MiB are back";
  b.proc->wait_for(30);
}

TEST_F(GpuMem, ALimitChangedInTheConfigAppliesToTheNextAllocationAndFreesNothing) {
  start("256MiB");
  App& a = run("c", {"alloc:100M", "wait_file:" + path("lowered"), "info", "alloc:50M", "wait_file:" + path("raised"),
                     "info", "alloc:50M"});
  ASSERT_TRUE(wait_steps(a, 1)) << tail(a.err_path);
  ASSERT_EQ(result(a.steps()[0]), "CUDA_SUCCESS");
  write_text_rename(path("resource-config.txt"), config_text({{"c", 0.5, 1.0, "128MiB"}, {"n", 0.5, 1.0, "0"}}));
  ASSERT_TRUE(wait_until(10 * slack(), [&] {
    return stats()["clients"]["c"].value("gpu_mem", uint64_t{0}) == 128 * kMiB;
  })) << stats().dump();
  write_text(path("lowered"), "");
  ASSERT_TRUE(wait_steps(a, 4)) << tail(a.err_path);
  auto s = a.steps();
  EXPECT_EQ(u64(s[2], "total"), 128 * kMiB);
  EXPECT_EQ(result(s[3]), "CUDA_ERROR_OUT_OF_MEMORY") << "100 MiB held + 50 MiB is over the new 128 MiB";
  write_text_rename(path("resource-config.txt"), config_text({{"c", 0.5, 1.0, "512MiB"}, {"n", 0.5, 1.0, "0"}}));
  ASSERT_TRUE(wait_until(10 * slack(), [&] {
    return stats()["clients"]["c"].value("gpu_mem", uint64_t{0}) == 512 * kMiB;
  })) << stats().dump();
  write_text(path("raised"), "");
  ASSERT_TRUE(wait_steps(a, 7)) << tail(a.err_path);
  s = a.steps();
  EXPECT_EQ(u64(s[5], "total"), 512 * kMiB);
  EXPECT_EQ(u64(s[5], "free"), 412 * kMiB) << "nothing was freed by the changes";
  EXPECT_EQ(result(s[6]), "CUDA_SUCCESS");
}

TEST_F(GpuMem, WithoutALimitEveryFigureIsTheDriversOwn) {
  start("256MiB");
  const auto s = run_all("n", {"alloc:1G", "info", "nvml_info", "info_v1"});
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(result(s[0]), "CUDA_SUCCESS");
  EXPECT_EQ(u64(s[1], "total"), 16 * 1024 * kMiB);
  EXPECT_EQ(u64(s[1], "free"), 15 * 1024 * kMiB);
  EXPECT_EQ(s[2]["v1"].value("total", uint64_t{0}), 16 * 1024 * kMiB);
  EXPECT_EQ(result(s[3]), "CUDA_SUCCESS");
  // A neighbour with a limit does not change what this client sees.
  const auto c = run_all("c", {"info"});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(u64(c[0], "total"), 256 * kMiB);
}

TEST_F(GpuMem, AStoppedPodManagerNeverLetsMemoryEscapeTheLastLease) {
  start("256MiB");
  App& a = run("c", {"alloc:100M", "wait_file:" + path("gone"), "alloc:50M", "free:0", "alloc:50M"});
  ASSERT_TRUE(wait_steps(a, 1)) << tail(a.err_path);
  pmgrs_["c"]->signal(SIGKILL);
  pmgrs_["c"]->wait_for(10);
  pmgrs_.erase("c");
  write_text(path("gone"), "");
  ASSERT_TRUE(wait_steps(a, 5)) << tail(a.err_path);
  const auto s = a.steps();
  EXPECT_EQ(result(s[2]), "CUDA_ERROR_OUT_OF_MEMORY") << "beyond the lease held when gem-pmgr went away";
  EXPECT_EQ(result(s[3]), "CUDA_SUCCESS");
  EXPECT_EQ(result(s[4]), "CUDA_SUCCESS") << "within the lease: what the process freed";
}

TEST_F(GpuMem, NoPodManagerMeansNoLimitUnlessFailClosed) {
  write_config({{"c", 0.5, 1.0, "256MiB"}});
  start_scheduler();
  auto open = run_all("c", {"alloc:1G"}, {{"GEMINI_PMGR_TIMEOUT_MS", "200"}});
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(result(open[0]), "CUDA_SUCCESS");
  auto closed = run_all("c", {"alloc:1M"}, {{"GEMINI_PMGR_TIMEOUT_MS", "200"}, {"GEMINI_FAIL_CLOSED", "1"}});
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(result(closed[0]), "CUDA_ERROR_OUT_OF_MEMORY");
}

// Unified-memory mode (um=on after GPU_MEM): device allocations become managed memory preferring
// the GPU, still counted against GPU_MEM; memory that cannot be managed stays as it is.
TEST_F(GpuMem, UnifiedMemoryModeTurnsDeviceAllocationsIntoManagedMemoryStillCounted) {
  write_config({{"u", 0.5, 1.0, "256MiB um=on"}, {"n", 0.5, 1.0, "0"}});
  start_scheduler();
  start_pod_manager("u");
  start_pod_manager("n");
  const std::string um_log = path("um.log");
  const auto s = run_all("u", {"alloc:64M", "pitch:1000x1000", "info", "alloc:200M", "vmm:4M", "free:0", "info"},
                         {{"FAKE_CUDA_UM_LOG", um_log}});
  ASSERT_EQ(s.size(), 7u);
  EXPECT_EQ(result(s[0]), "CUDA_SUCCESS");
  EXPECT_EQ(result(s[1]), "CUDA_SUCCESS");
  EXPECT_EQ(u64(s[1], "pitch"), 1024u) << "managed rows padded to 512 bytes as the driver pads them";
  EXPECT_EQ(u64(s[2], "total"), 256 * kMiB);
  EXPECT_EQ(u64(s[2], "free"), 256 * kMiB - 64 * kMiB - 1024000) << "managed memory counts against GPU_MEM";
  EXPECT_EQ(result(s[3]), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(result(s[4]), "CUDA_SUCCESS") << "cuMemCreate memory stays as it is in UM mode";
  EXPECT_EQ(u64(s[6], "free"), 256 * kMiB - 1024000 - 4 * kMiB);
  // Each rewritten allocation was advised to prefer device 0 and stay mapped for it.
  std::istringstream in(read_text(um_log));
  std::string line;
  std::vector<std::string> advised;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string op, pid, ptr, bytes, advice, type, id;
    f >> op >> pid >> ptr >> bytes >> advice >> type >> id;
    if (op == "advise") advised.push_back(bytes + " " + advice + " " + type + " " + id);
  }
  const std::string pref = std::to_string(CU_MEM_ADVISE_SET_PREFERRED_LOCATION);
  const std::string acc = std::to_string(CU_MEM_ADVISE_SET_ACCESSED_BY);
  const std::string dev = std::to_string(CU_MEM_LOCATION_TYPE_DEVICE) + " 0";
  const std::vector<std::string> want = {std::to_string(64 * kMiB) + " " + pref + " " + dev,
                                         std::to_string(64 * kMiB) + " " + acc + " " + dev,
                                         "1024000 " + pref + " " + dev, "1024000 " + acc + " " + dev};
  EXPECT_EQ(advised, want) << read_text(um_log);
  // A client without um=on allocates device memory: nothing advised.
  const auto n = run_all("n", {"alloc:64M"}, {{"FAKE_CUDA_UM_LOG", path("um-n.log")}});
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(read_text(path("um-n.log")), "");
}

}  // namespace
}  // namespace gemtest
