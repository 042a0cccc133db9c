// What gem-device-plugin answers kubelet, as pure functions of the Inventory (no gRPC): the device
// list of ListAndWatch, the preferred devices of GetPreferredAllocation (one GPU where possible)
// and a container's Allocate response (the environment the hook and the pod manager read).
// Thread-safe (the Inventory is). Names and reasons: docs/kubernetes-device-plugin.md.
#pragma once

#include <chrono>
#include <string>

#include "deviceplugin/api.pb.h"
#include "inventory.h"

namespace gem::dp {

/// Environment set by Allocate. The GPU's visibility (NVIDIA container runtime and CUDA) and, in
/// Gemini's terms, the container's REQUEST (share/100) and GPU_MEM.
constexpr const char* kEnvNvidiaVisible = "NVIDIA_VISIBLE_DEVICES";
constexpr const char* kEnvCudaVisible = "CUDA_VISIBLE_DEVICES";
constexpr const char* kEnvGpuUuid = "GEMINI_GPU_UUID";
constexpr const char* kEnvRequest = "GEMINI_REQUEST";
constexpr const char* kEnvGpuMem = "GEMINI_GPU_MEM";
constexpr const char* kEnvGpuMemUuid = "GEMINI_GPU_MEM_UUID";

struct AllocateOptions {
  /// The node's folder of per-GPU scheduler sockets (<dir>/<UUID>.sock; gemini-node's /run/gemini).
  std::string scheduler_dir = "/run/gemini";
  /// Also mount <scheduler_dir>/<UUID>.sock into the container (same path). Off by default: only
  /// the pod-manager sidecar reaches gem-schd (docs/kubernetes-reference.md, "Trust model").
  bool mount_scheduler = false;
};

/// Every device of `kind` with its GPU's health, in GPU then device order.
void list_devices(const Inventory& inv, Kind kind, v1beta1::ListAndWatchResponse* out);

/// Chooses req.allocation_size() of req.available_deviceids() including req.must_include_deviceids():
/// the GPU of the must-include devices; else `hint` (the GPU a container was just given, "" for
/// none) when it has enough; else the GPU with the fewest available devices that still has enough
/// (best fit, leaving large free blocks); only when no GPU has enough, devices of several GPUs,
/// most available first. IDs that are not of `kind` are ignored. Never fails.
void preferred(const Inventory& inv, Kind kind, const v1beta1::ContainerPreferredAllocationRequest& req,
               const std::string& hint, v1beta1::ContainerPreferredAllocationResponse* out);

/// One container's Allocate answer. False with *why (the call then fails with INVALID_ARGUMENT)
/// when an ID is unknown, of the other resource, of an unhealthy GPU, or when the IDs name more
/// than one GPU (a container shares exactly one GPU). *uuid: the GPU.
/// Share: NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES = GEMINI_GPU_UUID = the GPU's UUID,
/// GEMINI_REQUEST = count/100 ("0.30"), and the scheduler socket mount when opts.mount_scheduler.
/// Memory: GEMINI_GPU_MEM = count * unit ("2048MiB", a GPU_MEM size), GEMINI_GPU_MEM_UUID.
bool allocate(const Inventory& inv, Kind kind, const AllocateOptions& opts,
              const v1beta1::ContainerAllocateRequest& req, v1beta1::ContainerAllocateResponse* out,
              std::string* uuid, std::string* why);

}  // namespace gem::dp
