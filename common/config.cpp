// resource-config.txt parser. See include/gem/config.h for the format.
//
// Decisions beyond Gemini's format:
// - GPU_MEM may be fractional only with a K/M/G/T suffix ("1.5GiB"); the result is rounded down to
//   whole bytes. A bare fractional byte count ("1.5", "1.5B") is an error.
// - Suffix letters are case-insensitive ("4gib" == "4GiB"); the final "B" is optional, so
//   Kubernetes-style "4Gi" works; "B" alone means bytes.
// - A UTF-8 byte order mark at the start of the file and '\r' before '\n' are ignored, so files
//   written on Windows load.
// - Shares are parsed with std::from_chars (locale-independent, unlike strtod) and must use every
//   character of the field; "nan", "inf" and anything outside [0,1] are rejected.
// - The REQUESTs may exceed 1 by at most 1e-9 so that e.g. 0.1 + 0.2 + 0.7 is accepted.
#include "gem/config.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <system_error>

#include "gem/protocol.h"

namespace gem {

namespace {

constexpr double kSumSlack = 1e-9;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '/' || c == ':' || c == '-';
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Field text for messages: printable as is, anything else as \xNN so a stray control byte cannot
// garble a log line. Long fields are cut; the point is to let the user find the spot.
std::string quote(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

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

std::string share_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
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

// One line's fields, split without allocating: the first kKept, and how many there are in all.
// The error paths re-split the line with split_fields() when they need every field.
struct Fields {
  static constexpr size_t kKept = 6;  // ID REQUEST LIMIT GPU_MEM and up to two options
  std::string_view f[kKept];
  size_t count = 0;
};

void split_into(std::string_view line, Fields* out) {
  out->count = 0;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) {
      if (out->count < Fields::kKept) out->f[out->count] = line.substr(start, i - start);
      ++out->count;
    }
  }
}

// Walks the non-blank lines with comments removed, one at a time (no per-line allocation).
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") text_.remove_prefix(3);
  }
  /// Next line with at least one field: its 1-based number, comment-free text and fields.
  bool next(int* number, std::string_view* line, Fields* fields) {
    while (pos_ <= text_.size()) {
      size_t nl = text_.find('\n', pos_);
      if (nl == std::string_view::npos) nl = text_.size();
      std::string_view l = text_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      ++number_;
      size_t hash = l.find('#');
      if (hash != std::string_view::npos) l = l.substr(0, hash);
      split_into(l, fields);
      if (fields->count != 0) {
        *number = number_;
        *line = l;
        return true;
      }
    }
    return false;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int number_ = 0;  // fits: the text is at most kMaxConfigBytes
};

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

// One key=value option after GPU_MEM: um=on|off, latency=MS. Returns an empty string or why not.
std::string parse_option(std::string_view o, ClientConfig* c, bool* seen_um, bool* seen_latency) {
  const size_t eq = o.find('=');
  if (eq == std::string_view::npos) return "extra field " + quote(o) + " after GPU_MEM";
  const std::string_view key = o.substr(0, eq), value = o.substr(eq + 1);
  bool* seen = key == "um" ? seen_um : key == "latency" ? seen_latency : nullptr;
  if (seen == nullptr) return "unknown option " + quote(o) + " after GPU_MEM: expected um=on|off or latency=MS";
  if (*seen) return "option " + quote(key) + " given twice";
  *seen = true;
  if (key == "um") {
    if (value != "on" && value != "off") {
      return "unknown option " + quote(o) + " after GPU_MEM: expected um=on or um=off";
    }
    c->unified_memory = value == "on";
    return {};
  }
  if (!parse_latency_ms(value, &c->latency_us)) {
    return "latency " + quote(value) + " is not a number of milliseconds in (0, " +
           std::to_string(static_cast<int>(kMaxLatencyMs)) + "]";
  }
  return {};
}

// Checks one client line and appends it to *cfg. Returns an empty string or why not.
std::string parse_client(const Fields& fl, std::string_view line, Config* cfg) {
  const std::string_view* f = fl.f;
  if (fl.count < 4) {
    static const char* const kNames[] = {"ID", "REQUEST", "LIMIT", "GPU_MEM"};
    return std::string("missing ") + kNames[fl.count] +
           ": expected 'ID REQUEST LIMIT GPU_MEM' (GPU_MEM 0 = no limit), got " +
           quote(join(split_fields(line)));
  }
  if (fl.count > Fields::kKept) return "extra field " + quote(split_fields(line)[Fields::kKept]) + " after the options";
  if (std::string why = check_id(f[0]); !why.empty()) return why;
  ClientConfig c;
  if (std::string why = parse_share("REQUEST", f[1], &c.request); !why.empty()) return why;
  if (std::string why = parse_share("LIMIT", f[2], &c.limit); !why.empty()) return why;
  if (c.request > c.limit) {
    return "REQUEST " + std::string(f[1]) + " is above LIMIT " + std::string(f[2]);
  }
  if (!parse_size(f[3], &c.gpu_mem_bytes)) {
    return "GPU_MEM " + quote(f[3]) +
           " is not a size: bytes, or a number with K/M/G/T, KB/MB/GB/TB or "
           "KiB/MiB/GiB/TiB (0 = no limit)";
  }
  bool seen_um = false, seen_latency = false;
  for (size_t i = 4; i < fl.count; ++i) {
    if (std::string why = parse_option(f[i], &c, &seen_um, &seen_latency); !why.empty()) return why;
  }
  c.name.assign(f[0].data(), f[0].size());
  cfg->clients.push_back(std::move(c));
  return {};
}

