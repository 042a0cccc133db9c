#include "um_policy.h"

#include "mem_ledger.h"
#include "mem_sizing.h"

namespace gem::hook {

UmAlloc device_alloc_kind(bool um) { return um ? UmAlloc::kManaged : UmAlloc::kPlain; }

PitchPlan plan_pitch(bool um, bool pitch_out, uint64_t width, uint64_t height) {
  PitchPlan p;
  const uint64_t pitch = pitch_of(width);
  if (!um || !pitch_out || width == 0 || height == 0 || pitch > MemLedger::kMaxBytes / height) return p;
  p.kind = UmAlloc::kManaged;
  p.pitch = pitch;  // managed memory has no pitch of its own: rows padded as the driver pads them
  p.bytes = pitch * height;
  return p;
}

bool plain_after_managed(CUresult r) { return r == CUDA_ERROR_NOT_SUPPORTED; }

CUmemLocation managed_home(CUdevice dev) {
  CUmemLocation here{};
  here.type = CU_MEM_LOCATION_TYPE_DEVICE;
  here.id = dev;
  return here;
}

bool note_program_managed(bool um) { return um; }

bool warn_stays_resident(bool um, bool warned_before) { return um && !warned_before; }

}  // namespace gem::hook
