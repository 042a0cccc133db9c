// Load generator for gem-webhook: one keep-alive TLS connection per thread (cpp-httplib SSLClient),
// first GET /healthz (baseline: TLS + HTTP + server loop, no admission work), then POST /mutate
// with an AdmissionReview. Prints one JSON line per phase: requests/s and latency percentiles.
//   webhook-bench --port P --ca ca.crt --review review.json [--host 127.0.0.1] [--seconds 5]
//                 [--warmup_s 1] [--connections 1]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string host = "127.0.0.1", ca, review;
  int port = 0, connections = 1;
  double seconds = 5, warmup_s = 1;
};

struct PhaseResult {
  std::vector<double> lat_us;
  long errors = 0;
  double wall_s = 0;
};

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())));
  std::nth_element(v.begin(), v.begin() + long(i), v.end());
  return v[i];
}

// Runs `one` on each connection for warmup then `seconds`; `one` returns false on a failed request.
template <class F>
PhaseResult run_phase(const Args& a, F one) {
  std::vector<PhaseResult> per(size_t(a.connections));
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int c = 0; c < a.connections; ++c) {
    threads.emplace_back([&, c] {
      httplib::SSLClient cli(a.host, a.port);
      cli.set_ca_cert_path(a.ca.c_str());
      cli.enable_server_certificate_verification(true);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);  // as Go clients (the API server) do
      cli.set_decompress(false);  // no Accept-Encoding, as the server ignores it anyway
      auto start = Clock::now();
      auto warm_end = start + std::chrono::duration<double>(a.warmup_s);
      auto end = warm_end + std::chrono::duration<double>(a.seconds);
      PhaseResult& r = per[size_t(c)];
      r.lat_us.reserve(1 << 20);
      for (;;) {
        auto s = Clock::now();
        if (s >= end) break;
        bool ok = one(cli);
        auto e = Clock::now();
        if (s >= warm_end) {
          r.lat_us.push_back(std::chrono::duration<double, std::micro>(e - s).count());
          if (!ok) ++r.errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  PhaseResult all;
  all.wall_s = std::chrono::duration<double>(Clock::now() - t0).count() - a.warmup_s;
  for (auto& r : per) {
    all.lat_us.insert(all.lat_us.end(), r.lat_us.begin(), r.lat_us.end());
    all.errors += r.errors;
  }
  return all;
}

void report(const char* name, PhaseResult r, const Args& a) {
  double n = double(r.lat_us.size());
  double rate = n / a.seconds;
  double p50 = pct(r.lat_us, 50), p99 = pct(r.lat_us, 99), p999 = pct(r.lat_us, 99.9);
  double mx = r.lat_us.empty() ? 0 : *std::max_element(r.lat_us.begin(), r.lat_us.end());
  std::printf(
      "{\"phase\": \"%s\", \"connections\": %d, \"requests\": %.0f, \"errors\": %ld, \"per_s\": %.0f, "
      "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f}\n",
      name, a.connections, n, r.errors, rate, p50 / 1000, p99 / 1000, p999 / 1000, mx / 1000);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i], v = argv[i + 1];
    if (f == "--host") a.host = v;
    else if (f == "--port") a.port = std::atoi(v.c_str());
    else if (f == "--ca") a.ca = v;
    else if (f == "--review") a.review = v;
    else if (f == "--seconds") a.seconds = std::atof(v.c_str());
    else if (f == "--warmup_s") a.warmup_s = std::atof(v.c_str());
    else if (f == "--connections") a.connections = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  if (!a.port || a.ca.empty() || a.review.empty() || a.connections < 1 || a.seconds <= 0) {
    std::fprintf(stderr, "usage: webhook-bench --port P --ca CA --review FILE [--seconds 5] [--connections 1]\n");
    return 2;
  }
  std::ifstream in(a.review);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string body = ss.str();
  if (body.empty()) {
    std::fprintf(stderr, "cannot read %s\n", a.review.c_str());
    return 2;
  }

  report("healthz", run_phase(a, [](httplib::SSLClient& cli) {
           auto res = cli.Get("/healthz");
           return res && res->status == 200;
         }), a);
  std::atomic<long> unpatched{0};
  PhaseResult m = run_phase(a, [&](httplib::SSLClient& cli) {
    auto res = cli.Post("/mutate", body, "application/json");
    if (!res || res->status != 200) return false;
    if (res->body.find("\"patch\"") == std::string::npos) ++unpatched;
    return true;
  });
  if (unpatched.load()) {
    std::fprintf(stderr, "%ld admissions without a patch: wrong fixture?\n", unpatched.load());
    m.errors += unpatched.load();
  }
  report("mutate", m, a);
  return m.errors ? 1 : 0;
}
