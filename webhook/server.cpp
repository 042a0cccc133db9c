#include "server.h"

#include <signal.h>

#include <atomic>
#include <thread>

#include <httplib.h>

#include "access_log.h"
#include "tls_reload.h"

namespace gemwh {
namespace {

// Per-request state shared by the pre-routing handler, the route and the logger, which httplib
// runs on the same worker thread for one request.
struct RequestState {
  std::chrono::steady_clock::time_point start{};
  bool started = false;
  bool has_review = false;
  size_t body_bytes = 0;  // /mutate reads its body itself: req.body is empty there
  AdmissionResult review;
};
thread_local RequestState t_state;

void log_msg(const char* level, const std::string& text) { write_line(stderr, format_message(level, text)); }

}  // namespace

int run_server(const ServerConfig& cfg) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CertReloader certs(cfg.cert_path, cfg.key_path);
  std::string err;
  if (!certs.reload(&err)) {
    log_msg("error", "cannot load the serving certificate: " + err);
    return 1;
  }
  httplib::SSLServer server([&](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    return certs.install(&ctx);
  });
  if (!server.is_valid()) {
    log_msg("error", "cannot set up TLS with " + cfg.cert_path + " and " + cfg.key_path);
    return 1;
  }

  const size_t threads = cfg.threads ? cfg.threads : 1;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_payload_max_length(cfg.max_body_bytes);
  server.set_tcp_nodelay(true);  // small responses: no Nagle/delayed-ACK stalls (about 40 ms each)
  server.set_keep_alive_max_count(100000);
  server.set_keep_alive_timeout(30);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);

  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    t_state.start = std::chrono::steady_clock::now();
    t_state.started = true;
    // Responses are small: gzip would cost more than it saves (and httplib compresses JSON when
    // asked). The Request object is the server's own, non-const one.
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    return httplib::Server::HandlerResponse::Unhandled;
  });

  const AdmissionOptions admission = cfg.admission;
  // The body is read here, not by httplib: httplib 0.11 enforces payload_max_length only for
  // Content-Length bodies, so a chunked body is capped while it arrives.
  const size_t max_body = cfg.max_body_bytes;
  server.Post("/mutate", [&admission, max_body](const httplib::Request& req, httplib::Response& res,
                                                 const httplib::ContentReader& content_reader) {
    auto reject = [&](int status, std::string why) {
      t_state.has_review = true;
      t_state.review = AdmissionResult();
      t_state.review.decision = "bad_request";
      t_state.review.reason = why;
      res.status = status;
      res.set_content(nlohmann::json{{"error", std::move(why)}}.dump(), "application/json");
    };
    std::string body;
    bool too_big = false;
    bool complete = content_reader([&](const char* data, size_t n) {
      if (body.size() + n > max_body) {
        too_big = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (too_big) {
      res.set_header("Connection", "close");  // the rest of the body is still on the wire
      return reject(413, "body larger than --max_body_bytes");
    }
    if (!complete && res.status == 413) {
      // A Content-Length over the limit: httplib skipped the body, the connection stays usable.
      return reject(413, "body larger than --max_body_bytes");
    }
    if (!complete) {
      res.set_header("Connection", "close");
      return reject(400, "incomplete body");
    }
    std::string ctype = req.get_header_value("Content-Type");
    if (!ctype.empty() && ctype.rfind("application/json", 0) != 0) {
      return reject(415, "Content-Type " + ctype + " is not application/json");
    }
    t_state.review = review(body, admission);
    t_state.has_review = true;
    t_state.body_bytes = body.size();
    res.status = t_state.review.http_status;
    res.set_content(t_state.review.body, "application/json");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string why;
    switch (res.status) {
      case 404: why = "no such path " + req.path + " (POST /mutate, GET /healthz)"; break;
      case 413: why = "body larger than --max_body_bytes"; break;
      case 400: why = "malformed HTTP request"; break;
      default: why = "HTTP " + std::to_string(res.status); break;
    }
    res.set_content(nlohmann::json{{"error", why}}.dump(), "application/json");
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(R"({"error":"internal error"})", "application/json");
  });
  const bool access_log = cfg.access_log;
  server.set_logger([access_log](const httplib::Request& req, const httplib::Response& res) {
    if (access_log) {
      AccessRecord rec;
      rec.remote = req.remote_addr + ":" + std::to_string(req.remote_port);
      rec.method = req.method;
      rec.path = req.path;
      rec.status = res.status;
      rec.bytes_in = t_state.body_bytes ? t_state.body_bytes : req.body.size();
      rec.bytes_out = res.body.size();
      if (t_state.started) {
        rec.dur_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - t_state.start)
                         .count();
      }
      if (t_state.has_review) rec.review = &t_state.review;
      write_line(stderr, format_access(rec));
    }
    t_state.started = false;
    t_state.has_review = false;
    t_state.body_bytes = 0;
  });

  if (!server.bind_to_port(cfg.bind.c_str(), cfg.port)) {
    log_msg("error", "cannot listen on " + cfg.bind + ":" + std::to_string(cfg.port));
    return 1;
  }
  certs.start(cfg.cert_check, [](const std::string& m) { log_msg("info", m); });

  std::atomic<bool> stopped{false};
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (stopped.load()) return;
    log_msg("info", std::string("got ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", stopping");
    std::this_thread::sleep_for(cfg.shutdown_delay);
    server.stop();
  });
  log_msg("info", "gem-webhook listening on https://" + cfg.bind + ":" + std::to_string(cfg.port) +
                      " (GPU resource " + cfg.admission.mutate.gpu_resource + ")");
  bool ok = server.listen_after_bind();
  stopped = true;
  if (signals.joinable()) {
    pthread_kill(signals.native_handle(), SIGTERM);  // wakes sigwait if listen ended on its own
    signals.join();
  }
  certs.stop();
  log_msg("info", "gem-webhook stopped");
  return ok ? 0 : 1;
}

}  // namespace gemwh
