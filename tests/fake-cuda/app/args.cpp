#include "args.h"

#include "flag_reader.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fakeapp {

const char kUsage[] =
    "usage: fake-cuda-app [--device N] [--kernel_us 2000] [--seconds 5] [--threads 1]\n"
    "                     [--api launch|ex|coop|graph] [--ptsz] [--sync_every N] [--print-uuid]\n"
    "                     [--idle_ms_every N:MS] [--alternate N]\n"
    "  --alternate N: one thread launches N kernels on device 0, synchronises, then N on device 1, ...\n";

const char* api_name(Api a) {
  switch (a) {
    case Api::kLaunch: return "launch";
    case Api::kEx: return "ex";
    case Api::kCoop: return "coop";
    case Api::kGraph: return "graph";
  }
  return "?";
}

using fakeflags::to_long;
using fakeflags::to_seconds;

bool parse_args(int argc, char** argv, Options* o, std::string* error) {
  fakeflags::FlagReader r(argc, argv);
  while (r.next()) {
    const std::string& flag = r.flag();
    const std::string& value = r.value();
    const bool has_value = r.has_value();  // a switch given as --switch=x is unknown
    auto need = [&] { return r.take(); };
    auto bad = [&] { return r.bad(error); };
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
      if (!need() || !to_seconds(value, &o->seconds)) return bad();
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
    } else if (flag == "--alternate") {
      if (!need() || !to_long(value, 1, 1L << 40, &o->alternate)) return bad();
    } else if (flag == "--idle_ms_every") {
      if (!need()) return bad();
      size_t colon = value.find(':');
      if (colon == std::string::npos || !to_long(value.substr(0, colon), 1, 1L << 40, &o->idle_every) ||
          !to_long(value.substr(colon + 1), 0, 3600L * 1000, &o->idle_ms)) {
        return bad();
      }
    } else {
      *error = "unknown argument " + std::string(r.arg());
      return false;
    }
  }
  return true;
}

}  // namespace fakeapp
