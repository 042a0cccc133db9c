// GPU regression matrix (tests/gpu/matrix.py), raw launch paths: the spin kernel of
// demo/spin_kernel.cuh launched in a loop through one launch path, for --seconds after a warm-up.
//
//   paths --path legacy|stream|ptds|graph|coop|ex|driver [--seconds 7.5] [--skip 1.5]
//         [--kernel_us 100] [--inflight 4]
//
// Paths: legacy   spin<<<1, 32>>> on the legacy default stream
//        stream   spin<<<1, 32, 0, s>>> on a non-blocking stream
//        ptds     spin<<<1, 32>>> on the per-thread default stream (only the paths_ptds build, made
//                 with --default-stream per-thread; the plain build refuses it)
//        graph    cudaGraphLaunch of a graph captured from one spin launch on a non-blocking stream
//        coop     cudaLaunchCooperativeKernel
//        ex       cudaLaunchKernelEx (no attributes)
//        driver   cuLaunchKernel on the CUfunction that cudaGetFuncBySymbol gives for spin
// At most --inflight kernels are queued (events), as demo/workload.cu does. The rate is the number of
// launches between the first loop turn at or after --skip seconds and the last one, over that time
// (the hooked run's first window allowance falls in the skipped part). Correctness: every CUDA call
// succeeds and the GPU time between a timing event before the first launch and one after the last
// covers the launches (>= 0.97 * launches * kernel_us): a launch that was dropped instead of run shows.
// Prints one JSON line {"workload": "paths", "path": P, "ok": B, "rate": R, ...}; exit 0 when ok.
#include <cuda.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../demo/spin_kernel.cuh"

static std::string g_path = "?";

#define CHECK(x)                                                                                       \
  do {                                                                                                 \
    cudaError_t e_ = (x);                                                                              \
    if (e_ != cudaSuccess) {                                                                           \
      std::printf("{\"workload\": \"paths\", \"path\": \"%s\", \"ok\": false, \"error\": \"%s: %s\"}\n", \
                  g_path.c_str(), #x, cudaGetErrorString(e_));                                         \
      std::fprintf(stderr, "paths: %s failed: %s\n", #x, cudaGetErrorString(e_));                     \
      std::exit(1);                                                                                    \
    }                                                                                                  \
  } while (0)

#define CK(x)                                                                                          \
  do {                                                                                                 \
    CUresult r_ = (x);                                                                                 \
    if (r_ != CUDA_SUCCESS) {                                                                          \
      const char* s_ = "?";                                                                            \
      cuGetErrorName(r_, &s_);                                                                         \
      std::printf("{\"workload\": \"paths\", \"path\": \"%s\", \"ok\": false, \"error\": \"%s: %s\"}\n", \
                  g_path.c_str(), #x, s_);                                                             \
      std::fprintf(stderr, "paths: %s failed: %s\n", #x, s_);                                         \
      std::exit(1);                                                                                    \
    }                                                                                                  \
  } while (0)

int main(int argc, char** argv) {
  double seconds = 7.5, skip = 1.5, kernel_us = 100;
  int inflight = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--path")) g_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--skip")) skip = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kernel_us")) kernel_us = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--inflight")) inflight = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: paths --path legacy|stream|ptds|graph|coop|ex|driver [--seconds S] "
                           "[--skip S] [--kernel_us US] [--inflight N]\n");
      return 2;
    }
  }
  const std::string p = g_path;
#ifdef CUDA_API_PER_THREAD_DEFAULT_STREAM
  const bool ptds_build = true;
#else
  const bool ptds_build = false;
