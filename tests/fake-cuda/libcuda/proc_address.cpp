// cuGetProcAddress / cuGetProcAddress_v2: how the CUDA runtime reaches every other entry point.
// Names are the un-suffixed API names; the version the caller was built for picks the _vN
// variant and CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM picks the _ptsz one, as the real
// driver does.
#include <cstring>

#include "fake_driver.h"

// Non-interposable aliases of the entry points (see FAKE_ALIAS).
#define FAKE_ENTRY_POINTS(X)                                                                                    \
  X(cuInit) X(cuDriverGetVersion) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName) X(cuDeviceGetUuid)      \
  X(cuDeviceGetUuid_v2) X(cuDeviceTotalMem) X(cuDeviceTotalMem_v2) X(cuDevicePrimaryCtxRetain)                  \
  X(cuDevicePrimaryCtxRelease) X(cuDevicePrimaryCtxRelease_v2) X(cuCtxCreate) X(cuCtxCreate_v2)                  \
  X(cuCtxCreate_v3) X(cuCtxCreate_v4) X(cuCtxDestroy) X(cuCtxDestroy_v2) X(cuCtxGetCurrent) X(cuCtxSetCurrent)   \
  X(cuCtxPushCurrent) X(cuCtxPushCurrent_v2) X(cuCtxPopCurrent) X(cuCtxPopCurrent_v2) X(cuCtxGetDevice)          \
  X(cuCtxSynchronize) X(cuStreamCreate) X(cuStreamCreateWithPriority) X(cuStreamDestroy) X(cuStreamDestroy_v2)   \
  X(cuStreamSynchronize) X(cuStreamSynchronize_ptsz) X(cuStreamQuery) X(cuStreamQuery_ptsz) X(cuEventCreate)     \
  X(cuEventDestroy) X(cuEventDestroy_v2) X(cuEventRecord) X(cuEventRecord_ptsz) X(cuEventSynchronize)            \
  X(cuEventQuery) X(cuEventElapsedTime) X(cuEventElapsedTime_v2) X(cuModuleLoadData) X(cuModuleUnload)          \
  X(cuModuleGetFunction) X(cuLaunchKernel) X(cuLaunchKernel_ptsz) X(cuLaunchKernelEx) X(cuLaunchKernelEx_ptsz)  \
  X(cuLaunchCooperativeKernel) X(cuLaunchCooperativeKernel_ptsz) X(cuGraphCreate) X(cuGraphAddKernelNode)        \
  X(cuGraphAddKernelNode_v2) X(cuGraphInstantiate) X(cuGraphInstantiate_v2) X(cuGraphInstantiateWithFlags)       \
  X(cuGraphLaunch) X(cuGraphLaunch_ptsz) X(cuGraphExecDestroy) X(cuGraphDestroy) X(cuMemAlloc) X(cuMemAlloc_v2)  \
  X(cuMemFree) X(cuMemFree_v2) X(cuMemGetInfo) X(cuMemGetInfo_v2) X(cuMemAllocManaged) X(cuMemAllocPitch_v2)         \
  X(cuMemAllocAsync) X(cuMemAllocAsync_ptsz) X(cuMemFreeAsync) X(cuMemFreeAsync_ptsz) X(cuGetErrorString) X(cuGetErrorName)          \
  X(cuGetExportTable) X(cuGetProcAddress) X(cuGetProcAddress_v2) X(cuMemAllocPitch)                              \
  X(cuMemAllocFromPoolAsync) X(cuMemAllocFromPoolAsync_ptsz) X(cuMemPoolCreate) X(cuMemPoolDestroy)              \
  X(cuDeviceGetDefaultMemPool) X(cuDeviceGetMemPool) X(cuDeviceSetMemPool) X(cuMemGetDefaultMemPool)             \
  X(cuMemGetMemPool) X(cuMemSetMemPool) X(cuMemPoolGetAttribute) X(cuMemPoolSetAttribute) X(cuMemPoolTrimTo)     \
  X(cuMemGetAllocationGranularity) X(cuMemCreate) X(cuMemRelease) X(cuMemAddressReserve) X(cuMemAddressFree)     \
  X(cuMemMap) X(cuMemUnmap) X(cuMemSetAccess) X(cuArrayCreate) X(cuArrayCreate_v2) X(cuArray3DCreate)            \
  X(cuArray3DCreate_v2) X(cuMipmappedArrayCreate) X(cuArrayDestroy) X(cuMipmappedArrayDestroy)                   \
  X(cuArrayGetMemoryRequirements) X(cuMipmappedArrayGetMemoryRequirements) X(cuGraphAddMemAllocNode)             \
  X(cuGraphAddMemFreeNode) X(cuDeviceGraphMemTrim) X(cuDeviceGetGraphMemAttribute) X(cuDeviceSetGraphMemAttribute) \
  X(cuGraphUpload) X(cuGraphUpload_ptsz) X(cuMemAdvise) X(cuMemAdvise_v2) X(cuMemPrefetchAsync)                \
  X(cuMemPrefetchAsync_ptsz) X(cuMemPrefetchAsync_v2) X(cuMemPrefetchAsync_v2_ptsz) X(cuStreamBeginCapture_v2)    \
  X(cuStreamBeginCapture_v2_ptsz) X(cuStreamEndCapture) X(cuStreamEndCapture_ptsz) X(cuStreamIsCapturing)        \
  X(cuStreamIsCapturing_ptsz) X(cuThreadExchangeStreamCaptureMode) X(cuStreamBeginCapture)                       \
  X(cuStreamBeginCapture_ptsz) X(cuStreamBeginCaptureToGraph) X(cuStreamBeginCaptureToGraph_ptsz)               \
  X(cuStreamGetCaptureInfo) X(cuStreamGetCaptureInfo_ptsz) X(cuStreamGetCaptureInfo_v2)                         \
  X(cuStreamGetCaptureInfo_v2_ptsz) X(cuStreamGetCaptureInfo_v3) X(cuStreamGetCaptureInfo_v3_ptsz)

