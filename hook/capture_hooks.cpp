// The GEM_WRAP bodies of the capture functions of cuda_hooks.def: they keep capture_state.h's
// record of the process's captures and of each thread's capture mode, and otherwise call the real
// function once, unchanged.
#include "capture_state.h"
#include "mem_hooks.h"  // declares every GEM_WRAP body
#include "symbols.h"

namespace gem::hook {

namespace {

// Counts the capture before `begin` runs and takes it back if the driver refused it.
template <typename Call>
CUresult begin(CUstream stream, bool ptsz, CUstreamCaptureMode mode, Call&& call) {
  const int slot = capture_begin_note(stream, ptsz, mode);
  const CUresult r = call();
  capture_begun(slot, r == CUDA_SUCCESS);
  return r;
}

// Whether `stream` is in a capture (active or invalidated); false when the driver cannot say.
bool in_capture(CUstream stream, bool ptsz) {
  if ((stream == nullptr && !ptsz) || stream == CU_STREAM_LEGACY) return false;  // never captured
  auto query = ptsz ? real::cuStreamIsCapturing_ptsz : real::cuStreamIsCapturing;
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  return query != nullptr && query(stream, &st) == CUDA_SUCCESS && st != CU_STREAM_CAPTURE_STATUS_NONE;
}

// Counts the capture of `stream` as ended when `end` left the stream out of capture (an end call
// from the wrong thread, or on a stream that was not capturing, ends nothing).
template <typename Call>
CUresult end(CUstream stream, bool ptsz, Call&& call) {
  const bool was = in_capture(stream, ptsz);
  const CUresult r = call();
  if (was && !in_capture(stream, ptsz)) capture_ended(stream, ptsz);
  return r;
}

}  // namespace

// cuStreamBeginCapture and its _ptsz are the CUDA 10.0 forms without a mode: GLOBAL (cuda.h).
CUresult on_cuStreamBeginCapture(CUstream hStream) {
  return begin(hStream, false, CU_STREAM_CAPTURE_MODE_GLOBAL, [&] { return real::cuStreamBeginCapture(hStream); });
}

CUresult on_cuStreamBeginCapture_ptsz(CUstream hStream) {
  return begin(hStream, true, CU_STREAM_CAPTURE_MODE_GLOBAL,
               [&] { return real::cuStreamBeginCapture_ptsz(hStream); });
}

CUresult on_cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  return begin(hStream, false, mode, [&] { return real::cuStreamBeginCapture_v2(hStream, mode); });
}

CUresult on_cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  return begin(hStream, true, mode, [&] { return real::cuStreamBeginCapture_v2_ptsz(hStream, mode); });
}

CUresult on_cuStreamBeginCaptureToGraph GEM_CAPTURE_TO_GRAPH_PARAMS {
  return begin(hStream, false, mode, [&] { return real::cuStreamBeginCaptureToGraph GEM_CAPTURE_TO_GRAPH_ARGS; });
}

CUresult on_cuStreamBeginCaptureToGraph_ptsz GEM_CAPTURE_TO_GRAPH_PARAMS {
  return begin(hStream, true, mode,
               [&] { return real::cuStreamBeginCaptureToGraph_ptsz GEM_CAPTURE_TO_GRAPH_ARGS; });
}

CUresult on_cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  return end(hStream, false, [&] { return real::cuStreamEndCapture(hStream, phGraph); });
}

CUresult on_cuStreamEndCapture_ptsz(CUstream hStream, CUgraph* phGraph) {
  return end(hStream, true, [&] { return real::cuStreamEndCapture_ptsz(hStream, phGraph); });
}

CUresult on_cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  const CUstreamCaptureMode asked = mode != nullptr ? *mode : CU_STREAM_CAPTURE_MODE_GLOBAL;
  const CUresult r = real::cuThreadExchangeStreamCaptureMode(mode);
  if (r == CUDA_SUCCESS) thread_mode_set(asked);
  return r;
}

}  // namespace gem::hook
