// CHECK(cond) for the fuzz targets: a property that does not hold aborts with its text, so
// libFuzzer records the input as a crash. Each target defines kFuzzTarget (its name) first.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace fuzzcheck {
[[noreturn]] inline void fail(const char* target, const char* what) {
  std::fprintf(stderr, "%s: property violated: %s\n", target, what);
  std::abort();
}
}  // namespace fuzzcheck

/// Aborts with `what` (for properties stated in words rather than as one expression).
#define FAIL(what) fuzzcheck::fail(kFuzzTarget, what)

#define CHECK(cond)                                  \
  do {                                               \
    if (!(cond)) fuzzcheck::fail(kFuzzTarget, #cond); \
  } while (0)
