// The /metrics HTTP endpoint of gem-schd and gem-pmgr (docs/interfaces.md, "Metrics"), served by two
// threads of its own: one poll()s the listening socket and every connection (non-blocking, each
// with a deadline), one renders. The daemon's poll loop owns every number; it hands over a snapshot
// with publish(): a renderer (a function owning a copy of the numbers) or a ready text. The render
// thread turns a snapshot into the exposition, so a scrape never holds up the loop however many
// clients there are. A scrape that finds the last text older than `max_age` asks the loop for a
// fresh snapshot (wanted()) and waits for it up to `wait`, then serves what it has; nothing is
// rendered while nobody scrapes.
//
// Bounds (issue 21): requests are parsed by gem::http (http_request.h): GET or HEAD only, no body
// (405 / 413 before a body byte is read), a head of at most http::kMaxRequestHead bytes within
// kMetricsRequestTimeout; at most kMaxMetricsConnections at once (a new one displaces the oldest
// that has not sent a complete request); a response must be taken within kMetricsWriteTimeout;
// one request per connection (Connection: close).
//
// Routes: GET|HEAD /metrics (text format 0.0.4; 503 until the first publish), /healthz ("ok").
// Thread-safety: publish(), wanted() and port() may be called from any thread; start() and stop()
// from the owner only.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "gem/clock.h"

namespace gem {

/// A scrape that finds the last rendered text older than this asks the daemon's loop for a new
/// one, µs; it waits for it up to kScrapeWait, µs (docs/interfaces.md, "Metrics").
inline constexpr Micros kMaxTextAge = 1000000;
inline constexpr Micros kScrapeWait = 2000000;
/// Connections served at once; one more displaces the oldest still sending its request.
inline constexpr size_t kMaxMetricsConnections = 16;
/// From accepting a connection to the end of its request head, µs (slow senders are closed).
inline constexpr Micros kMetricsRequestTimeout = 5000000;
/// From the start of a response to its last byte taken by the client, µs.
inline constexpr Micros kMetricsWriteTimeout = 30000000;

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

  /// Binds address:port (synchronously: a port in use is an error here) and starts serving on its
  /// threads; returns without waiting for anything else. False with *err. Call once.
  bool start(const MetricsEndpointOptions& opts, std::string* err);
  /// The bound port (after start).
  int port() const;
  /// True when a scrape waits for a fresher text (the loop should render and publish).
  bool wanted() const;
  /// Renders one snapshot into the exposition text. Called on the endpoint's render thread, at
  /// most once per publish(); must own (or share immutably) everything it reads.
  using Renderer = std::function<std::string()>;
  /// Replaces the snapshot (the endpoint owns `render` from then on); the render thread renders
  /// it and wakes the scrapes waiting for it. Never blocks on HTTP or on rendering.
  void publish(Renderer render);
  /// publish() of a ready text (taken by value): for small expositions rendered by the caller.
  void publish(std::string text);
  /// Stops serving, closes every connection and joins the threads (the render thread finishes the
  /// render in progress first). Idempotent.
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
