// Which calls the hook may make into the driver while stream captures are in progress: the pure
// rule, no driver, no lock, no clock (capture_state.h gathers its inputs; docs/design.md, "Stream
// capture").
//
// Source: CUDA Programming Guide, "CUDA Graphs" -> "Prohibited and Unhandled Operations", and the
// driver API reference of cuThreadExchangeStreamCaptureMode / cuStreamBeginCapture:
//  - Illegal in every mode while a capture is in progress: synchronising or querying a context or
//    device that holds a capturing stream (cuCtxSynchronize), synchronising or querying the capturing
//    stream or an event recorded into it, and any use of the legacy NULL stream while a blocking
//    stream captures (it implicitly joins every blocking stream). The call fails and the capture is
//    invalidated (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED at its next call and at cuStreamEndCapture).
//  - "Potentially unsafe" calls (those that may synchronise implicitly: cuMemAlloc*, cuMemFree,
//    cuMemGetInfo, cuEventSynchronize/Query, cuStreamSynchronize/Query, prefetches and advice) are
//    prohibited to a thread by its capture mode, set with cuThreadExchangeStreamCaptureMode
//    (default GLOBAL): GLOBAL — while the thread itself has a capture not begun in RELAXED mode, or
//    another thread has a capture begun in GLOBAL mode; THREAD_LOCAL — only the first of these;
//    RELAXED — never.
// The hook's own threads (token worker, cache emptier) set themselves RELAXED; the wrappers run on
// the program's threads, in the program's mode.
#pragma once

#include "driver_api.h"

namespace gem::hook {

/// What the calling thread sees of the process's captures (capture_state.h's capture_view()).
struct CaptureView {
  int active = 0;         // captures in progress in the process, any thread, any mode
  int own_strict = 0;     // of them, begun by this thread in GLOBAL or THREAD_LOCAL mode
  int others_global = 0;  // of them, begun by other threads in GLOBAL mode
  CUstreamCaptureMode thread_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;  // this thread's mode
};

/// The kinds of driver call the hook makes itself.
enum class HookCall {
  kContextSync,  // cuCtxSynchronize (the drain, the idle look)
  kLegacyStream, // anything on the legacy NULL stream: records, waits, prefetches onto it
  kUnsafe,       // "potentially unsafe": event/stream synchronise, memory queries, allocations,
                 // prefetch and advice on the hook's own non-blocking stream
  kMemoryMove,   // moving managed memory (evict/prefetch): the hook's own policy is stricter than
                 // CUDA's and waits for every capture to end (docs/design.md says why)
};

/// True when the calling thread, seeing `v`, may make a call of kind `c` without invalidating a
/// capture. Pure; thread-safe.
bool capture_allows(const CaptureView& v, HookCall c);

/// True when a thread in `mode` with `own_strict` captures of its own and `others_global` GLOBAL
/// captures of other threads may make a potentially unsafe call (the CUDA rule above).
bool unsafe_call_allowed(CUstreamCaptureMode mode, int own_strict, int others_global);

}  // namespace gem::hook
