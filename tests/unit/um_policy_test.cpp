// The unified-memory allocation policy (hook/um_policy.*): in unified-memory mode the program's
// device allocations become managed memory gem-schd can evict, sized and padded as the driver would
// have made them; outside it, and wherever managing is impossible or unsafe, the program's own call
// is left unchanged.
#include "../../hook/um_policy.h"

#include <gtest/gtest.h>

#include <iterator>

#include "../../hook/mem_ledger.h"
#include "../../hook/mem_sizing.h"

namespace gem::hook {
namespace {

constexpr uint64_t kMax = MemLedger::kMaxBytes;

TEST(UmPolicy, DeviceAllocationsBecomeManagedOnlyInUnifiedMemoryMode) {
  EXPECT_EQ(device_alloc_kind(true), UmAlloc::kManaged);
  EXPECT_EQ(device_alloc_kind(false), UmAlloc::kPlain);
}

TEST(UmPolicy, APitchedAllocationIsPaddedAsTheDriverPadsIt) {
  const PitchPlan p = plan_pitch(true, true, 1000, 3000);
  EXPECT_EQ(p.kind, UmAlloc::kManaged);
  EXPECT_EQ(p.pitch, 1024u) << "the pitch an H200 reports for 1000-byte rows";
  EXPECT_EQ(p.pitch, pitch_of(1000));
  EXPECT_EQ(p.bytes, 1024u * 3000);
  EXPECT_EQ(p.bytes, pitched_bytes(pitch_of(1000), 3000)) << "charged as the plain call would be";
  const PitchPlan exact = plan_pitch(true, true, 512, 1);
  EXPECT_EQ(exact.pitch, 512u);
  EXPECT_EQ(exact.bytes, 512u);
}

TEST(UmPolicy, APitchedAllocationStaysThePrograms) {
  EXPECT_EQ(plan_pitch(false, true, 1000, 1000).kind, UmAlloc::kPlain) << "not in unified-memory mode";
  EXPECT_EQ(plan_pitch(true, false, 1000, 1000).kind, UmAlloc::kPlain) << "no place for the pitch: the driver's error";
  EXPECT_EQ(plan_pitch(true, true, 0, 1000).kind, UmAlloc::kPlain) << "empty";
  EXPECT_EQ(plan_pitch(true, true, 1000, 0).kind, UmAlloc::kPlain) << "empty";
  const PitchPlan plain = plan_pitch(false, true, 1000, 1000);
  EXPECT_EQ(plain.pitch, 0u);
  EXPECT_EQ(plain.bytes, 0u) << "a plain plan invents no size";
}

TEST(UmPolicy, APitchedAllocationWhoseSizeWouldSaturateStaysPlain) {
  EXPECT_EQ(plan_pitch(true, true, UINT64_MAX, 2).kind, UmAlloc::kPlain);
  EXPECT_EQ(plan_pitch(true, true, 512, UINT64_MAX).kind, UmAlloc::kPlain);
  EXPECT_EQ(plan_pitch(true, true, kMax / 512 * 512, 2).kind, UmAlloc::kPlain);
  const PitchPlan cap = plan_pitch(true, true, 512, kMax / 512);
  EXPECT_EQ(cap.kind, UmAlloc::kManaged) << "exactly the cap is still a real size";
  EXPECT_EQ(cap.bytes, kMax);
  EXPECT_EQ(plan_pitch(true, true, 512, kMax / 512 + 1).kind, UmAlloc::kPlain);
}

TEST(UmPolicy, OnlyADriverWithoutManagedMemoryGetsThePlainAllocationInstead) {
  EXPECT_TRUE(plain_after_managed(CUDA_ERROR_NOT_SUPPORTED));
  EXPECT_FALSE(plain_after_managed(CUDA_SUCCESS));
  EXPECT_FALSE(plain_after_managed(CUDA_ERROR_OUT_OF_MEMORY)) << "out of memory is the program's answer";
  EXPECT_FALSE(plain_after_managed(CUDA_ERROR_INVALID_VALUE));
}

TEST(UmPolicy, ManagedMemoryLivesOnItsOwnDeviceAndStaysMappedThere) {
  for (CUdevice dev : {0, 3}) {
    const CUmemLocation home = managed_home(dev);
    EXPECT_EQ(home.type, CU_MEM_LOCATION_TYPE_DEVICE);
    EXPECT_EQ(home.id, dev);
  }
  ASSERT_EQ(std::size(kManagedAdvice), 2u);
  EXPECT_EQ(kManagedAdvice[0], CU_MEM_ADVISE_SET_PREFERRED_LOCATION);
  EXPECT_EQ(kManagedAdvice[1], CU_MEM_ADVISE_SET_ACCESSED_BY);
}

TEST(UmPolicy, TheProgramsOwnManagedMemoryIsNotedInUnifiedMemoryModeOnly) {
  EXPECT_TRUE(note_program_managed(true));
  EXPECT_FALSE(note_program_managed(false));
}

TEST(UmPolicy, StaysResidentIsSaidOnceAndOnlyInUnifiedMemoryMode) {
  EXPECT_TRUE(warn_stays_resident(true, false));
  EXPECT_FALSE(warn_stays_resident(true, true)) << "said before";
  EXPECT_FALSE(warn_stays_resident(false, false)) << "nothing is managed anyway";
  EXPECT_FALSE(warn_stays_resident(false, true));
}

}  // namespace
}  // namespace gem::hook
