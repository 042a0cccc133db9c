// The process ledger, the first level of memory accounting (docs/design.md, "Memory accounting"):
// the memory ledger of one GPU in one process, a pure account of device memory against the
// client's GPU_MEM (docs/memory.md). No driver calls, no I/O, no clock, no locks: the caller
// (hook/lease_sync.cpp, under hook/mem_tracker.cpp's lock) serialises access and does the talking.
// Allocation sizes come from the sizing rules (mem_sizing.h).
//
// Terms: the *limit* is the client's GPU_MEM on this GPU (0 = none known); the *lease* is what
// gem-pmgr granted this process out of the client's budget; *used* is what this process holds,
// committed allocations plus reservations in flight (reserved before the real driver call, then
// committed or rolled back). An allocation fits when used + bytes <= lease; otherwise the caller
// asks gem-pmgr for the shortfall (ask()) and adds what it grants (add_lease()).
// Every size is clamped to kMaxBytes (2^50) and every sum and difference saturates, so no
// sequence of calls can wrap a counter (HAMi-core's shared counters underflow to 17 TB).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

namespace gem::hook {

/// What an accounted allocation is, so that a device pointer and a handle with the same value
/// never collide.
enum class MemKind : uint8_t { kPointer, kHandle, kArray, kMipmappedArray, kPool, kGraphPool };

struct MemKey {
  MemKind kind = MemKind::kPointer;
  uint64_t id = 0;
  bool operator==(const MemKey& o) const { return kind == o.kind && id == o.id; }
};

struct MemKeyHash {
  size_t operator()(const MemKey& k) const { return std::hash<uint64_t>()(k.id * 8 + static_cast<uint64_t>(k.kind)); }
};

/// How much to ask gem-pmgr for when an allocation does not fit the lease.
struct LeaseAsk {
  uint64_t need = 0;  // bytes without which the allocation fails
  uint64_t want = 0;  // need plus one chunk of slack, so the next allocations cost no round trip
};

class MemLedger {
 public:
  static constexpr uint64_t kMaxBytes = uint64_t{1} << 50;

  /// The lease chunk for a limit: limit / 32, at least 2 MiB, at most 64 MiB; 64 MiB without a
  /// limit (docs/memory.md).
  static uint64_t chunk_for(uint64_t limit);

  /// Sets the limit in bytes (0 = none). Lowering it below use frees nothing: later reservations
  /// fail until use falls.
  void set_limit(uint64_t bytes);
  /// Leases are kept even without a limit (unified-memory mode: gem-pmgr reports the client's
  /// memory to gem-schd for residency from the leases). Nothing is refused for want of a limit.
  void set_tracking(bool on) { tracking_ = on; }
  bool leasing() const { return limited() || tracking_; }
  uint64_t limit() const { return limit_; }
  bool limited() const { return limit_ > 0; }

  /// Bytes the lease lacks for reserving `bytes` now (0: it fits, or there is no limit).
  uint64_t shortfall(uint64_t bytes) const;
  /// What to ask gem-pmgr for so that `bytes` fit (need 0 when they fit already).
  LeaseAsk ask(uint64_t bytes) const;
  /// True when `bytes` would take the process beyond the limit on its own (no lease can help).
  bool beyond_limit(uint64_t bytes) const;

  /// Reserves `bytes` before the real call; the caller checked shortfall() == 0 (or there is no
  /// limit, or it is taking memory the driver already gave). Commit or roll back afterwards.
  void reserve(uint64_t bytes);
  /// The real call failed: gives back a reservation of `bytes`.
  void rollback(uint64_t bytes);
  /// The real call succeeded: the reservation of `bytes` becomes the allocation `key`. A key
  /// already present (a driver reusing an address we missed the free of) is replaced.
  void commit(MemKey key, uint64_t bytes);
  /// The allocation `key` was freed: its bytes, or nullopt when the ledger never saw it.
  std::optional<uint64_t> release(MemKey key);
  /// Sets what `key` holds to `bytes` (a pool's or the graph pool's reserved memory as the driver
  /// reports it; 0 erases it). Returns the previous amount.
  uint64_t settle(MemKey key, uint64_t bytes);
  /// Bytes held by `key` (0 when unknown).
  uint64_t held(MemKey key) const;

  void add_lease(uint64_t bytes);
  /// Lowers the lease by `bytes` (saturating at 0).
  void remove_lease(uint64_t bytes);
  /// Unused lease above `keep` bytes: what the process can give back.
  uint64_t surplus(uint64_t keep) const;

  uint64_t lease() const { return lease_; }
  /// Committed plus reserved bytes.
  uint64_t used() const { return committed_ + pending_; }
  uint64_t pending() const { return pending_; }
  size_t allocations() const { return sizes_.size(); }

 private:
  uint64_t limit_ = 0;
  bool tracking_ = false;
  uint64_t lease_ = 0;
  uint64_t committed_ = 0;
  uint64_t pending_ = 0;
  std::unordered_map<MemKey, uint64_t, MemKeyHash> sizes_;
};

}  // namespace gem::hook
