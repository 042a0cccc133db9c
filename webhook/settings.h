// Sharing settings of one pod, read from its annotations (gemini.gpu-sharing.io/request, /limit,
// /gpu-memory) and checked with the rules of resource-config.txt (include/gem/config.h), so that a
// value the webhook lets through is one gem-pmgr and gem-schd accept. Pure, thread-safe.
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
/// is a latency client. Absent (default): not one.
inline constexpr const char* kAnnLatency = "gemini.gpu-sharing.io/latency-ms";

/// Validated settings, as the strings passed to gem-pmgr --request/--limit/--gpu_mem.
struct SharingSettings {
  std::string request = "0";     // minimum share of GPU time, decimal in [0,1]
  std::string limit = "1";       // maximum share of GPU time, decimal in [request,1]
  std::string gpu_memory = "0";  // bytes with an optional suffix; "0" = no memory limit
  std::string unified_memory = "off";  // "on" or "off" (gem-pmgr --um)
  std::string latency_ms;              // "" (none) or a number of ms in (0, 60000] (gem-pmgr --latency)
};

/// Parses a share: a plain decimal ("0.25", "1", ".5"; no sign, exponent or spaces) in [0,1].
/// Returns false otherwise. REQUEST/LIMIT rule from resource-config.txt (include/gem/config.h).
bool parse_share(std::string_view text, double* out);

/// Accepts what gem::parse_size accepts: digits, then nothing (bytes) or one of K M G T, KB MB GB TB
/// (powers of 1000), KiB MiB GiB TiB (powers of 1024); the result must fit in 64 bits.
bool valid_size(std::string_view text);

/// Reads the three annotations from `annotations` (a JSON object, or null when the pod has none);
/// a missing annotation takes its value from `defaults`. Checks each value and request <= limit.
/// On error returns false with a message naming the annotation in *err; *out is then unspecified.
bool settings_from_annotations(const nlohmann::json& annotations, const SharingSettings& defaults,
                               SharingSettings* out, std::string* err);

}  // namespace gemwh
