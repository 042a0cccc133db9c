// fake-capture-app: a stream-capture client for tests. Each capturing thread loops: capture
// --nodes "sleep_<us>" kernels into a graph on its own stream (one cuMemAlloc in the middle, done
// as PyTorch's caching allocator does it: the thread switched to RELAXED mode), instantiate it,
// replay it --replays times, destroy it; until --seconds pass (at least one capture each), then one
// JSON line. Every call is legal on a real GPU in each capture mode, so a capture invalidated by
// whatever sits between the program and the driver (a hook) shows as a failed call: exit 1 with
// the call and the error name on stderr. Flags: args.h, docs/interfaces.md.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "driver.h"

using capapp::CaptureApi;
using capapp::Options;
using capapp::Violation;
using Clock = std::chrono::steady_clock;

namespace {

struct Counts {
  long captures = 0, replays = 0, graph_kernels = 0, eager_launches = 0;
};

// What the threads share. The violation handshake: capturing thread 0, inside its first capture,
// announces it and waits until the violating thread has made its call, so the call always lands
// inside a capture however loaded the machine is.
struct Shared {
  const Options* opt;
  const CaptureApi* api;
  CUcontext ctx;
  CUfunction fn;
  Clock::time_point deadline;
  std::mutex mu;
  std::condition_variable cv;
  bool capturing = false;  // guarded by mu
  bool violated = false;   // guarded by mu
  std::string violation_result;
};

// Runs f with the calling thread in RELAXED capture mode when `relax`, then restores its mode.
template <typename F>
void maybe_relaxed(const CaptureApi& a, bool relax, F&& f) {
  if (!relax) {
    f();
    return;
  }
  CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
  capapp::check(a, a.ThreadExchangeStreamCaptureMode(&m), "cuThreadExchangeStreamCaptureMode");
  f();
  capapp::check(a, a.ThreadExchangeStreamCaptureMode(&m), "cuThreadExchangeStreamCaptureMode");
}

void launch(const Shared& s, CUstream stream) {
  capapp::check(*s.api, s.api->LaunchKernel(s.fn, 1, 1, 1, 1, 1, 1, 0, stream, nullptr, nullptr), "cuLaunchKernel");
}

// One capturing thread. In GLOBAL mode with several capturing threads, a thread's calls outside its
// own capture (stream synchronise, free) are potentially unsafe while another thread captures: it
// makes them in RELAXED mode, as a careful program must.
Counts capture_worker(Shared& s, int index) {
  const CaptureApi& a = *s.api;
  const Options& o = *s.opt;
  capapp::check(a, a.CtxSetCurrent(s.ctx), "cuCtxSetCurrent");
  CUstream stream = nullptr;
  capapp::check(a, a.StreamCreate(&stream, o.blocking ? 0 : CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  const bool careful = o.mode == CU_STREAM_CAPTURE_MODE_GLOBAL && o.threads > 1;
  Counts c;
  do {
    capapp::check(a, a.StreamBeginCapture(stream, o.mode), "cuStreamBeginCapture_v2");
    if (index == 0 && c.captures == 0 && o.violate != Violation::kNone) {
      std::unique_lock<std::mutex> lk(s.mu);
      s.capturing = true;
      s.cv.notify_all();
      s.cv.wait(lk, [&] { return s.violated; });
    }
    CUdeviceptr buf = 0;
    for (long i = 0; i < o.nodes; ++i) {
      if (i == o.nodes / 2 && o.alloc_bytes > 0) {  // the caching allocator's cudaMalloc
        maybe_relaxed(a, true, [&] {
          capapp::check(a, a.MemAlloc(&buf, static_cast<size_t>(o.alloc_bytes)), "cuMemAlloc_v2");
        });
      }
      launch(s, stream);
      if (o.gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.gap_ms));
    }
    CUgraph graph = nullptr;
    capapp::check(a, a.StreamEndCapture(stream, &graph), "cuStreamEndCapture");
    CUgraphExec exec = nullptr;
    capapp::check(a, a.GraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
    for (long r = 0; r < o.replays; ++r) {
      capapp::check(a, a.GraphLaunch(exec, stream), "cuGraphLaunch");
      maybe_relaxed(a, careful, [&] { capapp::check(a, a.StreamSynchronize(stream), "cuStreamSynchronize"); });
    }
    capapp::check(a, a.GraphExecDestroy(exec), "cuGraphExecDestroy");
    capapp::check(a, a.GraphDestroy(graph), "cuGraphDestroy");
    if (buf != 0) maybe_relaxed(a, careful, [&] { capapp::check(a, a.MemFree(buf), "cuMemFree_v2"); });
    ++c.captures;
    c.replays += o.replays;
    c.graph_kernels += o.replays * o.nodes;
  } while (Clock::now() < s.deadline);
  capapp::check(a, a.StreamDestroy(stream), "cuStreamDestroy");
  return c;
}

// --eager_thread: plain kernels on its own non-blocking stream, synchronised every 20. Its
// cuStreamSynchronize is potentially unsafe beside GLOBAL captures: in GLOBAL mode it first
// switches itself to RELAXED.
Counts eager_worker(const Shared& s) {
  const CaptureApi& a = *s.api;
  capapp::check(a, a.CtxSetCurrent(s.ctx), "cuCtxSetCurrent");
  if (s.opt->mode == CU_STREAM_CAPTURE_MODE_GLOBAL) {
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    capapp::check(a, a.ThreadExchangeStreamCaptureMode(&m), "cuThreadExchangeStreamCaptureMode");
  }
  CUstream stream = nullptr;
  capapp::check(a, a.StreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  Counts c;
  do {  // at least one launch, however late the thread starts
    launch(s, stream);
    if (++c.eager_launches % 20 == 0) capapp::check(a, a.StreamSynchronize(stream), "cuStreamSynchronize");
  } while (Clock::now() < s.deadline);
  capapp::check(a, a.StreamSynchronize(stream), "cuStreamSynchronize");
  capapp::check(a, a.StreamDestroy(stream), "cuStreamDestroy");
  return c;
}

// --violate: once thread 0 captures, make the illegal call from this (GLOBAL-mode) thread and
// report its result on stderr; its error is the point, not a failure of the program.
void violator(Shared& s) {
  const CaptureApi& a = *s.api;
  capapp::check(a, a.CtxSetCurrent(s.ctx), "cuCtxSetCurrent");
  {
    std::unique_lock<std::mutex> lk(s.mu);
    s.cv.wait(lk, [&] { return s.capturing; });
  }
  CUresult r = CUDA_SUCCESS;
  const char* call = "";
  switch (s.opt->violate) {
    case Violation::kCtxSync:
      call = "cuCtxSynchronize";
      r = a.CtxSynchronize();
      break;
    case Violation::kLegacyLaunch:
      call = "cuLaunchKernel(legacy stream)";
      r = a.LaunchKernel(s.fn, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr);
      break;
    case Violation::kOtherThreadUnsafe: {
      call = "cuMemAlloc_v2";
      CUdeviceptr p = 0;
      r = a.MemAlloc(&p, 1 << 20);
      if (r == CUDA_SUCCESS) capapp::check(a, a.MemFree(p), "cuMemFree_v2");
      break;
    }
    case Violation::kNone:
      break;
  }
  fprintf(stderr, "fake-capture-app: violation %s: %s returned %s\n", capapp::violation_name(s.opt->violate), call,
          capapp::error_name(a, r));
  fflush(stderr);
  std::lock_guard<std::mutex> lk(s.mu);
  s.violation_result = capapp::error_name(a, r);
  s.violated = true;
  s.cv.notify_all();
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::string err;
  if (!capapp::parse_args(argc, argv, &opt, &err)) {
    fprintf(stderr, "fake-capture-app: %s\n%s", err.c_str(), capapp::kUsage);
    return 2;
  }
  const CaptureApi api = capapp::load_driver();
  capapp::check(api, api.Init(0), "cuInit");
  CUdevice dev = 0;
  capapp::check(api, api.DeviceGet(&dev, 0), "cuDeviceGet");
  CUcontext ctx = nullptr;
  capapp::check(api, api.DevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  capapp::check(api, api.CtxSetCurrent(ctx), "cuCtxSetCurrent");
  CUmodule mod = nullptr;
  static const char kImage[] = "fake-capture-app module";  // the stand-in ignores the image
  capapp::check(api, api.ModuleLoadData(&mod, kImage), "cuModuleLoadData");
  CUfunction fn = nullptr;
  const std::string kernel = "sleep_" + std::to_string(opt.kernel_us);
  capapp::check(api, api.ModuleGetFunction(&fn, mod, kernel.c_str()), "cuModuleGetFunction");

  // Memory the program holds for its whole life (a model's weights): under the hook's unified-memory
  // mode it becomes managed memory, which gem-schd may have moved to the host between slices.
  CUdeviceptr resident = 0;
  if (opt.resident_bytes > 0) {
    capapp::check(api, api.MemAlloc(&resident, static_cast<size_t>(opt.resident_bytes)), "cuMemAlloc_v2");
  }
  const Clock::time_point start = Clock::now();
  Shared s;
  s.opt = &opt;
  s.api = &api;
  s.ctx = ctx;
  s.fn = fn;
  s.deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds));
  std::vector<Counts> counts(static_cast<size_t>(opt.threads) + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < opt.threads; ++t) {
    threads.emplace_back([&, t] { counts[static_cast<size_t>(t)] = capture_worker(s, t); });
  }
  if (opt.eager_thread) threads.emplace_back([&] { counts.back() = eager_worker(s); });
  if (opt.violate != Violation::kNone) threads.emplace_back([&] { violator(s); });
  Counts total;
  for (std::thread& t : threads) t.join();
  for (const Counts& c : counts) {
    total.captures += c.captures;
    total.replays += c.replays;
    total.graph_kernels += c.graph_kernels;
    total.eager_launches += c.eager_launches;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (resident != 0) capapp::check(api, api.MemFree(resident), "cuMemFree_v2");
  capapp::check(api, api.DevicePrimaryCtxRelease(dev), "cuDevicePrimaryCtxRelease");

  std::string extra;
  if (opt.violate != Violation::kNone) {
    extra = std::string(", \"violation\": \"") + capapp::violation_name(opt.violate) + "\", \"violation_result\": \"" +
            s.violation_result + "\"";
  }
  printf("{\"pid\": %d, \"mode\": \"%s\", \"captures\": %ld, \"replays\": %ld, \"graph_kernels_run\": %ld, "
         "\"eager_launches\": %ld, \"seconds\": %.3f%s}\n",
         static_cast<int>(getpid()), capapp::mode_name(opt.mode), total.captures, total.replays, total.graph_kernels,
         total.eager_launches, elapsed, extra.c_str());
  fflush(stdout);
  return 0;
}
