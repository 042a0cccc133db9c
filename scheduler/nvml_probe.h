// NVML, reached at run time (dlopen of libnvidia-ml.so.1, never linked), for what gem-schd asks of
// its GPU: the device's memory (the default --mem_budget, docs/memory.md "Residency"). Without the
// library or a driver every call fails with a reason; gem-schd then runs without what it needed.
// Types: include/gem/nvml_api.h. Tests use the stand-in build/fake-cuda/libnvidia-ml.so.1
// (FAKE_CUDA_MEM_BYTES sets its total). Not thread-safe: one owner.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gem/nvml_api.h"

namespace gem::sched {

/// The library gem-schd loads (found through the dynamic loader's search path).
constexpr const char* kNvmlLibrary = "libnvidia-ml.so.1";

struct NvmlMemory {
  uint64_t total = 0;  // bytes
  uint64_t free = 0;
  uint64_t used = 0;
};

class Nvml {
 public:
  Nvml() = default;
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  /// dlopen(`library`) and nvmlInit_v2. False with *why (the library is missing, a symbol is
  /// missing, or NVML's own error string).
  bool open(const std::string& library, std::string* why);
  /// The device with this UUID ("GPU-..."), or the first device (index 0) when `uuid` is empty.
  bool device(const std::string& uuid, nvmlDevice_t* dev, std::string* why) const;
  /// nvmlDeviceGetMemoryInfo of `dev`.
  bool memory(nvmlDevice_t dev, NvmlMemory* out, std::string* why) const;
  /// The NVML code of looking the device up (as device()), for telling a lost GPU
  /// (NVML_ERROR_GPU_IS_LOST, or NOT_FOUND for a UUID) from a transient failure.
  nvmlReturn_t lookup(const std::string& uuid, nvmlDevice_t* dev) const;
  /// Health watch (gpu_health.h): registers `dev` for critical XID events in an event set of its own.
  /// False with *why when the library lacks the event functions or the device refuses.
  bool watch_xid(nvmlDevice_t dev, std::string* why);
  /// Waits up to `timeout_ms` for an event of the watched device: NVML_SUCCESS with *data,
  /// NVML_ERROR_TIMEOUT, or NVML's error (NVML_ERROR_GPU_IS_LOST, ...). watch_xid() must have succeeded.
  nvmlReturn_t wait_event(unsigned int timeout_ms, nvmlEventData_t* data) const;
  /// The UUIDs of every GPU NVML sees, in index order (discovery: gem-schd --list_gpus). False with *why.
  bool uuids(std::vector<std::string>* out, std::string* why) const;
  /// NVML's text for a code.
  std::string error_text(nvmlReturn_t r) const { return error("NVML", r); }
  /// nvmlShutdown (the destructor does it too, and frees the event set); the library stays loaded.
  void close();

 private:
  void* lib_ = nullptr;
  bool initialised_ = false;
  void* by_index_ = nullptr;
  void* by_uuid_ = nullptr;
  void* mem_info_ = nullptr;
  void* error_string_ = nullptr;
  void* shutdown_ = nullptr;
  void* event_wait_ = nullptr;
  void* event_free_ = nullptr;
  nvmlEventSet_t events_ = nullptr;

  std::string error(const char* call, nvmlReturn_t r) const;
};

/// The total memory of GPU `uuid` (empty: device 0) through `library`; false with *why.
bool nvml_total_memory(const std::string& uuid, uint64_t* total, std::string* why,
                       const std::string& library = kNvmlLibrary);

}  // namespace gem::sched
