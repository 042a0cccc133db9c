// GPU residency, the third level of memory accounting (docs/design.md, "Memory accounting";
// docs/memory.md, "Residency"): which clients' GPU memory gem-schd believes is on the GPU, and
// whose unified memory must move to the host so that the clients' resident memory fits the GPU's
// memory budget (gem-schd --mem_budget). A pure unit with an injected clock, like the
// token policy (policy.h): the server feeds it each client's reported usage and each grant, and
// sends Evict to the clients a grant's plan names.
//
// Inputs, per client:
//   bytes     its GPU memory on this GPU, the latest MemUsage, clamped to proto::kMaxWireBytes and
//             to the client's configured GPU_MEM (when not 0): a report can never charge a client
//             beyond what its config lets it hold, so it cannot push the others out for more;
//   um        its memory is unified (managed) memory, which the driver can move to the host: from
//             the client's configuration (resource-config.txt um=on, not a latency client), never
//             from the report, so a UM client cannot escape eviction by reporting flags=0;
//   and, from the grants: the holder, and each client's last_run (time of its last grant).
// State, per client: resident (as the scheduler believes: true until evicted, true again when the
// client is granted the token, since its hook brings its memory back before it runs).
// Rule, on each grant to X (grant()): X becomes resident. A non-UM client always counts as
// resident and is never evicted. If the resident bytes (the sum over resident clients) exceed the
// budget, resident UM clients other than X with bytes > 0 are evicted, least recently run first
// (never-run clients first; ties by name), until the sum fits; when even evicting all of them
// cannot make it fit, all of them are evicted and the plan says so (the server logs a warning once
// per such episode). The holder is never evicted.
// Output: the clients to send Evict to, in eviction order.
// Off (disabled, or a budget of 0): nothing is ever evicted; usage is still tracked (stats).
// Not thread-safe: gem-schd's poll loop is its only user.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gem/clock.h"

namespace gem::sched {

/// gem-schd's default --mem_budget for a GPU of `total` bytes: total less a reserve of
/// max(2 GiB, 5% of total) for the driver, contexts and fragmentation; 0 when the reserve is all.
uint64_t default_mem_budget(uint64_t total);

class GpuResidency {
 public:
  struct Client {
    uint64_t bytes = 0;     // the charge: min(reported, gpu_mem when not 0)
    uint64_t reported = 0;  // the latest report, clamped to proto::kMaxWireBytes
    uint64_t gpu_mem = 0;   // configured GPU_MEM, bytes (0 = none)
    bool um = false;
    bool resident = true;
    bool ran = false;      // granted at least once
    Micros last_run = 0;   // time of its last grant (valid when ran)
    uint64_t evictions = 0;
  };

  /// What a grant decided.
  struct Plan {
    std::vector<std::string> evict;  // send Evict to these, in this order
    uint64_t resident_bytes = 0;     // after the evictions
    bool over_budget = false;        // still above the budget (nothing left to evict)
    bool warn = false;               // over_budget and the previous grant was not: log once
  };

  /// `budget`: bytes of device memory for all clients' resident memory; `enabled` false or a
  /// budget of 0 turns eviction off.
  GpuResidency(uint64_t budget, bool enabled);

  /// The client's latest usage report, `bytes` of GPU memory (clamped to proto::kMaxWireBytes and
  /// to `gpu_mem`), with its configured terms (configure()).
  void usage(const std::string& client, uint64_t bytes, bool um, uint64_t gpu_mem);
  /// The client's terms from the configuration (never from a report): `gpu_mem` bytes (0 = no
  /// limit) caps its charge, `um` says whether its memory may be evicted. A client that stops
  /// being UM counts as resident at once. A new config's terms apply to the last report at once.
  void configure(const std::string& client, uint64_t gpu_mem, bool um);
  /// The token goes to `holder` at `now` (a grant or a renewal): the plan above.
  Plan grant(const std::string& holder, Micros now);
  /// The client is gone (disconnected or removed): forgotten.
  void forget(const std::string& client);

  bool enabled() const { return enabled_; }
  uint64_t budget() const { return budget_; }
  /// Sum of the bytes of the clients that count as resident (saturating).
  uint64_t resident_bytes() const;
  /// nullptr for a client never reported nor granted (or forgotten).
  const Client* client(const std::string& name) const;

 private:
  static bool counts(const Client& c) { return c.resident || !c.um; }
  unsigned __int128 resident_sum() const;

  uint64_t budget_;
  bool enabled_;
  bool over_ = false;  // the last plan could not fit the budget
  std::map<std::string, Client> clients_;
};

}  // namespace gem::sched
