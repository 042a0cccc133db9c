// Stream-ordered pools. A pool's reserved memory is counted on its device and grows in kPoolChunk
// steps when an allocation does not fit in what it holds unused. Freed memory stays in the pool;
// at a synchronize on its device a pool holding more than its release threshold releases unused
// chunks until it holds at most the threshold (never below its used bytes rounded up to a chunk),
// and cuMemPoolTrimTo does the same down to its argument at once. Allocations are not placed: a
// pool is a byte count, without fragmentation, and frees take effect when called (the stand-in
// runs no memory operations on its streams).
#include <cstring>

#include "mem_model.h"

namespace fakecuda {

namespace {

uint64_t attr_u64(const void* value) {
  uint64_t v = 0;
  memcpy(&v, value, sizeof v);
  return v;
}

void put_u64(void* value, uint64_t v) { memcpy(value, &v, sizeof v); }

}  // namespace

bool Memory::valid_pool(CUmemoryPool pool) {
  std::lock_guard<std::mutex> lk(mu_);
  return live_pools_.count(pool) != 0;
}

CUmemoryPool Memory::default_pool_locked(int device) {
  CUmemoryPool& p = default_pools_[static_cast<size_t>(device)];
  if (p == nullptr) {
    p = new CUmemPoolHandle_st();
    p->device = device;
    p->is_default = true;
    pools_.push_back(p);
    live_pools_.insert(p);
  }
  return p;
}

CUmemoryPool Memory::default_pool(int device) {
  std::lock_guard<std::mutex> lk(mu_);
  return default_pool_locked(device);
}

CUmemoryPool Memory::current_pool(int device) {
  std::lock_guard<std::mutex> lk(mu_);
  CUmemoryPool p = current_pools_[static_cast<size_t>(device)];
  return p != nullptr ? p : default_pool_locked(device);
}

CUresult Memory::set_current_pool(int device, CUmemoryPool pool) {
  std::lock_guard<std::mutex> lk(mu_);
  if (live_pools_.count(pool) == 0 || pool->device != device) return CUDA_ERROR_INVALID_VALUE;  // must be local to the device
  current_pools_[static_cast<size_t>(device)] = pool;
  return CUDA_SUCCESS;
}

CUresult Memory::pool_create(const CUmemPoolProps* props, CUmemoryPool* out) {
  if (props == nullptr || out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (props->allocType == CU_MEM_ALLOCATION_TYPE_MANAGED) return CUDA_ERROR_NOT_SUPPORTED;
  if (props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  int device = -1;
  switch (props->location.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
      if (!Driver::get().valid_device(props->location.id)) return CUDA_ERROR_INVALID_VALUE;
      device = props->location.id;
      break;
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  auto* p = new CUmemPoolHandle_st();
  p->device = device;
  p->max_size = props->maxSize;
  std::lock_guard<std::mutex> lk(mu_);
  pools_.push_back(p);
  live_pools_.insert(p);
  *out = p;
  return CUDA_SUCCESS;
}

CUresult Memory::pool_destroy(CUmemoryPool pool) {
  std::lock_guard<std::mutex> lk(mu_);
  if (live_pools_.count(pool) == 0 || pool->is_default) return CUDA_ERROR_INVALID_VALUE;
  live_pools_.erase(pool);
  // Outstanding allocations keep their memory; the rest goes back now, and what remains as they
  // are freed (free_locked).
  pool->destroyed = true;
  if (pool->device >= 0 && current_pools_[static_cast<size_t>(pool->device)] == pool) {
    current_pools_[static_cast<size_t>(pool->device)] = nullptr;  // back to the default pool
  }
  pool_release_locked(pool, 0);
  return CUDA_SUCCESS;
}

void Memory::pool_note_high(CUmemoryPool pool) {
  if (pool->reserved > pool->reserved_high) pool->reserved_high = pool->reserved;
  if (pool->used > pool->used_high) pool->used_high = pool->used;
}

// Releases unused chunks until the pool holds at most `keep` bytes (rounded down to a chunk), or
// only the chunks its used bytes need.
void Memory::pool_release_locked(CUmemoryPool pool, uint64_t keep) {
  uint64_t target = round_up(pool->used, kPoolChunk);
  uint64_t keep_chunks = keep / kPoolChunk * kPoolChunk;
  if (keep_chunks > target) target = keep_chunks;
  if (target >= pool->reserved) return;
  unreserve_locked(pool->device, pool->reserved - target);
  pool->reserved = target;
}

CUresult Memory::pool_alloc(CUmemoryPool pool, uint64_t bytes, CUdeviceptr* out) {
  std::lock_guard<std::mutex> lk(mu_);
  if (live_pools_.count(pool) == 0) return CUDA_ERROR_INVALID_VALUE;
  uint64_t unused = pool->reserved - pool->used;
  if (bytes > unused) {
    uint64_t grow = round_up(bytes - unused, kPoolChunk);
    uint64_t limit = pool->max_size != 0 ? pool->max_size : ~0ull;
    if (grow > limit || pool->reserved > limit - grow) return CUDA_ERROR_OUT_OF_MEMORY;
    if (CUresult r = reserve_locked(pool->device, grow)) return r;
    pool->reserved += grow;
  }
  pool->used += bytes;
  pool_note_high(pool);
  CUdeviceptr p = new_range_locked(bytes, 512);
  allocs_[p] = Alloc{Kind::kPool, pool->device, bytes, nullptr, pool};
  *out = p;
  return CUDA_SUCCESS;
}

CUresult Memory::pool_trim(CUmemoryPool pool, uint64_t keep) {
  std::lock_guard<std::mutex> lk(mu_);
  if (live_pools_.count(pool) == 0) return CUDA_ERROR_INVALID_VALUE;
  pool_release_locked(pool, keep);
  return CUDA_SUCCESS;
}

CUresult Memory::pool_get(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lk(mu_);
  if (live_pools_.count(pool) == 0) return CUDA_ERROR_INVALID_VALUE;
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      memcpy(value, &pool->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES], sizeof(int));
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: put_u64(value, pool->threshold); return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: put_u64(value, pool->reserved); return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: put_u64(value, pool->reserved_high); return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: put_u64(value, pool->used); return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: put_u64(value, pool->used_high); return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult Memory::pool_set(CUmemoryPool pool, CUmemPool_attribute attr, const void* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lk(mu_);
  if (live_pools_.count(pool) == 0) return CUDA_ERROR_INVALID_VALUE;
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      memcpy(&pool->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES], value, sizeof(int));
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:  // takes effect at the next synchronize
      pool->threshold = attr_u64(value);
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:  // watermarks can only be reset (to the current value)
      if (attr_u64(value) != 0) return CUDA_ERROR_INVALID_VALUE;
      pool->reserved_high = pool->reserved;
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      if (attr_u64(value) != 0) return CUDA_ERROR_INVALID_VALUE;
      pool->used_high = pool->used;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace fakecuda