FAKE_ENTRY_POINTS(FAKE_ALIAS_DECL)

namespace {

struct Entry {
  const char* name;   // as the runtime asks for it
  int version;        // first CUDA version (1000*major + 10*minor) that gets this variant
  void* fn;           // default-stream variant
  void* ptsz;         // per-thread-default-stream variant, or nullptr if the same as fn
};

#define FN(f) reinterpret_cast<void*>(&fake_##f)

const Entry kEntries[] = {
    {"cuInit", 2000, FN(cuInit), nullptr},
    {"cuDriverGetVersion", 2020, FN(cuDriverGetVersion), nullptr},
    {"cuDeviceGetCount", 2000, FN(cuDeviceGetCount), nullptr},
    {"cuDeviceGet", 2000, FN(cuDeviceGet), nullptr},
    {"cuDeviceGetName", 2000, FN(cuDeviceGetName), nullptr},
    {"cuDeviceGetUuid", 9020, FN(cuDeviceGetUuid), nullptr},
    {"cuDeviceGetUuid", 11040, FN(cuDeviceGetUuid_v2), nullptr},
    {"cuDeviceTotalMem", 2000, FN(cuDeviceTotalMem), nullptr},
    {"cuDeviceTotalMem", 3020, FN(cuDeviceTotalMem_v2), nullptr},
    {"cuDevicePrimaryCtxRetain", 7000, FN(cuDevicePrimaryCtxRetain), nullptr},
    {"cuDevicePrimaryCtxRelease", 7000, FN(cuDevicePrimaryCtxRelease), nullptr},
    {"cuDevicePrimaryCtxRelease", 11000, FN(cuDevicePrimaryCtxRelease_v2), nullptr},
    {"cuCtxCreate", 2000, FN(cuCtxCreate), nullptr},
    {"cuCtxCreate", 3020, FN(cuCtxCreate_v2), nullptr},
    {"cuCtxCreate", 11040, FN(cuCtxCreate_v3), nullptr},
    {"cuCtxCreate", 12050, FN(cuCtxCreate_v4), nullptr},
    {"cuCtxDestroy", 2000, FN(cuCtxDestroy), nullptr},
    {"cuCtxDestroy", 4000, FN(cuCtxDestroy_v2), nullptr},
    {"cuCtxGetCurrent", 4000, FN(cuCtxGetCurrent), nullptr},
    {"cuCtxSetCurrent", 4000, FN(cuCtxSetCurrent), nullptr},
    {"cuCtxPushCurrent", 2000, FN(cuCtxPushCurrent), nullptr},
    {"cuCtxPushCurrent", 4000, FN(cuCtxPushCurrent_v2), nullptr},
    {"cuCtxPopCurrent", 2000, FN(cuCtxPopCurrent), nullptr},
    {"cuCtxPopCurrent", 4000, FN(cuCtxPopCurrent_v2), nullptr},
    {"cuCtxGetDevice", 2000, FN(cuCtxGetDevice), nullptr},
    {"cuCtxSynchronize", 2000, FN(cuCtxSynchronize), nullptr},
    {"cuStreamCreate", 2000, FN(cuStreamCreate), nullptr},
    {"cuStreamCreateWithPriority", 5050, FN(cuStreamCreateWithPriority), nullptr},
    {"cuStreamDestroy", 2000, FN(cuStreamDestroy), nullptr},
    {"cuStreamDestroy", 4000, FN(cuStreamDestroy_v2), nullptr},
    {"cuStreamSynchronize", 2000, FN(cuStreamSynchronize), FN(cuStreamSynchronize_ptsz)},
    {"cuStreamQuery", 2000, FN(cuStreamQuery), FN(cuStreamQuery_ptsz)},
    {"cuEventCreate", 2000, FN(cuEventCreate), nullptr},
    {"cuEventDestroy", 2000, FN(cuEventDestroy), nullptr},
    {"cuEventDestroy", 4000, FN(cuEventDestroy_v2), nullptr},
    {"cuEventRecord", 2000, FN(cuEventRecord), FN(cuEventRecord_ptsz)},
    {"cuEventSynchronize", 2000, FN(cuEventSynchronize), nullptr},
    {"cuEventQuery", 2000, FN(cuEventQuery), nullptr},
    {"cuEventElapsedTime", 2000, FN(cuEventElapsedTime), nullptr},
    {"cuEventElapsedTime", 12080, FN(cuEventElapsedTime_v2), nullptr},
    {"cuModuleLoadData", 2000, FN(cuModuleLoadData), nullptr},
    {"cuModuleUnload", 2000, FN(cuModuleUnload), nullptr},
    {"cuModuleGetFunction", 2000, FN(cuModuleGetFunction), nullptr},
    {"cuLaunchKernel", 4000, FN(cuLaunchKernel), FN(cuLaunchKernel_ptsz)},
    {"cuLaunchKernelEx", 11060, FN(cuLaunchKernelEx), FN(cuLaunchKernelEx_ptsz)},
    {"cuLaunchCooperativeKernel", 9000, FN(cuLaunchCooperativeKernel), FN(cuLaunchCooperativeKernel_ptsz)},
    {"cuGraphCreate", 10000, FN(cuGraphCreate), nullptr},
    {"cuGraphAddKernelNode", 10000, FN(cuGraphAddKernelNode), nullptr},
    {"cuGraphAddKernelNode", 12000, FN(cuGraphAddKernelNode_v2), nullptr},
    {"cuGraphInstantiate", 10000, FN(cuGraphInstantiate), nullptr},
    {"cuGraphInstantiate", 11000, FN(cuGraphInstantiate_v2), nullptr},
    {"cuGraphInstantiate", 12000, FN(cuGraphInstantiateWithFlags), nullptr},
    {"cuGraphInstantiateWithFlags", 11040, FN(cuGraphInstantiateWithFlags), nullptr},
    {"cuGraphLaunch", 10000, FN(cuGraphLaunch), FN(cuGraphLaunch_ptsz)},
    {"cuGraphExecDestroy", 10000, FN(cuGraphExecDestroy), nullptr},
    {"cuGraphDestroy", 10000, FN(cuGraphDestroy), nullptr},
    {"cuMemAlloc", 2000, FN(cuMemAlloc), nullptr},
    {"cuMemAlloc", 3020, FN(cuMemAlloc_v2), nullptr},
    {"cuMemFree", 2000, FN(cuMemFree), nullptr},
    {"cuMemFree", 3020, FN(cuMemFree_v2), nullptr},
    {"cuMemGetInfo", 2000, FN(cuMemGetInfo), nullptr},
    {"cuMemGetInfo", 3020, FN(cuMemGetInfo_v2), nullptr},
    {"cuMemAllocManaged", 6000, FN(cuMemAllocManaged), nullptr},
    {"cuMemAdvise", 8000, FN(cuMemAdvise), nullptr},
    {"cuMemAdvise", 12020, FN(cuMemAdvise_v2), nullptr},
    {"cuMemPrefetchAsync", 8000, FN(cuMemPrefetchAsync), FN(cuMemPrefetchAsync_ptsz)},
    {"cuMemPrefetchAsync", 12020, FN(cuMemPrefetchAsync_v2), FN(cuMemPrefetchAsync_v2_ptsz)},
    {"cuMemAllocPitch", 2000, FN(cuMemAllocPitch), nullptr},
    {"cuMemAllocPitch", 3020, FN(cuMemAllocPitch_v2), nullptr},
    {"cuMemAllocAsync", 11020, FN(cuMemAllocAsync), FN(cuMemAllocAsync_ptsz)},
    {"cuMemAllocFromPoolAsync", 11020, FN(cuMemAllocFromPoolAsync), FN(cuMemAllocFromPoolAsync_ptsz)},
    {"cuMemFreeAsync", 11020, FN(cuMemFreeAsync), FN(cuMemFreeAsync_ptsz)},
    {"cuMemPoolCreate", 11020, FN(cuMemPoolCreate), nullptr},
    {"cuMemPoolDestroy", 11020, FN(cuMemPoolDestroy), nullptr},
    {"cuDeviceGetDefaultMemPool", 11020, FN(cuDeviceGetDefaultMemPool), nullptr},
    {"cuDeviceGetMemPool", 11020, FN(cuDeviceGetMemPool), nullptr},
    {"cuDeviceSetMemPool", 11020, FN(cuDeviceSetMemPool), nullptr},
    {"cuMemGetDefaultMemPool", 13000, FN(cuMemGetDefaultMemPool), nullptr},
    {"cuMemGetMemPool", 13000, FN(cuMemGetMemPool), nullptr},
    {"cuMemSetMemPool", 13000, FN(cuMemSetMemPool), nullptr},
    {"cuMemPoolGetAttribute", 11020, FN(cuMemPoolGetAttribute), nullptr},
    {"cuMemPoolSetAttribute", 11020, FN(cuMemPoolSetAttribute), nullptr},
    {"cuMemPoolTrimTo", 11020, FN(cuMemPoolTrimTo), nullptr},
    {"cuMemGetAllocationGranularity", 10020, FN(cuMemGetAllocationGranularity), nullptr},
    {"cuMemCreate", 10020, FN(cuMemCreate), nullptr},
    {"cuMemRelease", 10020, FN(cuMemRelease), nullptr},
    {"cuMemAddressReserve", 10020, FN(cuMemAddressReserve), nullptr},
    {"cuMemAddressFree", 10020, FN(cuMemAddressFree), nullptr},
    {"cuMemMap", 10020, FN(cuMemMap), nullptr},
    {"cuMemUnmap", 10020, FN(cuMemUnmap), nullptr},
    {"cuMemSetAccess", 10020, FN(cuMemSetAccess), nullptr},
    {"cuArrayCreate", 2000, FN(cuArrayCreate), nullptr},
    {"cuArrayCreate", 3020, FN(cuArrayCreate_v2), nullptr},
    {"cuArray3DCreate", 2000, FN(cuArray3DCreate), nullptr},
    {"cuArray3DCreate", 3020, FN(cuArray3DCreate_v2), nullptr},
    {"cuMipmappedArrayCreate", 5000, FN(cuMipmappedArrayCreate), nullptr},
    {"cuArrayDestroy", 2000, FN(cuArrayDestroy), nullptr},
    {"cuMipmappedArrayDestroy", 5000, FN(cuMipmappedArrayDestroy), nullptr},
    {"cuArrayGetMemoryRequirements", 11060, FN(cuArrayGetMemoryRequirements), nullptr},
    {"cuMipmappedArrayGetMemoryRequirements", 11060, FN(cuMipmappedArrayGetMemoryRequirements), nullptr},
    {"cuGraphAddMemAllocNode", 11040, FN(cuGraphAddMemAllocNode), nullptr},
    {"cuGraphAddMemFreeNode", 11040, FN(cuGraphAddMemFreeNode), nullptr},
    {"cuDeviceGraphMemTrim", 11040, FN(cuDeviceGraphMemTrim), nullptr},
    {"cuDeviceGetGraphMemAttribute", 11040, FN(cuDeviceGetGraphMemAttribute), nullptr},
    {"cuDeviceSetGraphMemAttribute", 11040, FN(cuDeviceSetGraphMemAttribute), nullptr},
    {"cuGraphUpload", 11010, FN(cuGraphUpload), FN(cuGraphUpload_ptsz)},
    {"cuStreamBeginCapture", 10000, FN(cuStreamBeginCapture), FN(cuStreamBeginCapture_ptsz)},
    {"cuStreamBeginCapture", 10010, FN(cuStreamBeginCapture_v2), FN(cuStreamBeginCapture_v2_ptsz)},
    {"cuStreamBeginCaptureToGraph", 12030, FN(cuStreamBeginCaptureToGraph), FN(cuStreamBeginCaptureToGraph_ptsz)},
    {"cuStreamGetCaptureInfo", 10010, FN(cuStreamGetCaptureInfo), FN(cuStreamGetCaptureInfo_ptsz)},
    {"cuStreamGetCaptureInfo", 11030, FN(cuStreamGetCaptureInfo_v2), FN(cuStreamGetCaptureInfo_v2_ptsz)},
    {"cuStreamGetCaptureInfo", 12030, FN(cuStreamGetCaptureInfo_v3), FN(cuStreamGetCaptureInfo_v3_ptsz)},
    {"cuStreamEndCapture", 10000, FN(cuStreamEndCapture), FN(cuStreamEndCapture_ptsz)},
    {"cuStreamIsCapturing", 10000, FN(cuStreamIsCapturing), FN(cuStreamIsCapturing_ptsz)},
    {"cuThreadExchangeStreamCaptureMode", 10010, FN(cuThreadExchangeStreamCaptureMode), nullptr},
    {"cuGetErrorString", 6000, FN(cuGetErrorString), nullptr},
    {"cuGetErrorName", 6000, FN(cuGetErrorName), nullptr},
    {"cuGetExportTable", 3000, FN(cuGetExportTable), nullptr},
    {"cuGetProcAddress", 11030, FN(cuGetProcAddress), nullptr},
    {"cuGetProcAddress", 12000, FN(cuGetProcAddress_v2), nullptr},
};

#undef FN

// Works before cuInit (the runtime looks cuInit itself up this way) and takes no lock.
CUresult lookup(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pfn = nullptr;
  const Entry* best = nullptr;
  bool known = false;
  for (const Entry& e : kEntries) {
    if (strcmp(e.name, symbol) != 0) continue;
    known = true;
    if (e.version <= cudaVersion && (best == nullptr || e.version > best->version)) best = &e;
  }
  if (best == nullptr) {
    if (status != nullptr) {
      *status = known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    }
    return CUDA_ERROR_NOT_FOUND;
  }
  bool per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
  *pfn = per_thread && best->ptsz != nullptr ? best->ptsz : best->fn;
  if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                                              CUdriverProcAddressQueryResult* symbolStatus) {
  return lookup(symbol, pfn, cudaVersion, flags, symbolStatus);
}

FAKE_API CUresult CUDAAPI cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  return lookup(symbol, pfn, cudaVersion, flags, nullptr);
}

FAKE_ALIAS(cuGetProcAddress_v2)
FAKE_ALIAS(cuGetProcAddress)
