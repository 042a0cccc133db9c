// mem_probe: facts about the real driver's memory paths that the GPU_MEM design depends on
// (docs/memory.md): how much cuMemGetInfo's free drops for allocations of a few sizes (the
// driver's real granularity), how a stream-ordered pool's reserved memory grows, array sizes, and
// what a 2 MiB cuMemAlloc_v2 + cuMemFree_v2 pair costs. Prints one JSON object per fact.
//   g++ -O2 -std=c++17 -I$CUDA/include mem_probe.cpp -o mem_probe -ldl   (no link to libcuda)
#include <cuda.h>
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void* lib = nullptr;
template <typename F>
F sym(const char* name) {
  void* p = dlsym(lib, name);
  if (p == nullptr) {
    std::fprintf(stderr, "mem_probe: no %s\n", name);
    std::exit(1);
  }
  return reinterpret_cast<F>(p);
}
#define SYM(n) static auto n = sym<decltype(&::n)>(#n)

void ok(CUresult r, const char* what) {
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "mem_probe: %s failed: %d\n", what, static_cast<int>(r));
    std::exit(1);
  }
}

size_t free_now() {
  SYM(cuMemGetInfo_v2);
  size_t f = 0, t = 0;
  ok(cuMemGetInfo_v2(&f, &t), "cuMemGetInfo_v2");
  return f;
}

// Allocates n buffers of `bytes` and prints the drop of free memory per buffer.
void granularity(size_t bytes, int n) {
  SYM(cuMemAlloc_v2);
  SYM(cuMemFree_v2);
  std::vector<CUdeviceptr> p(n);
  const size_t before = free_now();
  for (auto& d : p) ok(cuMemAlloc_v2(&d, bytes), "cuMemAlloc_v2");
  const size_t after = free_now();
  for (auto d : p) ok(cuMemFree_v2(d), "cuMemFree_v2");
  std::printf("{\"fact\": \"cuMemAlloc_v2 granularity\", \"bytes\": %zu, \"count\": %d, \"free_drop_per_alloc\": %.1f}\n",
              bytes, n, static_cast<double>(before - after) / n);
}

}  // namespace

int main() {
  lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (lib == nullptr) return 1;
  SYM(cuInit);
  SYM(cuDeviceGet);
  SYM(cuDevicePrimaryCtxRetain);
  SYM(cuCtxSetCurrent);
  SYM(cuMemAlloc_v2);
  SYM(cuMemFree_v2);
  SYM(cuMemAllocPitch_v2);
  SYM(cuDeviceGetDefaultMemPool);
  SYM(cuMemPoolGetAttribute);
  SYM(cuMemAllocAsync);
  SYM(cuMemFreeAsync);
  SYM(cuStreamSynchronize);
  SYM(cuArrayCreate_v2);
  SYM(cuArrayGetMemoryRequirements);
  SYM(cuArrayDestroy);
  SYM(cuMemGetAllocationGranularity);
  ok(cuInit(0), "cuInit");
  CUdevice dev = 0;
  ok(cuDeviceGet(&dev, 0), "cuDeviceGet");
  CUcontext ctx = nullptr;
  ok(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  ok(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");

  for (size_t b : {size_t{256}, size_t{4096}, size_t{100} << 10, size_t{1} << 20, size_t{2} << 20,
                   size_t{3} << 20, size_t{33} << 20}) {
    granularity(b, b < (1u << 20) ? 256 : 16);
  }

  {  // pitch
    CUdeviceptr d = 0;
    size_t pitch = 0;
    const size_t before = free_now();
    ok(cuMemAllocPitch_v2(&d, &pitch, 1000, 1000, 4), "cuMemAllocPitch_v2");
    std::printf("{\"fact\": \"pitch\", \"width\": 1000, \"height\": 1000, \"pitch\": %zu, \"free_drop\": %zu}\n", pitch,
                before - free_now());
    ok(cuMemFree_v2(d), "cuMemFree_v2");
  }
  {  // VMM granularity
    CUmemAllocationProp prop = {};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    size_t g = 0, r = 0;
    ok(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM), "granularity");
    ok(cuMemGetAllocationGranularity(&r, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED), "granularity");
    std::printf("{\"fact\": \"cuMemCreate granularity\", \"minimum\": %zu, \"recommended\": %zu}\n", g, r);
  }
  {  // pool growth
    CUmemoryPool pool = nullptr;
    ok(cuDeviceGetDefaultMemPool(&pool, dev), "cuDeviceGetDefaultMemPool");
    for (size_t b : {size_t{1} << 20, size_t{8} << 20, size_t{40} << 20, size_t{300} << 20}) {
      CUdeviceptr d = 0;
      const size_t before = free_now();
      ok(cuMemAllocAsync(&d, b, nullptr), "cuMemAllocAsync");
      ok(cuStreamSynchronize(nullptr), "sync");
      cuuint64_t reserved = 0, used = 0;
      ok(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved), "attr");
      ok(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used), "attr");
      const size_t drop = before - free_now();
      ok(cuMemFreeAsync(d, nullptr), "cuMemFreeAsync");
      ok(cuStreamSynchronize(nullptr), "sync");
      cuuint64_t after_sync = 0;
      ok(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &after_sync), "attr");
      std::printf("{\"fact\": \"pool\", \"bytes\": %zu, \"reserved\": %llu, \"used\": %llu, \"free_drop\": %zu, "
                  "\"reserved_after_free_sync\": %llu}\n",
                  b, static_cast<unsigned long long>(reserved), static_cast<unsigned long long>(used), drop,
                  static_cast<unsigned long long>(after_sync));
    }
  }
  {  // array
    CUDA_ARRAY_DESCRIPTOR desc = {};
    desc.Width = 1000;
    desc.Height = 1000;
    desc.Format = CU_AD_FORMAT_FLOAT;
    desc.NumChannels = 4;
    CUarray a = nullptr;
    const size_t before = free_now();
    ok(cuArrayCreate_v2(&a, &desc), "cuArrayCreate_v2");
    CUDA_ARRAY_MEMORY_REQUIREMENTS req = {};
    const CUresult rr = cuArrayGetMemoryRequirements(&req, a, dev);
    std::printf("{\"fact\": \"array\", \"elements\": \"1000x1000 float4\", \"free_drop\": %zu, \"requirements_rc\": %d, "
                "\"size\": %zu, \"alignment\": %zu}\n",
                before - free_now(), static_cast<int>(rr), req.size, req.alignment);
    ok(cuArrayDestroy(a), "cuArrayDestroy");
  }
  {  // cost of a 2 MiB pair
    const int n = 2000;
    CUdeviceptr d = 0;
    for (int i = 0; i < 50; ++i) {
      ok(cuMemAlloc_v2(&d, 2 << 20), "alloc");
      ok(cuMemFree_v2(d), "free");
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      ok(cuMemAlloc_v2(&d, 2 << 20), "alloc");
      ok(cuMemFree_v2(d), "free");
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
    std::printf("{\"fact\": \"2 MiB cuMemAlloc_v2+cuMemFree_v2\", \"ns_per_pair\": %.0f}\n", ns);
  }
  return 0;
}
