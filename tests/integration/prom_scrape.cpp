// Scraping and parsing /metrics for the integration tests (prom_scrape.h).
#include "prom_scrape.h"

#include <httplib.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "harness.h"

namespace gemtest {

namespace {

bool name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Parses `{k="v",...}` at text[*pos]; false on a malformed set.
bool parse_labels(const std::string& line, size_t* pos, std::map<std::string, std::string>* labels) {
  size_t i = *pos + 1;  // after '{'
  while (i < line.size() && line[i] != '}') {
    size_t k = i;
    while (k < line.size() && name_char(line[k], k == i)) ++k;
    if (k == i || k + 1 >= line.size() || line[k] != '=' || line[k + 1] != '"') return false;
    const std::string key = line.substr(i, k - i);
    std::string value;
    size_t j = k + 2;
    for (; j < line.size() && line[j] != '"'; ++j) {
      if (line[j] == '\\' && j + 1 < line.size()) {
        ++j;
        value += line[j] == 'n' ? '\n' : line[j];
      } else {
        value += line[j];
      }
    }
    if (j >= line.size()) return false;
    (*labels)[key] = value;
    i = j + 1;
    if (i < line.size() && line[i] == ',') ++i;
  }
  if (i >= line.size()) return false;
  *pos = i + 1;
  return true;
}

// The family a sample belongs to: histograms' _bucket/_sum/_count belong to their base name.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

bool includes(const std::map<std::string, std::string>& have, const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

void check_histograms(PromScrape* out) {
  for (const auto& [family, type] : out->types) {
    if (type != "histogram") continue;
    // Group the buckets by their labels without `le`.
    std::map<std::string, std::vector<std::pair<double, double>>> buckets;
    std::map<std::string, double> counts;
    for (const PromSample& s : out->samples) {
      auto labels = s.labels;
      labels.erase("le");
      std::string key;
      for (const auto& [k, v] : labels) key += k + "=" + v + ",";
      if (s.name == family + "_bucket") {
        const std::string le = s.labels.count("le") ? s.labels.at("le") : "";
        buckets[key].push_back({le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr), s.value});
      } else if (s.name == family + "_count") {
        counts[key] = s.value;
      }
    }
    for (const auto& [key, bs] : buckets) {
      for (size_t i = 1; i < bs.size(); ++i) {
        if (!(bs[i].first > bs[i - 1].first) || bs[i].second < bs[i - 1].second) {
          out->errors.push_back(family + "{" + key + "}: buckets not increasing");
        }
      }
      if (bs.empty() || !std::isinf(bs.back().first) || counts.count(key) == 0 || bs.back().second != counts[key]) {
        out->errors.push_back(family + "{" + key + "}: no +Inf bucket equal to _count");
      }
    }
  }
}

}  // namespace

void parse_prometheus(const std::string& text, PromScrape* out) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream ls(line);
      std::string hash, kind, name, type;
      ls >> hash >> kind >> name >> type;
      if (kind == "TYPE") {
        if (out->types.count(name) != 0) out->errors.push_back("TYPE repeated for " + name);
        out->types[name] = type;
      }
      continue;
    }
    PromSample s;
    size_t pos = 0;
    while (pos < line.size() && name_char(line[pos], pos == 0)) ++pos;
    s.name = line.substr(0, pos);
    if (s.name.empty() || (pos < line.size() && line[pos] == '{' && !parse_labels(line, &pos, &s.labels)) ||
        pos >= line.size() || line[pos] != ' ') {
      out->errors.push_back("malformed line: " + line);
      continue;
    }
    const std::string v = line.substr(pos + 1);
    char* end = nullptr;
    s.value = v == "+Inf" ? INFINITY : v == "-Inf" ? -INFINITY : std::strtod(v.c_str(), &end);
    if (v != "+Inf" && v != "-Inf" && (end == v.c_str() || *end != '\0')) {
      out->errors.push_back("bad value: " + line);
      continue;
    }
    if (out->types.count(family_of(s.name, out->types)) == 0) out->errors.push_back("no TYPE for " + s.name);
    out->samples.push_back(std::move(s));
  }
  check_histograms(out);
}

std::optional<double> PromScrape::value(const std::string& name, const std::map<std::string, std::string>& labels) const {
  const auto found = all(name, labels);
  if (found.size() != 1) return std::nullopt;
  return found[0].value;
}

std::vector<PromSample> PromScrape::all(const std::string& name, const std::map<std::string, std::string>& labels) const {
  std::vector<PromSample> out;
  for (const PromSample& s : samples) {
    if (s.name == name && includes(s.labels, labels)) out.push_back(s);
  }
  return out;
}

PromScrape scrape(int port) {
  PromScrape out;
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto res = client.Get("/metrics");
  if (!res) return out;
  out.status = res->status;
  out.content_type = res->get_header_value("Content-Type");
  out.text = res->body;
  parse_prometheus(out.text, &out);
  return out;
}

int metrics_port_from_log(const std::string& log_path, double seconds) {
  int port = -1;
  wait_until(seconds, [&] {
    const std::string text = read_text(log_path);
    const std::string marker = "metrics on http://";
    const size_t at = text.find(marker);
    if (at == std::string::npos) return false;
    const size_t colon = text.find(':', at + marker.size());
    if (colon == std::string::npos) return false;
    port = std::atoi(text.c_str() + colon + 1);
    return port > 0;
  });
  return port;
}

}  // namespace gemtest
