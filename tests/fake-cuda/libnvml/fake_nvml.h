// The stand-in NVML uses the NVML types the hook uses (include/gem/nvml_api.h), and these helpers
// shared by its files (nvml.cpp: devices; nvml_events.cpp: XID events and lost GPUs;
// nvml_check.cpp: what gemctl check reads).
#pragma once
#include "gem/nvml_api.h"

namespace fakenvml {
/// Checks init and the handle; *index: the device's index. NVML_ERROR_GPU_IS_LOST for a lost device.
nvmlReturn_t device_index(nvmlDevice_t d, unsigned int* index);
/// The handle of device `index`, nullptr past the count (no checks).
nvmlDevice_t device_at(unsigned int index);
/// True when FAKE_NVML_EVENTS has a line "lost INDEX" (read at each call).
bool lost(unsigned int index);
}  // namespace fakenvml
