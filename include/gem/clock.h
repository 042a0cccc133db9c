// Monotonic time in microseconds (CLOCK_MONOTONIC), the one time base every component and the
// fake driver share, so intervals from different processes on one host can be compared.
#pragma once

#include <cstdint>
#include <ctime>

namespace gem {

using Micros = int64_t;

inline Micros mono_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace gem
