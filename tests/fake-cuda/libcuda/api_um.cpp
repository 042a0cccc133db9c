// Unified-memory hints and migration: cuMemAdvise(_v2) and cuMemPrefetchAsync(_v2, _ptsz). Nothing
// moves (addresses are never dereferenced); each call is checked and appended as one line to the
// file named by FAKE_CUDA_UM_LOG, so tests can read which ranges were advised or prefetched where,
// in what order:
//   advise <pid> <ptr> <bytes> <advice> <location type> <location id>
//   prefetch <pid> <ptr> <bytes> <location type> <location id>
// Both are "potentially unsafe" during stream capture, and a prefetch onto the legacy stream beside
// a blocking capture is illegal (capture_rules.h): refused calls are not logged.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "capture_rules.h"
#include "fake_driver.h"

namespace {

void log_line(const char* line, int n) {
  static const int fd = [] {
    const char* path = getenv("FAKE_CUDA_UM_LOG");
    return path != nullptr && *path != '\0' ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
  }();
  if (fd >= 0 && n > 0) (void)!write(fd, line, static_cast<size_t>(n));
}

CUresult check(CUdeviceptr p, size_t count, const char* api) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (fakecuda::current_ctx() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (p == 0 || count == 0) return CUDA_ERROR_INVALID_VALUE;
  return fakecuda::capture_check_unsafe(api);
}

CUresult advise(CUdeviceptr p, size_t count, CUmem_advise advice, CUmemLocation loc) {
  if (CUresult r = check(p, count, "cuMemAdvise")) return r;
  char line[160];
  const int n = std::snprintf(line, sizeof line, "advise %d %llu %zu %d %d %d\n", static_cast<int>(getpid()),
                              static_cast<unsigned long long>(p), count, static_cast<int>(advice),
                              static_cast<int>(loc.type), loc.id);
  log_line(line, n);
  return CUDA_SUCCESS;
}

// On a capturing stream the prefetch is a node of the capture (logged now all the same).
CUresult prefetch(CUdeviceptr p, size_t count, CUmemLocation loc, CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (fakecuda::current_ctx() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  fakecuda::StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  CUgraph g = nullptr;
  if (CUresult r = fakecuda::capture_enqueue(t, "cuMemPrefetchAsync", &g)) return r;
  if (CUresult r = check(p, count, "cuMemPrefetchAsync")) return r;
  char line[160];
  const int n = std::snprintf(line, sizeof line, "prefetch %d %llu %zu %d %d\n", static_cast<int>(getpid()),
                              static_cast<unsigned long long>(p), count, static_cast<int>(loc.type), loc.id);
  log_line(line, n);
  return CUDA_SUCCESS;
}

CUmemLocation device_or_host(CUdevice d) {
  CUmemLocation l{};
  if (d == CU_DEVICE_CPU) {
    l.type = CU_MEM_LOCATION_TYPE_HOST;
  } else {
    l.type = CU_MEM_LOCATION_TYPE_DEVICE;
    l.id = d;
  }
  return l;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device) {
  return advise(devPtr, count, advice, device_or_host(device));
}
FAKE_API CUresult CUDAAPI cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location) {
  return advise(devPtr, count, advice, location);
}
FAKE_API CUresult CUDAAPI cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream) {
  return prefetch(devPtr, count, device_or_host(dstDevice), hStream, false);
}
FAKE_API CUresult CUDAAPI cuMemPrefetchAsync_ptsz(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
                                                  CUstream hStream) {
  return prefetch(devPtr, count, device_or_host(dstDevice), hStream, true);
}
FAKE_API CUresult CUDAAPI cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location, unsigned int,
                                                CUstream hStream) {
  return prefetch(devPtr, count, location, hStream, false);
}
FAKE_API CUresult CUDAAPI cuMemPrefetchAsync_v2_ptsz(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                                     unsigned int, CUstream hStream) {
  return prefetch(devPtr, count, location, hStream, true);
}
FAKE_ALIAS(cuMemAdvise)
FAKE_ALIAS(cuMemAdvise_v2)
FAKE_ALIAS(cuMemPrefetchAsync)
FAKE_ALIAS(cuMemPrefetchAsync_ptsz)
FAKE_ALIAS(cuMemPrefetchAsync_v2)
FAKE_ALIAS(cuMemPrefetchAsync_v2_ptsz)
