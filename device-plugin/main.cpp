// gem-device-plugin: advertises a node's GPUs to kubelet as gemini.gpu-sharing.io/gpu-share
// (hundredths of a GPU) and gemini.gpu-sharing.io/gpu-memory (chunks of --memory_unit_mib MiB),
// so that kube-scheduler places shared pods by REQUEST and GPU_MEM. docs/kubernetes-device-plugin.md.
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "../scheduler/nvml_probe.h"
#include "gem/daemon.h"
#include "gem/flags.h"
#include "gem/log.h"
#include "gpus.h"
#include "runner.h"

namespace {

constexpr const char* kUsage = R"(usage: gem-device-plugin [flags]
  --plugin_dir DIR        kubelet's device-plugin folder (default /var/lib/kubelet/device-plugins);
                          kubelet.sock is there, and the plugin's gemini-share.sock, gemini-memory.sock
  --fake_gpus N:MiB       N made-up GPUs of MiB each instead of NVML (tests)
  --memory_unit_mib N     MiB per gpu-memory device (default 256; 1..65536)
  --scheduler_dir DIR     the node's per-GPU gem-schd sockets, <DIR>/<UUID>.sock (default /run/gemini)
  --mount_scheduler       also mount the GPU's scheduler socket into the container (default off:
                          only the pod-manager sidecar reaches gem-schd)
  --watch_interval_ms N   how often kubelet.sock is checked for a kubelet restart (default 1000)
  --register_timeout_ms N deadline of one Register call (default 5000)
  --health_interval_ms N  how often NVML is asked whether each GPU is still there (default 5000)
  --hint_window_ms N      how long a container's GPU steers its other resource (default 5000)
  --list                  print each GPU and the devices it would advertise, and exit
The NVML library is libnvidia-ml.so.1, or $GEMINI_NVML.
)";

bool ms_flag(const gem::Flags& f, const char* name, int64_t def, std::chrono::milliseconds* out, std::string* err) {
  int64_t v = 0;
  if (!f.get_int(name, def, 1, 3600000, &v, err)) return false;
  *out = std::chrono::milliseconds(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  gem::log::set_program("gem-device-plugin");
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  gem::Flags flags({"plugin_dir", "fake_gpus", "memory_unit_mib", "scheduler_dir", "watch_interval_ms",
                    "register_timeout_ms", "health_interval_ms", "hint_window_ms"},
                   {"mount_scheduler", "list"});
  std::string err;
  gem::dp::RunnerOptions opts;
  int64_t unit = 0;
  if (!flags.parse(argc, argv, &err) ||
      !flags.get_int("memory_unit_mib", gem::dp::kDefaultMemoryUnitMiB, 1, 65536, &unit, &err) ||
      !ms_flag(flags, "watch_interval_ms", gem::dp::kDefaultWatchIntervalMs, &opts.watch_interval, &err) ||
      !ms_flag(flags, "register_timeout_ms", gem::dp::kDefaultRegisterTimeoutMs, &opts.register_timeout, &err) ||
      !ms_flag(flags, "health_interval_ms", gem::dp::kDefaultHealthIntervalMs, &opts.health_interval, &err) ||
      !ms_flag(flags, "hint_window_ms", gem::dp::kDefaultHintWindowMs, &opts.hint_window, &err)) {
    std::fprintf(stderr, "gem-device-plugin: %s\n%s", err.c_str(), kUsage);
    return 2;
  }
  opts.plugin_dir = flags.get("plugin_dir", opts.plugin_dir);
  opts.alloc.scheduler_dir = flags.get("scheduler_dir", opts.alloc.scheduler_dir);
  opts.alloc.mount_scheduler = flags.has("mount_scheduler");

  std::vector<gem::dp::Gpu> gpus;
  if (flags.has("fake_gpus")) {
    if (!gem::dp::parse_fake_gpus(flags.get("fake_gpus", ""), &gpus, &err)) {
      std::fprintf(stderr, "gem-device-plugin: %s\n", err.c_str());
      return 2;
    }
  } else {
    const char* lib = std::getenv("GEMINI_NVML");
    opts.nvml_library = lib != nullptr && *lib != '\0' ? lib : gem::sched::kNvmlLibrary;
    if (!gem::dp::discover_gpus(opts.nvml_library, &gpus, &err)) {
      std::fprintf(stderr, "gem-device-plugin: no GPUs: %s\n", err.c_str());
      return 1;
    }
  }
  uint64_t mem_devices = 0;
  for (const auto& g : gpus) mem_devices += gem::dp::memory_devices(g.memory_mib, static_cast<uint64_t>(unit));
  if (mem_devices > gem::dp::kMaxDevicesPerResource) {
    std::fprintf(stderr, "gem-device-plugin: %llu gpu-memory devices at %lld MiB each (at most %llu): raise --memory_unit_mib\n",
                 static_cast<unsigned long long>(mem_devices), static_cast<long long>(unit),
                 static_cast<unsigned long long>(gem::dp::kMaxDevicesPerResource));
    return 2;
  }
  gem::dp::Inventory inv(gpus, static_cast<uint64_t>(unit));
  if (flags.has("list")) {
    for (const auto& g : gpus)
      std::printf("%s index %u memory %llu MiB: %s %d, %s %llu\n", g.uuid.c_str(), g.index,
                  static_cast<unsigned long long>(g.memory_mib), gem::dp::kShareResource, gem::dp::kSharesPerGpu,
                  gem::dp::kMemoryResource,
                  static_cast<unsigned long long>(gem::dp::memory_devices(g.memory_mib, inv.unit_mib())));
    return 0;
  }

  // SIGTERM/SIGINT set the flag (the daemons' handler, include/gem/daemon.h); this thread polls it
  // and stops the runner, which serves on its own thread.
  static volatile bool stop = false;
  gem::daemon::stop_on_signals(&stop);
  gem::dp::Runner runner(&inv, opts);
  LOG_INFO("%zu GPUs, %llu MiB per gpu-memory device, kubelet folder %s", gpus.size(),
           static_cast<unsigned long long>(inv.unit_mib()), opts.plugin_dir.c_str());
  std::thread serving([&] { runner.run(); });
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  LOG_INFO("signal: stopping");
  runner.stop();
  serving.join();
  return 0;
}
