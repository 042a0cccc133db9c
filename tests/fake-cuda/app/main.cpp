// fake-cuda-app: a GPU client for tests. Launches "sleep_<us>" kernels through the driver reached
// as the CUDA runtime reaches it, until --seconds pass, then prints one JSON line.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "driver_api.h"
#include "uuid_format.h"

using fakeapp::Api;
using fakeapp::DriverApi;
using fakeapp::Options;
using Clock = std::chrono::steady_clock;

namespace {

struct Shared {
  const Options* opt;
  const DriverApi* api;
  CUcontext ctx;
  CUfunction fn;
  Clock::time_point deadline;
};

// One launching thread: own non-blocking stream, or stream 0 (its per-thread stream) with --ptsz.
long worker(const Shared& s) {
  const DriverApi& a = *s.api;
  const Options& o = *s.opt;
  fakeapp::check(a, a.CtxSetCurrent(s.ctx), "cuCtxSetCurrent");
  CUstream stream = nullptr;
  if (!o.ptsz) fakeapp::check(a, a.StreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");

  CUgraph graph = nullptr;
  CUgraphExec exec = nullptr;
  if (o.api == Api::kGraph) {
    fakeapp::check(a, a.GraphCreate(&graph, 0), "cuGraphCreate");
    CUDA_KERNEL_NODE_PARAMS p = {};
    p.func = s.fn;
    p.gridDimX = p.gridDimY = p.gridDimZ = 1;
    p.blockDimX = p.blockDimY = p.blockDimZ = 1;
    CUgraphNode node = nullptr;
    fakeapp::check(a, a.GraphAddKernelNode(&node, graph, nullptr, 0, &p), "cuGraphAddKernelNode");
    fakeapp::check(a, a.GraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
  }
  CUlaunchConfig cfg = {};
  cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.hStream = stream;

  long launches = 0;
  while (Clock::now() < s.deadline) {
    switch (o.api) {
      case Api::kLaunch:
        fakeapp::check(a, a.LaunchKernel(s.fn, 1, 1, 1, 1, 1, 1, 0, stream, nullptr, nullptr), "cuLaunchKernel");
        break;
      case Api::kEx:
        fakeapp::check(a, a.LaunchKernelEx(&cfg, s.fn, nullptr, nullptr), "cuLaunchKernelEx");
        break;
      case Api::kCoop:
        fakeapp::check(a, a.LaunchCooperativeKernel(s.fn, 1, 1, 1, 1, 1, 1, 0, stream, nullptr),
                       "cuLaunchCooperativeKernel");
        break;
      case Api::kGraph:
        fakeapp::check(a, a.GraphLaunch(exec, stream), "cuGraphLaunch");
        break;
    }
    ++launches;
    if (o.sync_every > 0 && launches % o.sync_every == 0) {
      fakeapp::check(a, a.StreamSynchronize(stream), "cuStreamSynchronize");
    }
    if (o.idle_every > 0 && launches % o.idle_every == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.idle_ms));
    }
  }
  fakeapp::check(a, a.StreamSynchronize(stream), "cuStreamSynchronize");
  if (exec != nullptr) fakeapp::check(a, a.GraphExecDestroy(exec), "cuGraphExecDestroy");
  if (graph != nullptr) fakeapp::check(a, a.GraphDestroy(graph), "cuGraphDestroy");
  if (stream != nullptr) fakeapp::check(a, a.StreamDestroy(stream), "cuStreamDestroy");
  return launches;
}

// --alternate N: one thread, devices 0 and 1 in turn, N launches then a synchronise on each (a
// pipeline split over two GPUs). Returns the launches made.
long alternate(const Options& o, const DriverApi& a, Clock::time_point deadline) {
  CUcontext ctx[2] = {nullptr, nullptr};
  CUfunction fn[2] = {nullptr, nullptr};
  CUstream stream[2] = {nullptr, nullptr};
  static const char kImage[] = "fake-cuda-app module";
  const std::string kernel = "sleep_" + std::to_string(o.kernel_us);
  for (int d = 0; d < 2; ++d) {
    CUdevice dev = 0;
    fakeapp::check(a, a.DeviceGet(&dev, d), "cuDeviceGet");
    fakeapp::check(a, a.DevicePrimaryCtxRetain(&ctx[d], dev), "cuDevicePrimaryCtxRetain");
    fakeapp::check(a, a.CtxSetCurrent(ctx[d]), "cuCtxSetCurrent");
    CUmodule mod = nullptr;
    fakeapp::check(a, a.ModuleLoadData(&mod, kImage), "cuModuleLoadData");
    fakeapp::check(a, a.ModuleGetFunction(&fn[d], mod, kernel.c_str()), "cuModuleGetFunction");
    fakeapp::check(a, a.StreamCreate(&stream[d], CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  }
  long launches = 0;
  for (int d = 0; Clock::now() < deadline; d = 1 - d) {
    fakeapp::check(a, a.CtxSetCurrent(ctx[d]), "cuCtxSetCurrent");
    for (long i = 0; i < o.alternate; ++i, ++launches) {
      fakeapp::check(a, a.LaunchKernel(fn[d], 1, 1, 1, 1, 1, 1, 0, stream[d], nullptr, nullptr), "cuLaunchKernel");
    }
    fakeapp::check(a, a.StreamSynchronize(stream[d]), "cuStreamSynchronize");
  }
  for (int d = 0; d < 2; ++d) {
    fakeapp::check(a, a.CtxSetCurrent(ctx[d]), "cuCtxSetCurrent");
    fakeapp::check(a, a.StreamDestroy(stream[d]), "cuStreamDestroy");
  }
  return launches;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::string err;
  if (!fakeapp::parse_args(argc, argv, &opt, &err)) {
    fprintf(stderr, "fake-cuda-app: %s\n%s", err.c_str(), fakeapp::kUsage);
    return 2;
  }
  const DriverApi api = fakeapp::load_driver(opt.ptsz);
  fakeapp::check(api, api.Init(0), "cuInit");
  CUdevice dev = 0;
  fakeapp::check(api, api.DeviceGet(&dev, opt.device), "cuDeviceGet");

  if (opt.print_uuid) {
    CUuuid uuid;
    fakeapp::check(api, api.DeviceGetUuid(&uuid, dev), "cuDeviceGetUuid");
    printf("%s\n", fakeapp::format_uuid(uuid).c_str());
    return 0;
  }

  if (opt.alternate > 0) {
    const Clock::time_point start = Clock::now();
    const long n = alternate(opt, api, start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds)));
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    printf("{\"pid\": %d, \"launches\": %ld, \"api\": \"launch\", \"ptsz\": false, \"seconds\": %.3f}\n",
           static_cast<int>(getpid()), n, elapsed);
    fflush(stdout);
    return 0;
  }
  CUcontext ctx = nullptr;
  fakeapp::check(api, api.DevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  fakeapp::check(api, api.CtxSetCurrent(ctx), "cuCtxSetCurrent");
  CUmodule mod = nullptr;
  static const char kImage[] = "fake-cuda-app module";  // the stand-in ignores the image
  fakeapp::check(api, api.ModuleLoadData(&mod, kImage), "cuModuleLoadData");
  CUfunction fn = nullptr;
  const std::string kernel = "sleep_" + std::to_string(opt.kernel_us);
  fakeapp::check(api, api.ModuleGetFunction(&fn, mod, kernel.c_str()), "cuModuleGetFunction");

  const Clock::time_point start = Clock::now();
  Shared shared{&opt, &api, ctx, fn,
                start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds))};
  std::vector<long> counts(static_cast<size_t>(opt.threads), 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < opt.threads; ++t) {
    threads.emplace_back([&, t] { counts[static_cast<size_t>(t)] = worker(shared); });
  }
  long total = 0;
  for (int t = 0; t < opt.threads; ++t) {
    threads[static_cast<size_t>(t)].join();
    total += counts[static_cast<size_t>(t)];
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  fakeapp::check(api, api.DevicePrimaryCtxRelease(dev), "cuDevicePrimaryCtxRelease");

  printf("{\"pid\": %d, \"launches\": %ld, \"api\": \"%s\", \"ptsz\": %s, \"seconds\": %.3f}\n",
         static_cast<int>(getpid()), total, fakeapp::api_name(opt.api), opt.ptsz ? "true" : "false", elapsed);
  fflush(stdout);
  return 0;
}
