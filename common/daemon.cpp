#include "gem/daemon.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "gem/log.h"

namespace gem::daemon {

namespace {
volatile bool* g_stop = nullptr;
void on_stop_signal(int) { *g_stop = true; }

// One usage line: the flag padded to the help column, or on a line of its own when longer.
std::string usage_line(const std::string& flag, const std::string& help) {
  constexpr size_t kColumn = 21;
  std::string s = "  " + flag;
  if (flag.size() < kColumn - 1) {
    s += std::string(kColumn - flag.size(), ' ');
  } else {
    s += "\n" + std::string(kColumn + 2, ' ');
  }
  return s + help + "\n";
}
}  // namespace

Daemon::Daemon(DaemonSpec spec) : spec_(std::move(spec)), flags_({}, {}) {
  std::vector<std::string> values = {"ip",           "port",         "socket",         "log_level",
                                     "max_connections", "allow_uids", "metrics_port", "metrics_address"};
  std::vector<std::string> bools = {"help"};
  values.insert(values.end(), spec_.value_flags.begin(), spec_.value_flags.end());
  bools.insert(bools.end(), spec_.bool_flags.begin(), spec_.bool_flags.end());
  flags_ = Flags(values, bools);
  const std::string& p = spec_.program;
  usage_ = "usage: " + spec_.synopsis + "\n" +
           usage_line("--ip ADDR", "address to listen on for " + spec_.peers + " (default 127.0.0.1)") +
           usage_line("--port N", "TCP port (default " + std::to_string(spec_.default_port) + ")") +
           usage_line("--socket PATH", "listen on this Unix socket instead of TCP") + spec_.own_usage +
           usage_line("--max_connections N", "connections open at once, at most (default " +
                                                 std::to_string(spec_.default_max_connections) +
                                                 "; capped by the fd limit);\n"
                                                 "                       more are refused") +
           usage_line("--allow_uids LIST", "with --socket: uids allowed besides " + p +
                                               "'s own and root\n"
                                               "                       (comma-separated, e.g. 1000,1001)") +
           usage_line("--metrics_port N|auto|0",
                      "serve Prometheus metrics at http://ADDR:N/metrics (auto: a free port, logged;\n"
                      "                       0, the default: no endpoint)") +
           usage_line("--metrics_address ADDR",
                      "address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 for every interface)") +
           usage_line("--log_level LEVEL", "error, warn, info (default) or debug") +
           usage_line("--help", "print this and exit");
}

int Daemon::fail(const std::string& why, int status) const {
  std::fprintf(stderr, "%s: %s\n", spec_.program.c_str(), why.c_str());
  return status;
}

int Daemon::usage_error(const std::string& why) const {
  fail(why);
  std::fputs(usage_.c_str(), stderr);
  return 2;
}

int Daemon::parse(int argc, char** argv) {
  std::string err;
  int64_t port = 0, max_conns = 0;
  if (!flags_.parse(argc, argv, &err) ||
      !flags_.get_int("port", spec_.default_port, 1, 65535, &port, &err) ||
      !flags_.get_int("max_connections", spec_.default_max_connections, 1, 1000000, &max_conns, &err)) {
    return usage_error(err);
  }
  if (flags_.has("help")) {
    std::fputs(usage_.c_str(), stdout);
    return 0;
  }
  if (!apply_log_level(flags_, &err)) return fail(err);
  endpoint_ = listen_endpoint(flags_, static_cast<uint16_t>(port));
  listener_.max_connections = static_cast<size_t>(max_conns);
  if (flags_.has("allow_uids") && !parse_uid_list(flags_.get("allow_uids", ""), &listener_.allowed_uids, &err)) {
    return fail("--allow_uids: " + err);
  }
  metrics_.address = flags_.get("metrics_address", "127.0.0.1");
  if (!parse_metrics_port(flags_.get("metrics_port", "0"), &metrics_enabled_, &metrics_.port, &err)) {
    return fail(err);
  }
  return -1;
}

int Daemon::listen(std::string* err) const {
  raise_fd_limit();
  return net::listen_on(endpoint_, err);
}

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

bool parse_metrics_port(const std::string& text, bool* enabled, int* port, std::string* err) {
  *enabled = false;
  *port = 0;
  if (text == "0") return true;
  if (text == "auto") {
    *enabled = true;
    return true;
  }
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 1 || v > 65535) {
    *err = "--metrics_port: expected 0 (off), auto or 1-65535, got '" + text + "'";
    return false;
  }
  *enabled = true;
  *port = static_cast<int>(v);
  return true;
}

}  // namespace gem::daemon
