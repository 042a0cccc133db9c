// Stand-in libnvidia-ml.so.1: the devices of the stand-in libcuda.so.1 (FAKE_CUDA_DEVICES, same
// names and UUIDs) with FAKE_CUDA_MEM_BYTES of memory each, FAKE_NVML_USED_BYTES of it used (the
// same on every device: NVML reports device-wide use, which this stand-in cannot see). The
// environment is read at the first nvmlInit*; nvmlShutdown pairs with init as a reference count.
#include <cstdio>
#include <cstring>
#include <mutex>

#include "../libcuda/fake_env.h"
#include "fake_nvml.h"

#define NVML_API extern "C" __attribute__((visibility("default")))

struct nvmlDevice_st {
  unsigned int index;
};

namespace {

struct State {
  std::mutex mu;
  int refs = 0;
  unsigned int count = 0;
  unsigned long long total = 0, used = 0;
  nvmlDevice_st devices[64];
};

State& state() {
  static State* s = new State();  // leaked: no destructor at exit
  return *s;
}

nvmlReturn_t init() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  if (s.refs++ == 0) {
    s.count = static_cast<unsigned int>(fakecuda::env_device_count());
    s.total = fakecuda::env_mem_bytes();
    uint64_t used = 0;
    if (!fakecuda::parse_bytes(getenv("FAKE_NVML_USED_BYTES"), &used)) used = 0;
    s.used = used < s.total ? used : s.total;
    for (unsigned int i = 0; i < 64; ++i) s.devices[i].index = i;
  }
  return NVML_SUCCESS;
}

bool initialized() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  return s.refs > 0;
}

}  // namespace

// Checks init and the handle; *index: the device's index. A device marked lost in
// FAKE_NVML_EVENTS answers NVML_ERROR_GPU_IS_LOST (nvml_events.cpp).
nvmlReturn_t fakenvml::device_index(nvmlDevice_t d, unsigned int* index) {
  if (!initialized()) return NVML_ERROR_UNINITIALIZED;
  State& s = state();
  if (d == nullptr || d < s.devices || d >= s.devices + s.count) return NVML_ERROR_INVALID_ARGUMENT;
  if (fakenvml::lost(d->index)) return NVML_ERROR_GPU_IS_LOST;
  *index = d->index;
  return NVML_SUCCESS;
}

nvmlDevice_t fakenvml::device_at(unsigned int index) {
  return index < state().count ? &state().devices[index] : nullptr;
}

namespace {
using fakenvml::device_index;

void format_uuid(unsigned int index, char out[41]) {
  unsigned char b[16];
  fakecuda::device_uuid_bytes(static_cast<int>(index), b);
  snprintf(out, 41, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
           b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

// Copies text into buf of `length` bytes; NVML_ERROR_INSUFFICIENT_SIZE if it does not fit.
nvmlReturn_t copy_out(const char* text, char* buf, unsigned int length) {
  if (buf == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(buf, text, strlen(text) + 1);
  return NVML_SUCCESS;
}

}  // namespace

NVML_API nvmlReturn_t nvmlInit_v2(void) { return init(); }
NVML_API nvmlReturn_t nvmlInit(void) { return init(); }

NVML_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
  (void)flags;  // NVML_INIT_FLAG_NO_GPUS / _NO_ATTACH: nothing to attach to here
  return init();
}

NVML_API nvmlReturn_t nvmlShutdown(void) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  if (s.refs == 0) return NVML_ERROR_UNINITIALIZED;
  --s.refs;
  return NVML_SUCCESS;
}

NVML_API const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

NVML_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) {
  if (!initialized()) return NVML_ERROR_UNINITIALIZED;
  if (deviceCount == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *deviceCount = state().count;
  return NVML_SUCCESS;
}
NVML_API nvmlReturn_t nvmlDeviceGetCount(unsigned int* deviceCount) { return nvmlDeviceGetCount_v2(deviceCount); }

NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (!initialized()) return NVML_ERROR_UNINITIALIZED;
  if (device == nullptr || index >= state().count) return NVML_ERROR_INVALID_ARGUMENT;
  if (fakenvml::lost(index)) return NVML_ERROR_GPU_IS_LOST;
  *device = &state().devices[index];
  return NVML_SUCCESS;
}
NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return nvmlDeviceGetHandleByIndex_v2(index, device);
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  if (!initialized()) return NVML_ERROR_UNINITIALIZED;
  if (uuid == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  for (unsigned int i = 0; i < state().count; ++i) {
    char text[41];
    format_uuid(i, text);
    if (strcmp(text, uuid) == 0) {
      if (fakenvml::lost(i)) return NVML_ERROR_GPU_IS_LOST;
      *device = &state().devices[i];
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

NVML_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  unsigned int i = 0;
  if (nvmlReturn_t r = device_index(device, &i)) return r;
  char text[41];
  format_uuid(i, text);
  return copy_out(text, uuid, length);
}

NVML_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index) {
  unsigned int i = 0;
  if (nvmlReturn_t r = device_index(device, &i)) return r;
  if (index == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *index = i;
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  unsigned int i = 0;
  if (nvmlReturn_t r = device_index(device, &i)) return r;
  char text[32];
  snprintf(text, sizeof text, "Fake CUDA GPU %u", i);  // as cuDeviceGetName
  return copy_out(text, name, length);
}

NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  unsigned int i = 0;
  if (nvmlReturn_t r = device_index(device, &i)) return r;
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const State& s = state();
  memory->total = s.total;
  memory->used = s.used;
  memory->free = s.total - s.used;
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  unsigned int i = 0;
  if (nvmlReturn_t r = device_index(device, &i)) return r;
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  const State& s = state();
  memory->total = s.total;
  memory->reserved = 0;  // the stand-in reserves nothing for itself
  memory->used = s.used;
  memory->free = s.total - s.used;
  return NVML_SUCCESS;
}
