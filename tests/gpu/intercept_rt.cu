// Interception check, runtime API (static cudart): launches a known number of kernels from several
// threads, on non-blocking streams and on the default stream, and prints {"expected_launches": K}.
// Built twice by tests/gpu/Makefile: legacy default stream, and --default-stream per-thread (then the
// runtime reaches the driver's _ptsz entry points and the hook's *_ptsz counters must move).
//   intercept_rt [--threads 4] [--per_stream 500] [--per_default 100]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#define CHECK(x)                                                                          \
  do {                                                                                    \
    cudaError_t e_ = (x);                                                                 \
    if (e_ != cudaSuccess) {                                                              \
      std::fprintf(stderr, "intercept_rt: %s: %s\n", #x, cudaGetErrorString(e_));         \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

__global__ void bump(int* p) {
  if (threadIdx.x == 0) atomicAdd(p, 1);
}

int main(int argc, char** argv) {
  int threads = 4, per_stream = 500, per_default = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--per_stream")) per_stream = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--per_default")) per_default = std::atoi(argv[i + 1]);
  }
  int* counter;
  CHECK(cudaMalloc(&counter, sizeof(int)));
  int zero = 0;
  CHECK(cudaMemcpy(counter, &zero, sizeof(int), cudaMemcpyHostToDevice));
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([=] {
      cudaStream_t s;
      CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      for (int i = 0; i < per_stream; ++i) bump<<<1, 32, 0, s>>>(counter);
      for (int i = 0; i < per_default; ++i) bump<<<1, 32>>>(counter);  // default stream
      CHECK(cudaGetLastError());
      CHECK(cudaStreamSynchronize(s));
      CHECK(cudaStreamDestroy(s));
    });
  }
  for (auto& t : ts) t.join();
  CHECK(cudaDeviceSynchronize());
  int got = 0;
  CHECK(cudaMemcpy(&got, counter, sizeof(int), cudaMemcpyDeviceToHost));
  long long expected = (long long)threads * (per_stream + per_default);
#ifdef CUDA_API_PER_THREAD_DEFAULT_STREAM
  const bool ptds = true;
#else
  const bool ptds = false;
#endif
  std::printf("{\"program\": \"intercept_rt\", \"per_thread_default_stream\": %s, \"expected_launches\": %lld, "
              "\"kernels_ran\": %d}\n", ptds ? "true" : "false", expected, got);
  CHECK(cudaFree(counter));
  return got == expected ? 0 : 1;
}
