// Graph memory nodes and the device's graph memory controls. Behaviour: mem_graph.cpp.
#include "capture_rules.h"
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Driver;
using fakecuda::Memory;

namespace {

CUresult device_check(CUdevice dev) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Driver::get().valid_device(dev) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

}  // namespace

// Fills nodeParams->dptr with the allocation's address, fixed for the graph's lifetime; memory
// comes with the first launch (or upload) of its instantiation.
FAKE_API CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                 const CUgraphNode* dependencies, size_t numDependencies,
                                                 CUDA_MEM_ALLOC_NODE_PARAMS* nodeParams) {
  if (CUresult r = fakecuda::check_node_args(phGraphNode, hGraph, dependencies, numDependencies)) return r;
  if (nodeParams == nullptr || nodeParams->bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  const CUmemPoolProps& props = nodeParams->poolProps;
  if (props.allocType != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (props.location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_NOT_SUPPORTED;
  if (!Driver::get().valid_device(props.location.id)) return CUDA_ERROR_INVALID_VALUE;
  if (nodeParams->accessDescCount > static_cast<size_t>(Driver::get().device_count()) ||
      (nodeParams->accessDescCount != 0 && nodeParams->accessDescs == nullptr)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (nodeParams->bytesize > Memory::get().total()) return CUDA_ERROR_OUT_OF_MEMORY;
  CUdeviceptr p = 0;
  if (CUresult r = Memory::get().graph_add_alloc(hGraph, props.location.id, nodeParams->bytesize, &p)) return r;
  fakecuda::add_node(hGraph, 0, phGraphNode);
  nodeParams->dptr = p;
  return CUDA_SUCCESS;
}

// dptr must come from an allocation node (of this graph or, when not freed there, of another) and
// be freed only once.
FAKE_API CUresult CUDAAPI cuGraphAddMemFreeNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                const CUgraphNode* dependencies, size_t numDependencies,
                                                CUdeviceptr dptr) {
  if (CUresult r = fakecuda::check_node_args(phGraphNode, hGraph, dependencies, numDependencies)) return r;
  if (CUresult r = Memory::get().graph_add_free(hGraph, dptr)) return r;
  fakecuda::add_node(hGraph, 0, phGraphNode);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuDeviceGraphMemTrim(CUdevice device) {
  if (CUresult r = device_check(device)) return r;
  // Potentially unsafe during stream capture (capture_rules.h).
  if (CUresult r = fakecuda::capture_check_unsafe("cuDeviceGraphMemTrim")) return r;
  return Memory::get().graph_trim(device);
}

FAKE_API CUresult CUDAAPI cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void* value) {
  if (CUresult r = device_check(device)) return r;
  return Memory::get().graph_get(device, attr, value);
}

FAKE_API CUresult CUDAAPI cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void* value) {
  if (CUresult r = device_check(device)) return r;
  return Memory::get().graph_set(device, attr, value);
}

FAKE_ALIAS(cuGraphAddMemAllocNode)
FAKE_ALIAS(cuGraphAddMemFreeNode)
FAKE_ALIAS(cuDeviceGraphMemTrim)
FAKE_ALIAS(cuDeviceGetGraphMemAttribute)
FAKE_ALIAS(cuDeviceSetGraphMemAttribute)
