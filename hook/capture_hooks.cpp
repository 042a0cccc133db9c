#include "capture_hooks.h"

#include <atomic>

#include "mem_hooks.h"  // declares every GEM_WRAP body
#include "symbols.h"

namespace gem::hook {

namespace {

std::atomic<int> g_captures{0};

// Counts the capture before `begin` runs and takes it back if the driver refused it.
template <typename Call>
CUresult begin(Call&& call) {
  g_captures.fetch_add(1, std::memory_order_seq_cst);
  const CUresult r = call();
  if (r != CUDA_SUCCESS) g_captures.fetch_sub(1, std::memory_order_seq_cst);
  return r;
}

// Whether `stream` is in a capture (active or invalidated); false when the driver cannot say.
bool in_capture(CUstream stream, bool ptsz) {
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
  if (was && !in_capture(stream, ptsz)) {
    int n = g_captures.load(std::memory_order_relaxed);
    while (n > 0 && !g_captures.compare_exchange_weak(n, n - 1, std::memory_order_seq_cst)) {
    }
  }
  return r;
}

}  // namespace

int active_captures() { return g_captures.load(std::memory_order_seq_cst); }

CUresult on_cuStreamBeginCapture(CUstream hStream) {
  return begin([&] { return real::cuStreamBeginCapture(hStream); });
}

CUresult on_cuStreamBeginCapture_ptsz(CUstream hStream) {
  return begin([&] { return real::cuStreamBeginCapture_ptsz(hStream); });
}

CUresult on_cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  return begin([&] { return real::cuStreamBeginCapture_v2(hStream, mode); });
}

CUresult on_cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  return begin([&] { return real::cuStreamBeginCapture_v2_ptsz(hStream, mode); });
}

CUresult on_cuStreamBeginCaptureToGraph GEM_CAPTURE_TO_GRAPH_PARAMS {
  return begin([&] { return real::cuStreamBeginCaptureToGraph GEM_CAPTURE_TO_GRAPH_ARGS; });
}

CUresult on_cuStreamBeginCaptureToGraph_ptsz GEM_CAPTURE_TO_GRAPH_PARAMS {
  return begin([&] { return real::cuStreamBeginCaptureToGraph_ptsz GEM_CAPTURE_TO_GRAPH_ARGS; });
}

CUresult on_cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  return end(hStream, false, [&] { return real::cuStreamEndCapture(hStream, phGraph); });
}

CUresult on_cuStreamEndCapture_ptsz(CUstream hStream, CUgraph* phGraph) {
  return end(hStream, true, [&] { return real::cuStreamEndCapture_ptsz(hStream, phGraph); });
}

}  // namespace gem::hook
