// Demo workload: a fixed-duration spin kernel launched in a loop on its own stream for N seconds.
// Prints one JSON line: {"pid":P,"iterations":I,"seconds":S,"iters_per_s":R,"kernel_us":K,...}.
//
//   workload [--seconds 10] [--kernel_us 2000] [--inflight 4]
//
// Each kernel spins on %globaltimer (ns) for kernel_us, one thread block, so it occupies the GPU for
// about that long whatever the GPU's clock. At most --inflight kernels are queued (events), so the
// loop stops within a few kernels of --seconds and the count is the work done in that time.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <unistd.h>

#define CHECK(x)                                                                    \
  do {                                                                              \
    cudaError_t e_ = (x);                                                           \
    if (e_ != cudaSuccess) {                                                        \
      std::fprintf(stderr, "workload: %s failed: %s\n", #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

#include "spin_kernel.cuh"

int main(int argc, char** argv) {
  double seconds = 10;
  double kernel_us = 2000;
  int inflight = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kernel_us")) kernel_us = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--inflight")) inflight = std::atoi(argv[i + 1]);
    else { std::fprintf(stderr, "usage: workload [--seconds S] [--kernel_us US] [--inflight N]\n"); return 2; }
  }
  if (inflight < 1) inflight = 1;
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  unsigned long long* sink;
  CHECK(cudaMalloc(&sink, sizeof(*sink)));
  std::vector<cudaEvent_t> ev(inflight);
  for (auto& e : ev) CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  const unsigned long long ns = (unsigned long long)(kernel_us * 1000.0);

  // Warm up: load the module, first launch.
  spin<<<1, 32, 0, s>>>(1000, sink);
  CHECK(cudaStreamSynchronize(s));

  using clk = std::chrono::steady_clock;
  auto t0 = clk::now();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  long long iters = 0;
  while (clk::now() < end) {
    cudaEvent_t& e = ev[iters % inflight];
    if (iters >= inflight) CHECK(cudaEventSynchronize(e));
    spin<<<1, 32, 0, s>>>(ns, sink);
    CHECK(cudaGetLastError());
    CHECK(cudaEventRecord(e, s));
    ++iters;
  }
  CHECK(cudaStreamSynchronize(s));
  double took = std::chrono::duration<double>(clk::now() - t0).count();
  std::printf("{\"pid\": %d, \"iterations\": %lld, \"seconds\": %.3f, \"iters_per_s\": %.2f, \"kernel_us\": %.0f, "
              "\"gpu_busy_fraction\": %.4f}\n",
              (int)getpid(), iters, took, iters / took, kernel_us, iters * kernel_us / 1e6 / took);
  std::fflush(stdout);
  CHECK(cudaFree(sink));
  return 0;
}
