// Issue 21, items 3 and 4: what reaches gem-schd from the side must not stop its grants or grow it
// without bound. A raw pod manager keeps asking for the token while
//  - a large --secrets file is reloaded (10^6 lines, read and parsed on the loader thread), or a
//    200 MiB one-line file is written (refused by its size, never read);
//  - /metrics is scraped at 2*10^5 clients (rendered by the HTTP thread from the loop's snapshot);
// and the metrics endpoint keeps answering with slow and idle connections open, and refuses a huge
// POST body without holding it. Bounds are generous (the pod manager's 600 ms timeout, RSS in
// hundreds of MiB); before the fixes each of these was off by seconds or by hundreds of MiB.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "harness.h"
#include "prom_scrape.h"
#include "raw_client.h"

namespace gemtest {
namespace {

namespace proto = gem::proto;

// The pod manager's wait for a grant-or-heartbeat (pod-manager/route.h kDefaultSchedulerTimeout).
constexpr double kPmgrTimeoutS = 0.6;

/// A pod manager by hand: asks for the token, takes the grant, gives it back, again, until told to
/// stop; records the longest wait for the grant (heartbeats do not count: the pod manager resets
/// its timer on them, but a stalled loop sends neither).
class GrantProbe {
 public:
  bool start(const std::string& sock, const std::string& client, const std::string& secret = "") {
    if (!c_.connect(sock) || !c_.hello(client, proto::Role::kPodManager, "", secret)) return false;
    const auto m = c_.receive_skipping_heartbeats(5 * slack());
    if (!m || !std::holds_alternative<proto::ClientSettings>(m->body)) return false;
    thread_ = std::thread([this] { loop(); });
    return true;
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  ~GrantProbe() { stop(); }
  double longest_wait_s() const { return longest_us_.load() / 1e6; }
  int grants() const { return grants_.load(); }
  int late() const { return late_.load(); }
  bool broken() const { return broken_.load(); }

 private:
  void loop() {
    uint64_t id = 100;
    while (!stop_) {
      const Micros asked = mono_us();
      if (!c_.send({++id, proto::TokenRequest{1000}})) break;
      Micros last = asked;
      bool granted = false;
      while (!stop_ && !granted) {
        const auto m = c_.receive(0.1);
        const Micros now = mono_us();
        if (m && std::holds_alternative<proto::TokenGrant>(m->body)) granted = true;
        if (m || granted) {
          longest_us_ = std::max<Micros>(longest_us_.load(), now - last);
          if (now - last > static_cast<Micros>(kPmgrTimeoutS * 1e6)) ++late_;
          last = now;
        }
        if (!m && c_.closed()) {
          broken_ = true;
          return;
        }
        if (!m && now - last > 10000000) {  // 10 s without a word: give up, the test fails on it
          longest_us_ = std::max<Micros>(longest_us_.load(), now - last);
          ++late_;
          last = now;
        }
      }
      if (!granted) break;
      ++grants_;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (!c_.send({++id, proto::TokenRelease{1000, 1000, 0, 0, false}})) break;
    }
  }
  RawClient c_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, broken_{false};
  std::atomic<Micros> longest_us_{0};
  std::atomic<int> grants_{0}, late_{0};
};

/// Peak RSS (VmHWM) of `pid` in KiB; -1 if unreadable. A body read and freed shows here, not in VmRSS.
long vm_hwm_kib(int pid) {
  const std::string s = read_text("/proc/" + std::to_string(pid) + "/status");
  const size_t at = s.find("VmHWM:");
  return at == std::string::npos ? -1 : std::strtol(s.c_str() + at + 6, nullptr, 10);
}

/// A TCP connection to 127.0.0.1:port (blocking); -1 on failure.
int tcp_connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

class EdgeLoadTest : public GemTest {
 protected:
  int start_scheduler_with_metrics(SchedulerOptions o = {}) {
    o.stats = false;
    o.extra.insert(o.extra.end(), {"--metrics_port", "auto"});
    start_scheduler(o);
    const int port = metrics_port_from_log(path("schd.log"), 10 * slack());
    EXPECT_GT(port, 0) << tail(path("schd.log"));
    return port;
  }
  static std::string secrets_lines(size_t n) {
    std::string s = "a s3cret-of-a\n";
    s.reserve(n * 40);
    for (size_t i = 0; i < n; ++i) s += "ns-" + std::to_string(i % 100) + "/pod-" + std::to_string(i) + " sec-" +
                                        std::to_string(i * 7919) + "\n";
    return s;
  }
  void write_secrets(const std::string& text) {
    write_text(path("secrets.tmp"), text);
    ASSERT_EQ(chmod(path("secrets.tmp").c_str(), 0600), 0);
    ASSERT_EQ(rename(path("secrets.tmp").c_str(), path("secrets").c_str()), 0);
  }
};

// Item 3: a 10^6-line --secrets file is read and parsed off the loop (before: 0.5 to several
// seconds without a grant, each reload), and a 200 MiB line is refused by the file-size cap
// without being read (before: RSS +700 MB and seconds of stall).
TEST_F(EdgeLoadTest, SecretsReloadDoesNotStallGrantsOrGrowTheScheduler) {
  write_config({{"a", 1.0, 1.0}});
  write_secrets("a s3cret-of-a\n");
  SchedulerOptions so;
  so.stats = false;
  so.extra = {"--secrets", path("secrets")};
  start_scheduler(so);
  GrantProbe probe;
  ASSERT_TRUE(probe.start(path("schd.sock"), "a", "s3cret-of-a")) << tail(path("schd.log"));
  ASSERT_TRUE(wait_until(5 * slack(), [&] { return probe.grants() > 10; })) << tail(path("schd.log"));
  const long rss0 = vm_hwm_kib(schd_->pid());

  const std::string big = secrets_lines(999990);
  for (int round = 0; round < 3; ++round) {
    write_secrets(big + "# round " + std::to_string(round) + "\n");
    sleep_ms(2500);
  }
  const long rss_big = vm_hwm_kib(schd_->pid());
  // One line of 200 MiB: over the size cap, refused before it is read.
  {
    std::string huge(200u << 20, 'x');
    huge += "\n";
    write_secrets("a " + huge);
  }
  sleep_ms(3000);
  const long rss1 = vm_hwm_kib(schd_->pid());
  const int grants = probe.grants();
  probe.stop();
  std::printf("    grants %d, longest wait %.0f ms, %d waits over %.0f ms; peak RSS %ld -> %ld (10^6 lines) -> %ld KiB "
              "(200 MiB line)\n", grants, probe.longest_wait_s() * 1e3, probe.late(), kPmgrTimeoutS * 1e3, rss0, rss_big,
              rss1);
  EXPECT_FALSE(probe.broken()) << tail(path("schd.log"));
  EXPECT_EQ(probe.late(), 0) << "the loop stalled past the pod manager's timeout:\n" << tail(path("schd.log"));
  EXPECT_GT(grants, 100);
  // 10^6 secrets take about 150 MiB a table (the old one and the new one meet at a swap); the 200 MiB
  // line must add nothing: it is refused by its size.
  // (AddressSanitizer's shadow memory and quarantine about double that.)
  EXPECT_LT(rss_big - rss0, (sanitized() ? 1200 : 600) * 1024) << "peak RSS grew by " << (rss_big - rss0) / 1024 << " MiB";
  // Under AddressSanitizer the quarantine (256 MiB by default) keeps the tables freed by the earlier
  // reloads in the peak: 64 to 110 MiB more were measured there, so only the plain build checks this.
  if (!sanitized()) {
    EXPECT_LT(rss1 - rss_big, 64 * 1024) << "the 200 MiB line grew the peak RSS by " << (rss1 - rss_big) / 1024 << " MiB";
  }
  const std::string log = read_text(path("schd.log"));
  EXPECT_NE(log.find("keeping the last good secrets"), std::string::npos) << tail(path("schd.log"));
  // The last good secrets (the 10^6-line ones) still hold: a's secret is accepted.
  RawClient again;
  ASSERT_TRUE(again.connect(path("schd.sock")));
  ASSERT_TRUE(again.hello("b-not-a", proto::Role::kPodManager, "", "x"));  // refused, keeps the probe's slot free
  const auto m = again.receive_skipping_heartbeats(5 * slack());
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(error_code(*m), static_cast<int>(proto::ErrorCode::kDenied)) << proto::type_name(m->body);
  stop_daemons_expect_clean();
}

// Item 4: a POST with a 256 MiB body is refused without being held (before: the daemon grew by
// the body's size), then a scrape still works.
TEST_F(EdgeLoadTest, MetricsRefusesLargeBodiesWithoutHoldingThem) {
  write_config({{"a", 1.0, 1.0}});
  const int port = start_scheduler_with_metrics();
  ASSERT_GT(port, 0);
  ASSERT_EQ(scrape(port).status, 200);
  const long rss0 = vm_hwm_kib(schd_->pid());
  const size_t body = 256u << 20;
  const int fd = tcp_connect(port);
  ASSERT_GE(fd, 0);
  const std::string head = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body) + "\r\n\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  const std::string chunk(1 << 20, 'x');
  size_t sent = 0;
  const Micros deadline = mono_us() + static_cast<Micros>(20e6 * slack());
  while (sent < body && mono_us() < deadline) {
    const ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;  // refused and closed (or the 5 s send timeout: nobody reads it)
    sent += static_cast<size_t>(n);
  }
  sleep_ms(500);
  const long rss1 = vm_hwm_kib(schd_->pid());
  close(fd);
  std::printf("    sent %zu MiB of a 256 MiB body; peak RSS %ld -> %ld KiB\n", sent >> 20, rss0, rss1);
  EXPECT_LT(rss1 - rss0, 32 * 1024) << "peak RSS grew by " << (rss1 - rss0) / 1024 << " MiB";
  const PromScrape s = scrape(port);
  EXPECT_EQ(s.status, 200);
  stop_daemons_expect_clean();
}

// Item 4: 2 slowloris connections (a header byte a second) and 300 idle ones do not keep a scrape
// out (before: every scrape timed out while they were open).
TEST_F(EdgeLoadTest, MetricsAnswersBesideSlowAndIdleConnections) {
  write_config({{"a", 1.0, 1.0}});
  const int port = start_scheduler_with_metrics();
  ASSERT_GT(port, 0);
  ASSERT_EQ(scrape(port).status, 200);
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    const int fd = tcp_connect(port);
    if (fd >= 0) idle.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> slow;
  for (int i = 0; i < 2; ++i) {
    slow.emplace_back([&] {
      const int fd = tcp_connect(port);
      if (fd < 0) return;
      const std::string start = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
      send(fd, start.data(), start.size(), MSG_NOSIGNAL);
      while (!stop) {
        if (send(fd, "X", 1, MSG_NOSIGNAL) != 1) break;  // closed by the server: fine
        for (int k = 0; k < 10 && !stop; ++k) sleep_ms(100);
      }
      close(fd);
    });
  }
  sleep_ms(1500);
  int ok = 0;
  for (int i = 0; i < 3; ++i) {
    const Micros t0 = mono_us();
    const PromScrape s = scrape(port);  // 5 s timeouts
    std::printf("    scrape %d beside 2 slow + %zu idle connections: status %d after %lld ms\n", i, idle.size(),
                s.status, static_cast<long long>((mono_us() - t0) / 1000));
    ok += s.status == 200 ? 1 : 0;
  }
  stop = true;
  for (auto& t : slow) t.join();
  for (const int fd : idle) close(fd);
  EXPECT_EQ(ok, 3);
  EXPECT_TRUE(schd_->alive());
  stop_daemons_expect_clean();
}

// Item 4: scrapes at 2*10^5 clients never hold up a grant (before: each scrape stopped the loop
// for the render, over the pod manager's timeout), and --metrics_port does not hold up start-up.
TEST_F(EdgeLoadTest, ScrapesAtScaleDoNotStallGrants) {
  std::string cfg = "200001\na 1 1 0\n";
  for (int i = 0; i < 200000; ++i) cfg += "ns-" + std::to_string(i % 100) + "/pod-" + std::to_string(i) + " 0 1 0\n";
  write_text(path("resource-config.txt"), cfg);
  const int port = start_scheduler_with_metrics();
  ASSERT_GT(port, 0);
  GrantProbe probe;
  ASSERT_TRUE(probe.start(path("schd.sock"), "a")) << tail(path("schd.log"));
  int scrapes = 0;
  for (int i = 0; i < 4; ++i) {
    const PromScrape s = scrape(port);
    if (s.status == 200) ++scrapes;
    sleep_ms(1200);  // past the text's max age: the next scrape asks for a new snapshot
  }
  // A scrape may take longer than prom_scrape's 5 s here; success is not the point, grants are.
  const int grants = probe.grants();
  probe.stop();
  std::printf("    %d scrapes answered; grants %d, longest wait %.0f ms, %d waits over %.0f ms\n", scrapes, grants,
              probe.longest_wait_s() * 1e3, probe.late(), kPmgrTimeoutS * 1e3);
  EXPECT_FALSE(probe.broken()) << tail(path("schd.log"));
  EXPECT_EQ(probe.late(), 0) << "a scrape stalled the loop past the pod manager's timeout";
  EXPECT_GT(grants, 10);
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
