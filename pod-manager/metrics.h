// gem-pmgr's Prometheus metrics (docs/interfaces.md, "Metrics"): what the client's processes asked
// and were told (token grants passed on, revocations, "scheduler unavailable" answers, token wait
// from a process's request to its grant), and render(), which writes them with a snapshot of the
// routes (PmgrView) in the text format. Pure: no I/O, times are µs on the caller's monotonic clock.
// Not thread-safe: the poll loop owns it (the HTTP endpoint only gets the text).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "action.h"
#include "gem/clock.h"
#include "gem/prom.h"
#include "gem/protocol.h"

namespace gem::pmgr {

/// One scheduler endpoint (route) at render time.
struct RouteView {
  std::string scheduler;   // Endpoint::to_string(): "unix:/run/gemini/GPU-....sock" or "127.0.0.1:50051"
  bool ready = false;      // connected and answered Hello
  bool holding = false;    // the client holds that scheduler's token
  size_t waiting = 0;      // processes queued for its next grant
  size_t processes = 0;    // launch gates and memory sessions routed there
  uint64_t mem_limit = 0;  // GPU_MEM known on that route, bytes (0: none or not known yet)
  uint64_t mem_held = 0;   // leases of its memory sessions, bytes
};

/// One process's connection at render time (gemctl ps: nvidia-smi's process table, per client).
struct ProcessView {
  uint32_t pid = 0;        // as the process said in its Hello (its own pid namespace's)
  std::string scheduler;   // the route it is served by (RouteView::scheduler)
  bool memory = false;     // a memory session (else a launch gate)
  bool holding = false;    // a launch gate holding the token now
  uint64_t mem_bytes = 0;  // a memory session's lease, bytes
};

struct PmgrView {
  std::string client;
  std::vector<ProcessView> processes;  // Hello'd connections, at most the connection cap
  size_t launch_processes = 0;  // launch gates (Hello role 1) connected
  size_t memory_sessions = 0;   // memory sessions (Hello role 3) connected
  size_t connections = 0;       // every connection, Hello'd or not
  std::vector<RouteView> routes;
};

class PmgrMetrics {
 public:
  /// Process connection `h` asked for the token (TokenRequest, or TokenRelease with again).
  void asked(HookId h, Micros now);
  /// A message went to process connection `h`: grants (quota > 0), revocations and "scheduler
  /// unavailable" answers are counted; a grant observes h's token wait.
  void told(HookId h, const proto::Message& m, Micros now);
  /// Connection `h` closed.
  void gone(HookId h);
  std::string render(const PmgrView& v) const;

 private:
  std::map<HookId, Micros> asked_at_;
  uint64_t grants_ = 0, revocations_ = 0, unavailable_ = 0;
  prom::Histogram wait_;
};

}  // namespace gem::pmgr
