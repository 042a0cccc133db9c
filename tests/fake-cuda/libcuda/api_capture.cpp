// Stream capture: cuStreamBeginCapture_v2 on a stream made with cuStreamCreate starts a graph into
// which kernels launched on that stream go (they do not run) until cuStreamEndCapture hands the
// graph back. The default streams (legacy, per-thread) cannot be captured here:
// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED. Modes are checked, not enforced.
#include "fake_driver.h"

using fakecuda::Driver;
using fakecuda::HandleKind;

namespace {

CUresult captured_stream(CUstream s, bool ptsz, CUstream_st** out) {
  if (CUresult r = fakecuda::check_init()) return r;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  if (t.stream == nullptr) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  *out = t.stream;
  return CUDA_SUCCESS;
}

CUresult begin_capture(CUstream s, CUstreamCaptureMode mode, bool ptsz) {
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  CUstream_st* st = nullptr;
  if (CUresult r = captured_stream(s, ptsz, &st)) return r;
  auto* g = new CUgraph_st();
  CUgraph_st* none = nullptr;
  if (!st->capture.compare_exchange_strong(none, g)) {
    delete g;
    return CUDA_ERROR_ILLEGAL_STATE;
  }
  Driver::get().add_handle(g, HandleKind::kGraph);
  return CUDA_SUCCESS;
}

CUresult end_capture(CUstream s, CUgraph* phGraph, bool ptsz) {
  if (phGraph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* st = nullptr;
  if (CUresult r = captured_stream(s, ptsz, &st)) return r;
  CUgraph_st* g = st->capture.exchange(nullptr);
  if (g == nullptr) return CUDA_ERROR_ILLEGAL_STATE;
  *phGraph = g;
  return CUDA_SUCCESS;
}

CUresult is_capturing(CUstream s, CUstreamCaptureStatus* status, bool ptsz) {
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = fakecuda::check_init()) return r;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  const bool on = t.stream != nullptr && t.stream->capture.load() != nullptr;
  *status = on ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  return begin_capture(hStream, mode, false);
}

FAKE_API CUresult CUDAAPI cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  return begin_capture(hStream, mode, true);
}

FAKE_API CUresult CUDAAPI cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  return end_capture(hStream, phGraph, false);
}

FAKE_API CUresult CUDAAPI cuStreamEndCapture_ptsz(CUstream hStream, CUgraph* phGraph) {
  return end_capture(hStream, phGraph, true);
}

FAKE_API CUresult CUDAAPI cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  return is_capturing(hStream, captureStatus, false);
}

FAKE_API CUresult CUDAAPI cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  return is_capturing(hStream, captureStatus, true);
}

FAKE_API CUresult CUDAAPI cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  if (mode == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  return CUDA_SUCCESS;
}

FAKE_ALIAS(cuStreamBeginCapture_v2)
FAKE_ALIAS(cuStreamBeginCapture_v2_ptsz)
FAKE_ALIAS(cuStreamEndCapture)
FAKE_ALIAS(cuStreamEndCapture_ptsz)
FAKE_ALIAS(cuStreamIsCapturing)
FAKE_ALIAS(cuStreamIsCapturing_ptsz)
FAKE_ALIAS(cuThreadExchangeStreamCaptureMode)
