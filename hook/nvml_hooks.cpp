// NVML's memory figures under GPU_MEM (docs/memory.md): nvmlDeviceGetMemoryInfo and _v2 report the
// client's limit as the total and what is left of it as free, so nvidia-smi and NVML-reading
// frameworks run under the hook see the same figures as cuMemGetInfo. Interposed both ways NVML is
// reached: as exported symbols (programs linked against libnvidia-ml.so.1) and through dlsym
// (programs that dlopen it; see dlsym in interpose.cpp). Without a limit every value is NVML's own.
#include "nvml_hooks.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "mem_figures.h"
#include "mem_tracker.h"
#include "symbols.h"

#define GEM_EXPORT __attribute__((visibility("default")))

namespace gem::hook {

namespace {

using MemInfoFn = decltype(&::nvmlDeviceGetMemoryInfo);
using MemInfo2Fn = decltype(&::nvmlDeviceGetMemoryInfo_v2);
using UuidFn = decltype(&::nvmlDeviceGetUUID);

std::atomic<void*> g_real_info{nullptr}, g_real_info2{nullptr}, g_real_uuid{nullptr};

// The real NVML function `name`: the one dlsym handed out, else the next definition after the hook.
void* real_nvml(std::atomic<void*>& slot, const char* name) {
  void* p = slot.load(std::memory_order_acquire);
  if (p != nullptr) return p;
  p = real_dlsym_fn()(RTLD_NEXT, name);
  if (p == nullptr) {
    if (void* lib = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_NOLOAD)) p = real_dlsym(lib, name);
  }
  if (p != nullptr) slot.store(p, std::memory_order_release);
  return p;
}

// The client's (limit, free) for NVML's `device`; false when no limit applies.
bool limited(nvmlDevice_t device, unsigned long long* limit, unsigned long long* free) {
  if (!MemTracker::active()) return false;
  auto uuid_fn = reinterpret_cast<UuidFn>(real_nvml(g_real_uuid, "nvmlDeviceGetUUID"));
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  if (uuid_fn == nullptr || uuid_fn(device, uuid, sizeof uuid) != NVML_SUCCESS) return false;
  uint64_t l = 0, f = 0;
  if (!MemTracker::get().view_uuid(uuid, &l, &f)) return false;
  *limit = l;
  *free = f;
  return true;
}

// Rewrites NVML's answer `memory` (nvmlMemory_t or nvmlMemory_v2_t) for the client's limit
// (limited_nvml_info(), mem_figures.h).
// False (nothing changed) when no limit applies.
template <typename Memory>
bool virtualise(nvmlDevice_t device, Memory* memory) {
  unsigned long long limit = 0, free = 0;
  if (memory == nullptr || !limited(device, &limit, &free)) return false;
  const NvmlFigures f = limited_nvml_info(limit, free, memory->free);
  memory->total = f.total;
  memory->free = f.free;
  memory->used = f.used;
  return true;
}

}  // namespace

void* nvml_wrapper(const char* name, void* real) {
  if (real == nullptr || std::strncmp(name, "nvmlDeviceGetMemoryInfo", 23) != 0) return real;
  if (std::strcmp(name, "nvmlDeviceGetMemoryInfo") == 0) {
    g_real_info.store(real, std::memory_order_release);
    return reinterpret_cast<void*>(&::nvmlDeviceGetMemoryInfo);
  }
  if (std::strcmp(name, "nvmlDeviceGetMemoryInfo_v2") == 0) {
    g_real_info2.store(real, std::memory_order_release);
    return reinterpret_cast<void*>(&::nvmlDeviceGetMemoryInfo_v2);
  }
  return real;
}

}  // namespace gem::hook

using namespace gem::hook;

extern "C" GEM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  auto fn = reinterpret_cast<MemInfoFn>(real_nvml(g_real_info, "nvmlDeviceGetMemoryInfo"));
  if (fn == nullptr) return NVML_ERROR_FUNCTION_NOT_FOUND;
  const nvmlReturn_t r = fn(device, memory);
  if (r == NVML_SUCCESS) virtualise(device, memory);
  return r;
}

extern "C" GEM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  auto fn = reinterpret_cast<MemInfo2Fn>(real_nvml(g_real_info2, "nvmlDeviceGetMemoryInfo_v2"));
  if (fn == nullptr) return NVML_ERROR_FUNCTION_NOT_FOUND;
  const nvmlReturn_t r = fn(device, memory);
  // The driver's reservation is not the client's to see.
  if (r == NVML_SUCCESS && virtualise(device, memory)) memory->reserved = 0;
  return r;
}
