// A malformed or oversized frame closes that connection and nothing else: gem-schd and gem-pmgr
// keep serving the client that runs meanwhile.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "gem/protocol.h"
#include "harness.h"

namespace gemtest {
namespace {

void put32(std::vector<uint8_t>* b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b->push_back(static_cast<uint8_t>(v >> s));
}
void put16(std::vector<uint8_t>* b, uint16_t v) {
  b->push_back(static_cast<uint8_t>(v >> 8));
  b->push_back(static_cast<uint8_t>(v));
}
std::vector<uint8_t> header(uint32_t magic, uint16_t version, uint16_t type, uint32_t len) {
  std::vector<uint8_t> b;
  put32(&b, magic);
  put16(&b, version);
  put16(&b, type);
  put32(&b, 0);
  put32(&b, 7);  // request id
  put32(&b, len);
  return b;
}

struct Abuse {
  const char* what;
  std::vector<uint8_t> bytes;
};

std::vector<Abuse> abuses() {
  std::vector<Abuse> v;
  std::vector<uint8_t> garbage;
  for (int i = 0; i < 64; ++i) garbage.push_back(static_cast<uint8_t>(i * 37 + 11));
  v.push_back({"garbage", garbage});
  v.push_back({"payload_len 100000", header(gem::proto::kMagic, gem::proto::kVersion, 3, 100000)});
  auto wrong_magic = header(0x47454D32, gem::proto::kVersion, 3, 8);
  wrong_magic.resize(wrong_magic.size() + 8, 0);
  v.push_back({"wrong magic", wrong_magic});
  auto wrong_version = header(gem::proto::kMagic, 99, 3, 8);
  wrong_version.resize(wrong_version.size() + 8, 0);
  v.push_back({"unknown version", wrong_version});
  auto wrong_type = header(gem::proto::kMagic, gem::proto::kVersion, 999, 0);
  v.push_back({"unknown type", wrong_type});
  std::vector<uint8_t> early;
  gem::proto::encode({3, gem::proto::TokenRequest{0}}, &early);
  v.push_back({"TokenRequest before Hello", early});
  std::vector<uint8_t> trailing;
  gem::proto::encode({3, gem::proto::TokenRequest{0}}, &trailing);
  trailing[19] = static_cast<uint8_t>(trailing[19] + 4);  // payload_len 4 more than the body
  trailing.resize(trailing.size() + 4, 0xee);
  v.push_back({"trailing payload bytes", trailing});
  return v;
}

/// Connects to `sock`, sends `bytes`, and reports whether the daemon then closed the connection
/// (recv returns 0; an Error frame may come first) within 2 s.
bool daemon_closes(const std::string& sock, const std::vector<uint8_t>& bytes, std::string* why) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    *why = std::string("connect: ") + std::strerror(errno);
    if (fd >= 0) close(fd);
    return false;
  }
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    *why = "send failed";
    close(fd);
    return false;
  }
  uint8_t buf[2048];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) continue;  // an Error frame before the close is fine
    close(fd);
    if (n == 0) return true;
    *why = errno == EAGAIN || errno == EWOULDBLOCK ? "still open after 2 s" : std::strerror(errno);
    return false;
  }
}

class ProtocolAbuseTest : public GemTest {};

TEST_F(ProtocolAbuseTest, MalformedFramesCloseOnlyThatConnection) {
  write_config({{"steady", 1.0, 1.0}});
  start_scheduler();
  start_pod_manager("steady");
  AppOptions a;
  a.client = "steady";
  a.seconds = 4;
  App& app = start_app(a);
  sleep_ms(1000);
  const Micros from = mono_us();
  for (const auto& [daemon, sock] : {std::pair<std::string, std::string>{"gem-schd", path("schd.sock")},
                                     {"gem-pmgr", pmgr_socket("steady")}}) {
    for (const Abuse& ab : abuses()) {
      std::string why;
      EXPECT_TRUE(daemon_closes(sock, ab.bytes, &why)) << daemon << ", " << ab.what << ": " << why;
      sleep_ms(50);
    }
    // A valid Hello with the wrong role or client is refused too, and only that connection goes.
    std::vector<uint8_t> hello;
    gem::proto::Hello h;
    h.role = daemon == "gem-schd" ? gem::proto::Role::kPodManager : gem::proto::Role::kHook;
    h.client = "intruder";
    gem::proto::encode({1, h}, &hello);
    std::string why;
    EXPECT_TRUE(daemon_closes(sock, hello, &why)) << daemon << ", Hello for an unknown client: " << why;
  }
  const Micros to = mono_us();
  EXPECT_TRUE(schd_->alive());
  EXPECT_TRUE(pmgrs_["steady"]->alive());
  const auto st = app.proc->wait_for(4 + 10 * slack());
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_ok(*st)) << describe_status(*st);
  // The client kept running throughout: no pause longer than 50 ms, and it kept taking tokens.
  auto ks = kernels_of(kernels(), app.proc->pid());
  std::sort(ks.begin(), ks.end(), [](const Kernel& x, const Kernel& y) { return x.start < y.start; });
  Micros worst = 0, prev_end = 0;
  size_t during = 0;
  for (const Kernel& k : ks) {
    if (k.start >= from && k.start <= to) ++during;
    if (prev_end != 0 && k.start >= from && k.start <= to + 50000) worst = std::max(worst, k.start - prev_end);
    prev_end = std::max(prev_end, k.end);
  }
  std::printf("    abuse lasted %lld ms; %zu kernels meanwhile; longest pause %.1f ms\n",
              static_cast<long long>((to - from) / 1000), during, worst / 1000.0);
  EXPECT_GT(during, static_cast<size_t>((to - from) / 1000 / 2)) << "the client barely ran during the abuse";
  EXPECT_LE(worst, static_cast<Micros>(50000 * slack()));
  EXPECT_GT(app.hook_stats().value("tokens", 0LL), 10);
  EXPECT_EQ(app.hook_stats().value("unthrottled_launches", -1LL), 0) << "the client lost its daemons";
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
