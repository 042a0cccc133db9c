// Memory accounting core: per-device counts, plain allocations, frees, synchronize, contexts,
// arrays (pools: mem_pool.cpp; graph memory: mem_graph.cpp).
#include "mem_model.h"

namespace fakecuda {

Memory& Memory::get() {
  static Memory* m = new Memory();  // leaked, like Driver
  return *m;
}

void Memory::init(int devices, uint64_t total_bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  if (devices_ != 0 || devices <= 0) return;
  devices_ = devices;
  total_ = total_bytes;
  used_.assign(static_cast<size_t>(devices), 0);
  deferred_.assign(static_cast<size_t>(devices), 0);
  default_pools_.assign(static_cast<size_t>(devices), nullptr);
  current_pools_.assign(static_cast<size_t>(devices), nullptr);
  graph_pools_.assign(static_cast<size_t>(devices), GraphPool{});
}

uint64_t Memory::used(int device) {
  std::lock_guard<std::mutex> lk(mu_);
  return used_[static_cast<size_t>(device)];
}

CUresult Memory::reserve_locked(int device, uint64_t bytes) {
  if (device < 0) return CUDA_SUCCESS;
  uint64_t& used = used_[static_cast<size_t>(device)];
  if (bytes > total_ - used) return CUDA_ERROR_OUT_OF_MEMORY;
  used += bytes;
  return CUDA_SUCCESS;
}

void Memory::unreserve_locked(int device, uint64_t bytes) {
  if (device < 0) return;
  uint64_t& used = used_[static_cast<size_t>(device)];
  used = bytes > used ? 0 : used - bytes;
}

CUresult Memory::reserve(int device, uint64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  return reserve_locked(device, bytes);
}

void Memory::unreserve(int device, uint64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  unreserve_locked(device, bytes);
}

CUdeviceptr Memory::new_range_locked(uint64_t bytes, uint64_t align) {
  CUdeviceptr p = round_up(next_addr_, align);
  // A gap after each range so neighbouring allocations never touch.
  next_addr_ = p + round_up(bytes, 512) + 512;
  return p;
}

CUdeviceptr Memory::new_range(uint64_t bytes, uint64_t align) {
  std::lock_guard<std::mutex> lk(mu_);
  return new_range_locked(bytes, align);
}

CUresult Memory::alloc_plain(int device, CUcontext ctx, uint64_t bytes, CUdeviceptr* out) {
  std::lock_guard<std::mutex> lk(mu_);
  if (CUresult r = reserve_locked(device, bytes)) return r;
  CUdeviceptr p = new_range_locked(bytes, 512);  // 512-byte aligned like cudaMalloc
  allocs_[p] = Alloc{Kind::kPlain, device, bytes, ctx, nullptr};
  *out = p;
  return CUDA_SUCCESS;
}

CUresult Memory::free_locked(CUdeviceptr p, bool deferred) {
  auto it = allocs_.find(p);
  if (it == allocs_.end()) {
    auto g = graph_allocs_.find(p);
    if (g == graph_allocs_.end() || !g->second.live) return CUDA_ERROR_INVALID_VALUE;
    graph_free_live_locked(g->second);
    return CUDA_SUCCESS;
  }
  Alloc a = it->second;
  allocs_.erase(it);
  if (a.kind == Kind::kPlain) {
    if (deferred) {
      deferred_[static_cast<size_t>(a.device)] += a.bytes;
    } else {
      unreserve_locked(a.device, a.bytes);
    }
    return CUDA_SUCCESS;
  }
  CUmemoryPool pool = a.pool;
  pool->used -= a.bytes;
  if (pool->destroyed) {
    pool_release_locked(pool, 0);
  } else if (!deferred && pool->reserved > pool->threshold) {
    pool_release_locked(pool, pool->threshold);
  }
  return CUDA_SUCCESS;
}

CUresult Memory::free(CUdeviceptr p) {
  std::lock_guard<std::mutex> lk(mu_);
  return free_locked(p, false);
}

CUresult Memory::free_async(CUdeviceptr p) {
  std::lock_guard<std::mutex> lk(mu_);
  return free_locked(p, true);
}

void Memory::on_synchronize(int device) {
  std::lock_guard<std::mutex> lk(mu_);
  if (device < 0 || device >= devices_) return;
  uint64_t& d = deferred_[static_cast<size_t>(device)];
  unreserve_locked(device, d);
  d = 0;
  for (CUmemoryPool pool : pools_) {
    if (pool->device == device && pool->reserved > pool->threshold) pool_release_locked(pool, pool->threshold);
  }
}

std::vector<const void*> Memory::on_context_destroyed(CUcontext ctx) {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto it = allocs_.begin(); it != allocs_.end();) {
    if (it->second.kind == Kind::kPlain && it->second.ctx == ctx) {
      unreserve_locked(it->second.device, it->second.bytes);
      it = allocs_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<const void*> gone;
  for (auto it = arrays_.begin(); it != arrays_.end();) {
    if (it->second.ctx == ctx) {
      unreserve_locked(it->second.device, it->second.bytes);
      gone.push_back(it->first);
      it = arrays_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

CUresult Memory::add_array(const void* handle, int device, CUcontext ctx, uint64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  if (CUresult r = reserve_locked(device, bytes)) return r;
  arrays_[handle] = Array{device, ctx, bytes};
  return CUDA_SUCCESS;
}

bool Memory::remove_array(const void* handle) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = arrays_.find(handle);
  if (it == arrays_.end()) return false;
  unreserve_locked(it->second.device, it->second.bytes);
  arrays_.erase(it);
  return true;
}

}  // namespace fakecuda
