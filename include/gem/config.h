// resource-config.txt: Gemini's format, first line N, then N lines "ID REQUEST LIMIT GPU_MEM".
// Additions: '#' comments (whole line or trailing), blank lines, GPU_MEM as any size parse_size()
// takes (kSizeForms: "8Gi", "512MiB", "4G"; no suffix = bytes), and options after GPU_MEM as
// key=value (a Gemini four-column file stays valid):
//   um=on|off   unified-memory mode (docs/memory.md, "Unified memory"); default off
//   latency=MS  a latency client with this target in ms (docs/scheduling.md, "Latency clients");
//               default none
// The value parsers here (parse_share, parse_size, parse_latency_ms) are the one home of those
// rules: the config file, gem-schd's and gem-pmgr's flags and the webhook's annotations all use them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gem {

/// The largest config gem-schd serves. A file above kMaxConfigBytes is not read (the last good
/// config stays); a file declaring or listing more than kMaxConfigClients clients is refused with
/// "file:line: why". 10^6 clients of ~40-byte lines are ~40 MB of text and ~150 MB of memory once
/// parsed; parsing them takes about a second (docs/benchmarks.md).
constexpr size_t kMaxConfigClients = 1000000;
constexpr size_t kMaxConfigBytes = size_t{64} << 20;  // 64 MiB

struct ClientConfig {
  std::string name;        // unique ID, 1..proto::kMaxName bytes of [A-Za-z0-9._/:-]
  double request = 0;      // minimum share of GPU time, 0..1
  double limit = 1;        // maximum share of GPU time, request..1
  uint64_t gpu_mem_bytes = 0;  // 0 = no memory limit
  bool unified_memory = false;  // um=on: device allocations become managed memory
  uint32_t latency_us = 0;      // latency=MS, in µs; 0 = not a latency client
};

/// The largest latency=MS target (ms): a minute.
constexpr double kMaxLatencyMs = 60000;

struct ConfigError {
  std::string file;
  int line = 0;  // 1-based; 0 when the error is about the whole file
  std::string why;
  std::string to_string() const;  // "file:line: why"
};

/// Hash index from name to position in a std::vector<ClientConfig> (open addressing, linear
/// probing, load <= 1/2). It stores positions only, never pointers or views into the vector, so
/// copying or moving it along with the vector keeps it valid and a stale index can never dangle
/// (it can only give wrong answers, which Config guards against). O(1) average per call.
/// Not thread-safe for writers; concurrent find() calls on an unchanged index are fine.
class NameIndex {
 public:
  static constexpr size_t npos = static_cast<size_t>(-1);

  void clear();
  /// Room for n names without rehashing (n capped at kMaxConfigClients); no effect unless empty.
  void reserve(size_t n);
  /// Indexes clients[pos] by its name unless that name is indexed already. Returns the position
  /// already indexed under that name, or pos when it was added. pos < clients.size() and
  /// clients.size() <= UINT32_MAX - 1 are the caller's to ensure. May throw std::bad_alloc.
  size_t insert(const std::vector<ClientConfig>& clients, size_t pos);
  /// Position of `name` in `clients`, or npos. `clients` must be the vector indexed.
  size_t find(const std::vector<ClientConfig>& clients, std::string_view name) const;
  /// Number of names indexed.
  size_t size() const { return size_; }

 private:
  void rehash(const std::vector<ClientConfig>& clients, size_t slots);

  std::vector<uint32_t> slots_;  // position + 1; 0 = empty
  size_t size_ = 0;
};

struct Config {
  std::vector<ClientConfig> clients;

  /// nullptr when absent. O(1) on average through an index that parse_config() builds. After
  /// changing `clients` by hand call reindex(). Until then find() is still right while the number
  /// of clients differs from the indexed one (it scans), but may miss a client after edits that
  /// keep the count (a rename, an erase then an append). Never reads out of bounds either way.
  /// Thread-safe for concurrent readers.
  const ClientConfig* find(std::string_view name) const;
  /// Rebuilds the index from `clients` (O(n)); with duplicate names find() returns the first.
  /// May throw std::bad_alloc.
  void reindex();

