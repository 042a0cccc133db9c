// ListAndWatch lists, preferred allocations and Allocate answers: see allocation.h.
#include "allocation.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <set>

namespace gem::dp {

namespace {

uint64_t devices_of(const Inventory& inv, const Gpu& g, Kind kind) {
  return kind == Kind::kShare ? kSharesPerGpu : memory_devices(g.memory_mib, inv.unit_mib());
}

// IDs of `kind` on known GPUs, grouped by GPU index, each group sorted by device number.
std::map<unsigned, std::vector<std::pair<uint64_t, std::string>>> by_gpu(
    const Inventory& inv, Kind kind, const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::map<unsigned, std::vector<std::pair<uint64_t, std::string>>> out;
  for (const std::string& id : ids) {
    DeviceRef ref;
    if (!parse_device_id(id, &ref) || ref.kind != kind) continue;
    const Gpu* g = inv.find(ref.uuid);
    if (g != nullptr && ref.n < devices_of(inv, *g, kind)) out[g->index].push_back({ref.n, id});
  }
  for (auto& [index, devs] : out) std::sort(devs.begin(), devs.end());
  return out;
}

}  // namespace

void list_devices(const Inventory& inv, Kind kind, v1beta1::ListAndWatchResponse* out) {
  const std::vector<bool> health = inv.health(nullptr);
  out->clear_devices();
  for (size_t i = 0; i < inv.gpus().size(); ++i) {
    const Gpu& g = inv.gpus()[i];
    const uint64_t n = devices_of(inv, g, kind);
    for (uint64_t d = 0; d < n; ++d) {
      v1beta1::Device* dev = out->add_devices();
      dev->set_id(device_id(g.uuid, kind, d));
      dev->set_health(health[i] ? kHealthy : kUnhealthy);
    }
  }
}

void preferred(const Inventory& inv, Kind kind, const v1beta1::ContainerPreferredAllocationRequest& req,
               const std::string& hint, v1beta1::ContainerPreferredAllocationResponse* out) {
  out->clear_deviceids();
  const size_t size = req.allocation_size() > 0 ? static_cast<size_t>(req.allocation_size()) : 0;
  std::set<std::string> chosen;
  for (const std::string& id : req.must_include_deviceids()) {
    if (chosen.size() >= size) break;
    if (chosen.insert(id).second) out->add_deviceids(id);
  }
  const auto avail = by_gpu(inv, kind, req.available_deviceids());
  // Order the GPUs: must-include's GPU, the hint, best fit, then most available.
  std::vector<unsigned> order;
  const auto musts = by_gpu(inv, kind, req.must_include_deviceids());
  if (!musts.empty()) order.push_back(musts.begin()->first);
  const size_t missing = size - chosen.size();
  const Gpu* h = hint.empty() ? nullptr : inv.find(hint);
  if (h != nullptr && avail.count(h->index) != 0 && avail.at(h->index).size() >= missing)
    order.push_back(h->index);
  std::vector<std::pair<size_t, unsigned>> fits, rest;  // (available, index)
  for (const auto& [index, devs] : avail)
    (devs.size() >= missing ? fits : rest).push_back({devs.size(), index});
  std::sort(fits.begin(), fits.end());
  std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (const auto& f : fits) order.push_back(f.second);
  for (const auto& r : rest) order.push_back(r.second);
  for (unsigned index : order) {
    auto it = avail.find(index);
    if (it == avail.end()) continue;
    for (const auto& dev : it->second) {
      if (chosen.size() >= size) return;
      if (chosen.insert(dev.second).second) out->add_deviceids(dev.second);
    }
  }
}

bool allocate(const Inventory& inv, Kind kind, const AllocateOptions& opts,
              const v1beta1::ContainerAllocateRequest& req, v1beta1::ContainerAllocateResponse* out,
              std::string* uuid, std::string* why) {
  if (req.devicesids_size() == 0) {
    *why = "no device IDs";
    return false;
  }
  std::set<std::string> gpus;
  for (const std::string& id : req.devicesids()) {
    DeviceRef ref;
    const Gpu* g = nullptr;
    if (!parse_device_id(id, &ref) || ref.kind != kind || (g = inv.find(ref.uuid)) == nullptr ||
        ref.n >= devices_of(inv, *g, kind)) {
      *why = "unknown device '" + id + "' for " + resource_name(kind);
      return false;
    }
    gpus.insert(ref.uuid);
  }
  if (gpus.size() != 1) {
    *why = std::string(resource_name(kind)) + ": the devices name " + std::to_string(gpus.size()) +
           " GPUs; a container shares exactly one (ask for at most one GPU's worth)";
    return false;
  }
  *uuid = *gpus.begin();
  if (!inv.healthy(*uuid)) {
    *why = "GPU " + *uuid + " is unhealthy";
    return false;
  }
  const uint64_t count = static_cast<uint64_t>(req.devicesids_size());
  auto& env = *out->mutable_envs();
  char text[32];
  if (kind == Kind::kShare) {
    env[kEnvNvidiaVisible] = *uuid;
    env[kEnvCudaVisible] = *uuid;
    env[kEnvGpuUuid] = *uuid;
    std::snprintf(text, sizeof text, "%" PRIu64 ".%02" PRIu64, count / 100, count % 100);
    env[kEnvRequest] = text;
    if (opts.mount_scheduler) {
      v1beta1::Mount* m = out->add_mounts();
      const std::string path = opts.scheduler_dir + "/" + *uuid + ".sock";
      m->set_host_path(path);
      m->set_container_path(path);
      m->set_read_only(false);  // connecting to a Unix socket needs write permission
    }
  } else {
    std::snprintf(text, sizeof text, "%" PRIu64 "MiB", count * inv.unit_mib());
    env[kEnvGpuMem] = text;
    env[kEnvGpuMemUuid] = *uuid;
  }
  return true;
}

}  // namespace gem::dp
