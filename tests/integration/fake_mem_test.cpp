// The stand-in driver's memory behaviour that the GPU_MEM tests rely on, checked through
// fake-mem-app without the hook: every allocation path is counted on the device and given back,
// FAKE_CUDA_MEM_BYTES sets the total, a full device answers CUDA_ERROR_OUT_OF_MEMORY, pools grow
// in 32 MiB chunks and release at synchronize / trim, and the stand-in NVML agrees on the total.
#include <sstream>

#include "harness.h"

namespace gemtest {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

class FakeMemTest : public GemTest {
 protected:
  /// Runs fake-mem-app with `steps` (no hook) and returns its JSON lines, one per step.
  std::vector<nlohmann::json> run(const std::vector<std::string>& steps,
                                  const std::map<std::string, std::string>& env = {}) {
    const std::string out = path("mem" + std::to_string(runs_) + ".out");
    const std::string err = path("mem" + std::to_string(runs_++) + ".err");
    SpawnOptions o;
    o.argv = {bin("fake-cuda/fake-mem-app")};
    o.argv.insert(o.argv.end(), steps.begin(), steps.end());
    o.env = env;
    o.env["LD_LIBRARY_PATH"] = bin("fake-cuda");
    o.unset_env = {"LD_PRELOAD", "FAKE_CUDA_DEVICES", "FAKE_CUDA_MEM_BYTES", "FAKE_NVML_USED_BYTES"};
    o.stdout_path = out;
    o.stderr_path = err;
    Process p(o);
    const auto st = p.wait_for(20 * slack());
    EXPECT_TRUE(st.has_value()) << "fake-mem-app hangs";
    std::vector<nlohmann::json> lines;
    std::istringstream in(read_text(out));
    for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l, nullptr, false));
    EXPECT_EQ(lines.size(), steps.size()) << read_text(out) << read_text(err);
    lines.resize(steps.size());
    return lines;
  }
  int runs_ = 0;
};

uint64_t u64(const nlohmann::json& j, const char* key) { return j.value(key, uint64_t{0}); }

TEST_F(FakeMemTest, EveryPathIsCountedAndGivenBack) {
  struct Case {
    const char* step;
    uint64_t counted;
  };
  const Case cases[] = {
      {"alloc:8M", 8 * kMiB},           {"managed:3M", 3 * kMiB},
      {"pitch:1000x1000", 1024 * 1000},  // rows padded to 512 bytes
      {"vmm:4M", 4 * kMiB},             {"array:1024x1024:f32", 4 * kMiB},
      {"array:1000x1000", 2 * kMiB},    // rounded up to 2 MiB
      {"mipmap:1024x1024:11", 2 * kMiB},  // 1.33 MiB of levels
      {"graph_mem:3M", 4 * kMiB},       // the graph pool, until trimmed
      {"async:1M", 32 * kMiB},          // one pool chunk, until synchronize
  };
  for (const Case& c : cases) {
    const auto r = run({c.step, "info", "free:0", "graph_trim", "sync", "info"});
    EXPECT_EQ(r[0].value("result", ""), "CUDA_SUCCESS") << c.step << ": " << r[0].dump();
    EXPECT_EQ(u64(r[1], "used"), c.counted) << c.step;
    EXPECT_EQ(u64(r[5], "used"), 0u) << c.step << ": not given back";
  }
}

TEST_F(FakeMemTest, TotalFromEnvironmentAndOutOfMemory) {
  const auto r = run({"info", "alloc_until_oom:100M", "vmm:64M", "info", "free:0", "info", "nvml_info"},
                     {{"FAKE_CUDA_MEM_BYTES", "256M"}, {"FAKE_NVML_USED_BYTES", "1G"}});
  EXPECT_EQ(u64(r[0], "total"), 256 * kMiB);
  EXPECT_EQ(u64(r[0], "device_total"), 256 * kMiB);
  EXPECT_EQ(r[1].value("result", ""), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(u64(r[1], "count"), 2u);
  EXPECT_EQ(r[2].value("call", ""), "cuMemCreate");
  EXPECT_EQ(r[2].value("result", ""), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(u64(r[3], "free"), 56 * kMiB);
  EXPECT_EQ(u64(r[5], "free"), 256 * kMiB);
  // NVML: the same total; used from FAKE_NVML_USED_BYTES, capped at the total.
  EXPECT_EQ(r[6].value("result", ""), "NVML_SUCCESS") << r[6].dump();
  EXPECT_EQ(r[6]["v2"].value("total", uint64_t{0}), 256 * kMiB);
  EXPECT_EQ(r[6]["v1"].value("used", uint64_t{0}), 256 * kMiB);
  EXPECT_EQ(r[6]["v1"].value("free", uint64_t{1}), 0u);
  EXPECT_EQ(r[6].value("uuid", ""), "GPU-fa4e0000-0000-0000-0000-000000000000");
}

TEST_F(FakeMemTest, PoolGrowsInChunksAndReleasesAtSyncAndTrim) {
  const auto r = run({"pool_create:64M", "pool_alloc:40M", "pool_alloc:30M", "pool_info", "free:1", "free:2",
                      "pool_info", "sync", "pool_info", "pool_trim:0", "pool_info", "info"});
  EXPECT_EQ(u64(r[3], "reserved"), 96 * kMiB);  // 70 MiB used: three 32 MiB chunks
  EXPECT_EQ(u64(r[3], "used"), 70 * kMiB);
  EXPECT_EQ(u64(r[6], "reserved"), 96 * kMiB);  // freed memory stays until a synchronize
  EXPECT_EQ(u64(r[6], "used"), 0u);
  EXPECT_EQ(u64(r[8], "reserved"), 64 * kMiB);  // released down to the 64 MiB threshold
  EXPECT_EQ(u64(r[10], "reserved"), 0u);        // trimmed
  EXPECT_EQ(u64(r[11], "used"), 0u);
}

TEST_F(FakeMemTest, VmmMemoryStaysUntilReleasedAndUnmapped) {
  const auto r = run({"vmm_create:4M", "vmm_map:0", "vmm_release:0", "info", "vmm_unmap:0", "info"});
  EXPECT_EQ(u64(r[3], "used"), 4 * kMiB);
  EXPECT_EQ(u64(r[5], "used"), 0u);
}

}  // namespace
}  // namespace gemtest
