// Internal state of the stand-in libcuda.so.1 shared by its api_*.cpp files.
#pragma once

#define __CUDA_API_VERSION_INTERNAL 1  // declares the legacy, _v2 and _ptsz names too
#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "device_sim.h"

// Every driver entry point is exported with default visibility under its C name.
#define FAKE_API extern "C" __attribute__((visibility("default")))
// A hidden alias fake_<name> of an exported entry point, defined in the same file after it.
// cuGetProcAddress hands out these: a plain &cuLaunchKernel would go through the GOT and, under an
// LD_PRELOAD hook that exports cuLaunchKernel, return the hook's function as the "real" one.
// For the same reason entry points never call each other, only shared helpers.
#define FAKE_ALIAS(name) \
  extern "C" __attribute__((alias(#name), visibility("hidden"))) decltype(name) fake_##name;
#define FAKE_ALIAS_DECL(name) extern "C" __attribute__((visibility("hidden"))) decltype(name) fake_##name;

// The opaque handle types of cuda.h, completed here. Handles are never freed (destroy only
// retires them, see Driver), so a stale handle held by another thread cannot dangle.
struct CUctx_st {
  int device;
  bool primary;
};
struct CUstream_st {
  int device;
  unsigned int flags;
  int priority;
  std::atomic<uint64_t> last_seq{0};  // sequence of the latest op enqueued on it
  // Its capture, if any, is in the capture registry (capture_rules.h).
};
struct CUevent_st {
  unsigned int flags;
  std::shared_ptr<fakecuda::EventTiming> timing = std::make_shared<fakecuda::EventTiming>();
  // Id of the capture its latest record went into (capture_rules.h), 0 if that record ran.
  std::atomic<uint64_t> captured_id{0};
};
struct CUmod_st {
  int device;
  std::mutex mu;
  std::map<std::string, CUfunction> functions;  // same name, same handle, as the real driver
};
struct CUfunc_st {
  int device;
  fakecuda::Nanos duration_ns;
};
struct CUgraphNode_st {
  fakecuda::Nanos duration_ns;
};
struct CUgraph_st {
  std::mutex mu;
  std::vector<CUgraphNode> nodes;  // insertion order is a valid topological order
  // Memory nodes (guarded by fakecuda::Memory's lock): addresses allocated in this graph, those
  // allocated elsewhere that it frees, and how many instantiations exist (at most one with memory nodes).
  std::vector<CUdeviceptr> mem_allocs, mem_frees;
  int mem_execs = 0;
};
struct CUgraphExec_st {
  int device;
  fakecuda::Nanos duration_ns;  // nodes run back to back on a serial device
  CUgraph graph = nullptr;
  // Guarded by fakecuda::Memory's lock.
  unsigned long long flags = 0;
  // Copied from the graph at instantiation: its allocations, those not freed in it, and the
  // allocations of other graphs it frees.
  std::vector<CUdeviceptr> mem_allocs, mem_outlive, mem_frees;
  bool backed = false;    // its allocations have memory in the device's graph pool
  uint64_t last_seq = 0;  // device FIFO sequence of its latest launch
};

namespace fakecuda {

enum class HandleKind {
  kContext, kStream, kEvent, kModule, kFunction, kGraph, kGraphNode, kGraphExec, kArray, kMipmappedArray
};

// Process-wide driver state: devices, primary contexts, live handles (memory: mem_model.h).
// Created on first use and leaked on purpose, so no static destructor races the executors at exit.
// Thread-safe.
class Driver {
 public:
  static Driver& get();

  // cuInit: reads FAKE_CUDA_DEVICES / FAKE_CUDA_MEM_BYTES / FAKE_CUDA_LOG once.
  CUresult init();
  bool initialized() const { return initialized_.load(std::memory_order_acquire); }
  int device_count() const { return device_count_; }
  bool valid_device(CUdevice d) const { return d >= 0 && d < device_count_; }
  DeviceSim& sim(int d) { return *sims_[static_cast<size_t>(d)]; }
  CUcontext primary(int d) { return primaries_[static_cast<size_t>(d)]; }
  // Primary context reference counts (cuDevicePrimaryCtxRetain/Release). release_primary is false
  // when the count is already 0; *now_zero tells whether this release dropped it to 0.
  void retain_primary(int d);
  bool release_primary(int d, bool* now_zero);

  void add_handle(const void* h, HandleKind k);
  bool remove_handle(const void* h, HandleKind k);
  bool valid_handle(const void* h, HandleKind k);

 private:
  Driver() = default;
  std::atomic<bool> initialized_{false};
  std::mutex mu_;
  int device_count_ = 0;
  std::vector<DeviceSim*> sims_;
  std::vector<CUcontext> primaries_;
  std::vector<int> primary_refs_;
  std::unordered_map<const void*, HandleKind> handles_;
  std::vector<const void*> retired_;  // destroyed handles, never freed
};


// The calling thread's current context (top of its context stack), or nullptr.
CUcontext current_ctx();
// The calling thread's context stack (cuCtxPush/Pop/SetCurrent). Thread-local; keep the library's ELF
// TLS at its 64 bytes (see thread_mode() in capture_rules.cpp for why).
std::vector<CUcontext>& ctx_stack();

// Where work for a stream argument goes and how to wait for it.
struct StreamTarget {
  int device = -1;
  CUstream_st* stream = nullptr;  // an explicit stream, or nullptr for a default stream
  bool per_thread = false;        // the calling thread's per-thread default stream
};

// Resolves a stream argument: 0 means the legacy stream, or the per-thread stream when reached
// through a _ptsz entry point; CU_STREAM_LEGACY / CU_STREAM_PER_THREAD as in cuda.h.
// Default streams need a current context (CUDA_ERROR_INVALID_CONTEXT).
CUresult resolve_stream(CUstream s, bool ptsz, StreamTarget* out);
// Records that op `seq` was enqueued on target.
void note_enqueued(const StreamTarget& t, uint64_t seq);
// The sequence number a synchronise on target must wait for. The legacy stream waits for all
// work on the device (stricter than the real legacy stream, which skips non-blocking streams).
uint64_t sync_seq(const StreamTarget& t);

// Common checks: NOT_INITIALIZED before cuInit.
inline CUresult check_init() {
  return Driver::get().initialized() ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

// Enqueues `duration_ns` of work made on `device` (a function's or graph's) on stream s, reached
// through the entry point named `api` (a static string, for the log). Needs a current context on
// the same device. On a capturing stream it becomes a node of the capture's graph instead
// (capture_enqueue in capture_rules.h; *seq_out = 0). *seq_out (if given): the op's sequence
// number on the device FIFO.
CUresult submit_kernel(int device, Nanos duration_ns, CUstream s, bool ptsz, const char* api,
                       uint64_t* seq_out = nullptr);
// Graph node plumbing (api_graph.cpp): argument checks shared by every cuGraphAdd*Node, and
// appending a node that runs for duration_ns (0 for memory nodes).
CUresult check_node_args(CUgraphNode* phNode, CUgraph g, const CUgraphNode* deps, size_t ndeps);
void add_node(CUgraph g, Nanos duration_ns, CUgraphNode* phNode);
// Checks what submit_kernel would refuse (current context, stream, device, capture rules:
// capture_enqueue, whose legacy-stream rule may invalidate captures), without enqueuing; api names
// the caller in the capture logs.
CUresult check_submit(int device, CUstream s, bool ptsz, const char* api);

}  // namespace fakecuda
