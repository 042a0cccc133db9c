// Lease sync and fault rules for one GPU of one process (docs/memory.md): keeps the process ledger
// (MemLedger, mem_ledger.h) in step with the client budget at gem-pmgr through a memory session,
// and decides what happens when gem-pmgr cannot be reached:
//  - gem-pmgr unreachable after it was reached: the process allocates within its current lease
//    and nothing more; it tries again at most once per kMemRetryPeriod (1 s), and on reconnecting
//    re-declares what it holds (MemReserve.existing), since a restarted gem-pmgr knows nothing of it.
//  - gem-pmgr never reached: no limit is known, nothing is refused (fail_closed, from
//    GEMINI_FAIL_CLOSED=1: every allocation is refused instead).
//  - a limit change pushed by gem-pmgr applies from the next allocation (pushes are looked for at
//    most once per kPushCheckPeriod, 1 ms); the unused lease goes back.
//  - the unused lease above one chunk (MemLedger::chunk_for) goes back after a free.
// It also computes the memory view: what the process may still allocate (free()).
// Pure: the session is injected (LeaseChannel: MemSession in the hook, a fake in tests), the time is
// passed in (µs, gem::mono_us() in the hook). Not thread-safe: MemTracker serialises it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gem/clock.h"
#include "gem/protocol.h"
#include "mem_ledger.h"

namespace gem::hook {

/// What lease sync needs of a memory session with gem-pmgr (mem_session.h documents each call).
class LeaseChannel {
 public:
  virtual ~LeaseChannel() = default;
  virtual bool open(const std::string& uuid, proto::MemState* state, std::string* why) = 0;
  virtual bool is_open() const = 0;
  virtual bool reserve(uint64_t need, uint64_t want, bool existing, proto::MemState* state, std::string* why) = 0;
  virtual bool give_back(uint64_t bytes) = 0;
  virtual bool query(proto::MemState* state, std::string* why) = 0;
  virtual std::optional<proto::MemState> take_push() = 0;
};

/// What the lease sync of every GPU of a process shares.
struct LeaseSyncShared {
  bool fail_closed = false;   // GEMINI_FAIL_CLOSED=1
  std::string pod_manager;    // gem-pmgr's address, for the log
  bool warned = false;        // an unreachable gem-pmgr was logged (once until it is reached)
};

class LeaseSync {
 public:
  static constexpr Micros kMemRetryPeriod = 1000000;   // µs between attempts to reach a lost gem-pmgr
  static constexpr Micros kPushCheckPeriod = 1000;  // µs between looks for pushed limit changes

  /// `channel` and `shared` are borrowed and outlive this.
  LeaseSync(std::string uuid, LeaseChannel& channel, LeaseSyncShared& shared)
      : uuid_(std::move(uuid)), ch_(channel), shared_(shared) {}

  /// Before a real allocation of `bytes` at `now`: true when reserved (call finish() after the real
  /// call); false when it does not fit the limit, or no limit is known and fail_closed.
  bool reserve(uint64_t bytes, Micros now);
  /// After the real call: `ok` commits the reservation of `reserved` bytes as `key` holding
  /// `actual` bytes; otherwise the reservation is rolled back.
  void finish(uint64_t reserved, bool ok, MemKey key, uint64_t actual);
  /// After a successful free of `key`: false when this GPU never held it; else its bytes are given
  /// back, and the unused lease above one chunk back to gem-pmgr.
  bool release(MemKey key, Micros now);
  /// Sets what `key` (a pool) holds to `bytes`, as read from the driver; a shrink gives the unused
  /// lease above one chunk back.
  void settle(MemKey key, uint64_t bytes);
  /// True when `bytes` more would stay within the limit as far as this process can tell (no lease
  /// is taken): for requests that reserve later (graph memory nodes).
  bool within_limit(uint64_t bytes, Micros now);
  /// The memory figures as the client should see them (asks gem-pmgr for the latest limit): false
  /// when no limit applies; else *limit and *free (free(): bytes the process may still allocate).
  bool view(Micros now, uint64_t* limit, uint64_t* free);

  /// Bytes the process may still allocate as far as it knows (no round trip): the limit less what
  /// the client's other processes hold (the client's total less this process's lease) and less what
  /// this process uses; its own unused lease counts as free.
  uint64_t free() const;
  /// The client runs in unified-memory mode here (ClientSettings.flags, as gem-pmgr last said).
  bool unified_memory() const { return um_; }
  /// A limit was ever learnt from gem-pmgr.
  bool known() const { return known_; }
  const MemLedger& ledger() const { return ledger_; }
  const std::string& uuid() const { return uuid_; }

 private:
  void connect(Micros now);
  void apply(const proto::MemState& st);
  void check_pushes(Micros now);
  bool grow_lease(uint64_t bytes);
  void give_back_surplus(uint64_t keep);

  const std::string uuid_;
  LeaseChannel& ch_;
  LeaseSyncShared& shared_;
  MemLedger ledger_;
  bool known_ = false;
  bool um_ = false;
  Micros retry_at_ = 0;      // next connection attempt
  Micros push_checked_ = 0;  // last look for pushed limit changes
  uint64_t client_held_ = 0;  // all sessions of the client, as last told
};

}  // namespace gem::hook
