#include "gem/daemon.h"

#include <csignal>

#include "gem/log.h"

namespace gem::daemon {

namespace {
volatile bool* g_stop = nullptr;
void on_stop_signal(int) { *g_stop = true; }
}  // namespace

bool apply_log_level(const Flags& flags, std::string* err) {
  if (!flags.has("log_level")) return true;
  const std::string l = flags.get("log_level", "");
  if (l == "error") {
    log::set_level(log::Level::kError);
  } else if (l == "warn") {
    log::set_level(log::Level::kWarn);
  } else if (l == "info") {
    log::set_level(log::Level::kInfo);
  } else if (l == "debug") {
    log::set_level(log::Level::kDebug);
  } else {
    *err = "--log_level must be error, warn, info or debug, got '" + l + "'";
    return false;
  }
  return true;
}

void stop_on_signals(volatile bool* stop) {
  g_stop = stop;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

net::Endpoint listen_endpoint(const Flags& flags, uint16_t port) {
  net::Endpoint ep;
  ep.host = flags.get("ip", "127.0.0.1");
  ep.port = port;
  ep.unix_path = flags.get("socket", "");
  return ep;
}

}  // namespace gem::daemon
