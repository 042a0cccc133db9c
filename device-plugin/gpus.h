// gem-device-plugin's view of a node's GPUs: the two extended resources it advertises, the device
// IDs it makes of each GPU, and how it finds the GPUs (NVML through gem-schd's probe,
// scheduler/nvml_probe.h, or a fake list for tests). Pure functions; thread-safe.
// Design and reasons: docs/kubernetes-device-plugin.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gem::dp {

/// Time share of a GPU, in hundredths: 100 devices per GPU. One device = REQUEST 0.01.
constexpr const char* kShareResource = "gemini.gpu-sharing.io/gpu-share";
/// GPU memory, in chunks of --memory_unit_mib MiB (default kDefaultMemoryUnitMiB) per device.
constexpr const char* kMemoryResource = "gemini.gpu-sharing.io/gpu-memory";
constexpr int kSharesPerGpu = 100;
constexpr uint64_t kDefaultMemoryUnitMiB = 256;
/// The most devices one resource may advertise on a node; start-up fails above it (the unit is
/// then too small for the node's memory).
constexpr uint64_t kMaxDevicesPerResource = 16384;
/// Kubelet's health values (k8s.io/kubelet deviceplugin/v1beta1 constants.go).
constexpr const char* kHealthy = "Healthy";
constexpr const char* kUnhealthy = "Unhealthy";

enum class Kind { kShare, kMemory };

/// One GPU: its NVML UUID ("GPU-..."), index and total memory in MiB.
struct Gpu {
  std::string uuid;
  unsigned index = 0;
  uint64_t memory_mib = 0;
};

/// A parsed device ID: the GPU's UUID, which resource, and the device's number on that GPU.
struct DeviceRef {
  std::string uuid;
  Kind kind = Kind::kShare;
  uint64_t n = 0;
};

/// "<uuid>-share-NN" (NN: 00..99) or "<uuid>-mem-N" (N from 0). At most 63 characters for a
/// 40-character UUID, as kubelet requires.
std::string device_id(const std::string& uuid, Kind kind, uint64_t n);
/// Inverse of device_id(); false for anything else.
bool parse_device_id(const std::string& id, DeviceRef* out);
/// The resource name of `kind`.
const char* resource_name(Kind kind);
/// Memory devices a GPU of `memory_mib` gets: whole chunks of `unit_mib` (the rest is not offered).
uint64_t memory_devices(uint64_t memory_mib, uint64_t unit_mib);

/// --fake_gpus "N:MiB" (1 <= N <= 64, MiB >= 1): N GPUs named GPU-fake-0000...-00000000000i. False
/// with *why for a malformed spec.
bool parse_fake_gpus(const std::string& spec, std::vector<Gpu>* out, std::string* why);
/// Every GPU NVML sees through `library` (dlopen), with its memory. False with *why (no library,
/// no driver, no GPU).
bool discover_gpus(const std::string& library, std::vector<Gpu>* out, std::string* why);

}  // namespace gem::dp
