// gem-schd: one per GPU. Grants the GPU's time-slice token to pod managers by REQUEST and LIMIT.
#include <cstdio>
#include <cstdlib>

#include "gem/config.h"
#include "gem/daemon.h"
#include "gem/flags.h"
#include "gem/listener.h"
#include "gem/log.h"
#include "gem/metrics_endpoint.h"
#include "gem/net.h"
#include "gpu_health.h"
#include "nvml_probe.h"
#include "gpu_residency.h"
#include "server.h"

namespace {

volatile bool g_stop = false;

// gem-schd's own flags; Daemon adds --ip --port --socket --max_connections --allow_uids
// --metrics_port --metrics_address --log_level --help.
constexpr const char* kOwnUsage = R"(  --config PATH        resource-config.txt (default ./resource-config.txt), reloaded when it changes
  --base_quota MS      first and largest quota of a grant (default 250)
  --min_quota MS       smallest quota (default 100)
  --window MS          sliding window over which shares are measured (default 10000)
  --fit_quotas on|off  fit quotas to the clients wanting the GPU: at most window / n, so each is
                       served once per window (on, default; docs/scheduling.md)
  --quota_floor MS     the least quota --fit_quotas may give (default 10)
  --swing MS           how far a client held to a share (LIMIT; REQUEST while others want the GPU)
                       may run ahead of it: quotas of at most swing / (1 - share) and a LIMIT bank
                       of swing (default 40; smaller: evener seconds, more hand-offs)
  --gpu UUID           refuse pod managers that name another GPU
  --dynamic_clients    admit clients missing from the config with the settings they declare
  --stats PATH         write usage statistics as JSON to PATH every 500 ms
  --lease_grace MS     revoke a token kept this long past its quota (default 500)
  --secrets PATH       per-client shared secrets, lines "ID SECRET" (file not readable by others);
                       a pod manager's Hello must carry its client's secret
  --mem_budget SIZE    device memory for all clients' resident memory (e.g. 70Gi); default: the
                       GPU's total (NVML) less max(2 GiB, 5%); without NVML, residency is off
  --residency on|demand|off
                       move unified-memory clients' memory to the host to fit --mem_budget and back in
                       bulk before their slices (on, default); demand: evict the same way but let pages
                       fault back as kernels touch them (the comparison point); off: never move it
  --list_gpus          print the UUID of every GPU NVML sees, one a line, and exit (0; 1 when NVML
                       cannot be used or sees none): discovery for the node DaemonSet
)";

// --residency and --mem_budget (docs/memory.md, "Residency"): *budget 0 turns residency off. False
// with *err for a bad value. Without --mem_budget the GPU's total memory is read through NVML
// (--gpu's device, else device 0); without NVML residency is off (logged once, at INFO).
bool mem_budget(const gem::Flags& flags, const std::string& gpu, uint64_t* budget, bool* on, bool* demand,
                std::string* err) {
  const std::string mode = flags.get("residency", "on");
  if (mode != "on" && mode != "off" && mode != "demand") {
    *err = "--residency: expected on, demand or off, got '" + mode + "'";
    return false;
  }
  *on = mode != "off";
  *demand = mode == "demand";
  *budget = 0;
  if (flags.has("mem_budget")) {
    if (!gem::parse_size(flags.get("mem_budget", ""), budget, err)) {
      *err = "--mem_budget " + *err;
      return false;
    }
    return true;
  }
  if (!*on) return true;
  uint64_t total = 0;
  std::string why;
  if (!gem::sched::nvml_total_memory(gpu, &total, &why)) {
    LOG_INFO("residency off: no --mem_budget and the GPU's memory is unknown (%s)", why.c_str());
    return true;
  }
  *budget = gem::sched::default_mem_budget(total);
  LOG_INFO("memory budget %llu MiB: the GPU's %llu MiB less a reserve of max(2 GiB, 5%%)",
           static_cast<unsigned long long>(*budget >> 20), static_cast<unsigned long long>(total >> 20));
  return true;
}

