// The memory views under GPU_MEM (hook/mem_figures.*): a client with a limit sees the limit as its
// GPU's size and what it may still allocate as free, never more than the GPU really has free, and
// the legacy 32-bit forms are capped rather than wrapped.
#include "../../hook/mem_figures.h"

#include <gtest/gtest.h>

namespace gem::hook {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(MemFigures, MemGetInfoShowsTheLimitAndWhatIsLeftOfIt) {
  const MemFigures f = limited_mem_info(4 * kGiB, 3 * kGiB, 70 * kGiB);
  EXPECT_EQ(f.total, 4 * kGiB);
  EXPECT_EQ(f.free, 3 * kGiB);
}

TEST(MemFigures, FreeIsNeverMoreThanTheGpuReallyHas) {
  const MemFigures f = limited_mem_info(4 * kGiB, 3 * kGiB, 500 * kMiB);
  EXPECT_EQ(f.total, 4 * kGiB);
  EXPECT_EQ(f.free, 500 * kMiB) << "other tenants took the rest of the GPU";
  EXPECT_EQ(limited_mem_info(4 * kGiB, 3 * kGiB, 0).free, 0u);
  EXPECT_EQ(limited_mem_info(4 * kGiB, 0, 70 * kGiB).free, 0u) << "the limit is used up";
}

TEST(MemFigures, TotalMemIsTheLimitButNeverMoreThanTheDevice) {
  EXPECT_EQ(limited_total_mem(4 * kGiB, 80 * kGiB), 4 * kGiB);
  EXPECT_EQ(limited_total_mem(200 * kGiB, 80 * kGiB), 80 * kGiB) << "a limit above the device";
  EXPECT_EQ(limited_total_mem(UINT64_MAX, 80 * kGiB), 80 * kGiB);
}

TEST(MemFigures, NvmlUsedIsTheRestOfTheLimit) {
  const NvmlFigures f = limited_nvml_info(4 * kGiB, 3 * kGiB, 70 * kGiB);
  EXPECT_EQ(f.total, 4 * kGiB);
  EXPECT_EQ(f.free, 3 * kGiB);
  EXPECT_EQ(f.used, kGiB);
  const NvmlFigures busy = limited_nvml_info(4 * kGiB, 3 * kGiB, kGiB);
  EXPECT_EQ(busy.free, kGiB) << "never more than NVML says is free";
  EXPECT_EQ(busy.used, 3 * kGiB);
  EXPECT_EQ(busy.free + busy.used, busy.total);
}

TEST(MemFigures, NvmlUsedNeverWraps) {
  const NvmlFigures f = limited_nvml_info(kGiB, 2 * kGiB, UINT64_MAX);
  EXPECT_EQ(f.used, 0u) << "free above the limit (a stale figure) leaves nothing used, not 2^64 - 1 GiB";
  const NvmlFigures full = limited_nvml_info(kGiB, 0, 70 * kGiB);
  EXPECT_EQ(full.free, 0u);
  EXPECT_EQ(full.used, kGiB);
}

TEST(MemFigures, LegacyFormsAreCappedJustBelowFourGiB) {
  EXPECT_EQ(legacy_bytes(0), 0u);
  EXPECT_EQ(legacy_bytes(3 * kGiB), 3u * kGiB);
  EXPECT_EQ(legacy_bytes(4 * kGiB - 1), 0xffffffffu);
  EXPECT_EQ(legacy_bytes(4 * kGiB), 0xffffffffu) << "not 0: a wrapped 4 GiB would read as no memory";
  EXPECT_EQ(legacy_bytes(80 * kGiB + 5), 0xffffffffu);
  EXPECT_EQ(legacy_bytes(UINT64_MAX), 0xffffffffu);
}

}  // namespace
}  // namespace gem::hook
