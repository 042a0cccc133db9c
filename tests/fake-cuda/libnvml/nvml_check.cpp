// Stand-in NVML: what `gemctl check` reads (tools/gemctl), each set by the environment of the
// process that loads the library (read at each call; the same on every device):
//   FAKE_NVML_DRIVER_VERSION   nvmlSystemGetDriverVersion            default "999.99-stand-in"
//   FAKE_NVML_CUDA_VERSION     nvmlSystemGetCudaDriverVersion(_v2)   default 12080 (12.8)
//   FAKE_NVML_PERSISTENCE      nvmlDeviceGetPersistenceMode 0/1      default 1
//   FAKE_NVML_COMPUTE_MODE     nvmlDeviceGetComputeMode 0-3          default 0 (Default)
//   FAKE_NVML_MIG              nvmlDeviceGetMigMode current 0/1      default 0
//   FAKE_NVML_SM_CLOCK         nvmlDeviceGetClockInfo(SM), MHz       default 1980 (= the maximum)
//   FAKE_NVML_THROTTLE         nvmlDeviceGetCurrentClocksThrottleReasons / ...EventReasons, bits  default 0
//   FAKE_NVML_ECC              nvmlDeviceGetEccMode current 0/1      default 1
//   FAKE_NVML_ECC_UNCORRECTED  nvmlDeviceGetTotalEccErrors (uncorrected, volatile)  default 0
//   FAKE_NVML_PROCESSES        nvmlDeviceGetComputeRunningProcesses(_v3): "PID:BYTES,PID:BYTES"  default none
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fake_nvml.h"

#define NVML_API extern "C" __attribute__((visibility("default")))

namespace {

unsigned long long env_num(const char* name, unsigned long long dflt) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return dflt;
  char* end = nullptr;
  const unsigned long long n = strtoull(v, &end, 0);
  return *end == '\0' ? n : dflt;
}

nvmlReturn_t check(nvmlDevice_t d) {
  unsigned int i = 0;
  return fakenvml::device_index(d, &i);
}

// The layout of NVIDIA's nvmlProcessInfo_t (v2/v3 functions).
struct ProcessInfo {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

}  // namespace

NVML_API nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  const char* v = getenv("FAKE_NVML_DRIVER_VERSION");
  const char* text = v != nullptr && *v != '\0' ? v : "999.99-stand-in";
  if (version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(version, text, strlen(text) + 1);
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* version) {
  if (version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *version = static_cast<int>(env_num("FAKE_NVML_CUDA_VERSION", 12080));
  return NVML_SUCCESS;
}
NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* version) { return nvmlSystemGetCudaDriverVersion_v2(version); }

NVML_API nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t d, unsigned int* mode) {
  if (nvmlReturn_t r = check(d)) return r;
  if (mode == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *mode = env_num("FAKE_NVML_PERSISTENCE", 1) != 0 ? 1 : 0;
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t d, unsigned int* mode) {
  if (nvmlReturn_t r = check(d)) return r;
  if (mode == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *mode = static_cast<unsigned int>(env_num("FAKE_NVML_COMPUTE_MODE", 0));
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int* current, unsigned int* pending) {
  if (nvmlReturn_t r = check(d)) return r;
  if (current == nullptr || pending == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *current = *pending = env_num("FAKE_NVML_MIG", 0) != 0 ? 1 : 0;
  return NVML_SUCCESS;
}

// Clock types: 0 graphics, 1 SM, 2 memory, 3 video.
NVML_API nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, unsigned int type, unsigned int* mhz) {
  if (nvmlReturn_t r = check(d)) return r;
  if (mhz == nullptr || type > 3) return NVML_ERROR_INVALID_ARGUMENT;
  *mhz = type == 2 ? 2619 : static_cast<unsigned int>(env_num("FAKE_NVML_SM_CLOCK", 1980));
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, unsigned int type, unsigned int* mhz) {
  if (nvmlReturn_t r = check(d)) return r;
  if (mhz == nullptr || type > 3) return NVML_ERROR_INVALID_ARGUMENT;
  *mhz = type == 2 ? 2619 : 1980;
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long* reasons) {
  if (nvmlReturn_t r = check(d)) return r;
  if (reasons == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *reasons = env_num("FAKE_NVML_THROTTLE", 0);
  return NVML_SUCCESS;
}
NVML_API nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long* reasons) {
  return nvmlDeviceGetCurrentClocksThrottleReasons(d, reasons);
}

NVML_API nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t d, unsigned int* current, unsigned int* pending) {
  if (nvmlReturn_t r = check(d)) return r;
  if (current == nullptr || pending == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *current = *pending = env_num("FAKE_NVML_ECC", 1) != 0 ? 1 : 0;
  return NVML_SUCCESS;
}

// errorType 1 = uncorrected (0 corrected); counterType 0 = volatile, 1 = aggregate.
NVML_API nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, unsigned int errorType, unsigned int counterType,
                                                  unsigned long long* count) {
  if (nvmlReturn_t r = check(d)) return r;
  if (count == nullptr || errorType > 1 || counterType > 1) return NVML_ERROR_INVALID_ARGUMENT;
  *count = errorType == 1 ? env_num("FAKE_NVML_ECC_UNCORRECTED", 0) : 0;
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count, void* infos) {
  if (nvmlReturn_t r = check(d)) return r;
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  ProcessInfo found[64];
  unsigned int n = 0;
  const char* spec = getenv("FAKE_NVML_PROCESSES");
  for (const char* p = spec != nullptr ? spec : ""; *p != '\0' && n < 64;) {
    unsigned int pid = 0;
    unsigned long long bytes = 0;
    int used = 0;
    if (sscanf(p, "%u:%llu%n", &pid, &bytes, &used) != 2) break;
    found[n++] = {pid, bytes, 0xFFFFFFFFu, 0xFFFFFFFFu};
    p += used;
    if (*p == ',') ++p;
  }
  const unsigned int room = *count;
  *count = n;
  if (n == 0) return NVML_SUCCESS;
  if (infos == nullptr || room < n) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(infos, found, n * sizeof(ProcessInfo));
  return NVML_SUCCESS;
}
NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int* count, void* infos) {
  return nvmlDeviceGetComputeRunningProcesses_v3(d, count, infos);
}
NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int* count, void* infos) {
  return nvmlDeviceGetComputeRunningProcesses_v3(d, count, infos);
}
