// libFuzzer target: the resource-config.txt parser (gem::parse_config, include/gem/config.h) and
// gem::parse_size. The input is the file's text.
//
// Properties (abort on violation):
//  - a successful parse obeys the documented rules: every REQUEST and LIMIT finite with
//    0 <= REQUEST <= LIMIT <= 1, REQUESTs summing to at most 1 + 1e-9, IDs of 1..kMaxName bytes of
//    [A-Za-z0-9._/:-], unique, found by Config::find;
//  - the config written back out ("N" then "ID %.17g %.17g BYTES" lines) parses to the same config;
//  - a failed parse leaves *out untouched and says why, at a line inside the file (0 = whole file);
//  - each GPU_MEM field that parses as a size: digits alone are that number, "<x>KiB" is 1024 x
//    when it fits.
#include <cmath>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "gem/config.h"
#include "gem/protocol.h"

#include "fuzz_check.h"

namespace {

constexpr const char* kFuzzTarget = "fuzz_config";

bool id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '/' || c == ':' || c == '-';
}

bool same(const gem::Config& a, const gem::Config& b) {
  if (a.clients.size() != b.clients.size()) return false;
  for (size_t i = 0; i < a.clients.size(); ++i) {
    const auto &x = a.clients[i], &y = b.clients[i];
    if (x.name != y.name || x.request != y.request || x.limit != y.limit || x.gpu_mem_bytes != y.gpu_mem_bytes) {
      return false;
    }
  }
  return true;
}

void check_valid(const gem::Config& cfg) {
  double sum = 0;
  std::set<std::string> names;
  for (const gem::ClientConfig& c : cfg.clients) {
    CHECK(std::isfinite(c.request) && std::isfinite(c.limit));
    CHECK(c.request >= 0 && c.request <= c.limit && c.limit <= 1);
    CHECK(!std::signbit(c.request) && !std::signbit(c.limit));
    CHECK(!c.name.empty() && c.name.size() <= gem::proto::kMaxName);
    for (char ch : c.name) CHECK(id_char(ch));
    CHECK(names.insert(c.name).second);
    CHECK(cfg.find(c.name) == &c);
    sum += c.request;
  }
  CHECK(sum <= 1 + 1e-9);
}

std::string write_back(const gem::Config& cfg) {
  std::string s = "# written back\n" + std::to_string(cfg.clients.size()) + "\n";
  for (const gem::ClientConfig& c : cfg.clients) {
    char buf[128];
    std::snprintf(buf, sizeof buf, " %.17g %.17g %llu\n", c.request, c.limit,
                  static_cast<unsigned long long>(c.gpu_mem_bytes));
    s += c.name + buf;
  }
  return s;
}

void check_size(std::string_view field) {
  uint64_t bytes = 0;
  if (!gem::parse_size(field, &bytes)) return;
  bool digits = !field.empty();
  for (char ch : field) digits = digits && ch >= '0' && ch <= '9';
  if (digits) {
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
    CHECK(ec == std::errc() && ptr == field.data() + field.size() && v == bytes);
    uint64_t kib = 0;
    const bool fits = bytes <= UINT64_MAX / 1024;
    CHECK(gem::parse_size(std::string(field) + "KiB", &kib) == fits);
    if (fits) CHECK(kib == bytes * 1024);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  gem::Config cfg;
  cfg.clients.push_back({"sentinel", 0.5, 0.5, 7});
  gem::ConfigError err;
  if (gem::parse_config(text, "fuzz.txt", &cfg, &err)) {
    check_valid(cfg);
    gem::Config again;
    gem::ConfigError err2;
    const std::string out = write_back(cfg);
    if (!gem::parse_config(out, "written", &again, &err2)) {
      std::fprintf(stderr, "%s\n%s\n", out.c_str(), err2.to_string().c_str());
      FAIL("written-back config parses");
    }
    CHECK(same(cfg, again));
  } else {
    CHECK(cfg.clients.size() == 1 && cfg.clients[0].name == "sentinel");
    CHECK(!err.why.empty());
    CHECK(err.file == "fuzz.txt");
    size_t lines = 1;
    for (char ch : text) lines += ch == '\n';
    CHECK(err.line >= 0 && static_cast<size_t>(err.line) <= lines);
    CHECK(!err.to_string().empty());
  }
  // GPU_MEM-like fields: the last whitespace-separated word of each line.
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    size_t sp = line.find_last_of(" \t");
    std::string_view last = sp == std::string_view::npos ? line : line.substr(sp + 1);
    if (last.size() <= 64) check_size(last);
    pos = nl + 1;
  }
  return 0;
}
