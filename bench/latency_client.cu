// Client of bench/share_latency.py and bench/many_clients.py: a saturating GPU client or a periodic
// "inference" client with a latency measurement. Prints one JSON line on stdout at the end.
//
//   latency_client --mode saturate [--seconds 15] [--kernel_us 100] [--sync_every 20] [--warmup_s 2]
//   latency_client --mode infer    [--seconds 15] [--kernel_us 1000] [--period_ms 20] [--warmup_s 2]
//                  [--latencies_out FILE] [--trace_out FILE]
//   common: [--ready_file PATH --go_file PATH [--go_timeout_s 300]] [--name LABEL]
//
// Kernels spin on %globaltimer for --kernel_us, one block of 32 threads (as demo/workload.cu), so each
// occupies the GPU for about that long whatever its clock.
//
// saturate: launches back to back on a non-blocking stream with a cudaStreamSynchronize every
//   --sync_every launches, for --seconds. kernels_per_s: kernels completed in the fixed period
//   [start + --warmup_s, start + --seconds] (counted at the syncs, so within one batch), over its
//   length; kernels_per_s_total: every kernel over the whole run, to the final sync.
// infer: request i is scheduled at start + i * --period_ms (a fixed schedule that never drifts: a late
//   request does not move the next one). The client sleeps until the scheduled time (if it is not
//   already past), launches one --kernel_us kernel and waits for it with cudaStreamSynchronize;
//   latency = completion seen on the host - scheduled time (host CLOCK_MONOTONIC). Requests scheduled
//   in the first --warmup_s are dropped from the statistics. Requests are scheduled until start +
//   --seconds; any still not served 5 s after that are reported as "unfinished".
//   --trace_out FILE: one line per request, "DUE LAUNCH_MS DONE_MS": DUE the scheduled time as Unix
//   time in s (CLOCK_REALTIME, to line up with the daemons' log), LAUNCH_MS when the launch call
//   returned and DONE_MS when the sync returned, both in ms after DUE. Under the hook the launch call
//   waits for the token, so LAUNCH_MS is the wait for the token and DONE_MS - LAUNCH_MS the GPU's.
//
// Start barrier (for several clients measured over the same period): after CUDA start-up and a
// warm-up launch the client creates --ready_file, then waits until --go_file exists and holds a
// CLOCK_MONOTONIC time in seconds (Python's time.monotonic()); that time is the start. Without
// --go_file the run starts at once.
//
// Built with nvcc for the GPU (bench/Makefile, tests/gpu/Makefile). Built with g++ and
// -DLATENCY_CLIENT_STANDIN it uses the driver API the way the runtime reaches it
// (tests/fake-cuda/app/driver_api.cpp) with the stand-in driver's "sleep_<us>" kernels, for CPU dry
// runs of the bench scripts (--fake).
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef LATENCY_CLIENT_STANDIN
#include "../tests/fake-cuda/app/driver_api.h"
#else
#include <cuda_runtime.h>
#endif

