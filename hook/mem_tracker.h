// The process ledger's home (docs/design.md, "Memory accounting"; docs/memory.md): the process's
// GPU memory accounting, one LeaseSync (a MemLedger kept in step with gem-pmgr through a
// MemSession, with the fault rules, lease_sync.h) per GPU, behind one lock. The allocation wrappers
// (hook/mem_hooks.cpp, mem_pools.cpp) call reserve() before the real driver call and finish() after
// it, release() after a successful free, and view() for the memory figures they virtualise
// (mem_views.cpp, nvml_hooks.cpp). This unit finds the GPU of a CUDA device (by UUID), takes the
// lock and the time; the rules are LeaseSync's and MemLedger's.
// Thread-safe. Never throws: a failure of the hook's own machinery lets the allocation through.
#pragma once

#include <cstdint>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "driver_api.h"
#include "lease_sync.h"
#include "mem_ledger.h"
#include "mem_session.h"

namespace gem::hook {

class MemTracker {
 public:
  /// The process's tracker (recreated in a forked child: CUDA does not survive fork and the child
  /// must not share the parent's sessions). Never destroyed.
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

  MemTracker();

 private:
  struct Gpu {
    Gpu(const std::string& uuid, LeaseSyncShared& shared, const Settings& s)
        : session(s), sync(uuid, session, shared) {}
    MemSession session;
    LeaseSync sync;  // borrows session
  };

  Gpu* gpu(CUdevice dev);
  Gpu* gpu_by_uuid(const std::string& uuid);
  /// After a call that may have heard from gem-pmgr: notes unified-memory mode process-wide.
  void note_um(const Gpu& g);

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Gpu>> gpus_;  // by UUID
  std::map<CUdevice, Gpu*> by_device_;
  LeaseSyncShared shared_;
  std::atomic<bool> any_um_{false};
};

}  // namespace gem::hook
