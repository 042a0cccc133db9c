// gem-device-plugin over real gRPC on Unix sockets in a temporary folder, against FakeKubelet:
// registration, ListAndWatch (contents and re-send on a health change), Allocate for 1 and 2 GPUs,
// GetPreferredAllocation, kubelet restart, and GPU discovery and health through the stand-in NVML.
// Every wait has a deadline (kDeadline).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "fake_kubelet.h"
#include "runner.h"

namespace gem::dp {
namespace {

using test::context;
using test::dial;
using test::FakeKubelet;
using test::TempDir;
using std::chrono::milliseconds;

constexpr milliseconds kDeadline{5000};

std::vector<Gpu> fake(const std::string& spec) {
  std::vector<Gpu> gpus;
  std::string why;
  EXPECT_TRUE(parse_fake_gpus(spec, &gpus, &why)) << why;
  return gpus;
}

RunnerOptions fast(const std::string& dir) {
  RunnerOptions o;
  o.plugin_dir = dir;
  o.watch_interval = milliseconds(50);
  o.register_timeout = milliseconds(1000);
  o.health_interval = milliseconds(50);
  return o;
}

// A Runner on its own thread, stopped and joined at the end of the scope.
struct Running {
  Runner runner;
  std::thread thread;
  Running(Inventory* inv, RunnerOptions o) : runner(inv, std::move(o)), thread([this] { runner.run(); }) {}
  ~Running() {
    runner.stop();
    thread.join();
  }
};

// Polls `cond` every 10 ms until it holds or kDeadline passes.
template <typename Cond>
bool eventually(Cond cond) {
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed"; }
  std::string sock(const char* name) const { return dir_.path() + "/" + name; }
  TempDir dir_;
};

TEST_F(PluginTest, RegistersBothResourcesWithKubelet) {
  FakeKubelet kubelet(dir_.path());
  ASSERT_TRUE(kubelet.start());
  Inventory inv(fake("1:1024"), 256);
  Running r(&inv, fast(dir_.path()));
  ASSERT_TRUE(kubelet.wait_registrations(2, kDeadline));
  const auto reqs = kubelet.accepted();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].resource_name(), kShareResource);
  EXPECT_EQ(reqs[0].endpoint(), "gemini-share.sock");
  EXPECT_EQ(reqs[1].resource_name(), kMemoryResource);
  EXPECT_EQ(reqs[1].endpoint(), "gemini-memory.sock");
  for (const auto& q : reqs) {
    EXPECT_EQ(q.version(), "v1beta1");
    EXPECT_TRUE(q.options().get_preferred_allocation_available());
    EXPECT_FALSE(q.options().pre_start_required());
  }
  v1beta1::DevicePluginOptions opts;
  ASSERT_TRUE(dial(sock("gemini-share.sock"))->GetDevicePluginOptions(context(kDeadline).get(), {}, &opts).ok());
  EXPECT_TRUE(opts.get_preferred_allocation_available());
}

TEST_F(PluginTest, ListAndWatchSendsDevicesThenHealthChanges) {
  Inventory inv(fake("2:4096"), 256);
  Endpoint share(Kind::kShare, &inv, {}, dir_.path(), "s.sock"), mem(Kind::kMemory, &inv, {}, dir_.path(), "m.sock");
  std::string why;
  ASSERT_TRUE(share.start(&why)) << why;
  ASSERT_TRUE(mem.start(&why)) << why;

  auto mctx = context(kDeadline);
  auto mstub = dial(mem.path());
  auto mreader = mstub->ListAndWatch(mctx.get(), {});
  v1beta1::ListAndWatchResponse m;
  ASSERT_TRUE(mreader->Read(&m));
  EXPECT_EQ(m.devices_size(), 32);  // 2 GPUs x 4096 MiB / 256 MiB
  mctx->TryCancel();

  auto ctx = context(kDeadline);
  auto stub = dial(share.path());
  auto reader = stub->ListAndWatch(ctx.get(), {});
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(resp.devices_size(), 200);
  for (const auto& d : resp.devices()) EXPECT_EQ(d.health(), kHealthy);
  ASSERT_TRUE(inv.set_healthy(inv.gpus()[1].uuid, false));
  ASSERT_TRUE(reader->Read(&resp));  // re-sent within the deadline
  ASSERT_EQ(resp.devices_size(), 200);
  EXPECT_EQ(resp.devices(0).health(), kHealthy);
  EXPECT_EQ(resp.devices(150).health(), kUnhealthy);
  // Stopping the server ends the stream (no hang past the deadline).
  const auto t0 = std::chrono::steady_clock::now();
  share.stop();
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kDeadline);
  EXPECT_FALSE(share.socket_present());
}

v1beta1::AllocateRequest request(std::initializer_list<std::vector<std::string>> containers) {
  v1beta1::AllocateRequest req;
  for (const auto& ids : containers) {
    auto* c = req.add_container_requests();
    for (const auto& id : ids) c->add_devicesids(id);
  }
  return req;
}

