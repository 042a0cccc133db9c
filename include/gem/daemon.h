// Start-up steps gem-schd and gem-pmgr share (Daemon): the flags both take, their usage lines, the
// listening endpoint and the options of the /metrics endpoint. Call from main() only (not
// thread-safe). The endpoint itself is started with start_metrics_endpoint()
// (include/gem/metrics_endpoint.h), which needs cpp-httplib and so lives in metrics/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gem/flags.h"
#include "gem/listener.h"
#include "gem/metrics_endpoint.h"
#include "gem/net.h"

namespace gem::daemon {

/// What a daemon's main() tells Daemon about itself.
struct DaemonSpec {
  std::string program;      // "gem-schd": prefixes every message
  std::string synopsis;     // "gem-schd [flags]": the usage line after "usage: "
  std::string peers;        // who connects, for --ip's help ("pod managers")
  std::string own_usage;    // the daemon's own flag lines, placed after --ip/--port/--socket
  uint16_t default_port = 0;          // --port's default
  int64_t default_max_connections = 1024;  // --max_connections' default
  std::vector<std::string> value_flags, bool_flags;  // the daemon's own flags
};

/// The flags every daemon takes beside its own (Daemon adds them): --ip --port --socket --log_level
/// --max_connections --allow_uids --metrics_port --metrics_address, and --help.
class Daemon {
 public:
  /// Builds the flag set and the usage text. (main() sets the log's program name itself:
  /// log::set_program keeps the pointer, so it takes a string literal.)
  explicit Daemon(DaemonSpec spec);

  /// Parses argv (gem::Flags: unknown flags and stray words are errors) and the shared flags, and
  /// applies --log_level. Returns -1 when main() goes on; otherwise the exit status main() returns:
  /// 0 after --help (usage on stdout), 2 after a bad flag (the error and the usage on stderr).
  int parse(int argc, char** argv);

  const Flags& flags() const { return flags_; }
  /// The whole usage text ("usage: ..." and every flag, shared and own).
  const std::string& usage() const { return usage_; }
  /// Prints "program: why" on stderr and returns `status` (2: a bad setting; 1: start-up failed).
  int fail(const std::string& why, int status = 2) const;
  /// fail() followed by the usage text; returns 2.
  int usage_error(const std::string& why) const;

  /// After parse(): where to listen (--socket PATH, else --ip and --port).
  const net::Endpoint& endpoint() const { return endpoint_; }
  /// After parse(): --max_connections and --allow_uids.
  const ListenerOptions& listener() const { return listener_; }
  /// After parse(): whether --metrics_port asked for an endpoint, and its address and port.
  bool metrics_enabled() const { return metrics_enabled_; }
  const MetricsEndpointOptions& metrics() const { return metrics_; }

  /// Raises the fd limit (gem::raise_fd_limit) and listens on endpoint(): the fd, or -1 with *err.
  int listen(std::string* err) const;

 private:
  DaemonSpec spec_;
  Flags flags_;
  std::string usage_;
  net::Endpoint endpoint_;
  ListenerOptions listener_;
  bool metrics_enabled_ = false;
  MetricsEndpointOptions metrics_;
};

/// Applies --log_level (error, warn, info, debug) if given. False with *err naming a bad value.
bool apply_log_level(const Flags& flags, std::string* err);

/// From now on SIGINT and SIGTERM set *stop, which the poll loops check; SIGPIPE is ignored (a
/// closed peer shows up as a failed write instead). `stop` must outlive the process's signals.
void stop_on_signals(volatile bool* stop);

/// The listening endpoint from --socket PATH, else --ip (default 127.0.0.1) and `port`.
net::Endpoint listen_endpoint(const Flags& flags, uint16_t port);

/// Parses --metrics_port: "0" (the default) means no endpoint (*enabled false), "auto" a free port
/// the kernel picks (logged at start), else 1-65535. False with *err.
bool parse_metrics_port(const std::string& text, bool* enabled, int* port, std::string* err);

}  // namespace gem::daemon
