// mem_paths: a CUDA C++ program allocating through the runtime's paths (cudaMalloc,
// cudaMallocAsync, cudaMallocManaged, cudaMallocPitch, cudaMallocArray) and the driver's
// cuMemCreate, STEP_MIB at a time until each path fails; prints one JSON line per path with the
// error it got and how much it held. Used by tests/gpu/gpu_mem.py under GPU_MEM.
//   mem_paths [STEP_MIB=256] [MAX_MIB=4096]
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

template <typename Alloc, typename Free>
void path(const char* name, size_t step, size_t max, Alloc alloc, Free free_one) {
  std::vector<void*> held;
  const char* err = "none";
  while (held.size() * step < max) {
    void* p = nullptr;
    const int r = alloc(&p, step);
    if (r != 0) {
      err = cudaGetErrorName(static_cast<cudaError_t>(r));
      break;
    }
    held.push_back(p);
  }
  size_t f = 0, t = 0;
  cudaMemGetInfo(&f, &t);
  cudaGetLastError();  // clear the sticky-free error state of a failed allocation
  for (void* p : held) free_one(p);
  cudaDeviceSynchronize();
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, 0) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
  std::printf("{\"path\": \"%s\", \"error\": \"%s\", \"held_mib\": %zu, \"mem_get_info\": [%zu, %zu]}\n", name, err,
              held.size() * (step >> 20), f, t);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t step = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256) << 20;
  const size_t max = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 4096) << 20;
  cudaFree(nullptr);
  path("cudaMalloc", step, max, [](void** p, size_t n) { return static_cast<int>(cudaMalloc(p, n)); },
       [](void* p) { cudaFree(p); });
  path("cudaMallocAsync", step, max,
       [](void** p, size_t n) {
         const int r = static_cast<int>(cudaMallocAsync(p, n, 0));
         cudaStreamSynchronize(0);
         return r;
       },
       [](void* p) { cudaFreeAsync(p, 0); });
  path("cudaMallocManaged", step, max,
       [](void** p, size_t n) { return static_cast<int>(cudaMallocManaged(p, n)); }, [](void* p) { cudaFree(p); });
  path("cudaMallocPitch", step, max,
       [](void** p, size_t n) {
         size_t pitch = 0;
         return static_cast<int>(cudaMallocPitch(p, &pitch, 1 << 16, n >> 16));
       },
       [](void* p) { cudaFree(p); });
  path("cudaMallocArray", step, max,
       [](void** p, size_t n) {
         cudaChannelFormatDesc d = cudaCreateChannelDesc<float4>();
         cudaArray_t a = nullptr;
         const int r = static_cast<int>(cudaMallocArray(&a, &d, 4096, n / 4096 / 16));
         *p = a;
         return r;
       },
       [](void* p) { cudaFreeArray(static_cast<cudaArray_t>(p)); });
  path("cuMemCreate", step, max,
       [](void** p, size_t n) {
         CUmemAllocationProp prop = {};
         prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
         prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
         prop.location.id = 0;
         CUmemGenericAllocationHandle h = 0;
         const CUresult r = cuMemCreate(&h, n, &prop, 0);
         *p = reinterpret_cast<void*>(h);
         return r == CUDA_SUCCESS ? 0 : (r == CUDA_ERROR_OUT_OF_MEMORY ? static_cast<int>(cudaErrorMemoryAllocation)
                                                                      : static_cast<int>(cudaErrorUnknown));
       },
       [](void* p) { cuMemRelease(reinterpret_cast<CUmemGenericAllocationHandle>(p)); });
  return 0;
}
