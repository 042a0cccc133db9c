// fake-mem-app steps: virtual memory management, arrays, graph memory.
#include <cstring>

#include "runner.h"

namespace memapp {

namespace {

CUmemAllocationProp vmm_prop(CUdevice dev, bool host) {
  CUmemAllocationProp p;
  memset(&p, 0, sizeof p);
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = host ? CU_MEM_LOCATION_TYPE_HOST : CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = host ? 0 : dev;
  return p;
}

// "u8", "f32x4", ...: format and channels; false if unknown.
bool parse_format(const std::string& s, CUarray_format* f, unsigned* channels) {
  std::vector<std::string> parts = split(s, 'x');
  static const struct {
    const char* name;
    CUarray_format f;
  } kFormats[] = {{"u8", CU_AD_FORMAT_UNSIGNED_INT8},  {"u16", CU_AD_FORMAT_UNSIGNED_INT16},
                  {"u32", CU_AD_FORMAT_UNSIGNED_INT32}, {"i8", CU_AD_FORMAT_SIGNED_INT8},
                  {"i16", CU_AD_FORMAT_SIGNED_INT16},  {"i32", CU_AD_FORMAT_SIGNED_INT32},
                  {"f16", CU_AD_FORMAT_HALF},          {"f32", CU_AD_FORMAT_FLOAT}};
  if (parts.size() > 2) return false;
  *channels = 1;
  if (parts.size() == 2) {
    if (parts[1] != "1" && parts[1] != "2" && parts[1] != "4") return false;
    *channels = static_cast<unsigned>(parts[1][0] - '0');
  }
  for (const auto& k : kFormats) {
    if (parts[0] == k.name) {
      *f = k.f;
      return true;
    }
  }
  return false;
}

}  // namespace

void Runner::vmm_create(Outcome& o, const Args& a, bool host) {
  uint64_t size = 0;
  if (!parse_size(a[1], &size)) return;
  CUmemAllocationProp prop = vmm_prop(dev_, host);
  Held h{Held::Kind::kVmm};
  h.bytes = size;
  if (!check(o, "cuMemCreate", a_.MemCreate(&h.handle, size, &prop, 0))) return;
  o.fields.num("id", static_cast<uint64_t>(add(h)));
}

void Runner::vmm_map(Outcome& o, Held& h) {
  if (!check(o, "cuMemAddressReserve", a_.MemAddressReserve(&h.ptr, h.bytes, 0, 0, 0))) return;
  if (!check(o, "cuMemMap", a_.MemMap(h.ptr, h.bytes, 0, h.handle, 0))) {
    a_.MemAddressFree(h.ptr, h.bytes);
    return;
  }
  h.mapped = true;
  CUmemAccessDesc access;
  memset(&access, 0, sizeof access);
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = dev_;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  if (!check(o, "cuMemSetAccess", a_.MemSetAccess(h.ptr, h.bytes, &access, 1))) return;
  o.fields.num("ptr", h.ptr);
}

void Runner::vmm_unmap(Outcome& o, Held& h) {
  if (!check(o, "cuMemUnmap", a_.MemUnmap(h.ptr, h.bytes))) return;
  h.mapped = false;
  check(o, "cuMemAddressFree", a_.MemAddressFree(h.ptr, h.bytes));
}

void Runner::vmm_step(Outcome& o, const std::string& op, const Args& a) {
  if (op == "vmm_create" || op == "vmm_host") {
    vmm_create(o, a, op == "vmm_host");
    return;
  }
  if (op == "vmm") {
    uint64_t size = 0;
    if (!parse_size(a[1], &size)) return;
    CUmemAllocationProp prop = vmm_prop(dev_, false);
    size_t gran = 0;
    if (!check(o, "cuMemGetAllocationGranularity",
               a_.MemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM))) {
      return;
    }
    o.fields.num("granularity", gran);
    Held h{Held::Kind::kVmm};
    h.bytes = size;
    if (!check(o, "cuMemCreate", a_.MemCreate(&h.handle, size, &prop, 0))) return;
    int id = add(h);
    o.fields.num("id", static_cast<uint64_t>(id));
    vmm_map(o, held_[id]);
    return;
  }
  Held* h = find(o, a[1]);
  if (h == nullptr) return;
  if (h->kind != Held::Kind::kVmm) {
    o.result = "NOT_VMM";
    return;
  }
  if (op == "vmm_map") {
    vmm_map(o, *h);
  } else if (op == "vmm_unmap") {
    vmm_unmap(o, *h);
  } else if (check(o, "cuMemRelease", a_.MemRelease(h->handle))) {
    h->released = true;
  }
}

