// fake-mem-app's nvml_info step: NVML reached as monitoring code reaches it, dlopen + dlsym (so a
// hook interposing dlsym sees the look-ups).
#include <dlfcn.h>

#include "../libnvml/fake_nvml.h"
#include "runner.h"

namespace memapp {

namespace {

struct Nvml {
  decltype(&::nvmlInit_v2) Init = nullptr;
  decltype(&::nvmlShutdown) Shutdown = nullptr;
  decltype(&::nvmlErrorString) ErrorString = nullptr;
  decltype(&::nvmlDeviceGetHandleByIndex_v2) GetHandleByIndex = nullptr;
  decltype(&::nvmlDeviceGetUUID) GetUUID = nullptr;
  decltype(&::nvmlDeviceGetMemoryInfo) GetMemoryInfo = nullptr;
  decltype(&::nvmlDeviceGetMemoryInfo_v2) GetMemoryInfo_v2 = nullptr;
};

template <typename Fn>
bool sym(void* h, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(h, name));
  return *out != nullptr;
}

// Loads once; nullptr (and *why) if libnvidia-ml.so.1 or a function is missing.
const Nvml* load(std::string* why) {
  static Nvml n;
  static bool loaded = false;
  static std::string error;
  if (!loaded) {
    loaded = true;
    void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (h == nullptr) {
      const char* e = dlerror();
      error = e != nullptr ? e : "dlopen failed";
    } else if (!sym(h, "nvmlInit_v2", &n.Init) || !sym(h, "nvmlShutdown", &n.Shutdown) ||
               !sym(h, "nvmlErrorString", &n.ErrorString) ||
               !sym(h, "nvmlDeviceGetHandleByIndex_v2", &n.GetHandleByIndex) ||
               !sym(h, "nvmlDeviceGetUUID", &n.GetUUID) || !sym(h, "nvmlDeviceGetMemoryInfo", &n.GetMemoryInfo) ||
               !sym(h, "nvmlDeviceGetMemoryInfo_v2", &n.GetMemoryInfo_v2)) {
      error = "missing function";
    }
  }
  *why = error;
  return error.empty() ? &n : nullptr;
}

}  // namespace

void Runner::nvml_info(Outcome& o) {
  std::string why;
  const Nvml* n = load(&why);
  if (n == nullptr) {
    o.call = "dlopen";
    o.result = "NVML_ERROR_LIBRARY_NOT_FOUND";
    o.fields.str("error", why);
    return;
  }
  auto ok = [&](const char* call, nvmlReturn_t r) {
    static const char* const kNames[] = {"NVML_SUCCESS", "NVML_ERROR_UNINITIALIZED", "NVML_ERROR_INVALID_ARGUMENT",
                                         "NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_NO_PERMISSION",
                                         "NVML_ERROR_ALREADY_INITIALIZED", "NVML_ERROR_NOT_FOUND",
                                         "NVML_ERROR_INSUFFICIENT_SIZE"};
    o.call = call;
    if (r >= 0 && r < static_cast<int>(sizeof kNames / sizeof kNames[0])) {
      o.result = kNames[r];
    } else if (r == NVML_ERROR_ARGUMENT_VERSION_MISMATCH) {
      o.result = "NVML_ERROR_ARGUMENT_VERSION_MISMATCH";
    } else {
      o.result = "NVML_ERROR_" + std::to_string(static_cast<int>(r));
    }
    o.ok = r == NVML_SUCCESS;
    if (!o.ok) o.fields.str("error", n->ErrorString(r));
    return o.ok;
  };
  if (!ok("nvmlInit_v2", n->Init())) return;
  nvmlDevice_t d = nullptr;
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  nvmlMemory_t m1 = {};
  nvmlMemory_v2_t m2 = {};
  m2.version = nvmlMemory_v2;
  bool good = ok("nvmlDeviceGetHandleByIndex_v2", n->GetHandleByIndex(static_cast<unsigned>(device_), &d)) &&
              ok("nvmlDeviceGetUUID", n->GetUUID(d, uuid, sizeof uuid)) &&
              ok("nvmlDeviceGetMemoryInfo", n->GetMemoryInfo(d, &m1)) &&
              ok("nvmlDeviceGetMemoryInfo_v2", n->GetMemoryInfo_v2(d, &m2));
  n->Shutdown();
  if (!good) return;
  o.fields.str("uuid", uuid);
  JsonLine v1, v2;
  v1.num("total", m1.total);
  v1.num("free", m1.free);
  v1.num("used", m1.used);
  v2.num("total", m2.total);
  v2.num("reserved", m2.reserved);
  v2.num("free", m2.free);
  v2.num("used", m2.used);
  o.fields.obj("v1", v1);
  o.fields.obj("v2", v2);
}

}  // namespace memapp
