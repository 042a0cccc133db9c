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

// gem-pmgr's own flags; Daemon adds --ip --port --socket --max_connections --allow_uids
// --metrics_port --metrics_address --log_level --help.
constexpr const char* kOwnUsage = R"(  --name ID            client ID, as in resource-config.txt (default: $POD_NAME)
  --scheduler ADDR     gem-schd at HOST:PORT or /path.sock (default $SCHEDULER_IP:$SCHEDULER_PORT,
                       else 127.0.0.1:50051)
  --scheduler_dir DIR  one gem-schd per GPU at DIR/<GPU-UUID>.sock
  --scheduler_timeout MS
                       give up on a scheduler that does not connect, answer Hello, or send a byte
                       while a grant or renewal is awaited, within MS ms (default 600); waiting
                       processes are then told "scheduler unavailable" and run unthrottled
  --request R --limit L --gpu_mem SIZE [--um on|off] [--latency MS]
                       settings this client declares (used by a gem-schd run with --dynamic_clients);
                       SIZE as GPU_MEM takes it (8Gi, 512MiB, 4G; 0 = no limit); --um on:
                       unified-memory mode (resource-config.txt's um=on); --latency MS: a latency
                       client with this target (resource-config.txt's latency=MS)
  --gang_window MS     a client whose processes used several GPUs' tokens within MS ms gets them
                       together: asked for together, kept while its process is on another GPU,
                       ending together (default 0: each GPU on its own; 1000 for pipelines)
  --secret_file PATH   the client's shared secret (first line, 1-128 printable bytes): sent to
                       gem-schd, and required in every process's Hello (GEMINI_SECRET_FILE);
                       the file must not be readable by others (chmod o-rwx), as gem-schd --secrets
)";

}  // namespace

int main(int argc, char** argv) {
  gem::log::set_program("gem-pmgr");
  gem::daemon::Daemon d({"gem-pmgr", "gem-pmgr --name ID [flags]", "the client's processes", kOwnUsage, 50052, 256,
                         {"name", "scheduler", "scheduler_dir", "request", "limit", "gpu_mem", "um", "latency",
                          "scheduler_timeout", "secret_file", "gang_window"},
                         {}});
  if (const int status = d.parse(argc, argv); status >= 0) return status;
  const gem::Flags& flags = d.flags();
  std::string err;
  int64_t sched_timeout_ms = 0;
  if (!flags.get_int("scheduler_timeout", gem::pmgr::kDefaultSchedulerTimeout / 1000, 10, 600000, &sched_timeout_ms, &err)) return d.usage_error(err);
  int64_t gang_window_ms = 0;
  if (!flags.get_int("gang_window", gem::pmgr::kDefaultGangWindow / 1000, 0, 600000, &gang_window_ms, &err)) return d.usage_error(err);
  gem::pmgr::ManagerOptions opts;
  const char* env_name = std::getenv("POD_NAME");
  opts.client = flags.get("name", env_name ? env_name : "");
  if (opts.client.empty() || opts.client.size() > gem::proto::kMaxName) {
    return d.usage_error("--name (or POD_NAME) must be 1 to " + std::to_string(gem::proto::kMaxName) + " characters");
  }
  const char* sip = std::getenv("SCHEDULER_IP");
  const char* sport = std::getenv("SCHEDULER_PORT");
  const std::string sched = flags.get(
      "scheduler", std::string(sip ? sip : "127.0.0.1") + ":" + (sport ? sport : "50051"));
  if (!gem::net::parse_endpoint(sched, &opts.scheduler, &err)) return d.fail("--scheduler: " + err);
  opts.scheduler_dir = flags.get("scheduler_dir", "");
  if (flags.has("request") || flags.has("limit") || flags.has("gpu_mem") || flags.has("um") ||
      flags.has("latency")) {
    const std::string um = flags.get("um", "off");
    if (um != "on" && um != "off") return d.fail("--um: expected on or off, got '" + um + "'");
    // The values as resource-config.txt takes them (gem/config.h), and the same admission rule.
    double request = 0, limit = 1;
    if (flags.has("request") && !gem::parse_share(flags.get("request", ""), &request, &err)) {
      return d.fail("--request " + err);
    }
    if (flags.has("limit") && !gem::parse_share(flags.get("limit", ""), &limit, &err)) return d.fail("--limit " + err);
    uint64_t mem = 0;
    if (!gem::parse_size(flags.get("gpu_mem", "0"), &mem, &err)) return d.fail("--gpu_mem " + err);
    uint32_t latency_us = 0;
    if (flags.has("latency") && !gem::parse_latency_ms(flags.get("latency", ""), &latency_us, &err)) {
      return d.fail("--latency " + err);
    }
    if (const std::string why = gem::admission_error(request, limit, 0); !why.empty()) {
      return d.fail("--request/--limit: " + why);
    }
    opts.has_declared = true;
    opts.declared = {static_cast<uint32_t>(request * 1e6 + 0.5), static_cast<uint32_t>(limit * 1e6 + 0.5), mem,
                     um == "on" ? gem::proto::kFlagUnifiedMemory : 0u,
                     latency_us};
  }

  opts.scheduler_timeout = sched_timeout_ms * 1000;
  opts.gang_window = gang_window_ms * 1000;
  opts.listener = d.listener();
  if (flags.has("secret_file") &&
      !gem::read_secret_file(flags.get("secret_file", ""), &opts.secret, &err, "--secret_file", /*private_file=*/true)) {
    return d.fail(err);
  }

  const gem::net::Endpoint& ep = d.endpoint();
  const int fd = d.listen(&err);
  if (fd < 0) return d.fail(err, 1);
  gem::MetricsEndpoint endpoint;
  if (!gem::start_metrics_endpoint(d.metrics_enabled(), d.metrics(), &endpoint, &err)) return d.fail(err, 1);
  gem::daemon::stop_on_signals(&g_stop);
  gem::pmgr::Manager mgr(opts);
  mgr.set_metrics(d.metrics_enabled() ? &endpoint : nullptr);
  mgr.start(fd, !ep.unix_path.empty());
  LOG_INFO("client '%s' listening on %s, scheduler %s%s%s", opts.client.c_str(), ep.to_string().c_str(),
           opts.scheduler.to_string().c_str(), opts.scheduler_dir.empty() ? "" : ", per-GPU sockets in ",
           opts.scheduler_dir.c_str());
  mgr.run(&g_stop);
  LOG_INFO("stopping");
  return 0;
}
