// The daemons' /metrics endpoint on cpp-httplib (include/gem/metrics_endpoint.h).
#include "gem/metrics_endpoint.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gem/log.h"
#include "gem/prom.h"

namespace gem {

struct MetricsEndpoint::Impl {
  MetricsEndpointOptions opts;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> done{false};  // listen_after_bind returned
  int port = 0;

  mutable std::mutex mu;
  std::condition_variable fresh;
  std::string text;           // guarded by mu
  Micros published_at = -1;   // guarded by mu; -1: never
  std::atomic<bool> want{true};  // render at once: the first scrape finds a text

  void serve(const httplib::Request&, httplib::Response& res) {
    std::unique_lock<std::mutex> lock(mu);
    const Micros asked = mono_us();
    if (published_at < 0 || asked - published_at > opts.max_age) {
      want = true;
      fresh.wait_for(lock, std::chrono::microseconds(opts.wait), [&] { return published_at >= asked; });
    }
    if (published_at < 0) {
      res.status = 503;
      res.set_content("no metrics yet\n", "text/plain");
      return;
    }
    res.set_content(text, prom::kContentType);
  }
};

MetricsEndpoint::MetricsEndpoint() : impl_(std::make_unique<Impl>()) {}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

bool MetricsEndpoint::start(const MetricsEndpointOptions& opts, std::string* err) {
  Impl& m = *impl_;
  m.opts = opts;
  // Two workers: scrapes are rare and each only copies a string.
  m.server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  m.server.set_keep_alive_timeout(5);
  m.server.set_read_timeout(5);
  m.server.set_write_timeout(5);
  m.server.Get("/metrics", [&m](const httplib::Request& req, httplib::Response& res) { m.serve(req, res); });
  m.server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  if (opts.port == 0) {
    m.port = m.server.bind_to_any_port(opts.address);
  } else {
    m.port = m.server.bind_to_port(opts.address, opts.port) ? opts.port : -1;
  }
  if (m.port <= 0) {
    *err = "metrics: cannot listen on " + opts.address + ":" + (opts.port == 0 ? "auto" : std::to_string(opts.port)) +
           " (address not local, or port in use)";
    return false;
  }
  m.thread = std::thread([&m] {
    m.server.listen_after_bind();
    m.done = true;
  });
  return true;
}

int MetricsEndpoint::port() const { return impl_->port; }

bool MetricsEndpoint::wanted() const { return impl_->want.load(std::memory_order_relaxed); }

void MetricsEndpoint::publish(std::string text) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->text = std::move(text);
    impl_->published_at = mono_us();
    impl_->want = false;
  }
  impl_->fresh.notify_all();
}

void MetricsEndpoint::stop() {
  if (!impl_->thread.joinable()) return;
  // httplib's stop() does nothing before the listening loop has begun: repeat it until the loop ended.
  while (!impl_->done) {
    impl_->server.stop();
    if (!impl_->done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->thread.join();
}

bool start_metrics_endpoint(bool enabled, const MetricsEndpointOptions& opts, MetricsEndpoint* endpoint,
                            std::string* err) {
  if (!enabled) return true;
  if (!endpoint->start(opts, err)) return false;
  LOG_INFO("metrics on http://%s:%d/metrics", opts.address.c_str(), endpoint->port());
  return true;
}

}  // namespace gem
