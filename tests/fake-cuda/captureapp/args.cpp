#include "args.h"

#include "../app/flag_reader.h"

#include <cerrno>
#include <cstdlib>

namespace capapp {

const char kUsage[] =
    "usage: fake-capture-app [--mode global|thread_local|relaxed] [--seconds 5] [--kernel_us 500]\n"
    "                        [--nodes 10] [--replays 20] [--alloc_bytes 2097152] [--threads 1]\n"
    "                        [--eager_thread] [--gap_ms 1] [--blocking] [--resident_bytes 0]\n";

const char* mode_name(CUstreamCaptureMode m) {
  switch (m) {
    case CU_STREAM_CAPTURE_MODE_GLOBAL: return "global";
    case CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: return "thread_local";
    case CU_STREAM_CAPTURE_MODE_RELAXED: return "relaxed";
    default: return "?";
  }
}

const char* violation_name(Violation v) {
  switch (v) {
    case Violation::kNone: return "none";
    case Violation::kCtxSync: return "ctx_sync";
    case Violation::kLegacyLaunch: return "legacy_launch";
    case Violation::kOtherThreadUnsafe: return "other_thread_unsafe";
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
    if (flag == "--eager_thread" && !has_value) {
      o->eager_thread = true;
    } else if (flag == "--blocking" && !has_value) {
      o->blocking = true;
    } else if (flag == "--mode") {
      if (!need()) return bad();
      if (value == "global") {
        o->mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
      } else if (value == "thread_local") {
        o->mode = CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
      } else if (value == "relaxed") {
        o->mode = CU_STREAM_CAPTURE_MODE_RELAXED;
      } else {
        return bad();
      }
    } else if (flag == "--violate") {
      if (!need()) return bad();
      if (value == "ctx_sync") {
        o->violate = Violation::kCtxSync;
      } else if (value == "legacy_launch") {
        o->violate = Violation::kLegacyLaunch;
      } else if (value == "other_thread_unsafe") {
        o->violate = Violation::kOtherThreadUnsafe;
      } else {
        return bad();
      }
    } else if (flag == "--seconds") {
      if (!need() || !to_seconds(value, &o->seconds)) return bad();
    } else if (flag == "--kernel_us") {
      if (!need() || !to_long(value, 0, 3600L * 1000000, &o->kernel_us)) return bad();
    } else if (flag == "--nodes") {
      if (!need() || !to_long(value, 1, 100000, &o->nodes)) return bad();
    } else if (flag == "--replays") {
      if (!need() || !to_long(value, 0, 1L << 30, &o->replays)) return bad();
    } else if (flag == "--alloc_bytes") {
      if (!need() || !to_long(value, 0, 1L << 40, &o->alloc_bytes)) return bad();
    } else if (flag == "--resident_bytes") {
      if (!need() || !to_long(value, 0, 1L << 40, &o->resident_bytes)) return bad();
    } else if (flag == "--threads") {
      if (!need() || !to_long(value, 1, 256, &l)) return bad();
      o->threads = static_cast<int>(l);
    } else if (flag == "--gap_ms") {
      if (!need() || !to_long(value, 0, 60000, &o->gap_ms)) return bad();
    } else {
      *error = "unknown argument " + std::string(r.arg());
      return false;
    }
  }
  return true;
}

}  // namespace capapp
