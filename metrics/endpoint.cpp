// The daemons' /metrics endpoint (include/gem/metrics_endpoint.h): one thread poll()s the listening
// socket and the connections, one renders snapshots. Requests are parsed by gem::http
// (http_request.h); every connection has a deadline and their number a cap.
#include "gem/metrics_endpoint.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "gem/http_request.h"
#include "gem/log.h"
#include "gem/net.h"
#include "gem/prom.h"

namespace gem {

namespace {

constexpr int kMaxPollMs = 200;  // the serving thread looks at its deadlines at least this often
constexpr size_t kMetricsReadBudget = 64 * 1024;  // bytes read from one connection per poll round

void wake(int fd) {
  const uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void drain(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

}  // namespace

struct MetricsEndpoint::Impl {
  MetricsEndpointOptions opts;
  int listen_fd = -1;
  int wake_fd = -1;  // render thread / stop() -> serving thread
  int port = 0;
  std::thread server, renderer;
  std::atomic<bool> stopping{false};
  std::atomic<bool> want{true};  // render at once: the first scrape finds a text

  // Snapshot and text, guarded by mu.
  std::mutex mu;
  std::condition_variable snapshot_cv;  // render thread waits for a new snapshot
  Renderer snapshot;
  uint64_t snapshot_version = 0;
  Micros snapshot_at = -1;
  std::shared_ptr<const std::string> text;  // null until the first render
  uint64_t text_version = 0;
  Micros text_at = -1;  // when the snapshot behind `text` was published; -1: never

  struct Conn {
    int fd = -1;
    Micros accepted = 0;
    enum State { kReading, kWaiting, kWriting } state = kReading;
    std::string in;                           // request bytes (at most http::kMaxRequestHead + 1)
    http::Request req;
    Micros asked = 0;                         // kWaiting: when it asked for a fresh text
    std::string head;                         // kWriting: status line + headers
    std::shared_ptr<const std::string> body;  // kWriting: shared with the text, never copied
    size_t sent = 0;
    Micros write_deadline = 0;
  };
  std::list<Conn> conns;  // the serving thread's; oldest first

  void render_loop() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      snapshot_cv.wait(lock, [&] { return stopping.load() || snapshot_version > text_version; });
      if (stopping) return;
      Renderer r = snapshot;
      const uint64_t version = snapshot_version;
      const Micros at = snapshot_at;
      lock.unlock();
      std::shared_ptr<const std::string> t;
      try {
        t = std::make_shared<const std::string>(r());
      } catch (const std::exception& e) {
        LOG_ERROR("metrics: cannot render: %s", e.what());
      }
      r = nullptr;  // the snapshot's memory goes now, not at the next publish
      lock.lock();
      if (t != nullptr) {
        text = std::move(t);
        text_at = at;
      }
      text_version = version;
      if (snapshot_version == version) snapshot = nullptr;
      wake(wake_fd);
    }
  }

  void respond(Conn& c, int status, const std::string& content_type, std::shared_ptr<const std::string> body) {
    static const auto empty = std::make_shared<const std::string>();
    if (body == nullptr) body = empty;
    c.head = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\nContent-Type: " + content_type +
             "\r\nContent-Length: " + std::to_string(body->size()) + "\r\nConnection: close\r\n";
    if (status == 405) c.head += "Allow: GET, HEAD\r\n";
    c.head += "\r\n";
    c.body = c.req.head_only ? empty : std::move(body);
    c.state = Conn::kWriting;
    c.sent = 0;
    c.write_deadline = mono_us() + kMetricsWriteTimeout;
    c.in.clear();
    c.in.shrink_to_fit();
  }

  static std::shared_ptr<const std::string> plain(const char* s) { return std::make_shared<const std::string>(s); }

