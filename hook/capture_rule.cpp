#include "capture_rule.h"

namespace gem::hook {

bool unsafe_call_allowed(CUstreamCaptureMode mode, int own_strict, int others_global) {
  switch (mode) {
    case CU_STREAM_CAPTURE_MODE_RELAXED:
      return true;
    case CU_STREAM_CAPTURE_MODE_THREAD_LOCAL:
      return own_strict <= 0;
    default:  // GLOBAL, and any value the driver does not define: the strictest reading
      return own_strict <= 0 && others_global <= 0;
  }
}

bool capture_allows(const CaptureView& v, HookCall c) {
  if (v.active <= 0) return true;
  switch (c) {
    case HookCall::kContextSync:
    case HookCall::kLegacyStream:
    case HookCall::kMemoryMove:
      return false;
    case HookCall::kUnsafe:
      return unsafe_call_allowed(v.thread_mode, v.own_strict, v.others_global);
  }
  return false;
}

}  // namespace gem::hook