 private:
  friend bool parse_config(std::string_view, const std::string&, Config*, ConfigError*);
  NameIndex index_;
};

/// Parses a whole file's text. On error returns false, fills *err and leaves *out untouched.
/// Rules: N must match the number of client lines; REQUEST, LIMIT in [0,1] with REQUEST <= LIMIT;
/// IDs unique; the REQUESTs sum to at most 1; at most kMaxConfigClients clients and
/// kMaxConfigBytes bytes of text. Time and memory O(text size) (about 1 s for 10^6 clients).
/// Reentrant: it touches nothing but its arguments, so parse on any thread. Never throws (out of
/// memory is reported as an error).
bool parse_config(std::string_view text, const std::string& file, Config* out, ConfigError* err);

/// The one admission rule for a client's shares (docs/design.md, "The scheduler"), for the config
/// file and for the clients gem-schd admits at their Hello (--dynamic_clients): REQUEST and LIMIT in
/// [0, 1], REQUEST <= LIMIT, and the REQUESTs of all admitted clients summing to at most 1 (within
/// 1e-9, for decimal fractions). `admitted`: the sum of the REQUESTs admitted before this client.
/// Returns "" when admitted, else why not ("REQUEST 0.5 is above LIMIT 0.4", "REQUEST 0.2 brings
/// the REQUESTs to 1.1, above 1"). Pure.
std::string admission_error(double request, double limit, double admitted);

/// Why `id` cannot be a client ID ("" when it can): at most proto::kMaxName bytes of A-Z a-z 0-9
/// and . _ / : - (the one rule for resource-config.txt's IDs; gem-schd also uses it before it shows
/// a name that came from the wire). Pure.
std::string client_id_error(std::string_view id);

/// The sizes parse_size() takes, as user-facing text (usage, errors, docs/interfaces.md "Sizes"):
/// a decimal number of bytes, or a number (a fraction allowed) with a unit: k/K, M, G, T = powers
/// of 1000, Ki, Mi, Gi, Ti = powers of 1024 (Kubernetes quantities), each optionally followed by B
/// (KB, GiB). Units are case-insensitive, so "m" is mega here (not Kubernetes' milli).
constexpr const char* kSizeForms =
    "bytes, or a number with k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), "
    "optionally ending in B: 8Gi, 512MiB, 1.5G";

/// Parses a size: "8Gi" -> 8589934592, "4G" -> 4000000000, "1.5KiB" -> 1536 (a fraction is
/// rounded down to whole bytes); the forms are kSizeForms'. Not taken: a sign, spaces, exponents,
/// P/E units, a fraction without a unit, more than 2^64-1 bytes. On success *bytes is set and, when
/// given, *why cleared; otherwise false, *bytes unchanged and *why (when given) says what is wrong
/// ("unknown unit 'x'"), without the text itself, which the caller names. Pure, reentrant.
bool parse_size(std::string_view text, uint64_t* bytes, std::string* why = nullptr);

/// Parses a share (REQUEST, LIMIT; gem-pmgr --request/--limit; the webhook's annotations): a decimal
/// number in [0, 1] using every character ("0.25", ".5", "1", "25e-2"; std::from_chars, so no locale,
/// sign '+', spaces, hex, nan or inf). -0 becomes 0. False with *why (when given) otherwise; *out is
/// then unchanged. Pure, reentrant.
bool parse_share(std::string_view text, double* out, std::string* why = nullptr);

/// Parses a latency target as latency=MS, gem-pmgr --latency and the webhook's latency-ms annotation
/// take it (the one parser of latency targets): a plain decimal number of milliseconds (digits,
/// optionally '.' and at least one digit: "5", "2.5", "0.001"; no sign, exponent, hex, spaces,
/// "5." or ".5"), at most kMaxLatencyMs, and not rounding to 0 µs ("0.0004" is refused: it would
/// silently mean "not a latency client"). On success *us is it in µs (rounded to the nearest, at
/// least 1); false otherwise, *us unchanged, *why (when given) quoting the value and saying what is
/// wrong. Pure, reentrant.
bool parse_latency_ms(std::string_view text, uint32_t* us, std::string* why = nullptr);

}  // namespace gem
