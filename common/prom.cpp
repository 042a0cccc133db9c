// Prometheus text exposition format (include/gem/prom.h).
#include "gem/prom.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gem::prom {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1, 0) {}

std::vector<double> Histogram::default_bounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

void Histogram::observe(double seconds) {
  if (!(seconds > 0)) seconds = 0;  // negative and NaN
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);
  ++buckets_[static_cast<size_t>(it - bounds_.begin())];
  ++count_;
  sum_ += seconds;
}

std::string Writer::escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Writer::number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  return buf;
}

namespace {
void append_labels(std::string* out, const Labels& labels, const char* extra_name = nullptr,
                   const std::string& extra_value = "") {
  if (labels.empty() && extra_name == nullptr) return;
  *out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) *out += ',';
    first = false;
    *out += k + "=\"" + Writer::escape(v) + "\"";
  }
  if (extra_name != nullptr) {
    if (!first) *out += ',';
    *out += std::string(extra_name) + "=\"" + extra_value + "\"";
  }
  *out += '}';
}
}  // namespace

void Writer::family(const std::string& name, const std::string& type, const std::string& help) {
  if (std::find(families_.begin(), families_.end(), name) != families_.end()) return;
  families_.push_back(name);
  std::string h;
  for (const char c : help) h += c == '\n' ? ' ' : c;
  out_ += "# HELP " + name + " " + h + "\n# TYPE " + name + " " + type + "\n";
}

void Writer::sample(const std::string& name, const Labels& labels, double value) {
  out_ += name;
  append_labels(&out_, labels);
  out_ += ' ' + number(value) + '\n';
}

void Writer::histogram(const std::string& name, const Labels& labels, const Histogram& h) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.buckets()[i];
    out_ += name + "_bucket";
    append_labels(&out_, labels, "le", number(h.bounds()[i]));
    out_ += ' ' + std::to_string(cumulative) + '\n';
  }
  out_ += name + "_bucket";
  append_labels(&out_, labels, "le", "+Inf");
  out_ += ' ' + std::to_string(h.count()) + '\n';
  sample(name + "_sum", labels, h.sum());
  sample(name + "_count", labels, static_cast<double>(h.count()));
}

Labels gpu_labels(int index, const std::string& uuid) {
  Labels l;
  if (index >= 0) l.emplace_back("gpu", std::to_string(index));
  if (!uuid.empty()) l.emplace_back("UUID", uuid);
  return l;
}

Labels client_labels(const std::string& client) {
  Labels l;
  client_labels_into({}, client, &l);
  return l;
}

void client_labels_into(const Labels& base, const std::string& client, Labels* out) {
  const size_t slash = client.find('/');
  const bool pod = slash != std::string::npos && slash > 0 && slash + 1 < client.size() &&
                   client.find('/', slash + 1) == std::string::npos;
  out->resize(base.size() + (pod ? 3 : 1));
  for (size_t i = 0; i < base.size(); ++i) (*out)[i] = base[i];
  size_t i = base.size();
  (*out)[i].first = "client";
  (*out)[i].second = client;
  if (pod) {
    (*out)[i + 1].first = "namespace";
    (*out)[i + 1].second.assign(client, 0, slash);
    (*out)[i + 2].first = "pod";
    (*out)[i + 2].second.assign(client, slash + 1, std::string::npos);
  }
}

Labels join(Labels a, const Labels& b, const Labels& c) {
  a.insert(a.end(), b.begin(), b.end());
  a.insert(a.end(), c.begin(), c.end());
  return a;
}

}  // namespace gem::prom
