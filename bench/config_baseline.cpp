// The parser as it was before issue 6 (commit 902966a, common/config.cpp), kept only so that
// bench/config_bench.cpp can print before/after figures from one run. Not linked into gem-schd.
// Quadratic: the duplicate-ID check compares each client with every earlier one, and find() scans.
// Same rules and messages as the landed parser; namespace and types renamed.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <new>
#include <system_error>

#include "../common/field_text.h"
#include "gem/protocol.h"

namespace gem_baseline {

using namespace gem;  // proto::kMaxName

struct ClientConfig {
  std::string name;
  double request = 0;
  double limit = 1;
  uint64_t gpu_mem_bytes = 0;
};

struct Config {
  std::vector<ClientConfig> clients;
  const ClientConfig* find(std::string_view name) const;
};

struct ConfigError {
  std::string file;
  int line = 0;
  std::string why;
  std::string to_string() const;
};

bool parse_config(std::string_view text, const std::string& file, Config* out, ConfigError* err);
bool parse_size(std::string_view text, uint64_t* bytes);


namespace {

constexpr double kSumSlack = 1e-9;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '/' || c == ':' || c == '-';
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Field text for messages: the parser's own (common/field_text.h), so messages read the same.
std::string quote(std::string_view s) { return gem::quote_field(s); }

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

// A share (REQUEST or LIMIT). Returns an empty string on success, otherwise why not.
std::string parse_share(std::string_view what, std::string_view text, double* out) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v, std::chars_format::general);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) {
    return std::string(what) + " " + quote(text) + " is not a number";
  }
  if (v < 0 || v > 1) {
    return std::string(what) + " " + std::string(text) + " is not between 0 and 1";
  }
  *out = v + 0.0;  // -0 -> +0
  return {};
}

std::string check_id(std::string_view id) {
  if (id.size() > proto::kMaxName) {
    return "ID " + quote(id) + " is " + std::to_string(id.size()) + " bytes, longer than " +
           std::to_string(proto::kMaxName);
  }
  for (char c : id) {
    if (!is_id_char(c)) {
      return "ID " + quote(id) + " contains " + quote(std::string_view(&c, 1)) +
             "; allowed are A-Z a-z 0-9 and . _ / : -";
    }
  }
  return {};
}

struct Line {
  int number;  // 1-based
  std::vector<std::string_view> fields;
};

// Non-blank lines with comments removed.
std::vector<Line> content_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<Line> lines;
  int number = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    ++number;
    size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> fields = split_fields(line);
    if (!fields.empty()) lines.push_back({number, std::move(fields)});
    pos = nl + 1;
  }
  return lines;
}

std::string join(const std::vector<std::string_view>& fields) {
  std::string s;
  for (auto f : fields) {
    if (!s.empty()) s += ' ';
    s += f;
  }
  return s;
}

bool fail(ConfigError* err, const std::string& file, int line, std::string why) {
  if (err != nullptr) {
    err->file = file;
    err->line = line;
    err->why = std::move(why);
  }
  return false;
}

