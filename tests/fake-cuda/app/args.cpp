#include "args.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fakeapp {

const char kUsage[] =
    "usage: fake-cuda-app [--device N] [--kernel_us 2000] [--seconds 5] [--threads 1]\n"
    "                     [--api launch|ex|coop|graph] [--ptsz] [--sync_every N] [--print-uuid]\n"
    "                     [--idle_ms_every N:MS]\n";

const char* api_name(Api a) {
  switch (a) {
    case Api::kLaunch: return "launch";
    case Api::kEx: return "ex";
    case Api::kCoop: return "coop";
    case Api::kGraph: return "graph";
  }
  return "?";
}

namespace {

bool to_long(const std::string& s, long lo, long hi, long* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long v = strtol(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool to_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !(v >= 0) || v > 1e7) return false;
  *out = v;
  return true;
}

}  // namespace

bool parse_args(int argc, char** argv, Options* o, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      has_value = true;
    }
    auto need = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    auto bad = [&]() {
      *error = "bad or missing value for " + flag;
      return false;
    };
    long l = 0;
    if (flag == "--ptsz" && !has_value) {
      o->ptsz = true;
    } else if (flag == "--print-uuid" && !has_value) {
      o->print_uuid = true;
    } else if (flag == "--device") {
      if (!need() || !to_long(value, 0, 1 << 20, &l)) return bad();
      o->device = static_cast<int>(l);
    } else if (flag == "--kernel_us") {
      if (!need() || !to_long(value, 0, 3600L * 1000000, &o->kernel_us)) return bad();
    } else if (flag == "--seconds") {
      if (!need() || !to_double(value, &o->seconds)) return bad();
    } else if (flag == "--threads") {
      if (!need() || !to_long(value, 1, 1024, &l)) return bad();
      o->threads = static_cast<int>(l);
    } else if (flag == "--sync_every") {
      if (!need() || !to_long(value, 0, 1L << 40, &o->sync_every)) return bad();
    } else if (flag == "--api") {
      if (!need()) return bad();
      if (value == "launch") {
        o->api = Api::kLaunch;
      } else if (value == "ex") {
        o->api = Api::kEx;
      } else if (value == "coop") {
        o->api = Api::kCoop;
      } else if (value == "graph") {
        o->api = Api::kGraph;
      } else {
        return bad();
      }
    } else if (flag == "--idle_ms_every") {
      if (!need()) return bad();
      size_t colon = value.find(':');
      if (colon == std::string::npos || !to_long(value.substr(0, colon), 1, 1L << 40, &o->idle_every) ||
          !to_long(value.substr(colon + 1), 0, 3600L * 1000, &o->idle_ms)) {
        return bad();
      }
    } else {
      *error = "unknown argument " + std::string(argv[i]);
      return false;
    }
  }
  return true;
}

}  // namespace fakeapp