  // A complete head in c.in: answer at once, or wait for a fresh text.
  void on_request(Conn& c, Micros now) {
    const size_t len = http::head_length(c.in);
    const int status = http::parse_request(std::string_view(c.in).substr(0, len), &c.req);
    if (status != 200) {
      respond(c, status, "text/plain", plain("refused\n"));
      return;
    }
    if (c.req.path == "/healthz") {
      respond(c, 200, "text/plain", plain("ok\n"));
    } else if (c.req.path == "/metrics") {
      c.state = Conn::kWaiting;
      c.asked = now;
      std::lock_guard<std::mutex> lock(mu);
      if (text_at < 0 || now - text_at > opts.max_age) want = true;
    } else {
      respond(c, 404, "text/plain", plain("not found\n"));
    }
  }

  // kWaiting connections: answered once a text newer than their ask came, or at their deadline.
  void answer_waiting(Micros now) {
    std::shared_ptr<const std::string> t;
    Micros at = -1;
    {
      std::lock_guard<std::mutex> lock(mu);
      t = text;
      at = text_at;
    }
    for (Conn& c : conns) {
      if (c.state != Conn::kWaiting) continue;
      const bool fresh = at >= 0 && (now - at <= opts.max_age || at >= c.asked);
      if (!fresh && now - c.asked < opts.wait) continue;
      if (t == nullptr) {
        respond(c, 503, "text/plain", plain("no metrics yet\n"));
      } else {
        respond(c, 200, prom::kContentType, t);
      }
    }
  }

  // Reads what is there; false when the connection is finished with (closed, error, refused).
  bool read_conn(Conn& c, Micros now) {
    char buf[4096];
    // At most kMetricsReadBudget bytes per round: a client that keeps sending cannot hold this thread.
    for (size_t budget = kMetricsReadBudget; budget >= sizeof buf; budget -= sizeof buf) {
      const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      if (c.state != Conn::kReading) continue;  // bytes after the head (a body): ignored, bounded by recv
      const size_t room = http::kMaxRequestHead + 1 - c.in.size();
      c.in.append(buf, std::min<size_t>(room, static_cast<size_t>(n)));
      if (http::head_length(c.in) > 0) {
        on_request(c, now);
      } else if (c.in.size() > http::kMaxRequestHead) {
        respond(c, 431, "text/plain", plain("request head too large\n"));
      }
      if (c.state == Conn::kWriting) return true;
    }
    return true;
  }

