// Sharing settings of one pod, read from its annotations (gemini.gpu-sharing.io/request, /limit,
// /gpu-memory, /unified-memory, /latency-ms) and checked with resource-config.txt's own parsers and
// admission rule (gem::parse_share, gem::parse_size, gem::parse_latency_ms, gem::admission_error in
// include/gem/config.h), so that a value the webhook lets through is one gem-pmgr and gem-schd
// accept. Pure, thread-safe.
#pragma once

#include <string>
#include <string_view>

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

}  // namespace gemwh