#endif
  const bool known = p == "legacy" || p == "stream" || p == "ptds" || p == "graph" || p == "coop" || p == "ex" ||
                     p == "driver";
  if (!known || (p == "ptds") != ptds_build || skip >= seconds || inflight < 1) {
    std::printf("{\"workload\": \"paths\", \"path\": \"%s\", \"ok\": false, \"error\": \"bad arguments (path %s "
                "needs the %s build; skip < seconds)\"}\n", p.c_str(), p.c_str(),
                p == "ptds" ? "paths_ptds" : "plain paths");
    return 2;
  }
  const bool on_default = p == "legacy" || p == "ptds";
  cudaStream_t s = nullptr;  // 0: the default stream (legacy, or per-thread in the ptds build)
  if (!on_default) CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  unsigned long long* sink;
  CHECK(cudaMalloc(&sink, sizeof(*sink)));
  unsigned long long ns = (unsigned long long)(kernel_us * 1000.0);
  void* args[] = {&ns, &sink};

  cudaGraphExec_t ge = nullptr;
  cudaGraph_t g = nullptr;
  if (p == "graph") {
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    spin<<<1, 32, 0, s>>>(ns, sink);
    CHECK(cudaStreamEndCapture(s, &g));
    CHECK(cudaGraphInstantiate(&ge, g, 0));
  }
  CUfunction fn = nullptr;
  if (p == "driver") CHECK(cudaGetFuncBySymbol(&fn, (const void*)spin));
  cudaLaunchConfig_t cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(32);
  cfg.stream = s;
  if (p == "coop") {
    int coop = 0;
    CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, 0));
    if (!coop) CHECK(cudaErrorNotSupported);
  }

  auto launch = [&]() {
    if (p == "legacy" || p == "ptds" || p == "stream") spin<<<1, 32, 0, s>>>(ns, sink);
    else if (p == "graph") CHECK(cudaGraphLaunch(ge, s));
    else if (p == "coop") CHECK(cudaLaunchCooperativeKernel((const void*)spin, dim3(1), dim3(32), args, 0, s));
    else if (p == "ex") CHECK(cudaLaunchKernelEx(&cfg, spin, ns, sink));
    else CK(cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, (CUstream)s, args, nullptr));
    CHECK(cudaGetLastError());
  };

  std::vector<cudaEvent_t> ev(inflight);
  for (auto& e : ev) CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  cudaEvent_t t_first, t_last;
  CHECK(cudaEventCreate(&t_first));
  CHECK(cudaEventCreate(&t_last));
  // Warm-up: module load, first launch through the path itself.
  unsigned long long warm_ns = 1000;
  if (p != "graph") std::swap(ns, warm_ns);  // a graph keeps the parameters it was captured with
  launch();
  if (p != "graph") std::swap(ns, warm_ns);
  CHECK(cudaStreamSynchronize(s));

  using clk = std::chrono::steady_clock;
  const auto t0 = clk::now();
  const clk::time_point ta = t0 + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(skip));
  const clk::time_point tend = t0 + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds));
  long long n = 0, n_a = -1;
  clk::time_point a = t0, now = t0;
  CHECK(cudaEventRecord(t_first, s));
  while ((now = clk::now()) < tend) {
    if (n_a < 0 && now >= ta) {  // the count at ta: a launch blocked at the gate across ta is before it
      n_a = n;
      a = ta;
    }
    if (n >= inflight) CHECK(cudaEventSynchronize(ev[n % inflight]));
    launch();
    CHECK(cudaEventRecord(ev[n % inflight], s));
    ++n;
  }
  CHECK(cudaEventRecord(t_last, s));
  CHECK(cudaStreamSynchronize(s));
  // Over the fixed span [skip, seconds] (whole LIMIT windows), not from the first loop turn after
  // skip: a loop blocked at the gate would start counting at the next grant, a burst's start.
  const double measured = std::chrono::duration<double>(tend - a).count();
  float gpu_ms = 0;
  CHECK(cudaEventElapsedTime(&gpu_ms, t_first, t_last));
  const double need_ms = 0.97 * n * kernel_us / 1000.0;
  const bool ok = n_a >= 0 && measured > 0 && gpu_ms >= need_ms;
  std::printf("{\"workload\": \"paths\", \"path\": \"%s\", \"ok\": %s, \"rate\": %.3f, \"unit\": \"kernels/s\", "
              "\"measured_s\": %.3f, \"measured_iterations\": %lld, \"iterations\": %lld, \"kernel_us\": %.0f, "
              "\"gpu_ms\": %.1f, \"gpu_ms_needed\": %.1f, \"ptds_build\": %s, \"t_a\": %.6f, \"t_b\": %.6f%s}\n",
              p.c_str(), ok ? "true" : "false", n_a >= 0 && measured > 0 ? (n - n_a) / measured : 0.0, measured,
              n_a >= 0 ? n - n_a : 0, n, kernel_us, gpu_ms, need_ms, ptds_build ? "true" : "false",
              std::chrono::duration<double>(ta.time_since_epoch()).count(),  // steady_clock: CLOCK_MONOTONIC
              std::chrono::duration<double>(tend.time_since_epoch()).count(),
              ok ? "" : ", \"error\": \"GPU time below the launches' spin time, or nothing measured\"");
  std::fflush(stdout);
  if (ge) CHECK(cudaGraphExecDestroy(ge));
  if (g) CHECK(cudaGraphDestroy(g));
  CHECK(cudaFree(sink));
  return ok ? 0 : 1;
}
