// Start-up steps gem-schd and gem-pmgr share. Call from main() only (not thread-safe).
#pragma once

#include <cstdint>
#include <string>

#include "gem/flags.h"
#include "gem/net.h"

namespace gem::daemon {

/// Applies --log_level (error, warn, info, debug) if given. False with *err naming a bad value.
bool apply_log_level(const Flags& flags, std::string* err);

/// From now on SIGINT and SIGTERM set *stop, which the poll loops check; SIGPIPE is ignored (a
/// closed peer shows up as a failed write instead). `stop` must outlive the process's signals.
void stop_on_signals(volatile bool* stop);

/// The listening endpoint from --socket PATH, else --ip (default 127.0.0.1) and `port`.
net::Endpoint listen_endpoint(const Flags& flags, uint16_t port);

}  // namespace gem::daemon
