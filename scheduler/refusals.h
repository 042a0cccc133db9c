// The clients gem-schd refused lately (docs/design.md, "Refused clients are held"): a refused
// pod manager holds its processes and asks again every second, so the administrator must be told
// who waits and why; gemctl status lists these under their GPU, the metrics count them.
// Pure: no I/O, time passed in. Not thread-safe (the server's loop owns it).
// Bounded: at most kMaxRefusedShown names (the oldest refusal is forgotten first), each forgotten
// kRefusedShownFor after its last refusal or at once when the client is admitted. A name from the
// wire that is not a valid client ID (client_id_error) is kept as "(invalid ID)", so nothing a peer
// sends reaches a log, a label or a JSON string unchecked.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gem/clock.h"
#include "gem/protocol.h"

namespace gem::sched {

/// Refused names shown at most (gemctl status, metrics, --stats).
inline constexpr size_t kMaxRefusedShown = 64;
/// A refused name is shown this long after its last refusal, µs.
inline constexpr Micros kRefusedShownFor = 60000000;

/// One refused client as shown.
struct Refused {
  std::string client;  // the ID it said Hello with, or "(invalid ID)"
  std::string reason;  // the scheduler's answer (as sent to the pod manager)
  std::string kind;    // reason_label(code)
  Micros last = 0;     // µs, the latest refusal
  uint64_t count = 0;  // refusals of this name while shown
};

class Refusals {
 public:
  /// `client` was refused with `code` for `reason` at `now`.
  void note(const std::string& client, proto::ErrorCode code, const std::string& reason, Micros now);
  /// `client` was admitted: no longer shown.
  void admitted(const std::string& client);
  /// The names refused within kRefusedShownFor before `now`, most recent first.
  std::vector<Refused> recent(Micros now) const;
  /// Refusals since start, per reason_label(): never decreases.
  const std::map<std::string, uint64_t>& totals() const { return totals_; }

  /// The metric label of a refusal code: "unknown_client", "removed", "denied", "busy", "protocol".
  static const char* reason_label(proto::ErrorCode code);

 private:
  std::map<std::string, Refused> shown_;
  std::map<std::string, uint64_t> totals_;
};

}  // namespace gem::sched
