// Virtual memory management: cuMemCreate / cuMemRelease (physical memory), cuMemAddressReserve /
// cuMemAddressFree (address ranges), cuMemMap / cuMemUnmap / cuMemSetAccess.
// A device-located allocation is counted from cuMemCreate until it is both released and unmapped
// everywhere, as on the real driver; host-located ones are not counted. Sizes, addresses and
// offsets must be multiples of the granularity (2 MiB). A mapping is unmapped whole (a range may
// cover several whole mappings); an address range is freed only once nothing is mapped in it
// (the stand-in refuses with CUDA_ERROR_INVALID_VALUE).
#include <map>

#include "capture_rules.h"
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Driver;
using fakecuda::kGranularity;
using fakecuda::Memory;

namespace {

struct Physical {
  int device;  // -1: host
  uint64_t size;
  bool released = false;
  int mappings = 0;
};

struct Range {
  uint64_t size;
  std::map<CUdeviceptr, std::pair<uint64_t, CUmemGenericAllocationHandle>> maps;  // start -> (size, handle)
};

struct Vmm {
  std::mutex mu;
  std::map<CUmemGenericAllocationHandle, Physical> handles;
  std::map<CUdeviceptr, Range> ranges;
  CUmemGenericAllocationHandle next_handle = 0x1000;
};

Vmm& vmm() {
  static Vmm* v = new Vmm();  // leaked, like Driver
  return *v;
}

bool aligned(uint64_t v) { return v % kGranularity == 0; }

// Validates an allocation's properties; *device: its device, or -1 for host memory.
CUresult check_prop(const CUmemAllocationProp* prop, int* device) {
  if (prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (prop->type == CU_MEM_ALLOCATION_TYPE_MANAGED) return CUDA_ERROR_NOT_SUPPORTED;
  if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  switch (prop->location.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
      if (!Driver::get().valid_device(prop->location.id)) return CUDA_ERROR_INVALID_DEVICE;
      *device = prop->location.id;
      return CUDA_SUCCESS;
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
      if (prop->requestedHandleTypes != CU_MEM_HANDLE_TYPE_NONE &&
          prop->location.type == CU_MEM_LOCATION_TYPE_HOST) {
        return CUDA_ERROR_INVALID_VALUE;  // host allocations are not IPC capable
      }
      *device = -1;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

// The reservation containing [ptr, ptr + size), or end().
std::map<CUdeviceptr, Range>::iterator find_range(Vmm& v, CUdeviceptr ptr, uint64_t size) {
  auto it = v.ranges.upper_bound(ptr);
  if (it == v.ranges.begin()) return v.ranges.end();
  --it;
  if (ptr - it->first > it->second.size || size > it->second.size - (ptr - it->first)) return v.ranges.end();
  return it;
}

// Frees the physical memory of h once it is released and unmapped everywhere (v.mu held).
void maybe_free(Vmm& v, std::map<CUmemGenericAllocationHandle, Physical>::iterator it) {
  if (!it->second.released || it->second.mappings > 0) return;
  Memory::get().unreserve(it->second.device, it->second.size);
  v.handles.erase(it);
}

}  // namespace

FAKE_API CUresult CUDAAPI cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                                        CUmemAllocationGranularity_flags option) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (granularity == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  int device = -1;
  if (CUresult r = check_prop(prop, &device)) return r;
  *granularity = kGranularity;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                                      unsigned long long flags) {
  if (CUresult r = fakecuda::check_init()) return r;
  // Potentially unsafe during stream capture (capture_rules.h).
  if (CUresult r = fakecuda::capture_check_unsafe("cuMemCreate")) return r;
  if (handle == nullptr || flags != 0 || size == 0 || !aligned(size)) return CUDA_ERROR_INVALID_VALUE;
  int device = -1;
  if (CUresult r = check_prop(prop, &device)) return r;
  if (CUresult r = Memory::get().reserve(device, size)) return r;
  Vmm& v = vmm();
  std::lock_guard<std::mutex> lk(v.mu);
  CUmemGenericAllocationHandle h = v.next_handle++;
  v.handles[h] = Physical{device, size};
  *handle = h;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle) {
  if (CUresult r = fakecuda::check_init()) return r;
  Vmm& v = vmm();
  std::lock_guard<std::mutex> lk(v.mu);
  auto it = v.handles.find(handle);
  if (it == v.handles.end() || it->second.released) return CUDA_ERROR_INVALID_VALUE;
  it->second.released = true;
  maybe_free(v, it);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                              unsigned long long flags) {
  (void)addr;  // a hint only: the stand-in always picks the address
  if (CUresult r = fakecuda::check_init()) return r;
  if (ptr == nullptr || flags != 0 || size == 0 || !aligned(size)) return CUDA_ERROR_INVALID_VALUE;
  if ((alignment & (alignment - 1)) != 0) return CUDA_ERROR_INVALID_VALUE;
  CUdeviceptr p = Memory::get().new_range(size, alignment > kGranularity ? alignment : kGranularity);
  Vmm& v = vmm();
  std::lock_guard<std::mutex> lk(v.mu);
  v.ranges[p] = Range{size, {}};
  *ptr = p;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  if (CUresult r = fakecuda::check_init()) return r;
  Vmm& v = vmm();
  std::lock_guard<std::mutex> lk(v.mu);
  auto it = v.ranges.find(ptr);
  if (it == v.ranges.end() || it->second.size != size || !it->second.maps.empty()) return CUDA_ERROR_INVALID_VALUE;
  v.ranges.erase(it);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                                   unsigned long long flags) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (flags != 0 || size == 0 || !aligned(ptr) || !aligned(size) || !aligned(offset)) return CUDA_ERROR_INVALID_VALUE;
  Vmm& v = vmm();
  std::lock_guard<std::mutex> lk(v.mu);
  auto h = v.handles.find(handle);
  if (h == v.handles.end() || h->second.released) return CUDA_ERROR_INVALID_VALUE;
  if (offset > h->second.size || size > h->second.size - offset) return CUDA_ERROR_INVALID_VALUE;
  auto r = find_range(v, ptr, size);
  if (r == v.ranges.end()) return CUDA_ERROR_INVALID_VALUE;
  auto& maps = r->second.maps;
  auto next = maps.lower_bound(ptr);
  if (next != maps.end() && next->first < ptr + size) return CUDA_ERROR_INVALID_VALUE;  // overlaps
  if (next != maps.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.first > ptr) return CUDA_ERROR_INVALID_VALUE;
  }
  maps[ptr] = {size, handle};
  ++h->second.mappings;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (size == 0) return CUDA_ERROR_INVALID_VALUE;
  Vmm& v = vmm();
  std::lock_guard<std::mutex> lk(v.mu);
  auto r = find_range(v, ptr, size);
  if (r == v.ranges.end()) return CUDA_ERROR_INVALID_VALUE;
  auto& maps = r->second.maps;
  // [ptr, ptr + size) must be exactly a run of whole, adjacent mappings.
  auto first = maps.find(ptr);
  if (first == maps.end()) return CUDA_ERROR_INVALID_VALUE;
  auto last = first;
  CUdeviceptr end = ptr;
  while (last != maps.end() && last->first == end && end < ptr + size) {
    end += last->second.first;
    ++last;
  }
  if (end != ptr + size) return CUDA_ERROR_INVALID_VALUE;
  for (auto it = first; it != last; ++it) {
    auto h = v.handles.find(it->second.second);
    --h->second.mappings;
    maybe_free(v, h);
  }
  maps.erase(first, last);
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (desc == nullptr || count == 0 || size == 0) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < count; ++i) {
    if (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE && desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READ &&
        desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    if (desc[i].location.type == CU_MEM_LOCATION_TYPE_DEVICE && !Driver::get().valid_device(desc[i].location.id)) {
      return CUDA_ERROR_INVALID_DEVICE;
    }
  }
  Vmm& v = vmm();
  std::lock_guard<std::mutex> lk(v.mu);
  auto r = find_range(v, ptr, size);
  if (r == v.ranges.end()) return CUDA_ERROR_INVALID_VALUE;
  // The whole range must be mapped (the stand-in keeps no access flags).
  CUdeviceptr at = ptr;
  auto it = r->second.maps.upper_bound(ptr);
  if (it != r->second.maps.begin()) --it;
  for (; it != r->second.maps.end() && at < ptr + size; ++it) {
    if (it->first > at) break;
    if (it->first + it->second.first > at) at = it->first + it->second.first;
  }
  return at >= ptr + size ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FAKE_ALIAS(cuMemGetAllocationGranularity)
FAKE_ALIAS(cuMemCreate)
FAKE_ALIAS(cuMemRelease)
FAKE_ALIAS(cuMemAddressReserve)
FAKE_ALIAS(cuMemAddressFree)
FAKE_ALIAS(cuMemMap)
FAKE_ALIAS(cuMemUnmap)
FAKE_ALIAS(cuMemSetAccess)
