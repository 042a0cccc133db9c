// The HTTPS server of gem-webhook: cpp-httplib SSLServer, POST /mutate, GET /healthz, access log,
// certificate reload, SIGTERM handling.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "admission.h"

namespace gemwh {

/// --max_body_bytes's default: larger request bodies get HTTP 413 (docs/kubernetes-reference.md, "Failure policy").
inline constexpr size_t kDefaultMaxBodyBytes = 4u << 20;

struct ServerConfig {
  std::string bind = "0.0.0.0";
  int port = 8443;
  std::string cert_path, key_path;
  size_t max_body_bytes = kDefaultMaxBodyBytes;  // larger bodies: HTTP 413, the connection stays usable
  size_t threads = 8;                // worker threads (httplib thread pool)
  std::chrono::milliseconds cert_check{2000};
  std::chrono::milliseconds shutdown_delay{0};  // keep serving this long after SIGTERM
  bool access_log = true;
  AdmissionOptions admission;
};

/// Serves until SIGTERM/SIGINT. Blocks those signals in the calling thread (call before starting
/// other threads). Returns the process exit status: 0 after a signal, 1 when the certificate cannot
/// be loaded or the address cannot be bound (with a log line saying which).
int run_server(const ServerConfig& cfg);

}  // namespace gemwh
