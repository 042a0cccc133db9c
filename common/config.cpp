// resource-config.txt parser. See include/gem/config.h for the format.
//
// Decisions beyond Gemini's format (those about one value, sizes, shares, latencies and the
// REQUEST sum, are in config_values.cpp):
// - A UTF-8 byte order mark at the start of the file and '\r' before '\n' are ignored, so files
//   written on Windows load.
#include "gem/config.h"

#include <charconv>
#include <cstdio>
#include <exception>
#include <new>
#include <system_error>

#include "field_text.h"
#include "gem/protocol.h"

namespace gem {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '/' || c == ':' || c == '-';
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

std::string check_id(std::string_view id) {
  if (id.size() > proto::kMaxName) {
    return "ID " + quote_field(id) + " is " + std::to_string(id.size()) + " bytes, longer than " +
           std::to_string(proto::kMaxName);
  }
  for (char c : id) {
    if (!is_id_char(c)) {
      return "ID " + quote_field(id) + " contains " + quote_field(std::string_view(&c, 1)) +
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
  if (eq == std::string_view::npos) return "extra field " + quote_field(o) + " after GPU_MEM";
  const std::string_view key = o.substr(0, eq), value = o.substr(eq + 1);
  bool* seen = key == "um" ? seen_um : key == "latency" ? seen_latency : nullptr;
  if (seen == nullptr) return "unknown option " + quote_field(o) + " after GPU_MEM: expected um=on|off or latency=MS";
  if (*seen) return "option " + quote_field(key) + " given twice";
  *seen = true;
  if (key == "um") {
    if (value != "on" && value != "off") {
      return "unknown option " + quote_field(o) + " after GPU_MEM: expected um=on or um=off";
    }
    c->unified_memory = value == "on";
    return {};
  }
  std::string why;
  if (!parse_latency_ms(value, &c->latency_us, &why)) return "latency " + why;
  return {};
}

// Checks one client line and appends it to *cfg. Returns an empty string or why not.
std::string parse_client(const Fields& fl, std::string_view line, Config* cfg) {
  const std::string_view* f = fl.f;
  if (fl.count < 4) {
    static const char* const kNames[] = {"ID", "REQUEST", "LIMIT", "GPU_MEM"};
    return std::string("missing ") + kNames[fl.count] +
           ": expected 'ID REQUEST LIMIT GPU_MEM' (GPU_MEM 0 = no limit), got " +
           quote_field(join(split_fields(line)));
  }
  if (fl.count > Fields::kKept) return "extra field " + quote_field(split_fields(line)[Fields::kKept]) + " after the options";
  if (std::string why = check_id(f[0]); !why.empty()) return why;
  ClientConfig c;
  std::string why;
  if (!parse_share(f[1], &c.request, &why)) return "REQUEST " + why;
  if (!parse_share(f[2], &c.limit, &why)) return "LIMIT " + why;
  if (c.request > c.limit) {
    return "REQUEST " + std::string(f[1]) + " is above LIMIT " + std::string(f[2]);
  }
  if (!parse_size(f[3], &c.gpu_mem_bytes, &why)) return "GPU_MEM " + why + " (0 = no limit)";
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
                      quote_field(join(split_fields(head_line))));
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
                  "ID " + quote_field(c.name) + " already used on line " + std::to_string(line_of[first]));
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

std::string client_id_error(std::string_view id) { return check_id(id); }

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

}  // namespace gem
