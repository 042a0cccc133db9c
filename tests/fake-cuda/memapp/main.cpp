// fake-mem-app: drives every device-memory path of the driver, reached as the CUDA runtime reaches
// it (dlopen libcuda.so.1, cuGetProcAddress_v2), one step per argument, so tests can run each path
// under the hook and read the results. Each step prints one JSON line
//   {"step": "<the argument>", "call": "<driver function>", "result": "<CUresult name>", ...}
// where call/result are the first failing call of the step, or its last call when all succeeded.
//
//   fake-mem-app [--device N] [--ptsz] STEP...
//
// SIZE: bytes with an optional binary suffix K, M, G, T (64M = 64 MiB; KiB, MB also accepted),
// 0, or max (2^64 - 1). ID: the "id" an allocating step printed (ids count from 0).
// The app stream: one created stream, or with --ptsz stream 0 (the per-thread default stream, the
// functions looked up with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM).
// The app pool: the latest pool_create, else the device's current pool (cuDeviceGetMemPool).
//
//   alloc:SIZE                 cuMemAlloc_v2                                     -> id, ptr
//   managed:SIZE               cuMemAllocManaged (CU_MEM_ATTACH_GLOBAL)          -> id
//   pitch:WxH                  cuMemAllocPitch_v2, W bytes x H rows, elements of 4 bytes -> id, pitch, bytes
//   async:SIZE                 cuMemAllocAsync on the app stream                 -> id
//   pool_alloc:SIZE            cuMemAllocFromPoolAsync from the app pool         -> id
//   free:ID                    frees what ID holds the way it was made: cuMemFree_v2, cuMemFreeAsync
//                              (async, pool_alloc), cuMemPoolDestroy, cuMemUnmap + cuMemAddressFree +
//                              cuMemRelease, cuArrayDestroy, cuMipmappedArrayDestroy, cuGraphExecDestroy
//                              + cuGraphDestroy (graph_mem), cuMemFree_v2 of each (alloc_until_oom)
//   memfree:ID                 cuMemFree_v2 of ID's pointer (alloc, async, pool_alloc, graph_mem:...:keep)
//   free_async:ID              cuMemFreeAsync of ID's pointer on the app stream
//   free_all                   free:ID of everything still held               -> count
//   pool_create[:THRESHOLD]    cuMemPoolCreate (pinned, on the device), then RELEASE_THRESHOLD -> id
//   pool_threshold:SIZE        cuMemPoolSetAttribute(app pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
//   pool_trim:SIZE             cuMemPoolTrimTo(app pool, SIZE)
//   pool_info                  the app pool's attributes -> reserved, reserved_high, used, used_high, threshold
//   set_mempool                cuDeviceSetMemPool(device, app pool)
//   sync                       cuStreamSynchronize(app stream)
//   ctx_sync                   cuCtxSynchronize
//   vmm:SIZE                   cuMemGetAllocationGranularity, cuMemCreate (device), cuMemAddressReserve,
//                              cuMemMap, cuMemSetAccess                          -> id, ptr, granularity
//   vmm_create:SIZE            cuMemCreate on the device only                     -> id
//   vmm_host:SIZE              cuMemCreate with CU_MEM_LOCATION_TYPE_HOST         -> id
//   vmm_map:ID                 cuMemAddressReserve, cuMemMap, cuMemSetAccess      -> ptr
//   vmm_unmap:ID               cuMemUnmap, cuMemAddressFree
//   vmm_release:ID             cuMemRelease (memory returns once also unmapped)
//   array:WxH[xD][:FMT][:deferred]          cuArrayCreate_v2, or cuArray3DCreate_v2 with a depth or
//                              :deferred (CUDA_ARRAY3D_DEFERRED_MAPPING; then also
//                              cuArrayGetMemoryRequirements -> required_bytes)  -> id
//   mipmap:WxH[xD]:LEVELS[:FMT][:deferred]  cuMipmappedArrayCreate (and its requirements) -> id
//                              FMT: u8 u16 u32 i8 i16 i32 f16 f32, optionally xC channels (f32x4); default u8
//   graph_mem:SIZE[:keep]      a graph with an allocation node of SIZE and (unless :keep) a free node,
//                              cuGraphInstantiateWithFlags, cuGraphLaunch on the app stream, then
//                              cuStreamSynchronize -> id, ptr, graph_used, graph_reserved
//   graph_launch:ID            cuGraphLaunch of ID's graph, cuStreamSynchronize
//   graph_trim                 cuDeviceGraphMemTrim
//   graph_info                 cuDeviceGetGraphMemAttribute -> used, used_high, reserved, reserved_high
//   info                       cuMemGetInfo_v2 -> free, total; cuDeviceTotalMem_v2 -> device_total
//   info_v1                    the 32-bit cuMemGetInfo and cuDeviceTotalMem (looked up for CUDA 3.1)
//   nvml_info                  dlopen("libnvidia-ml.so.1") + dlsym, nvmlInit_v2, the device's handle,
//                              nvmlDeviceGetMemoryInfo -> v1 {total, free, used}, _v2 -> v2 {total,
//                              reserved, free, used}, nvmlDeviceGetUUID -> uuid; result: an NVML name
//   ctx_release                cuDevicePrimaryCtxRelease (at 0 the context's allocations are freed),
//                              then cuDevicePrimaryCtxRetain + cuCtxSetCurrent again
//   hold:DURATION              sleeps: 2s, 500ms, 1.5s
//   wait_file:PATH             waits until PATH exists
//   alloc_until_oom:SIZE       cuMemAlloc_v2 of SIZE until one fails (at most 10^6) -> id, count, bytes;
//                              succeeds when the failure is CUDA_ERROR_OUT_OF_MEMORY
//   bench_alloc:SIZE:N         N pairs cuMemAlloc_v2 + cuMemFree_v2              -> ns_per_pair
//   bench_async:SIZE:N         N pairs cuMemAllocAsync + cuMemFreeAsync          -> ns_per_pair
//
// Exit status: 0 when every step succeeded, 3 when one failed, 2 on a bad command line, 1 when the
// driver cannot be reached.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "driver.h"
#include "runner.h"

namespace {

const char kUsage[] = "usage: fake-mem-app [--device N] [--ptsz] STEP...   (steps: tests/fake-cuda/memapp/main.cpp)\n";

}  // namespace

int main(int argc, char** argv) {
  int device = 0;
  bool ptsz = false;
  std::vector<std::string> steps;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--ptsz") {
      ptsz = true;
    } else if (arg == "--device" && i + 1 < argc) {
      char* end = nullptr;
      long v = strtol(argv[++i], &end, 10);
      if (*end != '\0' || v < 0 || v > 63) {
        fprintf(stderr, "fake-mem-app: bad --device\n%s", kUsage);
        return 2;
      }
      device = static_cast<int>(v);
    } else if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    } else if (arg.rfind("--", 0) == 0) {
      fprintf(stderr, "fake-mem-app: unknown flag %s\n%s", arg.c_str(), kUsage);
      return 2;
    } else {
      steps.push_back(arg);
    }
  }
  if (steps.empty()) {
    fputs(kUsage, stderr);
    return 2;
  }
  const memapp::MemApi api = memapp::load_driver(ptsz);
  memapp::Runner runner(api, device, ptsz);
  runner.setup();
  bool all_ok = true;
  for (const std::string& s : steps) all_ok = runner.run(s) && all_ok;
  fflush(stdout);
  return all_ok ? 0 : 3;
}
