// The stand-in NVML uses the NVML types the hook uses (include/gem/nvml_api.h).
#pragma once
#include "gem/nvml_api.h"
