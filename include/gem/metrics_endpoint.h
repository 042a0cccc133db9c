// The /metrics HTTP endpoint of gem-schd and gem-pmgr (docs/interfaces.md, "Metrics"), served by
// cpp-httplib on a thread pool of its own. The daemon's poll loop owns every number; it renders the
// exposition itself (gem::prom::Writer) and hands the text over with publish(). A scrape that finds
// the last text older than `max_age` asks the loop for a fresh one (wanted()) and waits for it up to
// `wait`, then serves what it has: the loop never blocks on HTTP, and nothing is rendered while
// nobody scrapes.
//
// Routes: GET /metrics (text format 0.0.4; 503 until the first publish), GET /healthz ("ok").
// Thread-safety: publish(), wanted() and port() may be called from any thread; start() and stop()
// from the owner only.
#pragma once

#include <memory>
#include <string>

#include "gem/clock.h"

namespace gem {

/// A scrape that finds the last rendered text older than this asks the daemon's loop for a new
/// one, µs; it waits for it up to kScrapeWait, µs (docs/interfaces.md, "Metrics").
inline constexpr Micros kMaxTextAge = 1000000;
inline constexpr Micros kScrapeWait = 2000000;

struct MetricsEndpointOptions {
  std::string address = "127.0.0.1";  // --metrics_address
  int port = 0;                       // --metrics_port; 0 picks a free port (see port())
  Micros max_age = kMaxTextAge;       // µs: a text older than this makes a scrape ask for a new one
  Micros wait = kScrapeWait;          // µs: how long a scrape waits for it
};

class MetricsEndpoint {
 public:
  MetricsEndpoint();
  ~MetricsEndpoint();  // stop()
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  /// Binds address:port (synchronously: a port in use is an error here) and starts serving on a
  /// thread. False with *err. Call once.
  bool start(const MetricsEndpointOptions& opts, std::string* err);
  /// The bound port (after start).
  int port() const;
  /// True when a scrape waits for a fresher text (the loop should render and publish).
  bool wanted() const;
  /// Replaces the served text (taken by value; the endpoint owns its copy) and wakes waiting scrapes.
  void publish(std::string text);
  /// Stops serving and joins the thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Starts `endpoint` with `opts` when `enabled` (gem::daemon::Daemon::metrics_enabled(), from
/// --metrics_port) and logs its URL; nothing when not enabled. False with *err when it cannot listen.
bool start_metrics_endpoint(bool enabled, const MetricsEndpointOptions& opts, MetricsEndpoint* endpoint,
                            std::string* err);

}  // namespace gem
