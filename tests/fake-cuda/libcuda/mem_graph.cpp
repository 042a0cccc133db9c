// Graph memory (cuGraphAddMemAllocNode / cuGraphAddMemFreeNode). As on the real driver, an
// allocation node gets its fixed address when it is added, and physical memory when the
// instantiated graph is first launched (or uploaded): each allocation, rounded up to kGranularity,
// is taken from the device's graph pool, which grows from the device as needed. All allocations
// of a graph are counted as held together (no reuse between allocations freed inside the graph).
// The memory stays with the instantiation between launches; destroying it returns its memory to
// the graph pool (an allocation still live outside the graph keeps its share until freed), and
// cuDeviceGraphMemTrim gives the pool's unused memory back to the device, including that of idle
// instantiations without live allocations (they take it again at their next launch).
#include <cstring>

#include "mem_model.h"

namespace fakecuda {

CUresult Memory::graph_add_alloc(CUgraph g, int device, uint64_t bytes, CUdeviceptr* out) {
  std::lock_guard<std::mutex> lk(mu_);
  CUdeviceptr p = new_range_locked(bytes, kGranularity);
  GraphAlloc a;
  a.device = device;
  a.bytes = round_up(bytes, kGranularity);
  a.owner = g;
  graph_allocs_[p] = a;
  g->mem_allocs.push_back(p);
  *out = p;
  return CUDA_SUCCESS;
}

CUresult Memory::graph_add_free(CUgraph g, CUdeviceptr p) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = graph_allocs_.find(p);
  if (it == graph_allocs_.end()) return CUDA_ERROR_INVALID_VALUE;  // not from an allocation node
  GraphAlloc& a = it->second;
  if (a.freed_in_owner || a.freed_elsewhere) return CUDA_ERROR_INVALID_VALUE;  // freed twice
  if (a.owner == g) {
    a.freed_in_owner = true;
  } else {
    a.freed_elsewhere = true;
    g->mem_frees.push_back(p);
  }
  return CUDA_SUCCESS;
}

CUresult Memory::graph_instantiate(CUgraph g, CUgraphExec e, unsigned long long flags) {
  std::lock_guard<std::mutex> lk(mu_);
  e->graph = g;
  e->flags = flags;
  if (g->mem_allocs.empty() && g->mem_frees.empty()) return CUDA_SUCCESS;
  if (g->mem_execs > 0) return CUDA_ERROR_INVALID_VALUE;  // one instantiation at a time
  ++g->mem_execs;
  e->mem_allocs = g->mem_allocs;
  e->mem_frees = g->mem_frees;
  for (CUdeviceptr p : g->mem_allocs) {
    GraphAlloc& a = graph_allocs_[p];
    a.exec = e;
    if (!a.freed_in_owner) e->mem_outlive.push_back(p);
  }
  return CUDA_SUCCESS;
}

void Memory::graph_note_high(int device) {
  GraphPool& gp = graph_pools_[static_cast<size_t>(device)];
  if (gp.reserved > gp.reserved_high) gp.reserved_high = gp.reserved;
  if (gp.used > gp.used_high) gp.used_high = gp.used;
}

void Memory::graph_free_live_locked(GraphAlloc& a) {
  a.live = false;
  // While its instantiation exists the memory stays with it; otherwise it returns to the pool.
  if (a.exec == nullptr) graph_pools_[static_cast<size_t>(a.device)].used -= a.bytes;
}

