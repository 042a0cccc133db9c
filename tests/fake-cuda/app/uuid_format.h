// nvidia-smi style device UUID text.
#pragma once

#include <cuda.h>

#include <cstdio>
#include <string>

namespace fakeapp {

// "GPU-" + the 16 bytes as lower-case hex grouped 8-4-4-4-12, e.g.
// "GPU-fa4e0000-0000-0000-0000-00000000000d".
inline std::string format_uuid(const CUuuid& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char s[41];
  snprintf(s, sizeof s, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

}  // namespace fakeapp
