// Stream capture state and rules of the stand-in driver: which capture sequences are in progress,
// each thread's capture mode, and which calls they make illegal. Every affected entry point calls
// one of the capture_check_* functions first; the rules live only in capture_rules.cpp.
//
// Sources (CUDA 13):
//  - CUDA Programming Guide, "CUDA Graphs" > "Stream Capture" > "Prohibited and Unhandled
//    Operations" (synchronising or querying a capturing stream or its context, an event recorded
//    into a capture, and implicit use of the legacy stream by a blocking capturing stream are
//    illegal and invalidate the capture) and "Invalidation" (later calls on the capture return
//    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, cuStreamEndCapture returns a NULL graph).
//  - Driver API reference, cuThreadExchangeStreamCaptureMode and cuStreamBeginCapture: the
//    "potentially unsafe" calls (memory allocation, event/stream query and synchronisation ...) and
//    which capture modes prohibit them to which threads; cuStreamEndCapture's
//    CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD; cuStreamIsCapturing's CUDA_ERROR_STREAM_CAPTURE_IMPLICIT.
//
// Every invalidation is counted (capture_invalidations()), appended to the FAKE_CUDA_LOG kernel
// log as "capture-invalidated <pid> <api>:<mode>:<reason>" (three fields: the kernel-log readers
// skip it), and to the file named by FAKE_CUDA_CAPTURE_LOG as
// "invalidated <api> <mode-of-capture> <reason>".
#pragma once

#include <cstdint>

#include "fake_driver.h"

namespace fakecuda {

/// Registers a capture sequence on explicit stream s (device s->device), begun by the calling
/// thread in `mode`, into `graph` (owns_graph: created for it by cuStreamBeginCapture, destroyed
/// if the capture ends invalidated). CUDA_ERROR_ILLEGAL_STATE if s is already capturing.
/// Thread-safe.
CUresult capture_begin(CUstream_st* s, CUstreamCaptureMode mode, CUgraph graph, bool owns_graph);

/// Ends the capture on s for the calling thread (cuStreamEndCapture): CUDA_ERROR_ILLEGAL_STATE if
/// none; CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD (capture continues) if it was begun in GLOBAL or
/// THREAD_LOCAL mode by another thread; CUDA_ERROR_STREAM_CAPTURE_INVALIDATED with *graph = nullptr
/// (capture ended) if it was invalidated; else CUDA_SUCCESS with the captured graph. Thread-safe.
CUresult capture_end(CUstream_st* s, CUgraph* graph);

/// Status of stream target t (cuStreamIsCapturing, cuStreamGetCaptureInfo): NONE / ACTIVE /
/// INVALIDATED for explicit streams, NONE for per-thread streams. For the legacy stream:
/// CUDA_ERROR_STREAM_CAPTURE_IMPLICIT while a blocking stream of its device captures (nothing is
/// invalidated), else NONE. *id (if given): the capture's unique id (> 0), 0 when none; *graph (if
/// given): its graph or nullptr. Thread-safe.
CUresult capture_status(const StreamTarget& t, CUstreamCaptureStatus* status, uint64_t* id, CUgraph* graph);

/// Where work enqueued on t goes (kernel, graph launch, event record; checked before anything is
/// done): CUDA_SUCCESS with *graph = the capture's graph (the work becomes a node) or nullptr (it
/// runs); CUDA_ERROR_STREAM_CAPTURE_INVALIDATED if t's capture was invalidated; for the legacy
/// stream, the implicit-use rule of capture_check_stream. *capture_id (if given): the capture's
/// id or 0. Thread-safe.
CUresult capture_enqueue(const StreamTarget& t, const char* api, CUgraph* graph, uint64_t* capture_id = nullptr);

/// What a call does to stream target t, for capture_check_stream.
enum class StreamUse {
  kEnqueue,    // async work onto it (memcpy, prefetch, ...)
  kSyncQuery,  // cuStreamSynchronize / cuStreamQuery
};

/// Always-illegal stream uses ("Prohibited and Unhandled Operations"), in every capture mode:
///  - the legacy stream used while a stream created without CU_STREAM_NON_BLOCKING on its device
///    captures: those captures are invalidated, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
///  - kSyncQuery of a capturing stream: its capture is invalidated,
///    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED.
/// CUDA_SUCCESS otherwise. Thread-safe.
CUresult capture_check_stream(const StreamTarget& t, StreamUse use, const char* api);

/// cuCtxSynchronize on `device`: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, invalidating them, while
/// any capture is in progress on the device. Thread-safe.
CUresult capture_check_device_sync(int device, const char* api);

/// cuEventSynchronize / cuEventQuery of an event last recorded into a capture (capture_id > 0):
/// CUDA_ERROR_CAPTURED_EVENT (cuda.h: "not permitted on an event which was last recorded in a
/// capturing stream"), invalidating that capture if it is still in progress. Thread-safe.
CUresult capture_check_event(uint64_t capture_id, const char* api);

/// A "potentially unsafe" call (cuThreadExchangeStreamCaptureMode) by the calling thread: prohibited
/// if its mode is GLOBAL and another thread has a capture begun in GLOBAL mode, or its mode is GLOBAL
/// or THREAD_LOCAL and it has a capture of its own not begun in RELAXED mode; RELAXED threads never
/// are. Prohibited: the captures that prohibit it are invalidated and the call must fail with the
/// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED returned, without doing its work. Thread-safe.
CUresult capture_check_unsafe(const char* api);

/// cuThreadExchangeStreamCaptureMode: *mode gets the calling thread's mode (default GLOBAL), which
/// becomes the given one. CUDA_ERROR_INVALID_VALUE for a null pointer or an unknown mode.
CUresult capture_exchange_mode(CUstreamCaptureMode* mode);

/// Forgets the capture of a destroyed stream (not an invalidation). Thread-safe.
void capture_stream_destroyed(CUstream_st* s);

/// Captures invalidated so far in this process.
uint64_t capture_invalidations();

/// True for the three modes of cuda.h.
inline bool valid_capture_mode(CUstreamCaptureMode m) {
  return m == CU_STREAM_CAPTURE_MODE_GLOBAL || m == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL ||
         m == CU_STREAM_CAPTURE_MODE_RELAXED;
}

}  // namespace fakecuda
