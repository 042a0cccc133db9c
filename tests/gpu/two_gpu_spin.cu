// Spin-kernel workload on several GPUs at once from ONE process (issue 12), one host thread per device.
// Each thread: cudaSetDevice(d), its own non-blocking stream, fixed-duration spin kernels (%globaltimer)
// in a loop with at most --inflight queued, for --seconds. Prints one JSON line:
//   {"pid": P, "devices": [{"device": d, "iterations": I, "seconds": S, "iters_per_s": R,
//     "ticks": [[t_s, iters], ...]}, ...], "kernel_us": K}
// ticks: CLOCK_MONOTONIC seconds (as Python's time.monotonic()) and the kernels completed by then,
// sampled every ~0.25 s, so a caller can count the work done inside any common period.
//
//   two_gpu_spin [--devices 0,1] [--seconds 20] [--kernel_us 2000] [--inflight 4]
//
// Build (CUDA 12/13, H100/H200):
//   nvcc -O2 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -cudart static \
//        -o BINDIR/two_gpu_spin tests/gpu/two_gpu_spin.cu
#include <cuda_runtime.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

static void die(const char* what, cudaError_t e, int dev) {
  std::fprintf(stderr, "two_gpu_spin: device %d: %s failed: %s\n", dev, what, cudaGetErrorString(e));
  std::fflush(stderr);
  std::_Exit(1);
}
#define CHECK(x, dev)               \
  do {                              \
    cudaError_t e_ = (x);           \
    if (e_ != cudaSuccess) die(#x, e_, dev); \
  } while (0)

static double mono() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#include "../../demo/spin_kernel.cuh"

struct Result {
  int device = 0;
  long long iters = 0;
  double seconds = 0;
  std::vector<std::pair<double, long long>> ticks;
};

static void run(int dev, double seconds, double kernel_us, int inflight, double start_at, Result* r) {
  r->device = dev;
  CHECK(cudaSetDevice(dev), dev);
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), dev);
  unsigned long long* sink;
  CHECK(cudaMalloc(&sink, sizeof(*sink)), dev);
  std::vector<cudaEvent_t> ev(inflight);
  for (auto& e : ev) CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), dev);
  spin<<<1, 32, 0, s>>>(1000, sink);  // load the module
  CHECK(cudaStreamSynchronize(s), dev);
  while (mono() < start_at) usleep(1000);  // both devices start together
  const unsigned long long ns = (unsigned long long)(kernel_us * 1000.0);
  const double t0 = mono(), end = t0 + seconds;
  double next_tick = t0;
  long long iters = 0;
  r->ticks.emplace_back(t0, 0);
  for (;;) {
    const double now = mono();
    if (now >= end) break;
    if (iters >= inflight) {
      CHECK(cudaEventSynchronize(ev[iters % inflight]), dev);
      if (now >= next_tick) {
        r->ticks.emplace_back(mono(), iters - inflight + 1);  // kernels known complete
        next_tick = now + 0.25;
      }
    }
    spin<<<1, 32, 0, s>>>(ns, sink);
    CHECK(cudaGetLastError(), dev);
    CHECK(cudaEventRecord(ev[iters % inflight], s), dev);
    ++iters;
  }
  CHECK(cudaStreamSynchronize(s), dev);
  r->iters = iters;
  r->seconds = mono() - t0;
  r->ticks.emplace_back(mono(), iters);
  CHECK(cudaFree(sink), dev);
}

int main(int argc, char** argv) {
  double seconds = 20, kernel_us = 2000;
  int inflight = 4;
  std::vector<int> devices = {0, 1};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kernel_us")) kernel_us = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--inflight")) inflight = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--devices")) {
      devices.clear();
      std::string s = argv[i + 1];
      size_t p = 0;
      while (p <= s.size()) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        if (q > p) devices.push_back(std::atoi(s.substr(p, q - p).c_str()));
        p = q + 1;
      }
    } else {
      std::fprintf(stderr, "usage: two_gpu_spin [--devices 0,1] [--seconds S] [--kernel_us US] [--inflight N]\n");
      return 2;
    }
  }
  if (inflight < 1) inflight = 1;
  if (argc % 2 == 0) {
    std::fprintf(stderr, "two_gpu_spin: option without a value\n");
    return 2;
  }
  int n = 0;
  CHECK(cudaGetDeviceCount(&n), -1);
  for (int d : devices) {
    if (d < 0 || d >= n) {
      std::fprintf(stderr, "two_gpu_spin: device %d not present (%d visible)\n", d, n);
      return 1;
    }
  }
  // Start the loops together after every device is initialised (module load on each takes a while).
  const double start_at = mono() + 1.0;
  std::vector<Result> res(devices.size());
  std::vector<std::thread> th;
  for (size_t i = 0; i < devices.size(); ++i)
    th.emplace_back(run, devices[i], seconds, kernel_us, inflight, start_at, &res[i]);
  for (auto& t : th) t.join();
  std::printf("{\"pid\": %d, \"kernel_us\": %.0f, \"devices\": [", (int)getpid(), kernel_us);
  for (size_t i = 0; i < res.size(); ++i) {
    const Result& r = res[i];
    std::printf("%s{\"device\": %d, \"iterations\": %lld, \"seconds\": %.3f, \"iters_per_s\": %.2f, \"ticks\": [",
                i ? ", " : "", r.device, r.iters, r.seconds, r.seconds > 0 ? r.iters / r.seconds : 0.0);
    for (size_t k = 0; k < r.ticks.size(); ++k)
      std::printf("%s[%.4f, %lld]", k ? ", " : "", r.ticks[k].first, r.ticks[k].second);
    std::printf("]}");
  }
  std::printf("]}\n");
  std::fflush(stdout);
  return 0;
}
