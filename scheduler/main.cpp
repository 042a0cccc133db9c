// gem-schd: one per GPU. Grants the GPU's time-slice token to pod managers by REQUEST and LIMIT.
#include <cstdio>
#include <cstdlib>

#include "gem/daemon.h"
#include "gem/flags.h"
#include "gem/log.h"
#include "gem/net.h"
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
  --gpu UUID           refuse pod managers that name another GPU
  --dynamic_clients    admit clients missing from the config with the settings they declare
  --stats PATH         write usage statistics as JSON to PATH every 500 ms
  --log_level LEVEL    error, warn, info (default) or debug
)";

}  // namespace

int main(int argc, char** argv) {
  gem::log::set_program("gem-schd");
  gem::Flags flags({"ip", "port", "socket", "config", "base_quota", "min_quota", "window", "gpu",
                    "stats", "log_level"},
                   {"dynamic_clients", "help"});
  std::string err;
  int64_t port = 0, base = 0, min = 0, window = 0;
  if (!flags.parse(argc, argv, &err) || !flags.get_int("port", 50051, 1, 65535, &port, &err) ||
      !flags.get_int("base_quota", 250, 1, 600000, &base, &err) ||
      !flags.get_int("min_quota", 100, 1, 600000, &min, &err) ||
      !flags.get_int("window", 10000, 100, 3600000, &window, &err)) {
    std::fprintf(stderr, "gem-schd: %s\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (flags.has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
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
  opts.config_path = flags.get("config", "resource-config.txt");
  opts.gpu_uuid = flags.get("gpu", "");
  opts.dynamic_clients = flags.has("dynamic_clients");
  opts.stats_path = flags.get("stats", "");

  const int fd = gem::net::listen_on(ep, &err);
  if (fd < 0) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 1;
  }
  gem::sched::Server server(opts);
  if (!server.start(fd, &err)) {
    std::fprintf(stderr, "gem-schd: %s\n", err.c_str());
    return 1;
  }
  gem::daemon::stop_on_signals(&g_stop);
  LOG_INFO("listening on %s (base_quota %lld ms, min_quota %lld ms, window %lld ms)", ep.to_string().c_str(),
           (long long)base, (long long)min, (long long)window);
  server.run(&g_stop);
  LOG_INFO("stopping");
  return 0;
}
