// gem-pmgr: one per client (pod). Every process of the client talks to it; they share one token.
#include <cstdio>
#include <cstdlib>

#include "gem/config.h"
#include "gem/daemon.h"
#include "gem/flags.h"
#include "gem/log.h"
#include "gem/metrics_endpoint.h"
#include "gem/net.h"
#include "gem/listener.h"
#include "manager.h"
#include "gem/secret.h"

namespace {

volatile bool g_stop = false;

constexpr const char* kUsage = R"(usage: gem-pmgr --name ID [flags]
  --name ID            client ID, as in resource-config.txt (default: $POD_NAME)
  --ip ADDR            listen address for the client's processes (default 127.0.0.1)
  --port N             TCP port (default 50052)
  --socket PATH        listen on this Unix socket instead of TCP
  --scheduler ADDR     gem-schd at HOST:PORT or /path.sock (default $SCHEDULER_IP:$SCHEDULER_PORT,
                       else 127.0.0.1:50051)
  --scheduler_dir DIR  one gem-schd per GPU at DIR/<GPU-UUID>.sock
  --scheduler_timeout MS
                       give up on a scheduler that does not connect, answer Hello, or send a byte
                       while a grant or renewal is awaited, within MS ms (default 600); waiting
                       processes are then told "scheduler unavailable" and run unthrottled
  --request R --limit L --gpu_mem SIZE [--um on|off] [--latency MS]
                       settings this client declares (used by a gem-schd run with --dynamic_clients);
                       --um on: unified-memory mode (resource-config.txt's um=on); --latency MS: a
                       latency client with this target (resource-config.txt's latency=MS)
  --secret_file PATH   the client's shared secret (first line, 1-128 printable bytes): sent to
                       gem-schd, and required in every process's Hello (GEMINI_SECRET_FILE)
  --max_connections N  processes connected at once, at most (default 256); more are refused
  --allow_uids LIST    with --socket: uids besides gem-pmgr's own and root that may connect
                       (comma-separated numbers)
  --metrics_port N|auto|0
                       serve Prometheus metrics at http://ADDR:N/metrics (auto: a free port, logged;
                       0, the default: no endpoint)
  --metrics_address ADDR
                       address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 for every interface)
  --log_level LEVEL    error, warn, info (default) or debug
)";

}  // namespace