void Runner::array(Outcome& o, const Args& a, bool mipmap) {
  // array:WxH[xD][:FMT][:deferred], mipmap:WxH[xD]:LEVELS[:FMT][:deferred]
  std::vector<std::string> dims = split(a[1], 'x');
  uint64_t d[3] = {0, 0, 0};
  if (dims.size() < 2 || dims.size() > 3) return;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (!parse_size(dims[i], &d[i])) return;
  }
  size_t next = 2;
  uint64_t levels = 1;
  if (mipmap && !parse_size(a[next++], &levels)) return;
  CUarray_format format = CU_AD_FORMAT_UNSIGNED_INT8;
  unsigned channels = 1;
  bool deferred = false;
  for (; next < a.size(); ++next) {
    if (a[next] == "deferred") deferred = true;
    else if (!parse_format(a[next], &format, &channels)) return;
  }
  CUDA_ARRAY3D_DESCRIPTOR desc;
  memset(&desc, 0, sizeof desc);
  desc.Width = d[0];
  desc.Height = d[1];
  desc.Depth = d[2];
  desc.Format = format;
  desc.NumChannels = channels;
  desc.Flags = deferred ? CUDA_ARRAY3D_DEFERRED_MAPPING : 0;
  CUDA_ARRAY_MEMORY_REQUIREMENTS req;
  memset(&req, 0, sizeof req);
  Held h{mipmap ? Held::Kind::kMipmap : Held::Kind::kArray};
  if (mipmap) {
    if (!check(o, "cuMipmappedArrayCreate",
               a_.MipmappedArrayCreate(&h.mipmap, &desc, static_cast<unsigned>(levels)))) {
      return;
    }
    o.fields.num("id", static_cast<uint64_t>(add(h)));
    if (deferred &&
        !check(o, "cuMipmappedArrayGetMemoryRequirements", a_.MipmappedArrayGetMemoryRequirements(&req, h.mipmap, dev_))) {
      return;
    }
  } else {
    CUresult r;
    const char* call;
    if (dims.size() == 2 && !deferred) {
      CUDA_ARRAY_DESCRIPTOR d2;
      memset(&d2, 0, sizeof d2);
      d2.Width = desc.Width;
      d2.Height = desc.Height;
      d2.Format = format;
      d2.NumChannels = channels;
      call = "cuArrayCreate_v2";
      r = a_.ArrayCreate(&h.array, &d2);
    } else {
      call = "cuArray3DCreate_v2";
      r = a_.Array3DCreate(&h.array, &desc);
    }
    if (!check(o, call, r)) return;
    o.fields.num("id", static_cast<uint64_t>(add(h)));
    if (deferred && !check(o, "cuArrayGetMemoryRequirements", a_.ArrayGetMemoryRequirements(&req, h.array, dev_))) {
      return;
    }
  }
  if (deferred) o.fields.num("required_bytes", req.size);
}

void Runner::graph_info(Outcome& o) {
  const struct {
    const char* key;
    CUgraphMem_attribute attr;
  } attrs[] = {{"used", CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT},
               {"used_high", CU_GRAPH_MEM_ATTR_USED_MEM_HIGH},
               {"reserved", CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT},
               {"reserved_high", CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH}};
  for (const auto& at : attrs) {
    cuuint64_t v = 0;
    if (!check(o, "cuDeviceGetGraphMemAttribute", a_.DeviceGetGraphMemAttribute(dev_, at.attr, &v))) return;
    o.fields.num(at.key, v);
  }
}

void Runner::graph_launch(Outcome& o, Held& h) {
  if (!check(o, "cuGraphLaunch", a_.GraphLaunch(h.exec, stream_))) return;
  if (!check(o, "cuStreamSynchronize", a_.StreamSynchronize(stream_))) return;
  if (h.bytes != 0) h.ptr = h.group.at(0);  // a kept allocation is live (again) after each launch
}

void Runner::graph_mem(Outcome& o, const Args& a) {
  uint64_t size = 0;
  if (!parse_size(a[1], &size)) return;
  const bool keep = a.size() == 3;
  Held h{Held::Kind::kGraph};
  if (!check(o, "cuGraphCreate", a_.GraphCreate(&h.graph, 0))) return;
  CUDA_MEM_ALLOC_NODE_PARAMS p;
  memset(&p, 0, sizeof p);
  p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.poolProps.location.id = dev_;
  p.bytesize = size;
  CUgraphNode alloc_node = nullptr, free_node = nullptr;
  bool ok = check(o, "cuGraphAddMemAllocNode", a_.GraphAddMemAllocNode(&alloc_node, h.graph, nullptr, 0, &p)) &&
            (keep || check(o, "cuGraphAddMemFreeNode", a_.GraphAddMemFreeNode(&free_node, h.graph, &alloc_node, 1,
                                                                                p.dptr))) &&
            check(o, "cuGraphInstantiateWithFlags", a_.GraphInstantiateWithFlags(&h.exec, h.graph, 0));
  if (!ok) {
    a_.GraphDestroy(h.graph);
    return;
  }
  // A kept allocation is the graph's pointer after each launch (memfree:ID / free_async:ID free it).
  h.bytes = keep ? size : 0;
  h.group.push_back(p.dptr);
  int id = add(h);
  o.fields.num("id", static_cast<uint64_t>(id));
  o.fields.num("ptr", p.dptr);
  graph_launch(o, held_[id]);
  if (!o.ok) return;
  cuuint64_t used = 0, reserved = 0;
  if (!check(o, "cuDeviceGetGraphMemAttribute",
             a_.DeviceGetGraphMemAttribute(dev_, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &used)) ||
      !check(o, "cuDeviceGetGraphMemAttribute",
             a_.DeviceGetGraphMemAttribute(dev_, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved))) {
    return;
  }
  o.fields.num("graph_used", used);
  o.fields.num("graph_reserved", reserved);
}

}  // namespace memapp