  // Writes what the socket takes; false when done (all sent) or broken.
  bool write_conn(Conn& c) {
    for (;;) {
      const size_t total = c.head.size() + c.body->size();
      if (c.sent >= total) {
        shutdown(c.fd, SHUT_WR);
        return false;
      }
      const char* p;
      size_t left;
      if (c.sent < c.head.size()) {
        p = c.head.data() + c.sent;
        left = c.head.size() - c.sent;
      } else {
        p = c.body->data() + (c.sent - c.head.size());
        left = total - c.sent;
      }
      const ssize_t n = send(c.fd, p, left, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      c.sent += static_cast<size_t>(n);
    }
  }

  void accept_all(Micros now) {
    for (;;) {
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN (or a transient error: the next poll retries)
      if (conns.size() >= kMaxMetricsConnections) {
        // Full: the oldest connection still sending its request goes; when every one is being
        // served, the new one is refused.
        auto victim = std::find_if(conns.begin(), conns.end(), [](const Conn& c) { return c.state == Conn::kReading; });
        if (victim == conns.end()) {
          close(fd);
          continue;
        }
        close(victim->fd);
        conns.erase(victim);
      }
      Conn c;
      c.fd = fd;
      c.accepted = now;
      conns.push_back(std::move(c));
    }
  }

  void serve_loop() {
    std::vector<pollfd> fds;
    while (!stopping) {
      fds.clear();
      fds.push_back({listen_fd, POLLIN, 0});
      fds.push_back({wake_fd, POLLIN, 0});
      for (const Conn& c : conns) {
        fds.push_back({c.fd, static_cast<short>(c.state == Conn::kWriting ? POLLOUT : POLLIN), 0});
      }
      if (poll(fds.data(), fds.size(), kMaxPollMs) < 0 && errno != EINTR) {
        LOG_ERROR("metrics: poll: %s", std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(kMaxPollMs));
      }
      Micros now = mono_us();
      if (fds[1].revents != 0) drain(wake_fd);
      // Connections first (fds[2...] match conns in order), then new ones.
      size_t i = 2;
      for (auto it = conns.begin(); it != conns.end(); ++i) {
        Conn& c = *it;
        bool keep = true;
        if (fds[i].revents != 0) {
          if (c.state == Conn::kWriting) {
            keep = write_conn(c);
          } else {
            keep = read_conn(c, now);
            if (keep && c.state == Conn::kWriting) keep = write_conn(c);
          }
        }
        if (keep && c.state == Conn::kReading && now - c.accepted > kMetricsRequestTimeout) keep = false;
        if (keep && c.state == Conn::kWriting && now > c.write_deadline) keep = false;
        if (!keep) {
          close(c.fd);
          it = conns.erase(it);
        } else {
          ++it;
        }
      }
      if (fds[0].revents != 0) accept_all(now);
      now = mono_us();
      answer_waiting(now);
      for (auto it = conns.begin(); it != conns.end();) {
        if (it->state == Conn::kWriting && it->sent == 0 && !write_conn(*it)) {
          close(it->fd);
          it = conns.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const Conn& c : conns) close(c.fd);
    conns.clear();
  }
};

MetricsEndpoint::MetricsEndpoint() : impl_(std::make_unique<Impl>()) {}

MetricsEndpoint::~MetricsEndpoint() {
  stop();
  if (impl_->listen_fd >= 0) close(impl_->listen_fd);
  if (impl_->wake_fd >= 0) close(impl_->wake_fd);
}

bool MetricsEndpoint::start(const MetricsEndpointOptions& opts, std::string* err) {
  Impl& m = *impl_;
  m.opts = opts;
  net::Endpoint ep;
  ep.host = opts.address;
  ep.port = static_cast<uint16_t>(opts.port);
  std::string why;
  m.listen_fd = opts.port < 0 || opts.port > 65535 ? -1 : net::listen_on(ep, &why);
  if (m.listen_fd >= 0) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    if (getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
      m.port = sa.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
    }
  }
  if (m.listen_fd < 0 || m.port <= 0) {
    *err = "metrics: cannot listen on " + opts.address + ":" + (opts.port == 0 ? "auto" : std::to_string(opts.port)) +
           " (address not local, or port in use)" + (why.empty() ? "" : ": " + why);
    return false;
  }
  m.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m.wake_fd < 0) {
    *err = std::string("metrics: eventfd: ") + std::strerror(errno);
    return false;
  }
  try {
    m.renderer = std::thread([&m] { m.render_loop(); });
    m.server = std::thread([&m] { m.serve_loop(); });
  } catch (const std::system_error& e) {
    *err = std::string("metrics: cannot start its threads: ") + e.what();
    stop();
    return false;
  }
  return true;
}

int MetricsEndpoint::port() const { return impl_->port; }

bool MetricsEndpoint::wanted() const { return impl_->want.load(std::memory_order_relaxed); }

void MetricsEndpoint::publish(Renderer render) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->snapshot = std::move(render);
    ++impl_->snapshot_version;
    impl_->snapshot_at = mono_us();
    impl_->want = false;
  }
  impl_->snapshot_cv.notify_one();
}

void MetricsEndpoint::publish(std::string text) {
  auto t = std::make_shared<const std::string>(std::move(text));
  publish(Renderer([t] { return *t; }));
}

void MetricsEndpoint::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stopping = true;
  }
  m.snapshot_cv.notify_all();
  if (m.wake_fd >= 0) wake(m.wake_fd);
  if (m.server.joinable()) m.server.join();
  if (m.renderer.joinable()) m.renderer.join();
}

bool start_metrics_endpoint(bool enabled, const MetricsEndpointOptions& opts, MetricsEndpoint* endpoint,
                            std::string* err) {
  if (!enabled) return true;
  if (!endpoint->start(opts, err)) return false;
  LOG_INFO("metrics on http://%s:%d/metrics", opts.address.c_str(), endpoint->port());
  return true;
}

}  // namespace gem