namespace {

double real_s() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double mono_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void sleep_until(double t) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(t);
  ts.tv_nsec = static_cast<long>((t - static_cast<double>(ts.tv_sec)) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {
  }
}

[[noreturn]] void die(const char* what, const char* why) {
  std::fprintf(stderr, "latency_client: %s failed: %s\n", what, why);
  std::fflush(stderr);
  _exit(1);
}

#ifndef LATENCY_CLIENT_STANDIN
#define CHECK(x)                                           \
  do {                                                     \
    cudaError_t e_ = (x);                                  \
    if (e_ != cudaSuccess) die(#x, cudaGetErrorString(e_)); \
  } while (0)

#include "../demo/spin_kernel.cuh"

// One stream, one kernel length.
class Gpu {
 public:
  explicit Gpu(double kernel_us) : ns_(static_cast<unsigned long long>(kernel_us * 1000.0)) {
    CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    CHECK(cudaMalloc(&sink_, sizeof(*sink_)));
  }
  void launch() {
    spin<<<1, 32, 0, s_>>>(ns_, sink_);
    CHECK(cudaGetLastError());
  }
  void launch_short() {
    spin<<<1, 32, 0, s_>>>(1000, sink_);
    CHECK(cudaGetLastError());
  }
  void sync() { CHECK(cudaStreamSynchronize(s_)); }
  const char* device_name() {
    static cudaDeviceProp p;
    int d = 0;
    CHECK(cudaGetDevice(&d));
    CHECK(cudaGetDeviceProperties(&p, d));
    return p.name;
  }

 private:
  unsigned long long ns_;
  cudaStream_t s_ = nullptr;
  unsigned long long* sink_ = nullptr;
};
#else
// The stand-in driver: kernels named "sleep_<us>" occupy the simulated device for that long.
class Gpu {
 public:
  explicit Gpu(double kernel_us) : api_(fakeapp::load_driver(false)) {
    fakeapp::check(api_, api_.Init(0), "cuInit");
    CUdevice dev = 0;
    fakeapp::check(api_, api_.DeviceGet(&dev, 0), "cuDeviceGet");
    CUcontext ctx = nullptr;
    fakeapp::check(api_, api_.DevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
    fakeapp::check(api_, api_.CtxSetCurrent(ctx), "cuCtxSetCurrent");
    CUmodule mod = nullptr;
    static const char kImage[] = "latency_client module";  // the stand-in ignores the image
    fakeapp::check(api_, api_.ModuleLoadData(&mod, kImage), "cuModuleLoadData");
    const long us = std::max(1L, std::lround(kernel_us));
    fakeapp::check(api_, api_.ModuleGetFunction(&fn_, mod, ("sleep_" + std::to_string(us)).c_str()),
                   "cuModuleGetFunction");
    fakeapp::check(api_, api_.ModuleGetFunction(&short_, mod, "sleep_1"), "cuModuleGetFunction");
    fakeapp::check(api_, api_.StreamCreate(&s_, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  }
  void launch() { go(fn_); }
  void launch_short() { go(short_); }
  void sync() { fakeapp::check(api_, api_.StreamSynchronize(s_), "cuStreamSynchronize"); }
  const char* device_name() { return "stand-in driver"; }

 private:
  void go(CUfunction f) {
    fakeapp::check(api_, api_.LaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s_, nullptr, nullptr), "cuLaunchKernel");
  }
  fakeapp::DriverApi api_;
  CUfunction fn_ = nullptr, short_ = nullptr;
  CUstream s_ = nullptr;
};
#endif

struct Options {
  std::string mode;
  std::string name;
  double seconds = 15;
  double kernel_us = -1;  // default by mode
  long sync_every = 20;
  double period_ms = 20;
  double warmup_s = 2;
  std::string ready_file, go_file, latencies_out, trace_out;
  double go_timeout_s = 300;
};

const char kUsage[] =
    "usage: latency_client --mode saturate|infer [--seconds 15] [--kernel_us US] [--warmup_s 2]\n"
    "         saturate: [--sync_every 20]   (--kernel_us default 100)\n"
    "         infer:    [--period_ms 20] [--latencies_out FILE] [--trace_out FILE]   (--kernel_us default 1000)\n"
    "         [--ready_file PATH --go_file PATH [--go_timeout_s 300]] [--name LABEL]\n";

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--help" || f == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    char* end = nullptr;
    auto num = [&](double* out) {
      *out = std::strtod(v, &end);
      return end != v && *end == '\0' && std::isfinite(*out) && *out >= 0;
    };
    double d = 0;
    if (f == "--mode") o->mode = v;
    else if (f == "--name") o->name = v;
    else if (f == "--ready_file") o->ready_file = v;
    else if (f == "--go_file") o->go_file = v;
    else if (f == "--latencies_out") o->latencies_out = v;
    else if (f == "--trace_out") o->trace_out = v;
    else if (f == "--seconds") { if (!num(&o->seconds)) return false; }
    else if (f == "--kernel_us") { if (!num(&o->kernel_us) || o->kernel_us <= 0) return false; }
    else if (f == "--period_ms") { if (!num(&o->period_ms) || o->period_ms <= 0) return false; }
    else if (f == "--warmup_s") { if (!num(&o->warmup_s)) return false; }
    else if (f == "--go_timeout_s") { if (!num(&o->go_timeout_s)) return false; }
    else if (f == "--sync_every") {
      if (!num(&d) || d < 1) return false;
      o->sync_every = static_cast<long>(d);
    } else {
      return false;
    }
  }
  if (o->mode != "saturate" && o->mode != "infer") return false;
  if (o->kernel_us < 0) o->kernel_us = o->mode == "saturate" ? 100 : 1000;
  return true;
}

// Creates ready_file, then waits for go_file to hold a CLOCK_MONOTONIC time (s). Returns the start.
double barrier(const Options& o, bool* timed_out) {
  *timed_out = false;
  if (!o.ready_file.empty()) {
    FILE* f = std::fopen(o.ready_file.c_str(), "w");
    if (f == nullptr) die("fopen(--ready_file)", std::strerror(errno));
    std::fprintf(f, "%d\n", static_cast<int>(getpid()));
    std::fclose(f);
  }
  if (o.go_file.empty()) return mono_s();
  const double give_up = mono_s() + o.go_timeout_s;
  for (;;) {
    if (FILE* f = std::fopen(o.go_file.c_str(), "r")) {
      double t = 0;
      const int n = std::fscanf(f, "%lf", &t);
      std::fclose(f);
      if (n == 1) return std::max(t, mono_s());
    }
    if (mono_s() > give_up) {
      *timed_out = true;
      return mono_s();
    }
    usleep(2000);
  }
}

// Nearest-rank percentile of sorted v (q in [0, 1]).
double pct(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  k = std::min(std::max<size_t>(k, 1), v.size());
  return v[k - 1];
}

void print_head(const Options& o, Gpu& gpu, double start, double waited_s, bool go_timeout) {
  std::printf("{\"pid\": %d, \"name\": \"%s\", \"mode\": \"%s\", \"device\": \"%s\", \"kernel_us\": %.0f, "
              "\"seconds\": %.3f, \"warmup_s\": %.3f, \"start_mono\": %.6f, \"waited_for_go_s\": %.3f, "
              "\"go_timeout\": %s, ",
              static_cast<int>(getpid()), o.name.c_str(), o.mode.c_str(), gpu.device_name(), o.kernel_us,
              o.seconds, o.warmup_s, start, waited_s, go_timeout ? "true" : "false");
}

int saturate(const Options& o, Gpu& gpu, double start, double waited_s, bool go_timeout) {
  // Kernels completed by a moment = the count at the last sync at or before it (a sync every
  // --sync_every launches, so within one batch); the measured period is the fixed [start + warmup,
  // start + seconds], the same for every client started by one go file.
  const double measure_from = start + std::min(o.warmup_s, o.seconds), end = start + o.seconds;
  long long n = 0, n_a = 0, n_b = 0;
  while (mono_s() < end) {
    gpu.launch();
    ++n;
    if (n % o.sync_every == 0) {
      gpu.sync();
      const double t = mono_s();
      if (t <= measure_from) n_a = n;
      if (t <= end) n_b = n;
    }
  }
  gpu.sync();
  const double fin = mono_s();
  const double span = end - measure_from;
  const double steady = span > 0 ? static_cast<double>(n_b - n_a) / span : 0;
  const double total = fin > start ? static_cast<double>(n) / (fin - start) : 0;
  print_head(o, gpu, start, waited_s, go_timeout);
  std::printf("\"sync_every\": %ld, \"kernels\": %lld, \"kernels_per_s\": %.2f, \"kernels_per_s_total\": %.2f, "
              "\"measured_s\": %.3f, \"measured_kernels\": %lld, \"gpu_busy_fraction\": %.4f, \"end_mono\": %.6f}\n",
              o.sync_every, n, steady, total, span, n_b - n_a, steady * o.kernel_us / 1e6, fin);
  return 0;
}

int infer(const Options& o, Gpu& gpu, double start, double waited_s, bool go_timeout) {
  const double period = o.period_ms / 1000.0, end = start + o.seconds, give_up = end + 5.0;
  std::vector<double> lat;  // ms, requests scheduled after the warm-up
  std::vector<double> all;  // ms, every request (for --latencies_out)
  struct Traced {
    double due_real, launch_ms, done_ms;
  };
  std::vector<Traced> trace;  // every request (for --trace_out)
  const double real_off = real_s() - mono_s();
  double max_late = 0;      // how late a launch left the host, s (backlog)
  long long served = 0, scheduled = 0, unfinished = 0;
  for (long long i = 0;; ++i) {
    const double due = start + static_cast<double>(i) * period;
    if (due >= end) break;
    ++scheduled;
    if (mono_s() > give_up) {
      ++unfinished;
      continue;
    }
    if (mono_s() < due) sleep_until(due);
    max_late = std::max(max_late, mono_s() - due);
    gpu.launch();
    const double launched = mono_s();
    gpu.sync();
    const double ms = (mono_s() - due) * 1000.0;
    ++served;
    all.push_back(ms);
    if (!o.trace_out.empty()) trace.push_back({due + real_off, (launched - due) * 1000.0, ms});
    if (due >= start + o.warmup_s) lat.push_back(ms);
  }
  if (!o.latencies_out.empty()) {
    if (FILE* f = std::fopen(o.latencies_out.c_str(), "w")) {
      for (double v : all) std::fprintf(f, "%.4f\n", v);
      std::fclose(f);
    }
  }
  if (!o.trace_out.empty()) {
    if (FILE* f = std::fopen(o.trace_out.c_str(), "w")) {
      for (const Traced& t : trace) std::fprintf(f, "%.6f %.4f %.4f\n", t.due_real, t.launch_ms, t.done_ms);
      std::fclose(f);
    }
  }
  std::vector<double> s = lat;
  std::sort(s.begin(), s.end());
  double mean = 0;
  for (double v : s) mean += v;
  if (!s.empty()) mean /= static_cast<double>(s.size());
  print_head(o, gpu, start, waited_s, go_timeout);
  std::printf("\"period_ms\": %.3f, \"scheduled\": %lld, \"served\": %lld, \"unfinished\": %lld, \"count\": %zu, "
              "\"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f, \"mean_ms\": %.4f, "
              "\"min_ms\": %.4f, \"max_late_launch_ms\": %.4f, \"end_mono\": %.6f}\n",
              o.period_ms, scheduled, served, unfinished, s.size(), pct(s, 0.5), pct(s, 0.9), pct(s, 0.99),
              s.empty() ? 0.0 : s.back(), mean, s.empty() ? 0.0 : s.front(), max_late * 1000.0, mono_s());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, &o)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  Gpu gpu(o.kernel_us);
  // Warm-up: module load, first launches, one kernel of the measured length.
  for (int i = 0; i < 3; ++i) gpu.launch_short();
  gpu.sync();
  gpu.launch();
  gpu.sync();
  const double t_ready = mono_s();
  bool go_timeout = false;
  const double start = barrier(o, &go_timeout);
  const double waited = std::max(0.0, start - t_ready);
  if (mono_s() < start) sleep_until(start);
  const int rc = o.mode == "saturate" ? saturate(o, gpu, start, waited, go_timeout)
                                      : infer(o, gpu, start, waited, go_timeout);
  std::fflush(stdout);
  return rc;
}
