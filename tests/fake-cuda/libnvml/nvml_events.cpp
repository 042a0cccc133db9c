// Stand-in NVML events and lost GPUs, driven by the file FAKE_NVML_EVENTS (tests append to it):
//   xid INDEX N     a critical XID event N on device INDEX (delivered once per event set)
//   lost INDEX      device INDEX is lost from then on: every call on it answers NVML_ERROR_GPU_IS_LOST
// nvmlEventSetWait_v2 re-reads the file every 10 ms until an event of a registered device comes or
// its timeout passes (without FAKE_NVML_EVENTS it just sleeps the timeout). Only nvmlEventTypeXidCriticalError is supported.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "gem/clock.h"
#include "fake_nvml.h"

#define NVML_API extern "C" __attribute__((visibility("default")))

struct nvmlEventSet_st {
  std::mutex mu;
  std::vector<unsigned int> devices;
  size_t consumed = 0;  // lines of the file already looked at
};

namespace {

struct Line {
  bool lost = false;
  unsigned int index = 0;
  unsigned long long xid = 0;
};

std::vector<Line> read_lines() {
  std::vector<Line> out;
  const char* path = getenv("FAKE_NVML_EVENTS");
  if (path == nullptr || *path == '\0') return out;
  FILE* f = fopen(path, "r");
  if (f == nullptr) return out;
  char buf[256];
  while (fgets(buf, sizeof buf, f) != nullptr) {
    Line l;
    unsigned int idx = 0;
    unsigned long long xid = 0;
    if (sscanf(buf, "xid %u %llu", &idx, &xid) == 2) {
      l.index = idx;
      l.xid = xid;
    } else if (sscanf(buf, "lost %u", &idx) == 1) {
      l.lost = true;
      l.index = idx;
    } else {
      continue;
    }
    out.push_back(l);
  }
  fclose(f);
  return out;
}

bool registered(const nvmlEventSet_st& s, unsigned int index) {
  for (unsigned int d : s.devices) {
    if (d == index) return true;
  }
  return false;
}

}  // namespace

bool fakenvml::lost(unsigned int index) {
  for (const Line& l : read_lines()) {
    if (l.lost && l.index == index) return true;
  }
  return false;
}

NVML_API nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  if (set == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *set = new nvmlEventSet_st();
  (*set)->consumed = read_lines().size();  // only events after the set was made
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set) {
  unsigned int i = 0;
  if (nvmlReturn_t r = fakenvml::device_index(device, &i)) return r;
  if (set == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if ((eventTypes & ~static_cast<unsigned long long>(nvmlEventTypeXidCriticalError)) != 0) {
    return NVML_ERROR_NOT_SUPPORTED;
  }
  std::lock_guard<std::mutex> lk(set->mu);
  set->devices.push_back(i);
  return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutms) {
  if (set == nullptr || data == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const gem::Micros deadline = gem::mono_us() + static_cast<gem::Micros>(timeoutms) * 1000;
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(set->mu);
      const std::vector<Line> lines = read_lines();
      for (; set->consumed < lines.size(); ++set->consumed) {
        const Line& l = lines[set->consumed];
        if (!registered(*set, l.index)) continue;
        if (l.lost) return NVML_ERROR_GPU_IS_LOST;  // not consumed: it stays lost
        *data = {fakenvml::device_at(l.index), nvmlEventTypeXidCriticalError, l.xid, 0xFFFFFFFFu, 0xFFFFFFFFu};
        ++set->consumed;
        return NVML_SUCCESS;
      }
    }
    const gem::Micros now = gem::mono_us();
    if (now >= deadline) return NVML_ERROR_TIMEOUT;
    // Without FAKE_NVML_EVENTS nothing can come: sleep the whole timeout (an idle gem-schd stays idle).
    const char* path = getenv("FAKE_NVML_EVENTS");
    usleep(path == nullptr || *path == '\0' ? static_cast<useconds_t>(deadline - now) : 10000);
  }
}

NVML_API nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  delete set;
  return NVML_SUCCESS;
}
