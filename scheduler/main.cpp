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

constexpr const char* kUsage = R"(usage: gem-schd [flags]
  --ip ADDR            listen address (default 127.0.0.1; loopback only unless you say otherwise)
  --port N             TCP port (default 50051)
  --socket PATH        listen on this Unix socket instead of TCP
  --config PATH        resource-config.txt (default ./resource-config.txt), reloaded when it changes
  --base_quota MS      first and largest quota of a grant (default 250)
  --min_quota MS       smallest quota (default 100)
  --window MS          sliding window over which shares are measured (default 10000)
  --fit_quotas on|off  fit quotas to the clients wanting the GPU: at most window / n, so each is
                       served once per window (on, default; docs/scheduling.md)
  --quota_floor MS     the least quota --fit_quotas may give (default 10)
  --gpu UUID           refuse pod managers that name another GPU
  --dynamic_clients    admit clients missing from the config with the settings they declare
  --stats PATH         write usage statistics as JSON to PATH every 500 ms
  --lease_grace MS     revoke a token kept this long past its quota (default 500)
  --secrets PATH       per-client shared secrets, lines "ID SECRET" (file not readable by others);
                       a pod manager's Hello must carry its client's secret
  --max_connections N  connections open at once, at most (default 1024; capped by the fd limit)
  --allow_uids LIST    Unix socket: uids allowed besides gem-schd's own and root (e.g. 1000,1001)
  --mem_budget SIZE     device memory for all clients' resident memory (e.g. 70GiB); default: the
                       GPU's total (NVML) less max(2 GiB, 5%); without NVML, residency is off
  --residency on|demand|off
                       move unified-memory clients' memory to the host to fit --mem_budget and back in
                       bulk before their slices (on, default); demand: evict the same way but let pages
                       fault back as kernels touch them (the comparison point); off: never move it
  --metrics_port N|auto|0
                       serve Prometheus metrics at http://ADDR:N/metrics (auto: a free port, logged;
                       0, the default: no endpoint)
  --metrics_address ADDR
                       address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 for every interface)
  --list_gpus          print the UUID of every GPU NVML sees, one a line, and exit (0; 1 when NVML
                       cannot be used or sees none): discovery for the node DaemonSet
  --log_level LEVEL    error, warn, info (default) or debug
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
    if (!gem::parse_size(flags.get("mem_budget", ""), budget)) {
      *err = "--mem_budget: not a size: '" + flags.get("mem_budget", "") + "'";
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
  gem::Flags flags({"ip", "port", "socket", "config", "base_quota", "min_quota", "window", "gpu",
                    "stats", "log_level", "lease_grace", "secrets", "max_connections", "allow_uids", "mem_budget",
                    "residency", "fit_quotas", "quota_floor", "metrics_port", "metrics_address"},
                   {"dynamic_clients", "help", "list_gpus"});
  std::string err;
  int64_t port = 0, base = 0, min = 0, window = 0, grace = 0, max_conns = 0, floor = 0;
  if (!flags.parse(argc, argv, &err) || !flags.get_int("port", 50051, 1, 65535, &port, &err) ||
      !flags.get_int("base_quota", 250, 1, 600000, &base, &err) ||
      !flags.get_int("min_quota", 100, 1, 600000, &min, &err) ||
      !flags.get_int("window", 10000, 100, 3600000, &window, &err) ||
      !flags.get_int("lease_grace", 500, 1, 600000, &grace, &err) ||
      !flags.get_int("quota_floor", 10, 1, 600000, &floor, &err) ||
      !flags.get_int("max_connections", 1024, 1, 1000000, &max_conns, &err)) {
    std::fprintf(stderr, "gem-schd: %s\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (flags.has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (flags.has("list_gpus")) return list_gpus();
  const std::string fit = flags.get("fit_quotas", "on");
  if (fit != "on" && fit != "off") {
    std::fprintf(stderr, "gem-schd: --fit_quotas '%s': expected on or off\n", fit.c_str());
    return 2;
  }
  if (min > base) {
    std::fprintf(stderr, "gem-schd: --min_quota %lld is above --base_quota %lld\n", (long long)min, (long long)base);
    return 2;
  }
  if (!gem::daemon::apply_log_level(flags, &err)) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 2;
  }

  const gem::net::Endpoint ep = gem::daemon::listen_endpoint(flags, static_cast<uint16_t>(port));

  gem::sched::ServerOptions opts;
  opts.policy.base_quota = base * 1000;
  opts.policy.min_quota = min * 1000;
  opts.policy.window = window * 1000;
  opts.policy.fit_quotas = fit == "on";
  opts.policy.quota_floor = floor * 1000;
  opts.config_path = flags.get("config", "resource-config.txt");
  opts.gpu_uuid = flags.get("gpu", "");
  opts.dynamic_clients = flags.has("dynamic_clients");
  opts.stats_path = flags.get("stats", "");
  opts.policy.lease_grace = grace * 1000;
  opts.secrets_path = flags.get("secrets", "");
  opts.listener.max_connections = static_cast<size_t>(max_conns);
  if (flags.has("allow_uids") && !gem::parse_uid_list(flags.get("allow_uids", ""), &opts.listener.allowed_uids, &err)) {
    std::fprintf(stderr, "gem-schd: --allow_uids: %s\n", err.c_str());
    return 2;
  }
  if (!opts.gpu_uuid.empty() && !gem::proto::valid_gpu_uuid(opts.gpu_uuid)) {
    std::fprintf(stderr, "gem-schd: --gpu '%s' is not a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)\n",
                 opts.gpu_uuid.c_str());
    return 2;
  }
  if (!mem_budget(flags, opts.gpu_uuid, &opts.mem_budget, &opts.residency, &opts.demand_paging, &err)) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 2;
  }
  bool metrics = false;
  gem::MetricsEndpointOptions mopts;
  mopts.address = flags.get("metrics_address", "127.0.0.1");
  if (!gem::parse_metrics_port(flags.get("metrics_port", "0"), &metrics, &mopts.port, &err)) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 2;
  }
  gem::raise_fd_limit();

  const int fd = gem::net::listen_on(ep, &err);
  if (fd < 0) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 1;
  }
  gem::sched::Server server(opts);
  if (!server.start(fd, !ep.unix_path.empty(), &err)) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 1;
  }
  gem::MetricsEndpoint endpoint;
  if (metrics && !endpoint.start(mopts, &err)) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 1;
  }
  if (metrics) LOG_INFO("metrics on http://%s:%d/metrics", mopts.address.c_str(), endpoint.port());
  gem::sched::GpuHealth health;
  health.start({opts.gpu_uuid});
  server.set_observers(metrics ? &endpoint : nullptr, &health);
  gem::daemon::stop_on_signals(&g_stop);
  LOG_INFO("listening on %s (base_quota %lld ms, min_quota %lld ms, window %lld ms, lease_grace %lld ms, "
           "residency %s, memory budget %llu MiB)",
           ep.to_string().c_str(), (long long)base, (long long)min, (long long)window, (long long)grace,
           opts.residency && opts.mem_budget > 0 ? "on" : "off", (unsigned long long)(opts.mem_budget >> 20));
  server.run(&g_stop);
  LOG_INFO("stopping");
  return 0;
}
