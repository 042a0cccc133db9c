// What a Prometheus server does with a daemon's /metrics, for the integration tests: GET it over
// HTTP (cpp-httplib's client) and parse the text format 0.0.4 strictly (every sample under a
// `# TYPE`, label values unescaped, histograms checked for cumulative buckets ending at +Inf =
// _count). Also finds the port a daemon started with `--metrics_port auto` logged.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gemtest {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromScrape {
  int status = 0;                          // HTTP status; 0 when the request failed
  std::string content_type;
  std::string text;
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram
  std::vector<PromSample> samples;
  std::vector<std::string> errors;         // format errors found by parse (empty: well-formed)

  /// The value of the one sample `name` whose labels include `labels`; nullopt if none (or several).
  std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  /// Every sample `name` whose labels include `labels`.
  std::vector<PromSample> all(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};

/// GET http://127.0.0.1:port/metrics (5 s timeouts) and parse it.
PromScrape scrape(int port);
/// Parses `text` into `out` (types, samples, errors).
void parse_prometheus(const std::string& text, PromScrape* out);
/// The port in the line "metrics on http://ADDR:PORT/metrics" of a daemon's log; waits up to
/// `seconds` for it. -1 if it never came.
int metrics_port_from_log(const std::string& log_path, double seconds);

}  // namespace gemtest
