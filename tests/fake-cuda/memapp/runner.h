// fake-mem-app's steps (the syntax: main.cpp). Each step prints one JSON line.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "driver.h"
#include "json_line.h"

namespace memapp {

// What an allocating step holds, by its id.
struct Held {
  enum class Kind { kMem, kAsync, kGroup, kPool, kVmm, kArray, kMipmap, kGraph } kind;
  CUdeviceptr ptr = 0;               // kMem, kAsync, kVmm (the mapped address), kGraph (its allocation)
  uint64_t bytes = 0;
  std::vector<CUdeviceptr> group;    // kGroup
  CUmemoryPool pool = nullptr;       // kPool
  CUmemGenericAllocationHandle handle = 0;  // kVmm
  bool mapped = false, released = false;    // kVmm
  CUarray array = nullptr;
  CUmipmappedArray mipmap = nullptr;
  CUgraph graph = nullptr;           // kGraph
  CUgraphExec exec = nullptr;
};

// A step's outcome, printed as {"step": ..., "call": ..., "result": ..., fields...}.
struct Outcome {
  std::string call;        // the driver (or NVML) function whose result is reported
  std::string result;      // its result name
  bool ok = false;         // counts as success for the exit status
  JsonLine fields;
};

class Runner {
 public:
  Runner(const MemApi& api, int device, bool ptsz) : a_(api), device_(device), ptsz_(ptsz) {}
  // cuInit, the device, its primary context made current, a stream (none with ptsz: stream 0,
  // the per-thread default stream). Exits 1 on failure.
  void setup();
  // Runs one step and prints its line; false if it failed (or did not parse).
  bool run(const std::string& step);

 private:
  using Args = std::vector<std::string>;
  // Records r for `call`; true on CUDA_SUCCESS.
  bool check(Outcome& o, const char* call, CUresult r);
  int add(Held h);
  Held* find(Outcome& o, const std::string& id_text);
  CUmemoryPool app_pool();

  // steps_mem.cpp
  void alloc(Outcome& o, const Args& a);
  void managed(Outcome& o, const Args& a);
  void pitch(Outcome& o, const Args& a);
  void async(Outcome& o, const Args& a, bool from_pool);
  void free_id(Outcome& o, const Args& a);
  void free_ptr(Outcome& o, const Args& a, bool async);
  bool free_held(Outcome& o, Held& h);
  void free_all(Outcome& o);
  void pool_create(Outcome& o, const Args& a);
  void pool_step(Outcome& o, const std::string& op, const Args& a);
  void info(Outcome& o, bool v1);
  void alloc_until_oom(Outcome& o, const Args& a);
  void bench(Outcome& o, const Args& a, bool async);
  void ctx_release(Outcome& o);
  // steps_vmm.cpp
  void vmm_create(Outcome& o, const Args& a, bool host);
  void vmm_map(Outcome& o, Held& h);
  void vmm_unmap(Outcome& o, Held& h);
  void vmm_step(Outcome& o, const std::string& op, const Args& a);
  void array(Outcome& o, const Args& a, bool mipmap);
  void graph_mem(Outcome& o, const Args& a);
  void graph_launch(Outcome& o, Held& h);
  void graph_info(Outcome& o);
  // nvml_step.cpp
  void nvml_info(Outcome& o);

  const MemApi& a_;
  int device_;
  bool ptsz_;
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  std::map<int, Held> held_;
  int next_id_ = 0;
  CUmemoryPool pool_ = nullptr;  // the latest pool_create
};

// Sizes: digits with an optional binary suffix K, M, G, T (KiB, MB...), "0", or "max" (2^64 - 1).
bool parse_size(const std::string& s, uint64_t* out);
// A string split at `sep`.
std::vector<std::string> split(const std::string& s, char sep);

}  // namespace memapp
