// Stream capture entry points: cuStreamBeginCapture (CUDA 10.0, no mode: GLOBAL), _v2 and
// cuStreamBeginCaptureToGraph (12.3) on a stream made with cuStreamCreate start a capture sequence
// into which kernels and graph launches on that stream go (they do not run) until
// cuStreamEndCapture hands the graph back. The default streams (legacy, per-thread) cannot be
// captured here: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED. What a capture makes illegal, and
// invalidation: capture_rules.h.
#include "capture_rules.h"
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

// into: the graph to capture into (cuStreamBeginCaptureToGraph), or nullptr for a new one.
CUresult begin_capture(CUstream s, CUstreamCaptureMode mode, bool ptsz, CUgraph into = nullptr) {
  if (!fakecuda::valid_capture_mode(mode)) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* st = nullptr;
  if (CUresult r = captured_stream(s, ptsz, &st)) return r;
  CUgraph g = into != nullptr ? into : new CUgraph_st();
  if (CUresult r = fakecuda::capture_begin(st, mode, g, into == nullptr)) {
    if (into == nullptr) delete g;
    return r;
  }
  if (into == nullptr) Driver::get().add_handle(g, HandleKind::kGraph);
  return CUDA_SUCCESS;
}

CUresult begin_capture_to_graph(CUstream s, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* edges,
                                size_t ndeps, CUstreamCaptureMode mode, bool ptsz) {
  (void)edges;
  if (CUresult r = fakecuda::check_init()) return r;
  CUgraphNode unused = nullptr;
  if (CUresult r = fakecuda::check_node_args(&unused, g, deps, ndeps)) return r;
  return begin_capture(s, mode, ptsz, g);
}

CUresult end_capture(CUstream s, CUgraph* phGraph, bool ptsz) {
  if (phGraph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* st = nullptr;
  if (CUresult r = captured_stream(s, ptsz, &st)) return r;
  return fakecuda::capture_end(st, phGraph);
}

CUresult capture_info(CUstream s, bool ptsz, CUstreamCaptureStatus* status, cuuint64_t* id, CUgraph* graph,
                      const CUgraphNode** deps, const CUgraphEdgeData** edges, size_t* ndeps) {
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = fakecuda::check_init()) return r;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  uint64_t cid = 0;
  CUresult r = fakecuda::capture_status(t, status, &cid, graph);
  if (id != nullptr) *id = cid;
  // Dependencies are not modelled: nodes of a capture run in insertion order.
  if (deps != nullptr) *deps = nullptr;
  if (edges != nullptr) *edges = nullptr;
  if (ndeps != nullptr) *ndeps = 0;
  return r;
}

CUresult is_capturing(CUstream s, CUstreamCaptureStatus* status, bool ptsz) {
  return capture_info(s, ptsz, status, nullptr, nullptr, nullptr, nullptr, nullptr);
}

}  // namespace

FAKE_API CUresult CUDAAPI cuStreamBeginCapture(CUstream hStream) {
  return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, false);
}

FAKE_API CUresult CUDAAPI cuStreamBeginCapture_ptsz(CUstream hStream) {
  return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, true);
}

FAKE_API CUresult CUDAAPI cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  return begin_capture(hStream, mode, false);
}

FAKE_API CUresult CUDAAPI cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  return begin_capture(hStream, mode, true);
}

FAKE_API CUresult CUDAAPI cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph,
                                                      const CUgraphNode* dependencies,
                                                      const CUgraphEdgeData* dependencyData, size_t numDependencies,
                                                      CUstreamCaptureMode mode) {
  return begin_capture_to_graph(hStream, hGraph, dependencies, dependencyData, numDependencies, mode, false);
}

FAKE_API CUresult CUDAAPI cuStreamBeginCaptureToGraph_ptsz(CUstream hStream, CUgraph hGraph,
                                                           const CUgraphNode* dependencies,
                                                           const CUgraphEdgeData* dependencyData,
                                                           size_t numDependencies, CUstreamCaptureMode mode) {
  return begin_capture_to_graph(hStream, hGraph, dependencies, dependencyData, numDependencies, mode, true);
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

// CUDA 10.1 form: status and id only.
FAKE_API CUresult CUDAAPI cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                 cuuint64_t* id_out) {
  return capture_info(hStream, false, captureStatus_out, id_out, nullptr, nullptr, nullptr, nullptr);
}

FAKE_API CUresult CUDAAPI cuStreamGetCaptureInfo_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                      cuuint64_t* id_out) {
  return capture_info(hStream, true, captureStatus_out, id_out, nullptr, nullptr, nullptr, nullptr);
}

// CUDA 11.3 form: also the graph and the dependency set (always empty here).
FAKE_API CUresult CUDAAPI cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                    cuuint64_t* id_out, CUgraph* graph_out,
                                                    const CUgraphNode** dependencies_out,
                                                    size_t* numDependencies_out) {
  return capture_info(hStream, false, captureStatus_out, id_out, graph_out, dependencies_out, nullptr,
                      numDependencies_out);
}

FAKE_API CUresult CUDAAPI cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                         cuuint64_t* id_out, CUgraph* graph_out,
                                                         const CUgraphNode** dependencies_out,
                                                         size_t* numDependencies_out) {
  return capture_info(hStream, true, captureStatus_out, id_out, graph_out, dependencies_out, nullptr,
                      numDependencies_out);
}

// CUDA 12.3 form (cuda.h's cuStreamGetCaptureInfo in CUDA 13): also the edge data.
FAKE_API CUresult CUDAAPI cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                    cuuint64_t* id_out, CUgraph* graph_out,
                                                    const CUgraphNode** dependencies_out,
                                                    const CUgraphEdgeData** edgeData_out,
                                                    size_t* numDependencies_out) {
  return capture_info(hStream, false, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
                      numDependencies_out);
}

FAKE_API CUresult CUDAAPI cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                         cuuint64_t* id_out, CUgraph* graph_out,
                                                         const CUgraphNode** dependencies_out,
                                                         const CUgraphEdgeData** edgeData_out,
                                                         size_t* numDependencies_out) {
  return capture_info(hStream, true, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
                      numDependencies_out);
}

FAKE_API CUresult CUDAAPI cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  return fakecuda::capture_exchange_mode(mode);
}

FAKE_ALIAS(cuStreamBeginCapture)
FAKE_ALIAS(cuStreamBeginCapture_ptsz)
FAKE_ALIAS(cuStreamBeginCapture_v2)
FAKE_ALIAS(cuStreamBeginCapture_v2_ptsz)
FAKE_ALIAS(cuStreamBeginCaptureToGraph)
FAKE_ALIAS(cuStreamBeginCaptureToGraph_ptsz)
FAKE_ALIAS(cuStreamEndCapture)
FAKE_ALIAS(cuStreamEndCapture_ptsz)
FAKE_ALIAS(cuStreamIsCapturing)
FAKE_ALIAS(cuStreamIsCapturing_ptsz)
FAKE_ALIAS(cuStreamGetCaptureInfo)
FAKE_ALIAS(cuStreamGetCaptureInfo_ptsz)
FAKE_ALIAS(cuStreamGetCaptureInfo_v2)
FAKE_ALIAS(cuStreamGetCaptureInfo_v2_ptsz)
FAKE_ALIAS(cuStreamGetCaptureInfo_v3)
FAKE_ALIAS(cuStreamGetCaptureInfo_v3_ptsz)
FAKE_ALIAS(cuThreadExchangeStreamCaptureMode)