CUresult Memory::graph_launch(CUgraphExec e, bool upload_only) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!upload_only) {
    for (CUdeviceptr p : e->mem_outlive) {
      GraphAlloc& a = graph_allocs_[p];
      if (a.live && (e->flags & CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH)) graph_free_live_locked(a);
      if (a.live) return CUDA_ERROR_INVALID_VALUE;  // its last allocation is still outstanding
    }
    for (CUdeviceptr p : e->mem_frees) {
      if (!graph_allocs_[p].live) return CUDA_ERROR_INVALID_VALUE;  // nothing to free
    }
  }
  if (!e->backed && !e->mem_allocs.empty()) {
    std::map<int, uint64_t> need;
    for (CUdeviceptr p : e->mem_allocs) need[graph_allocs_[p].device] += graph_allocs_[p].bytes;
    for (const auto& [dev, bytes] : need) {  // check every device before taking anything
      const GraphPool& gp = graph_pools_[static_cast<size_t>(dev)];
      uint64_t unused = gp.reserved - gp.used;
      if (bytes > unused && bytes - unused > total_ - used_[static_cast<size_t>(dev)]) {
        return CUDA_ERROR_OUT_OF_MEMORY;
      }
    }
    for (const auto& [dev, bytes] : need) {
      GraphPool& gp = graph_pools_[static_cast<size_t>(dev)];
      uint64_t unused = gp.reserved - gp.used;
      if (bytes > unused) {
        reserve_locked(dev, bytes - unused);
        gp.reserved += bytes - unused;
      }
      gp.used += bytes;
      graph_note_high(dev);
    }
    e->backed = true;
    backed_execs_.insert(e);
  }
  if (!upload_only) {
    for (CUdeviceptr p : e->mem_frees) graph_free_live_locked(graph_allocs_[p]);
    for (CUdeviceptr p : e->mem_outlive) graph_allocs_[p].live = true;
  }
  return CUDA_SUCCESS;
}

void Memory::graph_launched(CUgraphExec e, uint64_t seq) {
  std::lock_guard<std::mutex> lk(mu_);
  e->last_seq = seq;
}

void Memory::graph_exec_destroyed(CUgraphExec e) {
  std::lock_guard<std::mutex> lk(mu_);
  if (e->mem_allocs.empty() && e->mem_frees.empty()) return;
  --e->graph->mem_execs;
  for (CUdeviceptr p : e->mem_allocs) {
    GraphAlloc& a = graph_allocs_[p];
    if (e->backed && !a.live) graph_pools_[static_cast<size_t>(a.device)].used -= a.bytes;
    a.exec = nullptr;
  }
  e->backed = false;
  backed_execs_.erase(e);
}

CUresult Memory::graph_trim(int device) {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto it = backed_execs_.begin(); it != backed_execs_.end();) {
    CUgraphExec e = *it;
    bool keep = !Driver::get().sim(e->device).done(e->last_seq);  // running or queued
    for (CUdeviceptr p : e->mem_allocs) {
      const GraphAlloc& a = graph_allocs_[p];
      keep = keep || a.live || a.device != device;
    }
    if (keep) {
      ++it;
      continue;
    }
    for (CUdeviceptr p : e->mem_allocs) graph_pools_[static_cast<size_t>(device)].used -= graph_allocs_[p].bytes;
    e->backed = false;
    it = backed_execs_.erase(it);
  }
  GraphPool& gp = graph_pools_[static_cast<size_t>(device)];
  unreserve_locked(device, gp.reserved - gp.used);
  gp.reserved = gp.used;
  return CUDA_SUCCESS;
}

CUresult Memory::graph_get(int device, CUgraphMem_attribute attr, void* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lk(mu_);
  const GraphPool& gp = graph_pools_[static_cast<size_t>(device)];
  uint64_t v = 0;
  switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT: v = gp.used; break;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH: v = gp.used_high; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT: v = gp.reserved; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH: v = gp.reserved_high; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  memcpy(value, &v, sizeof v);
  return CUDA_SUCCESS;
}

CUresult Memory::graph_set(int device, CUgraphMem_attribute attr, const void* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t v = 0;
  memcpy(&v, value, sizeof v);
  if (v != 0) return CUDA_ERROR_INVALID_VALUE;  // high watermarks can only be reset
  std::lock_guard<std::mutex> lk(mu_);
  GraphPool& gp = graph_pools_[static_cast<size_t>(device)];
  switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH: gp.used_high = gp.used; return CUDA_SUCCESS;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH: gp.reserved_high = gp.reserved; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace fakecuda