// --list_gpus: the UUIDs NVML sees on stdout, one a line.
int list_gpus() {
  gem::sched::Nvml nvml;
  std::vector<std::string> uuids;
  std::string why;
  if (!nvml.open(gem::sched::kNvmlLibrary, &why) || !nvml.uuids(&uuids, &why)) {
    std::fprintf(stderr, "gem-schd: --list_gpus: %s\n", why.c_str());
    return 1;
  }
  if (uuids.empty()) {
    std::fprintf(stderr, "gem-schd: --list_gpus: NVML sees no GPU\n");
    return 1;
  }
  for (const std::string& u : uuids) std::printf("%s\n", u.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gem::log::set_program("gem-schd");
  gem::daemon::Daemon d({"gem-schd", "gem-schd [flags]", "pod managers", kOwnUsage, 50051, 1024,
                         {"config", "base_quota", "min_quota", "window", "gpu", "stats", "lease_grace",
                          "secrets", "mem_budget", "residency", "fit_quotas", "quota_floor", "swing"},
                         {"dynamic_clients", "list_gpus"}});
  if (const int status = d.parse(argc, argv); status >= 0) return status;
  const gem::Flags& flags = d.flags();
  std::string err;
  int64_t base = 0, min = 0, window = 0, grace = 0, floor = 0, swing = 0;
  if (!flags.get_int("base_quota", gem::sched::kDefaultBaseQuota / 1000, 1, 600000, &base, &err) ||
      !flags.get_int("min_quota", gem::sched::kDefaultMinQuota / 1000, 1, 600000, &min, &err) ||
      !flags.get_int("window", gem::sched::kDefaultWindow / 1000, 100, 3600000, &window, &err) ||
      !flags.get_int("lease_grace", gem::sched::kDefaultLeaseGrace / 1000, 1, 600000, &grace, &err) ||
      !flags.get_int("quota_floor", gem::sched::kDefaultQuotaFloor / 1000, 1, 600000, &floor, &err) ||
      !flags.get_int("swing", gem::sched::kDefaultSwing / 1000, 1, 1000, &swing, &err)) {
    return d.usage_error(err);
  }
  if (flags.has("list_gpus")) return list_gpus();
  const std::string fit = flags.get("fit_quotas", "on");
  if (fit != "on" && fit != "off") return d.fail("--fit_quotas '" + fit + "': expected on or off");
  if (min > base) {
    return d.fail("--min_quota " + std::to_string(min) + " is above --base_quota " + std::to_string(base));
  }
  const gem::net::Endpoint& ep = d.endpoint();

  gem::sched::ServerOptions opts;
  opts.policy.base_quota = base * 1000;
  opts.policy.min_quota = min * 1000;
  opts.policy.window = window * 1000;
  opts.policy.fit_quotas = fit == "on";
  opts.policy.quota_floor = floor * 1000;
  opts.policy.swing = swing * 1000;
  opts.config_path = flags.get("config", "resource-config.txt");
  opts.gpu_uuid = flags.get("gpu", "");
  opts.dynamic_clients = flags.has("dynamic_clients");
  opts.stats_path = flags.get("stats", "");
  opts.policy.lease_grace = grace * 1000;
  opts.secrets_path = flags.get("secrets", "");
  opts.listener = d.listener();
  if (!opts.gpu_uuid.empty() && !gem::proto::valid_gpu_uuid(opts.gpu_uuid)) {
    return d.fail("--gpu '" + opts.gpu_uuid + "' is not a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  }
  if (!mem_budget(flags, opts.gpu_uuid, &opts.mem_budget, &opts.residency, &opts.demand_paging, &err)) {
    return d.fail(err);
  }

  const int fd = d.listen(&err);
  if (fd < 0) return d.fail(err, 1);
  gem::sched::Server server(opts);
  if (!server.start(fd, !ep.unix_path.empty(), &err)) return d.fail(err, 1);
  gem::MetricsEndpoint endpoint;
  if (!gem::start_metrics_endpoint(d.metrics_enabled(), d.metrics(), &endpoint, &err)) return d.fail(err, 1);
  gem::sched::GpuHealth health;
  health.start({opts.gpu_uuid});
  server.set_observers(d.metrics_enabled() ? &endpoint : nullptr, &health);
  gem::daemon::stop_on_signals(&g_stop);
  LOG_INFO("listening on %s (base_quota %lld ms, min_quota %lld ms, window %lld ms, lease_grace %lld ms, "
           "residency %s, memory budget %llu MiB)",
           ep.to_string().c_str(), (long long)base, (long long)min, (long long)window, (long long)grace,
           opts.residency && opts.mem_budget > 0 ? "on" : "off", (unsigned long long)(opts.mem_budget >> 20));
  server.run(&g_stop);
  LOG_INFO("stopping");
  return 0;
}
