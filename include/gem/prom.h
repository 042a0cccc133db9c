// The Prometheus text exposition format (version 0.0.4), written by the daemons' /metrics
// endpoints (docs/interfaces.md, "Metrics"): a writer that groups each metric family under one
// HELP and TYPE line and escapes label values, and a fixed-bucket histogram of seconds.
// Pure (no I/O). Not thread-safe: one owner per object.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gem::prom {

using Labels = std::vector<std::pair<std::string, std::string>>;

/// A histogram of durations in seconds with fixed upper bounds (Prometheus `le`), cumulative when
/// written. Observations are counted in the first bucket whose bound is >= the value; `+Inf` is
/// implied. Negative values count as 0.
class Histogram {
 public:
  /// Bounds in seconds, strictly increasing (the default: 1 ms to 10 s, for token waits and
  /// hand-offs).
  explicit Histogram(std::vector<double> bounds = default_bounds());
  void observe(double seconds);
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  const std::vector<double>& bounds() const { return bounds_; }
  /// Non-cumulative counts per bound; one more entry at the end for values above every bound.
  const std::vector<uint64_t>& buckets() const { return buckets_; }

  static std::vector<double> default_bounds();

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

/// Builds one exposition. Call family() once per metric name, then its samples; families must not
/// repeat (a repeated family() call for the same name is ignored, so samples stay grouped as long
/// as they are written right after it).
class Writer {
 public:
  /// Starts a family: `# HELP name help` and `# TYPE name type` (type: counter, gauge, histogram).
  void family(const std::string& name, const std::string& type, const std::string& help);
  /// One sample `name{labels} value`. Integers are written without an exponent; NaN and
  /// infinities as Prometheus spells them.
  void sample(const std::string& name, const Labels& labels, double value);
  /// `name_bucket{labels,le="..."}` for each bound and +Inf (cumulative), `name_sum`, `name_count`.
  void histogram(const std::string& name, const Labels& labels, const Histogram& h);
  const std::string& text() const { return out_; }

  /// A label value with backslash, double quote and newline escaped.
  static std::string escape(const std::string& value);
  /// A sample value as the format wants it.
  static std::string number(double v);

 private:
  std::string out_;
  std::vector<std::string> families_;
};

/// The labels naming a GPU, as dcgm-exporter names it (its default counters CSV: `gpu` the NVML index,
/// `UUID` the GPU's UUID), so gem-schd's series join dcgm-exporter's: `gpu` omitted when the index
/// is unknown (< 0, no NVML), `UUID` when empty (gem-schd without --gpu).
Labels gpu_labels(int index, const std::string& uuid);
/// The labels naming a client: `client`, and `namespace` and `pod` when the ID is a Kubernetes pod's
/// "namespace/name" (the webhook's POD_NAME), so series join kube-state-metrics' (namespace, pod).
Labels client_labels(const std::string& client);
/// `base` followed by client_labels(client), written into *out (whose storage is reused: a render of
/// 10^5 clients allocates once, not per sample).
void client_labels_into(const Labels& base, const std::string& client, Labels* out);
/// `a` followed by `b`, then `c`.
Labels join(Labels a, const Labels& b, const Labels& c = {});

/// The Content-Type of the text format.
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace gem::prom
