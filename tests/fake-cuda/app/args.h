// Command line of fake-cuda-app (see docs/interfaces.md).
#pragma once

#include <string>

namespace fakeapp {

enum class Api { kLaunch, kEx, kCoop, kGraph };

struct Options {
  int device = 0;
  long kernel_us = 2000;
  double seconds = 5.0;
  int threads = 1;
  Api api = Api::kLaunch;
  bool ptsz = false;
  long sync_every = 0;      // 0: only at the end
  bool print_uuid = false;
  long idle_every = 0;      // --idle_ms_every N:MS -> N (0: never idle)
  long idle_ms = 0;         //                     -> MS
  long alternate = 0;       // --alternate N: N launches on device 0, sync, N on device 1, sync, ... (0: off)
};

const char* api_name(Api a);

// Parses argv ("--flag value" or "--flag=value"). On error returns false and sets *error.
bool parse_args(int argc, char** argv, Options* out, std::string* error);

extern const char kUsage[];

}  // namespace fakeapp