int main(int argc, char** argv) {
  gem::log::set_program("gem-pmgr");
  gem::Flags flags({"name", "ip", "port", "socket", "scheduler", "scheduler_dir", "request", "limit",
                    "gpu_mem", "um", "latency", "log_level", "scheduler_timeout", "secret_file", "max_connections", "allow_uids",
                    "metrics_port", "metrics_address"},
                   {"help"});
  std::string err;
  int64_t port = 0, sched_timeout_ms = 0, max_conns = 0;
  double request = 0, limit = 1;
  if (!flags.parse(argc, argv, &err) || !flags.get_int("port", 50052, 1, 65535, &port, &err) ||
      !flags.get_int("scheduler_timeout", gem::pmgr::kDefaultSchedulerTimeout / 1000, 10, 600000, &sched_timeout_ms, &err) ||
      !flags.get_int("max_connections", 256, 1, 1000000, &max_conns, &err) ||
      !flags.get_double("request", 0, 0, 1, &request, &err) || !flags.get_double("limit", 1, 0, 1, &limit, &err)) {
    std::fprintf(stderr, "gem-pmgr: %s\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (flags.has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!gem::daemon::apply_log_level(flags, &err)) {
    std::fprintf(stderr, "gem-pmgr: %s\n", err.c_str());
    return 2;
  }
  gem::pmgr::ManagerOptions opts;
  const char* env_name = std::getenv("POD_NAME");
  opts.client = flags.get("name", env_name ? env_name : "");
  if (opts.client.empty() || opts.client.size() > gem::proto::kMaxName) {
    std::fprintf(stderr, "gem-pmgr: --name (or POD_NAME) must be 1 to %zu characters\n%s", gem::proto::kMaxName, kUsage);
    return 2;
  }
  const char* sip = std::getenv("SCHEDULER_IP");
  const char* sport = std::getenv("SCHEDULER_PORT");
  const std::string sched = flags.get(
      "scheduler", std::string(sip ? sip : "127.0.0.1") + ":" + (sport ? sport : "50051"));
  if (!gem::net::parse_endpoint(sched, &opts.scheduler, &err)) {
    std::fprintf(stderr, "gem-pmgr: --scheduler: %s\n", err.c_str());
    return 2;
  }
  opts.scheduler_dir = flags.get("scheduler_dir", "");
  if (flags.has("request") || flags.has("limit") || flags.has("gpu_mem") || flags.has("um") ||
      flags.has("latency")) {
    const std::string um = flags.get("um", "off");
    if (um != "on" && um != "off") {
      std::fprintf(stderr, "gem-pmgr: --um: expected on or off, got '%s'\n", um.c_str());
      return 2;
    }
    uint64_t mem = 0;
    if (!gem::parse_size(flags.get("gpu_mem", "0"), &mem)) {
      std::fprintf(stderr, "gem-pmgr: --gpu_mem: not a size: '%s'\n", flags.get("gpu_mem", "").c_str());
      return 2;
    }
    uint32_t latency_us = 0;
    if (flags.has("latency") && !gem::parse_latency_ms(flags.get("latency", ""), &latency_us)) {
      std::fprintf(stderr, "gem-pmgr: --latency: not a number of milliseconds in (0, 60000]: '%s'\n",
                   flags.get("latency", "").c_str());
      return 2;
    }
    if (request > limit) {
      std::fprintf(stderr, "gem-pmgr: --request %g is above --limit %g\n", request, limit);
      return 2;
    }
    opts.has_declared = true;
    opts.declared = {static_cast<uint32_t>(request * 1e6 + 0.5), static_cast<uint32_t>(limit * 1e6 + 0.5), mem,
                     um == "on" ? gem::proto::kFlagUnifiedMemory : 0u,
                     latency_us};
  }

  opts.scheduler_timeout = sched_timeout_ms * 1000;
  opts.listener.max_connections = static_cast<size_t>(max_conns);
  if (flags.has("allow_uids") && !gem::parse_uid_list(flags.get("allow_uids", ""), &opts.listener.allowed_uids, &err)) {
    std::fprintf(stderr, "gem-pmgr: --allow_uids: %s\n", err.c_str());
    return 2;
  }
  if (flags.has("secret_file") && !gem::read_secret_file(flags.get("secret_file", ""), &opts.secret, &err)) {
    std::fprintf(stderr, "gem-pmgr: %s\n", err.c_str());
    return 2;
  }
  bool metrics = false;
  gem::MetricsEndpointOptions mopts;
  mopts.address = flags.get("metrics_address", "127.0.0.1");
  if (!gem::parse_metrics_port(flags.get("metrics_port", "0"), &metrics, &mopts.port, &err)) {
    std::fprintf(stderr, "gem-pmgr: %s\n", err.c_str());
    return 2;
  }
  gem::raise_fd_limit();

  const gem::net::Endpoint ep = gem::daemon::listen_endpoint(flags, static_cast<uint16_t>(port));
  const int fd = gem::net::listen_on(ep, &err);
  if (fd < 0) {
    std::fprintf(stderr, "gem-pmgr: %s\n", err.c_str());
    return 1;
  }
  gem::MetricsEndpoint endpoint;
  if (metrics && !endpoint.start(mopts, &err)) {
    std::fprintf(stderr, "gem-pmgr: %s\n", err.c_str());
    return 1;
  }
  if (metrics) LOG_INFO("metrics on http://%s:%d/metrics", mopts.address.c_str(), endpoint.port());
  gem::daemon::stop_on_signals(&g_stop);
  gem::pmgr::Manager mgr(opts);
  mgr.set_metrics(metrics ? &endpoint : nullptr);
  mgr.start(fd, !ep.unix_path.empty());
  LOG_INFO("client '%s' listening on %s, scheduler %s%s%s", opts.client.c_str(), ep.to_string().c_str(),
           opts.scheduler.to_string().c_str(), opts.scheduler_dir.empty() ? "" : ", per-GPU sockets in ",
           opts.scheduler_dir.c_str());
  mgr.run(&g_stop);
  LOG_INFO("stopping");
  return 0;
}
