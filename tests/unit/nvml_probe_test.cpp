// gem-schd's NVML probe (scheduler/nvml_probe.h) where no GPU is needed: a missing library and one
// without NVML's functions fail with a reason. The stand-in libnvidia-ml.so.1 is exercised by the
// integration tests (residency_test.cpp: the default --mem_budget).
#include "../../scheduler/nvml_probe.h"

#include <gtest/gtest.h>

namespace gem::sched {
namespace {

TEST(NvmlProbe, AMissingLibraryIsAReason) {
  uint64_t total = 7;
  std::string why;
  EXPECT_FALSE(nvml_total_memory("", &total, &why, "libnvidia-ml-does-not-exist.so.1"));
  EXPECT_NE(why.find("libnvidia-ml-does-not-exist.so.1"), std::string::npos) << why;
  EXPECT_EQ(total, 7u);
}

TEST(NvmlProbe, ALibraryWithoutNvmlIsRefused) {
  Nvml nvml;
  std::string why;
  EXPECT_FALSE(nvml.open("libc.so.6", &why));
  EXPECT_NE(why.find("lacks an NVML function"), std::string::npos) << why;
  nvmlDevice_t dev = nullptr;
  EXPECT_FALSE(nvml.device("", &dev, &why));
  EXPECT_EQ(why, "NVML is not open");
  NvmlMemory m;
  EXPECT_FALSE(nvml.memory(dev, &m, &why));
  nvml.close();
  nvml.close();  // idempotent
}

}  // namespace
}  // namespace gem::sched
