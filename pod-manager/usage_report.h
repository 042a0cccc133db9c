// When gem-pmgr tells its scheduler the client's GPU memory (MemUsage; docs/memory.md "Residency"):
// a pure rate rule, fed the current figure and the time by the route, no I/O.
//
// A report is due when, since the last one sent on this scheduler connection, the usage moved by
// at least `step` bytes (proto::kUsageStep, 64 MiB) either way, or fell to 0 from a non-zero
// report, or the flags changed while a non-zero figure stands. A due report goes out at once unless
// the last one went less than `period` ago (proto::kUsagePeriodMs, 200 ms); it then waits until
// that period is over (next_deadline()), and goes out only if still due with the figures of then.
// A new connection starts from nothing (reset()): the first figure of at least `step` goes out at
// once. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>

#include "action.h"
#include "gem/clock.h"
#include "gem/protocol.h"

namespace gem::pmgr {

class UsageReport {
 public:
  explicit UsageReport(uint64_t step = proto::kUsageStep, Micros period = proto::kUsagePeriodMs * 1000);

  /// The scheduler connection is new (or gone): nothing was told on it.
  void reset();
  /// The usage now (bytes, the client's ClientSettings.flags): the MemUsage to send now, if any.
  std::optional<proto::MemUsage> update(uint64_t bytes, uint32_t flags, Micros now);
  /// When a held-back report may go (call update() then); kNever when none waits.
  Micros next_deadline() const { return pending_at_; }
  /// The figure last sent on this connection (0 before any).
  uint64_t sent_bytes() const { return sent_bytes_; }

 private:
  bool due(uint64_t bytes, uint32_t flags) const;

  uint64_t step_;
  Micros period_;
  uint64_t sent_bytes_ = 0;
  uint32_t sent_flags_ = 0;
  bool sent_ = false;       // a report went out on this connection
  Micros sent_at_ = 0;      // valid when sent_
  Micros pending_at_ = kNever;
};

}  // namespace gem::pmgr
