// Nvml: see nvml_probe.h. Symbols are looked up once at open(); a library lacking one is refused.
#include "nvml_probe.h"

#include <dlfcn.h>

namespace gem::sched {

namespace {
using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using ErrorStringFn = const char* (*)(nvmlReturn_t);
using ByIndexFn = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using ByUuidFn = nvmlReturn_t (*)(const char*, nvmlDevice_t*);
using MemInfoFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using SetCreateFn = nvmlReturn_t (*)(nvmlEventSet_t*);
using RegisterFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned long long, nvmlEventSet_t);
using WaitFn = nvmlReturn_t (*)(nvmlEventSet_t, nvmlEventData_t*, unsigned int);
using SetFreeFn = nvmlReturn_t (*)(nvmlEventSet_t);
using CountFn = nvmlReturn_t (*)(unsigned int*);
using UuidFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
}  // namespace

Nvml::~Nvml() { close(); }

bool Nvml::open(const std::string& library, std::string* why) {
  close();
  lib_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib_ == nullptr) {
    const char* e = dlerror();
    *why = e != nullptr ? e : "cannot load " + library;
    return false;
  }
  void* init = dlsym(lib_, "nvmlInit_v2");
  shutdown_ = dlsym(lib_, "nvmlShutdown");
  error_string_ = dlsym(lib_, "nvmlErrorString");
  by_index_ = dlsym(lib_, "nvmlDeviceGetHandleByIndex_v2");
  by_uuid_ = dlsym(lib_, "nvmlDeviceGetHandleByUUID");
  mem_info_ = dlsym(lib_, "nvmlDeviceGetMemoryInfo");
  if (init == nullptr || shutdown_ == nullptr || by_index_ == nullptr || by_uuid_ == nullptr ||
      mem_info_ == nullptr) {
    *why = library + " lacks an NVML function gem-schd needs";
    close();
    return false;
  }
  const nvmlReturn_t r = reinterpret_cast<InitFn>(init)();
  if (r != NVML_SUCCESS) {
    *why = error("nvmlInit_v2", r);
    close();
    return false;
  }
  initialised_ = true;
  return true;
}

nvmlReturn_t Nvml::lookup(const std::string& uuid, nvmlDevice_t* dev) const {
  if (!initialised_) return NVML_ERROR_UNINITIALIZED;
  return uuid.empty() ? reinterpret_cast<ByIndexFn>(by_index_)(0, dev)
                      : reinterpret_cast<ByUuidFn>(by_uuid_)(uuid.c_str(), dev);
}

bool Nvml::uuids(std::vector<std::string>* out, std::string* why) const {
  if (!initialised_) {
    *why = "NVML is not open";
    return false;
  }
  void* count_fn = dlsym(lib_, "nvmlDeviceGetCount_v2");
  void* uuid_fn = dlsym(lib_, "nvmlDeviceGetUUID");
  if (count_fn == nullptr || uuid_fn == nullptr) {
    *why = "the NVML library lacks nvmlDeviceGetCount_v2 or nvmlDeviceGetUUID";
    return false;
  }
  unsigned int n = 0;
  nvmlReturn_t r = reinterpret_cast<CountFn>(count_fn)(&n);
  if (r != NVML_SUCCESS) {
    *why = error("nvmlDeviceGetCount_v2", r);
    return false;
  }
  out->clear();
  for (unsigned int i = 0; i < n; ++i) {
    nvmlDevice_t dev = nullptr;
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    r = reinterpret_cast<ByIndexFn>(by_index_)(i, &dev);
    if (r == NVML_SUCCESS) r = reinterpret_cast<UuidFn>(uuid_fn)(dev, text, sizeof text);
    if (r != NVML_SUCCESS) {
      *why = error(("GPU " + std::to_string(i)).c_str(), r);
      return false;
    }
    out->push_back(text);
  }
  return true;
}