std::string mib(size_t bytes) {
  return std::to_string(bytes) + " bytes (" + std::to_string(bytes >> 20) + " MiB)";
}

// O(text size): one pass over the text; the duplicate check goes through a hash index.
bool parse_config_impl(std::string_view text, const std::string& file, Config* out,
                       NameIndex* index_out, ConfigError* err) {
  if (text.size() > kMaxConfigBytes) {
    return fail(err, file, 0,
                "is " + std::to_string(text.size()) + " bytes, more than the " +
                    mib(kMaxConfigBytes) + " gem-schd reads");
  }
  LineReader reader(text);
  int head_number = 0;
  std::string_view head_line;
  Fields fl;
  if (!reader.next(&head_number, &head_line, &fl)) {
    return fail(err, file, 0, "no client count: the file is empty or only comments");
  }

  uint64_t declared = 0;
  {
    std::string_view f = fl.f[0];
    auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), declared);
    if (fl.count != 1 || ec != std::errc() || ptr != f.data() + f.size()) {
      return fail(err, file, head_number,
                  "first line must be the number of clients, got " +
                      quote(join(split_fields(head_line))));
    }
  }
  if (declared > kMaxConfigClients) {
    return fail(err, file, head_number,
                std::to_string(declared) + " clients declared, more than the " +
                    std::to_string(kMaxConfigClients) + " gem-schd serves");
  }

  Config cfg;
  NameIndex index;
  cfg.clients.reserve(declared);
  index.reserve(declared);
  std::vector<int> line_of;  // source line of cfg.clients[i]
  line_of.reserve(declared);
  double sum = 0;
  int number = 0;
  std::string_view line;
  while (reader.next(&number, &line, &fl)) {
    if (cfg.clients.size() >= kMaxConfigClients) {
      return fail(err, file, number,
                  "more than the " + std::to_string(kMaxConfigClients) +
                      " clients gem-schd serves (" + std::to_string(declared) +
                      " declared on line " + std::to_string(head_number) + ")");
    }
    if (std::string why = parse_client(fl, line, &cfg); !why.empty()) {
      return fail(err, file, number, std::move(why));
    }
    const size_t pos = cfg.clients.size() - 1;
    const ClientConfig& c = cfg.clients[pos];
    const size_t first = index.insert(cfg.clients, pos);
    if (first != pos) {
      return fail(err, file, number,
                  "ID " + quote(c.name) + " already used on line " + std::to_string(line_of[first]));
    }
    if (std::string why = admission_error(c.request, c.limit, sum); !why.empty()) {
      return fail(err, file, number, std::move(why));
    }
    sum += c.request;
    line_of.push_back(number);
  }

  uint64_t listed = cfg.clients.size();
  if (listed != declared) {
    std::string why = std::to_string(declared) + " clients declared on line " +
                      std::to_string(head_number) + " but " + std::to_string(listed) + " listed";
    // Too many: point at the first one beyond the count. Too few: nothing to point at.
    int at = listed > declared ? line_of[declared] : 0;
    return fail(err, file, at, why);
  }
  *out = std::move(cfg);
  *index_out = std::move(index);
  return true;
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  s += why;
  return s;
}

bool parse_config(std::string_view text, const std::string& file, Config* out, ConfigError* err) {
  try {
    Config cfg;
    NameIndex index;
    if (!parse_config_impl(text, file, &cfg, &index, err)) return false;
    *out = std::move(cfg);
    out->index_ = std::move(index);
    return true;
  } catch (const std::exception& e) {  // only bad_alloc can get here
    try {
      return fail(err, file, 0, std::string("cannot parse: ") + e.what());
    } catch (...) {
      return false;
    }
  }
}

bool parse_latency_ms(std::string_view text, uint32_t* us) {
  const std::string v(text);
  char* end = nullptr;
  const double ms = v.empty() ? -1 : std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || !(ms > 0) || ms > kMaxLatencyMs) return false;
  *us = static_cast<uint32_t>(ms * 1000 + 0.5);
  return true;
}

std::string admission_error(double request, double limit, double admitted) {
  if (!(request >= 0 && request <= 1) || !(limit >= 0 && limit <= 1)) {
    return "REQUEST " + share_text(request) + " and LIMIT " + share_text(limit) + " must be between 0 and 1";
  }
  if (request > limit) return "REQUEST " + share_text(request) + " is above LIMIT " + share_text(limit);
  const double sum = admitted + request;
  if (sum > 1 + kSumSlack) {
    return "REQUEST " + share_text(request) + " brings the REQUESTs to " + share_text(sum) + ", above 1";
  }
  return {};
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

}  // namespace gem