std::vector<std::string> ids(const std::string& uuid, Kind kind, int first, int n) {
  std::vector<std::string> out;
  for (int i = first; i < first + n; ++i) out.push_back(device_id(uuid, kind, i));
  return out;
}

TEST_F(PluginTest, AllocateOneGpuSetsTheHooksEnvironment) {
  Inventory inv(fake("1:4096"), 256);
  AllocateOptions opts;
  opts.mount_scheduler = true;
  Endpoint share(Kind::kShare, &inv, opts, dir_.path(), "s.sock"), mem(Kind::kMemory, &inv, {}, dir_.path(), "m.sock");
  std::string why;
  ASSERT_TRUE(share.start(&why) && mem.start(&why)) << why;
  const std::string g = inv.gpus()[0].uuid;

  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(dial(share.path())->Allocate(context(kDeadline).get(), request({ids(g, Kind::kShare, 0, 30)}), &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 1);
  const auto& c = resp.container_responses(0);
  EXPECT_EQ(c.envs().at("NVIDIA_VISIBLE_DEVICES"), g);
  EXPECT_EQ(c.envs().at("CUDA_VISIBLE_DEVICES"), g);
  EXPECT_EQ(c.envs().at("GEMINI_GPU_UUID"), g);
  EXPECT_EQ(c.envs().at("GEMINI_REQUEST"), "0.30");
  ASSERT_EQ(c.mounts_size(), 1);
  EXPECT_EQ(c.mounts(0).host_path(), "/run/gemini/" + g + ".sock");
  EXPECT_EQ(c.mounts(0).container_path(), "/run/gemini/" + g + ".sock");

  ASSERT_TRUE(dial(share.path())->Allocate(context(kDeadline).get(), request({ids(g, Kind::kShare, 0, 100)}), &resp).ok());
  EXPECT_EQ(resp.container_responses(0).envs().at("GEMINI_REQUEST"), "1.00");

  ASSERT_TRUE(dial(mem.path())->Allocate(context(kDeadline).get(), request({ids(g, Kind::kMemory, 2, 8)}), &resp).ok());
  const auto& m = resp.container_responses(0);
  EXPECT_EQ(m.envs().at("GEMINI_GPU_MEM"), "2048MiB");
  EXPECT_EQ(m.envs().at("GEMINI_GPU_MEM_UUID"), g);
  EXPECT_EQ(m.envs().count("CUDA_VISIBLE_DEVICES"), 0u);  // the share's Allocate sets visibility
  EXPECT_EQ(m.mounts_size(), 0);

  // Refused: the other resource's IDs, unknown IDs, nothing.
  for (const auto& bad : {request({ids(g, Kind::kMemory, 0, 1)}), request({{"GPU-x-share-01"}}), request({{}})}) {
    const grpc::Status s = dial(share.path())->Allocate(context(kDeadline).get(), bad, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
}

TEST_F(PluginTest, AllocateTwoGpusPerContainerAndRefusesASplit) {
  Inventory inv(fake("2:4096"), 256);
  Endpoint share(Kind::kShare, &inv, {}, dir_.path(), "s.sock");
  std::string why;
  ASSERT_TRUE(share.start(&why)) << why;
  const std::string g0 = inv.gpus()[0].uuid, g1 = inv.gpus()[1].uuid;
  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(dial(share.path())
                  ->Allocate(context(kDeadline).get(), request({ids(g1, Kind::kShare, 5, 50), ids(g0, Kind::kShare, 0, 5)}), &resp)
                  .ok());
  ASSERT_EQ(resp.container_responses_size(), 2);
  EXPECT_EQ(resp.container_responses(0).envs().at("CUDA_VISIBLE_DEVICES"), g1);
  EXPECT_EQ(resp.container_responses(0).envs().at("GEMINI_REQUEST"), "0.50");
  EXPECT_EQ(resp.container_responses(0).mounts_size(), 0);  // --mount_scheduler off
  EXPECT_EQ(resp.container_responses(1).envs().at("NVIDIA_VISIBLE_DEVICES"), g0);
  EXPECT_EQ(resp.container_responses(1).envs().at("GEMINI_REQUEST"), "0.05");

  auto split = ids(g0, Kind::kShare, 0, 10);
  split.push_back(device_id(g1, Kind::kShare, 0));
  const grpc::Status s = dial(share.path())->Allocate(context(kDeadline).get(), request({split}), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("2 GPUs"), std::string::npos) << s.error_message();

  inv.set_healthy(g1, false);
  EXPECT_FALSE(dial(share.path())->Allocate(context(kDeadline).get(), request({ids(g1, Kind::kShare, 0, 1)}), &resp).ok());
}

TEST_F(PluginTest, PreferredAllocationKeepsAContainerOnOneGpu) {
  Inventory inv(fake("2:4096"), 256);
  Endpoint share(Kind::kShare, &inv, {}, dir_.path(), "s.sock"), mem(Kind::kMemory, &inv, {}, dir_.path(), "m.sock");
  std::string why;
  ASSERT_TRUE(share.start(&why) && mem.start(&why)) << why;
  const std::string g0 = inv.gpus()[0].uuid, g1 = inv.gpus()[1].uuid;

  // Share: 30 left on GPU 0, 100 on GPU 1; 20 wanted: all of GPU 0 (best fit).
  v1beta1::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (const auto& id : ids(g0, Kind::kShare, 70, 30)) c->add_available_deviceids(id);
  for (const auto& id : ids(g1, Kind::kShare, 0, 100)) c->add_available_deviceids(id);
  c->set_allocation_size(20);
  v1beta1::PreferredAllocationResponse resp;
  ASSERT_TRUE(dial(share.path())->GetPreferredAllocation(context(kDeadline).get(), req, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 1);
  ASSERT_EQ(resp.container_responses(0).deviceids_size(), 20);
  for (const auto& id : resp.container_responses(0).deviceids()) EXPECT_EQ(id.rfind(g0, 0), 0u) << id;

  // The container's memory was just allocated on GPU 1: its share follows it there.
  v1beta1::AllocateResponse aresp;
  ASSERT_TRUE(dial(mem.path())->Allocate(context(kDeadline).get(), request({ids(g1, Kind::kMemory, 0, 4)}), &aresp).ok());
  ASSERT_TRUE(dial(share.path())->GetPreferredAllocation(context(kDeadline).get(), req, &resp).ok());
  ASSERT_EQ(resp.container_responses(0).deviceids_size(), 20);
  for (const auto& id : resp.container_responses(0).deviceids()) EXPECT_EQ(id.rfind(g1, 0), 0u) << id;
}

TEST_F(PluginTest, ReRegistersAfterKubeletRestart) {
  auto kubelet = std::make_unique<FakeKubelet>(dir_.path());
  ASSERT_TRUE(kubelet->start());
  Inventory inv(fake("1:1024"), 256);
  Running r(&inv, fast(dir_.path()));
  ASSERT_TRUE(kubelet->wait_registrations(2, kDeadline));
  EXPECT_TRUE(eventually([&] { return r.runner.registrations() == 1; }));

  // Kubelet stops, and on start removes the folder's sockets and serves a new kubelet.sock.
  kubelet.reset();
  std::remove(sock("gemini-share.sock").c_str());
  std::remove(sock("gemini-memory.sock").c_str());
  std::this_thread::sleep_for(milliseconds(150));
  FakeKubelet again(dir_.path());
  ASSERT_TRUE(again.start());
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(again.wait_registrations(2, kDeadline)) << "no re-registration within the deadline";
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  EXPECT_LT(took, milliseconds(2000)) << took.count() << " ms";
  EXPECT_EQ(again.accepted()[0].resource_name(), kShareResource);
  EXPECT_TRUE(eventually([&] { return r.runner.registrations() == 2; }));
  // The new sockets serve.
  auto ctx = context(kDeadline);
  auto stub = dial(sock("gemini-share.sock"));
  auto reader = stub->ListAndWatch(ctx.get(), {});
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.devices_size(), 100);
  ctx->TryCancel();
}

// The stand-in NVML (tests/fake-cuda/libnvml): FAKE_CUDA_DEVICES GPUs of FAKE_CUDA_MEM_BYTES, and
// FAKE_NVML_EVENTS "lost INDEX" makes a GPU lost.
TEST_F(PluginTest, DiscoversGpusAndWatchesHealthThroughNvml) {
  const char* build = std::getenv("GEM_BUILD");
  if (build == nullptr) GTEST_SKIP() << "GEM_BUILD unset (make device-plugin-test sets it)";
  const std::string lib = std::string(build) + "/fake-cuda/libnvidia-ml.so.1";
  const std::string events = dir_.path() + "/nvml-events";
  std::ofstream(events).flush();
  setenv("FAKE_CUDA_DEVICES", "2", 1);
  setenv("FAKE_CUDA_MEM_BYTES", "8GiB", 1);
  setenv("FAKE_NVML_EVENTS", events.c_str(), 1);
  std::vector<Gpu> gpus;
  std::string why;
  ASSERT_TRUE(discover_gpus(lib, &gpus, &why)) << why;
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].uuid.rfind("GPU-", 0), 0u);
  EXPECT_EQ(gpus[1].memory_mib, 8192u);
  EXPECT_FALSE(discover_gpus("/nonexistent/libnvidia-ml.so.1", &gpus, &why));

  ASSERT_TRUE(discover_gpus(lib, &gpus, &why)) << why;
  Inventory inv(gpus, 256);
  RunnerOptions o = fast(dir_.path());
  o.nvml_library = lib;
  Running r(&inv, o);  // no kubelet: the health watch runs all the same
  std::ofstream(events, std::ios::app) << "lost 1\n";
  EXPECT_TRUE(eventually([&] { return !inv.healthy(gpus[1].uuid); }));
  EXPECT_TRUE(inv.healthy(gpus[0].uuid));
  unsetenv("FAKE_NVML_EVENTS");
}

}  // namespace
}  // namespace gem::dp
