// gem-device-plugin's pure parts: device IDs, --fake_gpus, the device lists and the preferred
// allocation (device-plugin/gpus.h, allocation.h). The gRPC side: plugin_test.cpp.
#include <gtest/gtest.h>

#include <set>

#include "allocation.h"

namespace gem::dp {
namespace {

std::vector<Gpu> fake(const std::string& spec) {
  std::vector<Gpu> gpus;
  std::string why;
  EXPECT_TRUE(parse_fake_gpus(spec, &gpus, &why)) << why;
  return gpus;
}

TEST(DeviceIds, RoundTripAndRefusals) {
  const std::string uuid = "GPU-fef8089b-4820-abfc-e83e-94318197576e";
  EXPECT_EQ(device_id(uuid, Kind::kShare, 7), uuid + "-share-07");
  EXPECT_EQ(device_id(uuid, Kind::kMemory, 123), uuid + "-mem-123");
  EXPECT_LE(device_id(uuid, Kind::kMemory, 99999).size(), 63u);  // kubelet's limit
  DeviceRef r;
  ASSERT_TRUE(parse_device_id(uuid + "-share-99", &r));
  EXPECT_EQ(r.uuid, uuid);
  EXPECT_EQ(r.kind, Kind::kShare);
  EXPECT_EQ(r.n, 99u);
  ASSERT_TRUE(parse_device_id(uuid + "-mem-0", &r));
  EXPECT_EQ(r.kind, Kind::kMemory);
  for (const char* bad : {"-share-100", "-share-7", "-share-", "-mem-01", "-mem-x", "-share--1", ""})
    EXPECT_FALSE(parse_device_id(uuid + bad, &r)) << bad;
  EXPECT_FALSE(parse_device_id("-share-01", &r));
}

TEST(FakeGpus, SpecAndErrors) {
  const auto gpus = fake("2:1024");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[1].index, 1u);
  EXPECT_EQ(gpus[1].memory_mib, 1024u);
  EXPECT_NE(gpus[0].uuid, gpus[1].uuid);
  std::vector<Gpu> out;
  std::string why;
  for (const char* bad : {"", "2", "0:10", "65:10", "2:0", "a:1", "2:1k", "-1:5"})
    EXPECT_FALSE(parse_fake_gpus(bad, &out, &why)) << bad;
  EXPECT_NE(why.find("N:MiB"), std::string::npos);
  EXPECT_EQ(memory_devices(81559, 256), 318u);  // an H100's 80 GiB (as NVML reports it) in 256 MiB chunks
}

TEST(ListDevices, HundredSharesPerGpuAndMemoryChunks) {
  Inventory inv(fake("2:1000"), 256);
  v1beta1::ListAndWatchResponse share, mem;
  list_devices(inv, Kind::kShare, &share);
  list_devices(inv, Kind::kMemory, &mem);
  ASSERT_EQ(share.devices_size(), 200);
  EXPECT_EQ(mem.devices_size(), 6);  // 3 whole chunks of 256 MiB per 1000 MiB GPU
  std::set<std::string> ids;
  for (const auto& d : share.devices()) {
    ids.insert(d.id());
    EXPECT_EQ(d.health(), kHealthy);
  }
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(share.devices(0).id(), inv.gpus()[0].uuid + "-share-00");
  EXPECT_EQ(share.devices(199).id(), inv.gpus()[1].uuid + "-share-99");
  inv.set_healthy(inv.gpus()[1].uuid, false);
  list_devices(inv, Kind::kShare, &share);
  EXPECT_EQ(share.devices(99).health(), kHealthy);
  EXPECT_EQ(share.devices(100).health(), kUnhealthy);
}

// Available: `n0` share devices of GPU 0 (the highest numbers) and `n1` of GPU 1.
v1beta1::ContainerPreferredAllocationRequest available(const Inventory& inv, int n0, int n1, int size) {
  v1beta1::ContainerPreferredAllocationRequest req;
  for (int i = 100 - n0; i < 100; ++i) req.add_available_deviceids(device_id(inv.gpus()[0].uuid, Kind::kShare, i));
  for (int i = 100 - n1; i < 100; ++i) req.add_available_deviceids(device_id(inv.gpus()[1].uuid, Kind::kShare, i));
  req.set_allocation_size(size);
  return req;
}

std::set<std::string> gpus_of(const v1beta1::ContainerPreferredAllocationResponse& resp) {
  std::set<std::string> out;
  for (const auto& id : resp.deviceids()) {
    DeviceRef r;
    EXPECT_TRUE(parse_device_id(id, &r)) << id;
    out.insert(r.uuid);
  }
  return out;
}

TEST(Preferred, OneGpuBestFitHintAndMustInclude) {
  Inventory inv(fake("2:4096"), 256);
  const std::string g0 = inv.gpus()[0].uuid, g1 = inv.gpus()[1].uuid;
  v1beta1::ContainerPreferredAllocationResponse resp;

  preferred(inv, Kind::kShare, available(inv, 30, 100, 20), "", &resp);  // best fit: GPU 0
  EXPECT_EQ(resp.deviceids_size(), 20);
  EXPECT_EQ(gpus_of(resp), std::set<std::string>{g0});

  preferred(inv, Kind::kShare, available(inv, 30, 100, 50), "", &resp);  // only GPU 1 has 50
  EXPECT_EQ(resp.deviceids_size(), 50);
  EXPECT_EQ(gpus_of(resp), std::set<std::string>{g1});

  preferred(inv, Kind::kShare, available(inv, 30, 100, 20), g1, &resp);  // the hint wins over best fit
  EXPECT_EQ(gpus_of(resp), std::set<std::string>{g1});

  preferred(inv, Kind::kShare, available(inv, 30, 100, 50), g0, &resp);  // a hint without room is ignored
  EXPECT_EQ(gpus_of(resp), std::set<std::string>{g1});

  auto req = available(inv, 30, 100, 10);
  req.add_must_include_deviceids(device_id(g1, Kind::kShare, 99));
  preferred(inv, Kind::kShare, req, "", &resp);
  EXPECT_EQ(resp.deviceids_size(), 10);
  EXPECT_EQ(resp.deviceids(0), device_id(g1, Kind::kShare, 99));
  EXPECT_EQ(gpus_of(resp), std::set<std::string>{g1});

  preferred(inv, Kind::kShare, available(inv, 30, 40, 60), "", &resp);  // no GPU has 60: both, most first
  EXPECT_EQ(resp.deviceids_size(), 60);
  EXPECT_EQ(gpus_of(resp).size(), 2u);

  auto junk = available(inv, 0, 0, 3);
  junk.add_available_deviceids("GPU-unknown-share-01");
  junk.add_available_deviceids(device_id(g0, Kind::kMemory, 1));  // the other resource
  preferred(inv, Kind::kShare, junk, "", &resp);
  EXPECT_EQ(resp.deviceids_size(), 0);
}

}  // namespace
}  // namespace gem::dp
