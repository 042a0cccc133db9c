// The process's GPU memory accounting (docs/memory.md): one MemLedger and one MemSession per GPU,
// behind one lock. The allocation wrappers (hook/mem_hooks.cpp) call reserve() before the real
// driver call and finish() after it, release() after a successful free, and view() for the
// memory figures they virtualise. Decisions of what fits are the ledger's; this unit only keeps
// the leases in step with gem-pmgr and applies the fault rules:
//  - gem-pmgr unreachable after it was reached: the process allocates within its current lease
//    and nothing more; it tries again at most once a second, and on reconnecting re-declares what
//    it holds (MemReserve.existing), since a restarted gem-pmgr knows nothing of it.
//  - gem-pmgr never reached: no limit is known, nothing is refused (GEMINI_FAIL_CLOSED=1: every
//    allocation is refused instead).
//  - a limit change pushed by gem-pmgr applies from the next allocation; the unused lease goes back.
// Thread-safe. Never throws: a failure of the hook's own machinery lets the allocation through.
#pragma once

#include <cstdint>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "driver_api.h"
#include "gem/clock.h"
#include "mem_ledger.h"
#include "mem_session.h"

namespace gem::hook {

class MemTracker {
 public:
  /// The process's tracker (recreated in a forked child). Never destroyed.
  static MemTracker& get();

  /// True when memory is accounted at all (POD_NAME set); otherwise wrappers pass straight through.
  static bool active();

  /// Before a real allocation of `bytes` on CUDA device `dev`: true when reserved (the caller must
  /// call finish()); false when it does not fit the client's GPU_MEM (the caller returns
  /// CUDA_ERROR_OUT_OF_MEMORY without calling the driver).
  bool reserve(CUdevice dev, uint64_t bytes);
  /// After the real call: `ok` commits the reservation of `reserved` bytes as `key` holding
  /// `actual` bytes; otherwise the reservation is rolled back.
  void finish(CUdevice dev, uint64_t reserved, bool ok, MemKey key, uint64_t actual);
  /// After a successful free of `key` (on any device): gives its bytes back, and the unused lease
  /// above one chunk back to gem-pmgr.
  void release(MemKey key);
  /// Sets what `key` (a pool) holds on `dev` to `bytes`, as read from the driver.
  void settle(CUdevice dev, MemKey key, uint64_t bytes);
  /// True when `bytes` more would stay within the limit of `dev` as far as this process can tell
  /// (no lease is taken): for requests that reserve later (graph memory nodes).
  bool within_limit(CUdevice dev, uint64_t bytes);

  /// The memory figures of `dev` as the client should see them: false when no limit applies
  /// (the caller reports the real figures); else *limit and *free (bytes the process may still
  /// allocate: the limit less what the client holds, plus this process's unused lease).
  bool view(CUdevice dev, uint64_t* limit, uint64_t* free);
  /// The same for a GPU named by UUID (NVML's view), opening a session for it if needed.
  bool view_uuid(const std::string& uuid, uint64_t* limit, uint64_t* free);

  /// True when the client runs in unified-memory mode on `dev` (ClientSettings.flags, as gem-pmgr
  /// last said; false before the first allocation or query on `dev`).
  bool unified_memory(CUdevice dev);
  /// True when any GPU of the process runs in unified-memory mode. Lock-free (one atomic load).
  bool any_unified_memory() const { return any_um_.load(std::memory_order_relaxed); }
  /// Managed allocations (unified-memory mode): noted when made, forgotten when freed; what the
  /// hook moves to the host on Evict and back before its next slice (docs/memory.md, "Residency").
  void note_managed(CUdevice dev, uint64_t ptr, uint64_t bytes);
  /// The managed ranges of `dev` (address, bytes).
  std::vector<std::pair<uint64_t, uint64_t>> managed_ranges(CUdevice dev);
  /// Bytes of managed memory on `dev` (no copy of the ranges).
  uint64_t managed_bytes(CUdevice dev);

  /// Pools of `dev` seen so far (for re-reading what they hold before refusing).
  std::vector<uint64_t> pools(CUdevice dev);
  void note_pool(CUdevice dev, uint64_t pool);

 private:
  struct Gpu {
    std::string uuid;
    MemLedger ledger;
    MemSession session;
    bool known = false;       // a limit was ever learnt from gem-pmgr
    Micros retry_at = 0;      // next connection attempt
    Micros push_checked = 0;  // last look for pushed limit changes
    uint64_t client_held = 0;  // all sessions of the client, as last told
    std::vector<uint64_t> pools;
    bool um = false;                        // unified-memory mode (MemState.flags)
    std::map<uint64_t, uint64_t> managed;   // managed allocations: address -> bytes
    uint64_t managed_bytes = 0;
  };

  Gpu* gpu(CUdevice dev);
  Gpu* gpu_by_uuid(const std::string& uuid);
  void connect(Gpu& g, Micros now);
  void apply(Gpu& g, const proto::MemState& st);
  void check_pushes(Gpu& g, Micros now);
  bool grow_lease(Gpu& g, uint64_t bytes);
  void give_back_surplus(Gpu& g, uint64_t keep);
  bool view_locked(Gpu& g, uint64_t* limit, uint64_t* free);
  /// Bytes the process may still allocate on `g` as far as it knows (no round trip).
  static uint64_t left(const Gpu& g);

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Gpu>> gpus_;  // by UUID
  std::map<CUdevice, Gpu*> by_device_;
  bool warned_ = false;
  std::atomic<bool> any_um_{false};
};

}  // namespace gem::hook
