// Device memory of the stand-in driver: what is counted against each device's total, and the
// state of the stream-ordered pools and of graph memory. Addresses are fake, never dereferenced,
// so tests can "allocate" far more than the host has.
//
// Counted on a device (cuMemGetInfo's used = the sum):
//   - cuMemAlloc / cuMemAllocPitch / cuMemAllocManaged: the bytes asked for (pitch: pitch * height).
//     They belong to the current context: destroying it (or releasing the primary context to 0)
//     frees them, as on the real driver. Managed memory is counted on the allocating device.
//   - pools: the pool's reserved bytes (grown in kPoolChunk steps), not its used bytes.
//   - cuMemCreate with a device location: the size (a multiple of kGranularity).
//   - arrays and mipmapped arrays: their size rounded up to kGranularity (not with
//     CUDA_ARRAY3D_DEFERRED_MAPPING / _SPARSE: those get memory only through cuMemMapArrayAsync).
//   - graph memory: the device's graph pool reserved bytes.
// Host-located pools and cuMemCreate allocations are not counted.
#pragma once

#include <map>
#include <set>
#include <vector>

#include "fake_driver.h"

namespace fakecuda {

// Allocation granularity of the virtual memory management API, arrays and graph memory: what
// real GPUs report for CU_MEM_ALLOC_GRANULARITY_MINIMUM and _RECOMMENDED.
constexpr uint64_t kGranularity = 2ull << 20;
// A stream-ordered pool grows by whole chunks of this size. The real driver's pools reserve
// physical memory in large blocks too (tens of MiB, driver dependent, not documented); 32 MiB is
// a fixed stand-in so tests can predict RESERVED_MEM_CURRENT exactly: it is always a multiple of
// kPoolChunk, at least the used bytes.
constexpr uint64_t kPoolChunk = 32ull << 20;

constexpr uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

}  // namespace fakecuda

// A stream-ordered memory pool (cuMemPoolCreate / a device's default pool). Guarded by Memory's lock.
struct CUmemPoolHandle_st {
  int device = -1;        // -1: host memory, not counted on any device
  bool is_default = false;
  bool destroyed = false;  // destroyed with allocations outstanding: released as they are freed
  uint64_t max_size = 0;   // 0: the device's total
  uint64_t reserved = 0, used = 0, threshold = 0;
  uint64_t reserved_high = 0, used_high = 0;
  int reuse[3] = {1, 1, 1};  // CU_MEMPOOL_ATTR_REUSE_*: stored, no effect
};

namespace fakecuda {

// Process-wide memory accounting. Thread-safe (one lock). Driver's lock may be held when calling
// init(); no Memory function takes Driver's lock (pool handles are checked here, not by Driver).
class Memory {
 public:
  static Memory& get();

  // From Driver::init: device count and per-device total (FAKE_CUDA_MEM_BYTES). Idempotent.
  void init(int devices, uint64_t total_bytes);
  uint64_t total() const { return total_; }
  uint64_t used(int device);

  // Counts `bytes` on `device`; CUDA_ERROR_OUT_OF_MEMORY if they do not fit. device < 0: no-op.
  CUresult reserve(int device, uint64_t bytes);
  void unreserve(int device, uint64_t bytes);
  // A fresh fake address range of `bytes`, aligned to `align` (a power of two), never reused.
  CUdeviceptr new_range(uint64_t bytes, uint64_t align = 512);

  // cuMemAlloc / Pitch / Managed: counted, owned by `ctx`.
  CUresult alloc_plain(int device, CUcontext ctx, uint64_t bytes, CUdeviceptr* out);
  // cuMemFree: any pointer returned by an allocation function (plain, pool or graph); plain memory
  // is given back at once, pool memory goes back to its pool (which then releases down to its
  // threshold, cuMemFree synchronising as the real one does).
  CUresult free(CUdeviceptr p);
  // cuMemFreeAsync: as free, but plain memory is given back at the device's next synchronize.
  CUresult free_async(CUdeviceptr p);
  // cuStreamSynchronize / cuCtxSynchronize / cuEventSynchronize on `device`: deferred frees are
  // given back and every pool of the device holding more than its release threshold releases
  // unused chunks down to it.
  void on_synchronize(int device);
  // A context ends: its plain allocations and arrays are freed. Returns the array handles freed
  // (the caller retires them; see the lock order).
  std::vector<const void*> on_context_destroyed(CUcontext ctx);

