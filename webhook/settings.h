// Sharing settings of one pod, read from its annotations (gemini.gpu-sharing.io/request, /limit,
// /gpu-memory, /unified-memory, /latency-ms) and checked with resource-config.txt's own parsers and
// admission rule (gem::parse_share, gem::parse_size, gem::parse_latency_ms, gem::admission_error in
// include/gem/config.h), so that a value the webhook lets through is one gem-pmgr and gem-schd
// accept. Pure, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gemwh {

inline constexpr const char* kAnnRequest = "gemini.gpu-sharing.io/request";
inline constexpr const char* kAnnLimit = "gemini.gpu-sharing.io/limit";
inline constexpr const char* kAnnGpuMemory = "gemini.gpu-sharing.io/gpu-memory";
/// "on" or "off" (default): unified-memory mode (resource-config.txt's um=on; docs/memory.md).
inline constexpr const char* kAnnUnifiedMemory = "gemini.gpu-sharing.io/unified-memory";
/// A latency target in ms, e.g. "5" (resource-config.txt's latency=MS; docs/scheduling.md): the pod
/// is a latency client. Absent (default): not one; present and empty: refused.
inline constexpr const char* kAnnLatency = "gemini.gpu-sharing.io/latency-ms";

/// The device plugin's extended resources (gem-device-plugin; docs/kubernetes.md, "Share and memory
/// as resources"): a container asks for a GPU time share in hundredths of a GPU and for GPU memory
/// in units of memory_unit_mib MiB (gem-device-plugin --memory_unit_mib), in resources.limits
/// (extended resources are not overcommitted, so a request, when given, equals the limit).
/// kube-scheduler counts them against the node's capacity.
inline constexpr const char* kResShare = "gemini.gpu-sharing.io/gpu-share";
inline constexpr const char* kResMemory = "gemini.gpu-sharing.io/gpu-memory";
/// kResShare units in one GPU: 30 is REQUEST 0.3.
inline constexpr int64_t kShareUnitsPerGpu = 100;
/// The size suffix gem::parse_size takes (GPU_MEM, gem-pmgr --gpu_mem) that GPU_MEM is written in
/// when it comes from kResMemory: MiB.
inline constexpr const char* kMemoryUnit = "MiB";
/// MiB per kResMemory unit unless gem-webhook --memory_unit_mib says otherwise. It must be the
/// device plugin's (gem-device-plugin --memory_unit_mib, default kDefaultMemoryUnitMiB in
/// device-plugin/gpus.h, also 256): the manifests pass the same value to both.
inline constexpr int64_t kDefaultResMemoryUnitMiB = 256;
/// The largest memory_unit_mib accepted (gem-device-plugin's own bound).
inline constexpr int64_t kMaxMemoryUnitMiB = 65536;

/// Validated settings, as the strings passed to gem-pmgr --request/--limit/--gpu_mem.
struct SharingSettings {
  std::string request = "0";     // minimum share of GPU time in [0,1] (gem::parse_share)
  std::string limit = "1";       // maximum share of GPU time in [request,1]
  std::string gpu_memory = "0";  // a size as gem::parse_size takes it ("8Gi", "512MiB"); "0" = no limit
  std::string unified_memory = "off";  // "on" or "off" (gem-pmgr --um)
  std::string latency_ms;              // "" (none) or a number of ms as gem::parse_latency_ms takes it (gem-pmgr --latency)
};

/// Reads the annotations from `annotations` (a JSON object, or null when the pod has none); a
/// missing annotation takes its value from `defaults`. Checks each value with gem's parsers and
/// request <= limit with gem::admission_error. On error returns false with a message naming the
/// annotation and what is wrong in *err; *out is then unspecified. The values are passed on as
/// written (gem-pmgr parses them again with the same functions).
bool settings_from_annotations(const nlohmann::json& annotations, const SharingSettings& defaults,
                               SharingSettings* out, std::string* err);

/// What a pod asks of the plugin's resources, as kube-scheduler counts a pod against a node: the
/// larger of the sum over spec.containers and the largest init container. -1: not asked (absent
/// or 0 in every container).
struct ResourceAsk {
  int64_t share = -1;   // kResShare units (hundredths of a GPU)
  int64_t memory = -1;  // kResMemory units (memory_unit_mib MiB each)
};

/// Reads kResShare and kResMemory from the containers' and init containers' resources.limits (or
/// resources.requests when a container has no limit for one) in pod `spec`. Quantities are
/// Kubernetes quantities that must be whole numbers ("30", "1k", "80Ki", "1e3"). False with *err
/// (naming the container and resource) for a value that is not one, or a share above one GPU.
bool resource_ask(const nlohmann::json& spec, ResourceAsk* out, std::string* err);

/// The settings of a pod: `defaults`, replaced by what `ask` says (share/kShareUnitsPerGpu as the
/// request, raising the default limit to it when below; memory x memory_unit_mib as gpu_memory in
/// MiB, e.g. 16 units of 256 -> "4096MiB"), then by the annotations (settings_from_annotations:
/// they stay overrides). An annotation that overrides an asked value with a different one adds a
/// warning to *warnings; an annotated limit below the asked share is an error, as is memory whose
/// bytes would not fit GPU_MEM (64 bits). memory_unit_mib must be in [1, kMaxMemoryUnitMiB].
bool settings_for_pod(const nlohmann::json& annotations, const ResourceAsk& ask, const SharingSettings& defaults,
                      SharingSettings* out, std::string* err, std::vector<std::string>* warnings,
                      int64_t memory_unit_mib = kDefaultResMemoryUnitMiB);

/// A share in kShareUnitsPerGpu units as a REQUEST: 30 -> "0.3", 5 -> "0.05", 100 -> "1", 0 -> "0".
std::string share_text(int64_t units);

}  // namespace gemwh
