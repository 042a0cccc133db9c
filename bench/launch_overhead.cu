// Launch overhead: empty-kernel launches per second. Run it twice, with and without the hook
// (bench/run_bench.py does), to get the hook's cost per launch.
//   launch_overhead [--launches 200000] [--reps 7] [--streams 4]
// For each repetition: N asynchronous launches of an empty kernel, round-robin over S non-blocking
// streams, then one device synchronise. Prints JSON with, per repetition, ns per launch for the
// launch loop alone ("issue") and including the final synchronise ("total"), and their medians.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <unistd.h>

#define CHECK(x)                                                                     \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::fprintf(stderr, "launch_overhead: %s: %s\n", #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

__global__ void empty() {}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static std::string list(const std::vector<double>& v) {
  std::string s = "[";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.1f", i ? ", " : "", v[i]);
    s += buf;
  }
  return s + "]";
}

int main(int argc, char** argv) {
  long n = 200000;
  int reps = 7, nstreams = 4;
  // Launches are issued in batches, each followed by a synchronise, and only the launch calls are
  // timed: a batch stays below the driver's queue depth and the hook's in-flight bound
  // (GEMINI_MAX_INFLIGHT, 128), so "issue" is the CPU cost of a launch call, not the GPU's rate.
  long batch = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--launches")) n = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--streams")) nstreams = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch")) batch = std::atol(argv[i + 1]);
  }
  if (nstreams < 1) nstreams = 1;
  std::vector<cudaStream_t> st(nstreams);
  for (auto& s : st) CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  for (int i = 0; i < 1000; ++i) empty<<<1, 1, 0, st[i % nstreams]>>>();  // warm up
  CHECK(cudaDeviceSynchronize());
  using clk = std::chrono::steady_clock;
  std::vector<double> issue, total;
  for (int r = 0; r < reps; ++r) {
    double issue_ns = 0;
    auto t0 = clk::now();
    for (long done = 0; done < n; done += batch) {
      const long m = std::min(batch, n - done);
      auto b0 = clk::now();
      for (long i = 0; i < m; ++i) empty<<<1, 1, 0, st[i % nstreams]>>>();
      auto b1 = clk::now();
      issue_ns += std::chrono::duration<double, std::nano>(b1 - b0).count();
      CHECK(cudaDeviceSynchronize());
    }
    auto t2 = clk::now();
    CHECK(cudaGetLastError());
    issue.push_back(issue_ns / n);
    total.push_back(std::chrono::duration<double, std::nano>(t2 - t0).count() / n);
  }
  std::printf("{\"pid\": %d, \"launches_per_rep\": %ld, \"batch\": %ld, \"reps\": %d, \"streams\": %d, "
              "\"issue_ns\": %s, \"total_ns\": %s, \"median_issue_ns\": %.1f, \"median_total_ns\": %.1f, "
              "\"launches_per_s\": %.0f}\n",
              (int)getpid(), n, batch, reps, nstreams, list(issue).c_str(), list(total).c_str(), median(issue),
              median(total), 1e9 / median(total));
  for (auto& s : st) CHECK(cudaStreamDestroy(s));
  return 0;
}
