// CUDA graphs of kernel nodes and memory nodes (api_graph_mem.cpp). An instantiated graph is one
// op on the device FIFO that lasts as long as its kernel nodes run back to back, logged as one line
// per launch.
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Driver;
using fakecuda::HandleKind;
using fakecuda::Memory;

namespace fakecuda {

CUresult check_node_args(CUgraphNode* phNode, CUgraph g, const CUgraphNode* deps, size_t ndeps) {
  if (CUresult r = check_init()) return r;
  if (phNode == nullptr || (ndeps != 0 && deps == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  Driver& drv = Driver::get();
  if (!drv.valid_handle(g, HandleKind::kGraph)) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < ndeps; ++i) {
    if (!drv.valid_handle(deps[i], HandleKind::kGraphNode)) return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

void add_node(CUgraph g, Nanos duration_ns, CUgraphNode* phNode) {
  auto* n = new CUgraphNode_st{duration_ns};
  Driver::get().add_handle(n, HandleKind::kGraphNode);
  std::lock_guard<std::mutex> lk(g->mu);
  g->nodes.push_back(n);
  *phNode = n;
}

}  // namespace fakecuda

namespace {

CUresult add_kernel_node(CUgraphNode* phNode, CUgraph g, const CUgraphNode* deps, size_t ndeps, CUfunction f) {
  if (CUresult r = fakecuda::check_node_args(phNode, g, deps, ndeps)) return r;
  if (!Driver::get().valid_handle(f, HandleKind::kFunction)) return CUDA_ERROR_INVALID_VALUE;
  fakecuda::add_node(g, f->duration_ns, phNode);
  return CUDA_SUCCESS;
}

CUresult instantiate(CUgraphExec* phExec, CUgraph g, unsigned long long flags) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (phExec == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (!Driver::get().valid_handle(g, HandleKind::kGraph)) return CUDA_ERROR_INVALID_VALUE;
  fakecuda::Nanos total = 0;
  {
    std::lock_guard<std::mutex> lk(g->mu);
    for (CUgraphNode n : g->nodes) total += n->duration_ns;
  }
  auto* e = new CUgraphExec_st{c->device, total};
  if (CUresult r = Memory::get().graph_instantiate(g, e, flags)) {
    delete e;
    return r;
  }
  Driver::get().add_handle(e, HandleKind::kGraphExec);
  *phExec = e;
  return CUDA_SUCCESS;
}

// A launch first gives the graph's allocations their memory (CUDA_ERROR_OUT_OF_MEMORY when the
// device is full); an upload does only that.
CUresult graph_launch(CUgraphExec e, CUstream s, bool ptsz, const char* api) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!Driver::get().valid_handle(e, HandleKind::kGraphExec)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = fakecuda::check_submit(e->device, s, ptsz, "cuGraphLaunch")) return r;
  if (CUresult r = Memory::get().graph_launch(e, api == nullptr)) return r;
  if (api == nullptr) return CUDA_SUCCESS;
  uint64_t seq = 0;
  CUresult r = fakecuda::submit_kernel(e->device, e->duration_ns, s, ptsz, api, &seq);
  if (r == CUDA_SUCCESS) Memory::get().graph_launched(e, seq);
  return r;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuGraphCreate(CUgraph* phGraph, unsigned int flags) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (phGraph == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto* g = new CUgraph_st();
  Driver::get().add_handle(g, HandleKind::kGraph);
  *phGraph = g;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuGraphAddKernelNode_v2(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                  const CUgraphNode* dependencies, size_t numDependencies,
                                                  const CUDA_KERNEL_NODE_PARAMS* nodeParams) {
  if (nodeParams == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return add_kernel_node(phGraphNode, hGraph, dependencies, numDependencies, nodeParams->func);
}

FAKE_API CUresult CUDAAPI cuGraphAddKernelNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                               const CUgraphNode* dependencies, size_t numDependencies,
                                               const CUDA_KERNEL_NODE_PARAMS_v1* nodeParams) {
  if (nodeParams == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return add_kernel_node(phGraphNode, hGraph, dependencies, numDependencies, nodeParams->func);
}

FAKE_API CUresult CUDAAPI cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                      unsigned long long flags) {
  return instantiate(phGraphExec, hGraph, flags);
}

// Pre-12.0 forms with an error-node/log-buffer signature.
FAKE_API CUresult CUDAAPI cuGraphInstantiate(CUgraphExec* phGraphExec, CUgraph hGraph, CUgraphNode* phErrorNode,
                                             char* logBuffer, size_t bufferSize) {
  (void)phErrorNode;
  if (logBuffer != nullptr && bufferSize > 0) logBuffer[0] = '\0';
  return instantiate(phGraphExec, hGraph, 0);
}

FAKE_API CUresult CUDAAPI cuGraphInstantiate_v2(CUgraphExec* phGraphExec, CUgraph hGraph, CUgraphNode* phErrorNode,
                                                char* logBuffer, size_t bufferSize) {
  (void)phErrorNode;
  if (logBuffer != nullptr && bufferSize > 0) logBuffer[0] = '\0';
  return instantiate(phGraphExec, hGraph, 0);
}

FAKE_API CUresult CUDAAPI cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  return graph_launch(hGraphExec, hStream, false, "graph");
}

FAKE_API CUresult CUDAAPI cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  return graph_launch(hGraphExec, hStream, true, "graph_ptsz");
}

FAKE_API CUresult CUDAAPI cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream) {
  return graph_launch(hGraphExec, hStream, false, nullptr);
}

FAKE_API CUresult CUDAAPI cuGraphUpload_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  return graph_launch(hGraphExec, hStream, true, nullptr);
}

FAKE_API CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec hGraphExec) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!Driver::get().remove_handle(hGraphExec, HandleKind::kGraphExec)) return CUDA_ERROR_INVALID_VALUE;
  Memory::get().graph_exec_destroyed(hGraphExec);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuGraphDestroy(CUgraph hGraph) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Driver::get().remove_handle(hGraph, HandleKind::kGraph) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FAKE_ALIAS(cuGraphCreate)
FAKE_ALIAS(cuGraphAddKernelNode_v2)
FAKE_ALIAS(cuGraphAddKernelNode)
FAKE_ALIAS(cuGraphInstantiateWithFlags)
FAKE_ALIAS(cuGraphInstantiate)
FAKE_ALIAS(cuGraphInstantiate_v2)
FAKE_ALIAS(cuGraphLaunch)
FAKE_ALIAS(cuGraphLaunch_ptsz)
FAKE_ALIAS(cuGraphUpload)
FAKE_ALIAS(cuGraphUpload_ptsz)
FAKE_ALIAS(cuGraphExecDestroy)
FAKE_ALIAS(cuGraphDestroy)
