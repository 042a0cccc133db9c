// One client's GPU memory budget on one GPU: the limit (GPU_MEM) and the lease each memory session
// holds (docs/memory.md). The pure part of gem-pmgr's memory enforcement: no I/O, no clock.
//
// Rules (docs/memory.md, "Reserve rule"): every size from a session is first clamped to
// proto::kMaxWireBytes (2^50); `want` below `need` counts as `need`. held() is the sum of all
// leases; a grant of x "fits" when there is no limit (0) or held() + x <= limit.
//   - want if it fits, else need if it fits;
//   - else, existing (bytes the process says it holds already): what is left below the limit
//     (possibly nothing). A report can never take held() above the limit: bytes a process holds
//     beyond its client's GPU_MEM are not charged (its own ledger still counts them);
//   - else nothing (refused).
// So held() <= limit whenever a limit is set, except after set_limit() lowered it (leases are
// never taken back).
// All arithmetic saturates: a lease and the total never exceed kMaxHeld (a grant is cut to the
// room left below it), a give-back never takes a lease below 0. Invariant: held() is exactly the
// sum of the sessions' leases. Not thread-safe (gem-pmgr's poll loop is its only user).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace gem::pmgr {

class MemBudget {
 public:
  /// Identifies a memory session (one hook connection; gem-pmgr's HookId).
  using Session = uint64_t;
  /// Ceiling of any lease and of the total, bytes (2^62: adding a clamped 2^50 never overflows).
  static constexpr uint64_t kMaxHeld = uint64_t{1} << 62;

  /// `limit`: bytes, 0 = no limit; clamped to proto::kMaxWireBytes.
  explicit MemBudget(uint64_t limit = 0);

  /// Registers a session holding nothing (so that set_limit() names it). Idempotent.
  void join(Session s);
  /// Grows session `s`'s lease by the rule above (joining it if unknown). Returns the bytes
  /// granted (0 = refused, or need and want were both 0); nothing changes when refused.
  uint64_t reserve(Session s, uint64_t need, uint64_t want, bool existing);
  /// Lowers `s`'s lease by `bytes` (clamped to 2^50), never below 0. Returns what was taken off.
  /// An unknown session gives back nothing.
  uint64_t give_back(Session s, uint64_t bytes);
  /// The session is gone (its connection closed): its whole lease is released at once and it is
  /// forgotten. Returns the bytes released (0 for an unknown session).
  uint64_t drop(Session s);
  /// A new limit (bytes, 0 = none; clamped to 2^50). Returns the sessions to tell about it: every
  /// session when the limit changed, none when it is the same. Leases are never taken back: a limit
  /// below held() only refuses new reserves.
  std::vector<Session> set_limit(uint64_t bytes);

  uint64_t limit() const { return limit_; }
  /// Sum of all leases, bytes.
  uint64_t held() const { return held_; }
  /// `s`'s lease, bytes (0 for an unknown session).
  uint64_t held_by(Session s) const;
  size_t sessions() const { return leases_.size(); }

 private:
  bool fits(uint64_t bytes) const;
  /// Adds up to `bytes` to s's lease (cut at kMaxHeld); returns what was added.
  uint64_t grow(Session s, uint64_t bytes);

  uint64_t limit_ = 0;
  uint64_t held_ = 0;
  std::map<Session, uint64_t> leases_;
};

}  // namespace gem::pmgr