bool parse_config_impl(std::string_view text, const std::string& file, Config* out,
                       ConfigError* err) {
  std::vector<Line> lines = content_lines(text);
  if (lines.empty()) {
    return fail(err, file, 0, "no client count: the file is empty or only comments");
  }

  const Line& head = lines[0];
  uint64_t declared = 0;
  {
    std::string_view f = head.fields[0];
    auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), declared);
    if (head.fields.size() != 1 || ec != std::errc() || ptr != f.data() + f.size()) {
      return fail(err, file, head.number,
                  "first line must be the number of clients, got " + quote(join(head.fields)));
    }
  }

  Config cfg;
  std::vector<int> line_of;  // source line of cfg.clients[i]
  double sum = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const Line& l = lines[i];
    const auto& f = l.fields;
    if (f.size() < 4) {
      static const char* const kNames[] = {"ID", "REQUEST", "LIMIT", "GPU_MEM"};
      return fail(err, file, l.number,
                  std::string("missing ") + kNames[f.size()] +
                      ": expected 'ID REQUEST LIMIT GPU_MEM' (GPU_MEM 0 = no limit), got " +
                      quote(join(f)));
    }
    if (f.size() > 4) {
      return fail(err, file, l.number, "extra field " + quote(f[4]) + " after GPU_MEM");
    }
    ClientConfig c;
    if (std::string why = check_id(f[0]); !why.empty()) return fail(err, file, l.number, why);
    c.name = std::string(f[0]);
    if (std::string why = parse_share("REQUEST", f[1], &c.request); !why.empty()) {
      return fail(err, file, l.number, why);
    }
    if (std::string why = parse_share("LIMIT", f[2], &c.limit); !why.empty()) {
      return fail(err, file, l.number, why);
    }
    if (c.request > c.limit) {
      return fail(err, file, l.number,
                  "REQUEST " + std::string(f[1]) + " is above LIMIT " + std::string(f[2]));
    }
    if (!parse_size(f[3], &c.gpu_mem_bytes)) {
      return fail(err, file, l.number,
                  "GPU_MEM " + quote(f[3]) +
                      " is not a size: bytes, or a number with K/M/G/T, KB/MB/GB/TB or "
                      "KiB/MiB/GiB/TiB (0 = no limit)");
    }
    for (size_t j = 0; j < cfg.clients.size(); ++j) {
      if (cfg.clients[j].name == c.name) {
        return fail(err, file, l.number,
                    "ID " + quote(c.name) + " already used on line " + std::to_string(line_of[j]));
      }
    }
    sum += c.request;
    if (sum > 1 + kSumSlack) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "REQUEST %.*s brings the REQUESTs to %g, above 1",
                    static_cast<int>(f[1].size()), f[1].data(), sum);
      return fail(err, file, l.number, buf);
    }
    cfg.clients.push_back(std::move(c));
    line_of.push_back(l.number);
  }

  uint64_t listed = cfg.clients.size();
  if (listed != declared) {
    std::string why = std::to_string(declared) + " clients declared on line " +
                      std::to_string(head.number) + " but " + std::to_string(listed) + " listed";
    // Too many: point at the first one beyond the count. Too few: nothing to point at.
    int line = listed > declared ? line_of[declared] : 0;
    return fail(err, file, line, why);
  }
  *out = std::move(cfg);
  return true;
}

}  // namespace

const ClientConfig* Config::find(std::string_view name) const {
  for (const ClientConfig& c : clients) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string ConfigError::to_string() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  s += why;
  return s;
}

bool parse_config(std::string_view text, const std::string& file, Config* out, ConfigError* err) {
  try {
    return parse_config_impl(text, file, out, err);
  } catch (const std::exception& e) {  // only bad_alloc can get here
    try {
      return fail(err, file, 0, std::string("cannot parse: ") + e.what());
    } catch (...) {
      return false;
    }
  }
}

bool parse_size(std::string_view text, uint64_t* bytes) {
  size_t i = 0;
  uint64_t whole = 0;
  size_t int_start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (whole > (UINT64_MAX - d) / 10) return false;
    whole = whole * 10 + d;
    ++i;
  }
  if (i == int_start) return false;  // no digits, or a sign
  std::string_view frac;
  if (i < text.size() && text[i] == '.') {
    size_t frac_start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    frac = text.substr(frac_start, i - frac_start);
    if (frac.empty()) return false;
  }

  std::string suffix;
  for (char c : text.substr(i)) suffix += lower(c);
  uint64_t unit = 1;
  if (!suffix.empty()) {
    if (suffix.back() == 'b') suffix.pop_back();  // "GB", "GiB", "B"
    bool binary = suffix.size() == 2 && suffix[1] == 'i';
    if (suffix.size() > (binary ? 2u : 1u)) return false;
    if (!suffix.empty()) {
      static const char kPrefixes[] = "kmgt";
      const char* p = nullptr;
      for (const char* q = kPrefixes; *q != '\0'; ++q) {
        if (*q == suffix[0]) p = q;
      }
      if (p == nullptr) return false;
      for (const char* q = kPrefixes; q <= p; ++q) unit *= binary ? 1024 : 1000;
    }
  }
  if (!frac.empty() && unit == 1) return false;  // fractions of a byte make no sense

  if (whole != 0 && unit > UINT64_MAX / whole) return false;
  uint64_t total = whole * unit;
  // floor(0.d1d2...dk * unit) exactly, by Horner's rule from the last digit:
  // floor((d*unit + x) / 10) == floor((d*unit + floor(x)) / 10) for integer d*unit, and x < unit
  // throughout, so nothing overflows (unit <= 1024^4).
  uint64_t part = 0;
  for (size_t k = frac.size(); k-- > 0;) {
    part = (static_cast<uint64_t>(frac[k] - '0') * unit + part) / 10;
  }
  if (part > UINT64_MAX - total) return false;
  *bytes = total + part;
  return true;
}

}  // namespace gem_baseline
