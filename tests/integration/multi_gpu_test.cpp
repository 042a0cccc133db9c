// Two GPUs, one gem-schd each (addressed by GPU UUID), pod managers routing each process to its GPU's
// scheduler by the UUID the hook reports (gem-pmgr --scheduler_dir): each GPU holds its own shares.
#include <sys/stat.h>

#include <fstream>

#include "harness.h"

namespace gemtest {
namespace {


std::string uuid_of(int device) {
  char s[64];
  std::snprintf(s, sizeof s, "GPU-fa4e0000-0000-0000-0000-%012x", device);
  return s;
}

class MultiGpuTest : public GemTest {
 protected:
  void start_gpu_scheduler(int device, const std::vector<ClientConfig>& clients) {
    const std::string cfg = path("config-" + std::to_string(device) + ".txt");
    std::ofstream(cfg) << config_text(clients);
    SpawnOptions o;
    o.argv = {bin("bin/gem-schd"), "--socket", path("gpus/" + uuid_of(device) + ".sock"), "--config", cfg,
              "--gpu", uuid_of(device), "--base_quota", "30", "--min_quota", "10", "--window", "2000"};
    o.stderr_path = o.stdout_path = path("schd-" + std::to_string(device) + ".log");
    if (sanitized()) o.env["ASAN_OPTIONS"] = "verify_asan_link_order=0";
    schds_.push_back(std::make_unique<Process>(o));
    ASSERT_TRUE(wait_until(10 * slack(), [&] { return can_connect_unix(path("gpus/" + uuid_of(device) + ".sock")); }))
        << tail(o.stderr_path);
  }

  void start_routing_pod_manager(const std::string& client) {
    SpawnOptions o;
    o.argv = {bin("bin/gem-pmgr"), "--name", client, "--socket", pmgr_socket(client), "--scheduler_dir", path("gpus")};
    o.stderr_path = o.stdout_path = path("pmgr-" + client + ".log");
    if (sanitized()) o.env["ASAN_OPTIONS"] = "verify_asan_link_order=0";
    pmgrs_[client] = std::make_unique<Process>(o);
    ASSERT_TRUE(wait_until(10 * slack(), [&] { return can_connect_unix(pmgr_socket(client)); })) << tail(o.stderr_path);
  }

  std::vector<std::unique_ptr<Process>> schds_;
};

TEST_F(MultiGpuTest, EachGpuKeepsTheSharesOfItsOwnScheduler) {
  ASSERT_EQ(mkdir(path("gpus").c_str(), 0755), 0);
  const std::vector<ClientConfig> gpu0 = {{"a", 0.3, 1.0}, {"b", 0.7, 1.0}};
  const std::vector<ClientConfig> gpu1 = {{"a", 0.7, 1.0}, {"b", 0.3, 1.0}};
  start_gpu_scheduler(0, gpu0);
  start_gpu_scheduler(1, gpu1);
  start_routing_pod_manager("a");
  start_routing_pod_manager("b");
  std::map<int, std::map<std::string, std::vector<int>>> pids;  // device -> client -> pids
  for (int device : {0, 1}) {
    for (const char* client : {"a", "b"}) {
      AppOptions o;
      o.client = client;
      o.device = device;
      o.env["FAKE_CUDA_DEVICES"] = "2";
      pids[device][client].push_back(start_app(o).proc->pid());
    }
  }
  wait_apps(8 + 20 * slack());

  const auto all = kernels();
  for (int device : {0, 1}) {
    std::vector<Kernel> on_device;
    for (const Kernel& k : all) {
      if (k.device == device) on_device.push_back(k);
    }
    const ShareReport r = common_period_shares(on_device, pids[device]);
    std::printf("    GPU %d: %s\n", device, r.describe().c_str());
    const auto& cfg = device == 0 ? gpu0 : gpu1;
    for (const ClientConfig& c : cfg) EXPECT_NEAR(r.share.at(c.name), c.request, share_tolerance()) << "GPU " << device;
    std::map<int, std::string> group;
    for (const auto& [client, ps] : pids[device]) {
      for (int p : ps) group[p] = client;
    }
    std::string ex;
    EXPECT_EQ(count_cross_overlaps(on_device, group, &ex), 0) << "GPU " << device << ":\n" << ex;
  }
  // Each process reached the scheduler of its own GPU, and only that one.
  for (int device : {0, 1}) {
    const std::string log = read_text(path("schd-" + std::to_string(device) + ".log"));
    EXPECT_NE(log.find("pod manager for 'a' connected"), std::string::npos) << log;
    EXPECT_NE(log.find("pod manager for 'b' connected"), std::string::npos) << log;
  }
  for (auto& s : schds_) EXPECT_TRUE(s->alive());
}

}  // namespace
}  // namespace gemtest
