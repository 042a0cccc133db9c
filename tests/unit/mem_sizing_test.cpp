// The sizing rules of the memory wrappers (hook/mem_sizing.h): what a user of GPU_MEM sees charged
// for each kind of allocation must be what the driver really takes (the H200 measurements of
// docs/memory.md), and no size a program passes can wrap the charge to something small.
#include "../../hook/mem_sizing.h"

#include <gtest/gtest.h>

#include "../../hook/mem_ledger.h"

namespace gem::hook {
namespace {

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;
constexpr uint64_t kMax = MemLedger::kMaxBytes;

TEST(MemSizing, DriverGranularityMatchesTheH200Measurements) {
  // docs/memory.md: free memory dropped by 8 KiB for 256 B and 4 KiB, 104 KiB for 100 KiB, 1 MiB
  // for 1 MiB, 2 MiB for 2 MiB, 4 MiB for 3 MiB and 34 MiB for 33 MiB.
  EXPECT_EQ(driver_alloc_bytes(256), 8192u);
  EXPECT_EQ(driver_alloc_bytes(4096), 8192u);
  EXPECT_EQ(driver_alloc_bytes(100 << 10), 104u << 10);
  EXPECT_EQ(driver_alloc_bytes(MiB), MiB);
  EXPECT_EQ(driver_alloc_bytes(2 * MiB), 2 * MiB);
  EXPECT_EQ(driver_alloc_bytes(3 * MiB), 4 * MiB);
  EXPECT_EQ(driver_alloc_bytes(33 * MiB), 34 * MiB);
  EXPECT_EQ(driver_alloc_bytes(UINT64_MAX), kMax);
}

TEST(MemSizing, DriverGranularityBoundaries) {
  EXPECT_EQ(driver_alloc_bytes(0), 0u) << "a zero-byte allocation takes nothing";
  EXPECT_EQ(driver_alloc_bytes(1), 8192u);
  EXPECT_EQ(driver_alloc_bytes(8192), 8192u);
  EXPECT_EQ(driver_alloc_bytes(8193), 16384u);
  EXPECT_EQ(driver_alloc_bytes(2 * MiB - 1), 2 * MiB) << "just under 2 MiB still rounds in 8 KiB";
  EXPECT_EQ(driver_alloc_bytes(2 * MiB + 1), 4 * MiB) << "from 2 MiB on, whole 2 MiB pages";
}

TEST(MemSizing, RoundUpSaturatesAndZeroUnitMeansNoRounding) {
  EXPECT_EQ(round_up_bytes(5, 4), 8u);
  EXPECT_EQ(round_up_bytes(8, 4), 8u);
  EXPECT_EQ(round_up_bytes(7, 0), 7u);
  EXPECT_EQ(round_up_bytes(UINT64_MAX, 4), kMax);
  EXPECT_EQ(round_up_bytes(kMax - 1, kPoolStep), kMax);
}

TEST(MemSizing, PitchedRowsArePaddedTo512BytesAndCountedWhole) {
  EXPECT_EQ(pitch_of(1000), 1024u) << "an H200 gave a pitch of 1024 for 1000";
  EXPECT_EQ(pitch_of(512), 512u);
  EXPECT_EQ(pitch_of(1), 512u);
  EXPECT_EQ(pitch_of(0), 0u);
  EXPECT_EQ(pitched_bytes(1024, 1000), 1024u * 1000);
  EXPECT_EQ(pitched_bytes(1024, 0), 1024u) << "a 0 height counts as one row";
  EXPECT_EQ(driver_alloc_bytes(pitched_bytes(pitch_of(1000), 1000)), 1024u * 1000)
      << "1000 rows of 1000 bytes: 1000 padded rows of 1 KiB, already whole 8 KiB units";
  EXPECT_EQ(driver_alloc_bytes(pitched_bytes(pitch_of(1000), 3000)), 4 * MiB)
      << "3000 padded rows (3 000 KiB) take whole 2 MiB pages";
}

TEST(MemSizing, PitchedBytesSaturateForHostileDimensions) {
  EXPECT_EQ(pitched_bytes(pitch_of(UINT64_MAX), UINT64_MAX), kMax);
  EXPECT_EQ(pitched_bytes(kMax, 2), kMax);
  EXPECT_EQ(pitched_bytes(uint64_t{1} << 25, uint64_t{1} << 25), kMax) << "2^50 exactly is the cap";
}

TEST(MemSizing, ArrayElementsByFormat) {
  EXPECT_EQ(format_bytes(CU_AD_FORMAT_UNSIGNED_INT8), 1u);
  EXPECT_EQ(format_bytes(CU_AD_FORMAT_SIGNED_INT8), 1u);
  EXPECT_EQ(format_bytes(CU_AD_FORMAT_HALF), 2u);
  EXPECT_EQ(format_bytes(CU_AD_FORMAT_SIGNED_INT16), 2u);
  EXPECT_EQ(format_bytes(CU_AD_FORMAT_FLOAT), 4u);
  EXPECT_EQ(format_bytes(CU_AD_FORMAT_UNSIGNED_INT32), 4u);
  EXPECT_EQ(format_bytes(CU_AD_FORMAT_BC1_UNORM), 16u) << "block-compressed: the widest element, never less";
}

TEST(MemSizing, ArraysTakeWholeTwoMiBPages) {
  // 1000x1000 float4 (16 000 000 bytes) took 16 MiB on an H200.
  EXPECT_EQ(array_bytes(1000, 1000, 0, 4, CU_AD_FORMAT_FLOAT), 16 * MiB);
  EXPECT_EQ(array_bytes(1, 0, 0, 1, CU_AD_FORMAT_UNSIGNED_INT8), 2 * MiB) << "the smallest array is one page";
  EXPECT_EQ(array_bytes(1024, 1024, 2, 1, CU_AD_FORMAT_UNSIGNED_INT8), 2 * MiB);
  EXPECT_EQ(array_bytes(1024, 1024, 3, 1, CU_AD_FORMAT_UNSIGNED_INT8), 4 * MiB);
  EXPECT_EQ(array_bytes(64, 64, 0, 0, CU_AD_FORMAT_FLOAT), array_bytes(64, 64, 0, 1, CU_AD_FORMAT_FLOAT))
      << "0 channels count as 1";
}

TEST(MemSizing, ArraysOfHostileExtentsSaturate) {
  const size_t huge = SIZE_MAX;
  EXPECT_EQ(array_bytes(huge, huge, huge, 4, CU_AD_FORMAT_FLOAT), kMax);
  EXPECT_EQ(array_bytes(huge, 1, 1, 0xffffffffu, CU_AD_FORMAT_BC7_UNORM), kMax);
  EXPECT_EQ(array_bytes(uint64_t{1} << 30, uint64_t{1} << 30, 1, 1, CU_AD_FORMAT_UNSIGNED_INT8), kMax);
}

CUDA_ARRAY3D_DESCRIPTOR desc(size_t w, size_t h, size_t d, unsigned flags = 0) {
  CUDA_ARRAY3D_DESCRIPTOR a{};
  a.Width = w;
  a.Height = h;
  a.Depth = d;
  a.Format = CU_AD_FORMAT_FLOAT;
  a.NumChannels = 4;
  a.Flags = flags;
  return a;
}

TEST(MemSizing, MipmapsSumTheirLevels) {
  // 2048x2048 float4 = 64 MiB, then 16 MiB, 4 MiB, 1 MiB (one 2 MiB page), ...
  const auto a = desc(2048, 2048, 0);
  EXPECT_EQ(mipmap_bytes(a, 1), 64 * MiB);
  EXPECT_EQ(mipmap_bytes(a, 2), 80 * MiB);
  EXPECT_EQ(mipmap_bytes(a, 3), 84 * MiB);
  EXPECT_EQ(mipmap_bytes(a, 4), 86 * MiB);
  EXPECT_EQ(mipmap_bytes(a, 0), mipmap_bytes(a, 1)) << "0 levels count as 1";
}

TEST(MemSizing, MipmapLevelsAreCappedAtThirtyTwo) {
  const auto a = desc(1, 1, 0);
  EXPECT_EQ(mipmap_bytes(a, 32), 32 * kArrayPage);
  EXPECT_EQ(mipmap_bytes(a, 0xffffffffu), 32 * kArrayPage) << "a hostile level count costs 32 levels";
}

TEST(MemSizing, LayeredMipmapsKeepTheirDepth) {
  // 512x512x8 float4 = 32 MiB; the next level is 256x256 with 8 layers (8 MiB) when layered,
  // 256x256x4 (4 MiB) when 3D.
  EXPECT_EQ(mipmap_bytes(desc(512, 512, 8, CUDA_ARRAY3D_LAYERED), 2), 40 * MiB);
  EXPECT_EQ(mipmap_bytes(desc(512, 512, 8), 2), 36 * MiB);
}

TEST(MemSizing, MipmapsOfHostileExtentsSaturate) {
  EXPECT_EQ(mipmap_bytes(desc(SIZE_MAX, SIZE_MAX, SIZE_MAX), 32), kMax);
}

TEST(MemSizing, HandlesAndGraphNodesAreWholeTwoMiBPages) {
  EXPECT_EQ(handle_bytes(1), 2 * MiB);
  EXPECT_EQ(handle_bytes(2 * MiB), 2 * MiB);
  EXPECT_EQ(handle_bytes(20 * MiB + 1), 22 * MiB);
  EXPECT_EQ(handle_bytes(UINT64_MAX), kMax);
}

TEST(MemSizing, PoolGrowsInThirtyTwoMiBStepsMeasuredOnAnH200) {
  // An empty pool: 1 MiB -> 32 MiB reserved, 40 MiB -> 64 MiB, 300 MiB -> 320 MiB.
  EXPECT_EQ(pool_growth(MiB, 0, 0), 32 * MiB);
  EXPECT_EQ(pool_growth(40 * MiB, 0, 0), 64 * MiB);
  EXPECT_EQ(pool_growth(300 * MiB, 0, 0), 320 * MiB);
}

TEST(MemSizing, APoolsIdlePartServesWithoutGrowth) {
  EXPECT_EQ(pool_growth(16 * MiB, 32 * MiB, 16 * MiB), 0u) << "16 MiB idle covers 16 MiB";
  EXPECT_EQ(pool_growth(17 * MiB, 32 * MiB, 16 * MiB), 32 * MiB) << "one byte short: the whole request in steps";
  EXPECT_EQ(pool_growth(0, 0, 0), 0u);
  EXPECT_EQ(pool_growth(MiB, 32 * MiB, 40 * MiB), 32 * MiB) << "used above reserved (a stale read) means no idle part";
}

TEST(MemSizing, AnUnreadPoolMustFitTheWholeRequest) {
  EXPECT_EQ(pool_growth_unread(MiB), 32 * MiB);
  EXPECT_EQ(pool_growth_unread(64 * MiB), 64 * MiB);
  EXPECT_EQ(pool_growth_unread(UINT64_MAX), kMax);
  EXPECT_EQ(pool_growth(GiB, 0, 0), pool_growth_unread(GiB)) << "an empty pool reads as an unread one";
}

}  // namespace
}  // namespace gem::hook
