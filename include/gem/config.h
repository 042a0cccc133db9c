// resource-config.txt: Gemini's format, first line N, then N lines "ID REQUEST LIMIT GPU_MEM".
// Additions: '#' comments (whole line or trailing), blank lines, and size suffixes on GPU_MEM
// (K, M, G, T / KB, MB, GB, TB = powers of 1000; KiB, MiB, GiB, TiB = powers of 1024; no suffix = bytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gem {

struct ClientConfig {
  std::string name;        // unique ID, 1..proto::kMaxName bytes of [A-Za-z0-9._/:-]
  double request = 0;      // minimum share of GPU time, 0..1
  double limit = 1;        // maximum share of GPU time, request..1
  uint64_t gpu_mem_bytes = 0;  // 0 = no memory limit
};

struct Config {
  std::vector<ClientConfig> clients;
  /// nullptr when absent.
  const ClientConfig* find(std::string_view name) const;
};

struct ConfigError {
  std::string file;
  int line = 0;  // 1-based; 0 when the error is about the whole file
  std::string why;
  std::string to_string() const;  // "file:line: why"
};

/// Parses a whole file's text. On error returns false, fills *err and leaves *out untouched.
/// Rules: N must match the number of client lines; REQUEST, LIMIT in [0,1] with REQUEST <= LIMIT;
/// IDs unique; the REQUESTs sum to at most 1.
bool parse_config(std::string_view text, const std::string& file, Config* out, ConfigError* err);

/// "4GiB" -> 4294967296. Returns false on junk, negative values or overflow.
bool parse_size(std::string_view text, uint64_t* bytes);

}  // namespace gem
