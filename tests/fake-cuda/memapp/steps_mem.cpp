// fake-mem-app steps: cuMemAlloc and its kin, stream-ordered pools, frees, info, loops.
#include <chrono>
#include <cstring>

#include "runner.h"

namespace memapp {

void Runner::alloc(Outcome& o, const Args& a) {
  uint64_t size = 0;
  if (!parse_size(a[1], &size)) return;
  CUdeviceptr p = 0;
  if (!check(o, "cuMemAlloc_v2", a_.MemAlloc(&p, size))) return;
  Held h{Held::Kind::kMem};
  h.ptr = p;
  h.bytes = size;
  o.fields.num("id", static_cast<uint64_t>(add(h)));
  o.fields.num("ptr", p);
}

void Runner::managed(Outcome& o, const Args& a) {
  uint64_t size = 0;
  if (!parse_size(a[1], &size)) return;
  CUdeviceptr p = 0;
  if (!check(o, "cuMemAllocManaged", a_.MemAllocManaged(&p, size, CU_MEM_ATTACH_GLOBAL))) return;
  Held h{Held::Kind::kMem};
  h.ptr = p;
  h.bytes = size;
  o.fields.num("id", static_cast<uint64_t>(add(h)));
}

void Runner::pitch(Outcome& o, const Args& a) {
  std::vector<std::string> wh = split(a[1], 'x');
  uint64_t w = 0, hgt = 0;
  if (wh.size() != 2 || !parse_size(wh[0], &w) || !parse_size(wh[1], &hgt)) return;
  CUdeviceptr p = 0;
  size_t pitch = 0;
  if (!check(o, "cuMemAllocPitch_v2", a_.MemAllocPitch(&p, &pitch, w, hgt, 4))) return;
  Held h{Held::Kind::kMem};
  h.ptr = p;
  h.bytes = pitch * hgt;
  o.fields.num("id", static_cast<uint64_t>(add(h)));
  o.fields.num("pitch", pitch);
  o.fields.num("bytes", h.bytes);
}

void Runner::async(Outcome& o, const Args& a, bool from_pool) {
  uint64_t size = 0;
  if (!parse_size(a[1], &size)) return;
  CUdeviceptr p = 0;
  bool ok = from_pool ? check(o, "cuMemAllocFromPoolAsync", a_.MemAllocFromPoolAsync(&p, size, app_pool(), stream_))
                      : check(o, "cuMemAllocAsync", a_.MemAllocAsync(&p, size, stream_));
  if (!ok) return;
  Held h{Held::Kind::kAsync};
  h.ptr = p;
  h.bytes = size;
  o.fields.num("id", static_cast<uint64_t>(add(h)));
}

bool Runner::free_held(Outcome& o, Held& h) {
  switch (h.kind) {
    case Held::Kind::kMem: return check(o, "cuMemFree_v2", a_.MemFree(h.ptr));
    case Held::Kind::kAsync: return check(o, "cuMemFreeAsync", a_.MemFreeAsync(h.ptr, stream_));
    case Held::Kind::kGroup:
      for (CUdeviceptr p : h.group) {
        if (!check(o, "cuMemFree_v2", a_.MemFree(p))) return false;
      }
      return true;
    case Held::Kind::kPool:
      if (!check(o, "cuMemPoolDestroy", a_.MemPoolDestroy(h.pool))) return false;
      if (pool_ == h.pool) pool_ = nullptr;
      return true;
    case Held::Kind::kVmm:
      if (h.mapped) {
        vmm_unmap(o, h);
        if (!o.ok) return false;
      }
      return h.released || check(o, "cuMemRelease", a_.MemRelease(h.handle));
    case Held::Kind::kArray: return check(o, "cuArrayDestroy", a_.ArrayDestroy(h.array));
    case Held::Kind::kMipmap: return check(o, "cuMipmappedArrayDestroy", a_.MipmappedArrayDestroy(h.mipmap));
    case Held::Kind::kGraph:
      return check(o, "cuGraphExecDestroy", a_.GraphExecDestroy(h.exec)) &&
             check(o, "cuGraphDestroy", a_.GraphDestroy(h.graph));
  }
  return false;
}

void Runner::free_id(Outcome& o, const Args& a) {
  char* end = nullptr;
  int id = static_cast<int>(strtol(a[1].c_str(), &end, 10));
  Held* h = find(o, a[1]);
  if (h != nullptr && free_held(o, *h)) held_.erase(id);
}

void Runner::free_ptr(Outcome& o, const Args& a, bool async) {
  Held* h = find(o, a[1]);
  if (h == nullptr) return;
  if (h->ptr == 0 || h->kind == Held::Kind::kVmm) {
    o.result = "NO_POINTER";
    return;
  }
  bool ok = async ? check(o, "cuMemFreeAsync", a_.MemFreeAsync(h->ptr, stream_))
                  : check(o, "cuMemFree_v2", a_.MemFree(h->ptr));
  if (!ok) return;
  if (h->kind == Held::Kind::kGraph) {
    h->ptr = 0;  // the graph stays, its allocation is gone
  } else {
    char* end = nullptr;
    held_.erase(static_cast<int>(strtol(a[1].c_str(), &end, 10)));
  }
}

void Runner::free_all(Outcome& o) {
  o.result = error_name(a_, CUDA_SUCCESS);
  o.ok = true;
  uint64_t count = 0;
  for (auto it = held_.begin(); it != held_.end();) {
    if (!free_held(o, it->second)) return;
    it = held_.erase(it);
    ++count;
  }
  o.fields.num("count", count);
}

void Runner::pool_create(Outcome& o, const Args& a) {
  uint64_t threshold = 0;
  if (a.size() == 2 && !parse_size(a[1], &threshold)) return;
  CUmemPoolProps props;
  memset(&props, 0, sizeof props);
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = dev_;
  CUmemoryPool p = nullptr;
  if (!check(o, "cuMemPoolCreate", a_.MemPoolCreate(&p, &props))) return;
  Held h{Held::Kind::kPool};
  h.pool = p;
  pool_ = p;
  o.fields.num("id", static_cast<uint64_t>(add(h)));
  if (a.size() == 2) {
    cuuint64_t v = threshold;
    check(o, "cuMemPoolSetAttribute", a_.MemPoolSetAttribute(p, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &v));
  }
}

void Runner::pool_step(Outcome& o, const std::string& op, const Args& a) {
  uint64_t size = 0;
  if (a.size() == 2 && !parse_size(a[1], &size)) return;
  CUmemoryPool p = app_pool();
  if (op == "pool_threshold") {
    cuuint64_t v = size;
    check(o, "cuMemPoolSetAttribute", a_.MemPoolSetAttribute(p, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &v));
  } else if (op == "pool_trim") {
    check(o, "cuMemPoolTrimTo", a_.MemPoolTrimTo(p, size));
  } else if (op == "set_mempool") {
    check(o, "cuDeviceSetMemPool", a_.DeviceSetMemPool(dev_, p));
  } else {
    const struct {
      const char* key;
      CUmemPool_attribute attr;
    } attrs[] = {{"reserved", CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT},
                 {"reserved_high", CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH},
                 {"used", CU_MEMPOOL_ATTR_USED_MEM_CURRENT},
                 {"used_high", CU_MEMPOOL_ATTR_USED_MEM_HIGH},
                 {"threshold", CU_MEMPOOL_ATTR_RELEASE_THRESHOLD}};
    for (const auto& at : attrs) {
      cuuint64_t v = 0;
      if (!check(o, "cuMemPoolGetAttribute", a_.MemPoolGetAttribute(p, at.attr, &v))) return;
      o.fields.num(at.key, v);
    }
  }
}

void Runner::info(Outcome& o, bool v1) {
  if (v1) {
    unsigned int free = 0, total = 0, dtotal = 0;
    if (!check(o, "cuMemGetInfo", a_.MemGetInfo_v1(&free, &total))) return;
    if (!check(o, "cuDeviceTotalMem", a_.DeviceTotalMem_v1(&dtotal, dev_))) return;
    o.fields.num("free", free);
    o.fields.num("total", total);
    o.fields.num("device_total", dtotal);
    return;
  }
  size_t free = 0, total = 0, dtotal = 0;
  if (!check(o, "cuMemGetInfo_v2", a_.MemGetInfo(&free, &total))) return;
  if (!check(o, "cuDeviceTotalMem_v2", a_.DeviceTotalMem(&dtotal, dev_))) return;
  o.fields.num("free", free);
  o.fields.num("total", total);
  o.fields.num("used", total - free);
  o.fields.num("device_total", dtotal);
}

void Runner::alloc_until_oom(Outcome& o, const Args& a) {
  uint64_t size = 0;
  if (!parse_size(a[1], &size)) return;
  Held h{Held::Kind::kGroup};
  CUresult r = CUDA_SUCCESS;
  while (h.group.size() < 1000000) {
    CUdeviceptr p = 0;
    r = a_.MemAlloc(&p, size);
    if (r != CUDA_SUCCESS) break;
    h.group.push_back(p);
  }
  check(o, "cuMemAlloc_v2", r);
  o.ok = r == CUDA_ERROR_OUT_OF_MEMORY;
  o.fields.num("count", h.group.size());
  o.fields.num("bytes", h.group.size() * size);
  o.fields.num("id", static_cast<uint64_t>(add(std::move(h))));
}

void Runner::bench(Outcome& o, const Args& a, bool async) {
  uint64_t size = 0, n = 0;
  if (!parse_size(a[1], &size) || !parse_size(a[2], &n) || n == 0) return;
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    CUdeviceptr p = 0;
    if (async) {
      if (!check(o, "cuMemAllocAsync", a_.MemAllocAsync(&p, size, stream_))) return;
      if (!check(o, "cuMemFreeAsync", a_.MemFreeAsync(p, stream_))) return;
    } else {
      if (!check(o, "cuMemAlloc_v2", a_.MemAlloc(&p, size))) return;
      if (!check(o, "cuMemFree_v2", a_.MemFree(p))) return;
    }
  }
  double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  o.fields.num("pairs", n);
  o.fields.real("ns_per_pair", ns / static_cast<double>(n));
}

void Runner::ctx_release(Outcome& o) {
  if (!check(o, "cuDevicePrimaryCtxRelease", a_.DevicePrimaryCtxRelease(dev_))) return;
  // Pointers made in the context are gone with it.
  for (auto it = held_.begin(); it != held_.end();) {
    bool gone = it->second.kind == Held::Kind::kMem || it->second.kind == Held::Kind::kGroup ||
                it->second.kind == Held::Kind::kArray || it->second.kind == Held::Kind::kMipmap;
    it = gone ? held_.erase(it) : std::next(it);
  }
  if (!check(o, "cuDevicePrimaryCtxRetain", a_.DevicePrimaryCtxRetain(&ctx_, dev_))) return;
  if (!check(o, "cuCtxSetCurrent", a_.CtxSetCurrent(ctx_))) return;
  // So was the stream, on the real driver.
  if (!ptsz_) check(o, "cuStreamCreate", a_.StreamCreate(&stream_, CU_STREAM_NON_BLOCKING));
}

}  // namespace memapp
