#include "device_uuid.h"

#include <cstdio>

#include "symbols.h"

namespace gem::hook {

std::string uuid_string(const CUuuid& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char s[64];
  std::snprintf(s, sizeof s,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

std::string device_uuid(CUdevice dev) {
  CUuuid u{};
  if (real::cuDeviceGetUuid_v2 == nullptr || real::cuDeviceGetUuid_v2(&u, dev) != CUDA_SUCCESS) return "";
  return uuid_string(u);
}

}  // namespace gem::hook