bool Nvml::watch_xid(nvmlDevice_t dev, std::string* why) {
  if (!initialised_) {
    *why = "NVML is not open";
    return false;
  }
  void* create = dlsym(lib_, "nvmlEventSetCreate");
  void* reg = dlsym(lib_, "nvmlDeviceRegisterEvents");
  event_wait_ = dlsym(lib_, "nvmlEventSetWait_v2");
  event_free_ = dlsym(lib_, "nvmlEventSetFree");
  if (create == nullptr || reg == nullptr || event_wait_ == nullptr || event_free_ == nullptr) {
    *why = "the NVML library lacks the event functions";
    return false;
  }
  nvmlReturn_t r = reinterpret_cast<SetCreateFn>(create)(&events_);
  if (r != NVML_SUCCESS) {
    events_ = nullptr;
    *why = error("nvmlEventSetCreate", r);
    return false;
  }
  r = reinterpret_cast<RegisterFn>(reg)(dev, nvmlEventTypeXidCriticalError, events_);
  if (r != NVML_SUCCESS) {
    reinterpret_cast<SetFreeFn>(event_free_)(events_);
    events_ = nullptr;
    *why = error("nvmlDeviceRegisterEvents(XID)", r);
    return false;
  }
  return true;
}

nvmlReturn_t Nvml::wait_event(unsigned int timeout_ms, nvmlEventData_t* data) const {
  if (events_ == nullptr) return NVML_ERROR_UNINITIALIZED;
  return reinterpret_cast<WaitFn>(event_wait_)(events_, data, timeout_ms);
}

bool Nvml::device(const std::string& uuid, nvmlDevice_t* dev, std::string* why) const {
  if (!initialised_) {
    *why = "NVML is not open";
    return false;
  }
  const nvmlReturn_t r = lookup(uuid, dev);
  if (r == NVML_SUCCESS) return true;
  *why = uuid.empty() ? error("nvmlDeviceGetHandleByIndex_v2(0)", r)
                      : error(("nvmlDeviceGetHandleByUUID(" + uuid + ")").c_str(), r);
  return false;
}

bool Nvml::memory(nvmlDevice_t dev, NvmlMemory* out, std::string* why) const {
  if (!initialised_) {
    *why = "NVML is not open";
    return false;
  }
  nvmlMemory_t m{};
  const nvmlReturn_t r = reinterpret_cast<MemInfoFn>(mem_info_)(dev, &m);
  if (r != NVML_SUCCESS) {
    *why = error("nvmlDeviceGetMemoryInfo", r);
    return false;
  }
  *out = {m.total, m.free, m.used};
  return true;
}

void Nvml::close() {
  if (events_ != nullptr) reinterpret_cast<SetFreeFn>(event_free_)(events_);
  events_ = nullptr;
  event_wait_ = event_free_ = nullptr;
  if (initialised_) reinterpret_cast<ShutdownFn>(shutdown_)();
  initialised_ = false;
  // The library stays loaded (no dlclose): unloading a driver library gains nothing and is not
  // always safe, and what it allocated (the stand-in keeps its state for the process) stays
  // reachable. A later open() gets the same handle.
  lib_ = nullptr;
  by_index_ = by_uuid_ = mem_info_ = error_string_ = shutdown_ = nullptr;
}

std::string Nvml::error(const char* call, nvmlReturn_t r) const {
  const char* text = error_string_ != nullptr ? reinterpret_cast<ErrorStringFn>(error_string_)(r) : nullptr;
  return std::string(call) + ": " + (text != nullptr ? text : "NVML error " + std::to_string(static_cast<int>(r)));
}

bool nvml_total_memory(const std::string& uuid, uint64_t* total, std::string* why, const std::string& library) {
  Nvml nvml;
  nvmlDevice_t dev = nullptr;
  NvmlMemory mem;
  if (!nvml.open(library, why) || !nvml.device(uuid, &dev, why) || !nvml.memory(dev, &mem, why)) return false;
  *total = mem.total;
  return true;
}

}  // namespace gem::sched
