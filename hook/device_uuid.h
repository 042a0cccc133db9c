// The UUID of a CUDA device as nvidia-smi prints it ("GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"),
// the name gem-pmgr routes by.
#pragma once

#include <string>

#include "driver_api.h"

namespace gem::hook {

/// Formats the 16 bytes of a CUuuid.
std::string uuid_string(const CUuuid& u);

/// The UUID of `dev` through the real cuDeviceGetUuid_v2; empty when the driver cannot say.
std::string device_uuid(CUdevice dev);

}  // namespace gem::hook