  // Arrays: `handle` (a CUarray or CUmipmappedArray) holding `bytes` (0: not counted) on device.
  CUresult add_array(const void* handle, int device, CUcontext ctx, uint64_t bytes);
  bool remove_array(const void* handle);

  // Pools.
  CUmemoryPool default_pool(int device);
  CUmemoryPool current_pool(int device);
  CUresult set_current_pool(int device, CUmemoryPool pool);
  CUresult pool_create(const CUmemPoolProps* props, CUmemoryPool* out);
  CUresult pool_destroy(CUmemoryPool pool);
  CUresult pool_alloc(CUmemoryPool pool, uint64_t bytes, CUdeviceptr* out);
  CUresult pool_trim(CUmemoryPool pool, uint64_t keep);
  CUresult pool_get(CUmemoryPool pool, CUmemPool_attribute attr, void* value);
  CUresult pool_set(CUmemoryPool pool, CUmemPool_attribute attr, const void* value);
  bool valid_pool(CUmemoryPool pool);

  // Graph memory (mem_graph.cpp).
  CUresult graph_add_alloc(CUgraph g, int device, uint64_t bytes, CUdeviceptr* out);
  CUresult graph_add_free(CUgraph g, CUdeviceptr p);
  CUresult graph_instantiate(CUgraph g, CUgraphExec e, unsigned long long flags);
  // Before a launch or upload: backs the exec's allocations (CUDA_ERROR_OUT_OF_MEMORY when they do
  // not fit); at launch also applies its free nodes and makes its unfreed allocations live.
  CUresult graph_launch(CUgraphExec e, bool upload_only);
  void graph_launched(CUgraphExec e, uint64_t seq);
  void graph_exec_destroyed(CUgraphExec e);
  CUresult graph_trim(int device);
  CUresult graph_get(int device, CUgraphMem_attribute attr, void* value);
  CUresult graph_set(int device, CUgraphMem_attribute attr, const void* value);

 private:
  enum class Kind { kPlain, kPool, kGraph };
  struct Alloc {
    Kind kind;
    int device;
    uint64_t bytes;
    CUcontext ctx;       // kPlain
    CUmemoryPool pool;   // kPool
  };
  struct Array {
    int device;
    CUcontext ctx;
    uint64_t bytes;
  };
  struct GraphAlloc {
    int device;
    uint64_t bytes;            // counted: the request rounded up to kGranularity
    CUgraph owner;
    bool freed_in_owner = false;
    bool freed_elsewhere = false;  // a free node in another graph
    bool live = false;             // made by a launch, not freed yet
    CUgraphExec exec = nullptr;    // the owner's instantiation, while it exists
  };
  struct GraphPool {
    uint64_t reserved = 0, used = 0, reserved_high = 0, used_high = 0;
  };

  Memory() = default;
  CUresult reserve_locked(int device, uint64_t bytes);
  void unreserve_locked(int device, uint64_t bytes);
  CUdeviceptr new_range_locked(uint64_t bytes, uint64_t align);
  CUresult free_locked(CUdeviceptr p, bool deferred);
  CUmemoryPool default_pool_locked(int device);
  void pool_release_locked(CUmemoryPool pool, uint64_t keep);
  void pool_note_high(CUmemoryPool pool);
  void graph_free_live_locked(GraphAlloc& a);
  void graph_note_high(int device);

  std::mutex mu_;
  int devices_ = 0;
  uint64_t total_ = 16ull << 30;
  std::vector<uint64_t> used_;
  std::vector<uint64_t> deferred_;  // freed with cuMemFreeAsync, given back at the next synchronize
  std::map<CUdeviceptr, Alloc> allocs_;
  std::map<const void*, Array> arrays_;
  CUdeviceptr next_addr_ = 0x7f2000000000ull;

  std::vector<CUmemoryPool> default_pools_, current_pools_;
  std::vector<CUmemoryPool> pools_;     // every pool ever made (never freed, like retired handles)
  std::set<CUmemoryPool> live_pools_;  // not destroyed

  std::map<CUdeviceptr, GraphAlloc> graph_allocs_;  // never erased (a few per graph)
  std::vector<GraphPool> graph_pools_;
  std::set<CUgraphExec> backed_execs_;
};

}  // namespace fakecuda
