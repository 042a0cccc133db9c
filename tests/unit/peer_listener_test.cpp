// Bounds of a daemon's connections: Peer (read budget, backlog checked before queueing) and
// Listener (connection cap, peer uid check, socket file mode), on real socket pairs.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "gem/listener.h"
#include "gem/net.h"
#include "gem/peer.h"
#include "gem/protocol.h"

namespace gem {
namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a = sv[0];
    b = sv[1];
  }
};

std::string temp_dir() {
  char tmpl[] = "/tmp/gem-listener-test-XXXXXX";
  return mkdtemp(tmpl);
}

// The first frame the server side sent on fd (blocking, 2 s), or nullopt when it closed silently.
std::optional<proto::Message> read_frame(int fd) {
  proto::FrameBuffer fb;
  for (int i = 0; i < 200; ++i) {
    proto::Message m;
    if (fb.next(&m, nullptr) == proto::DecodeStatus::kOk) return m;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10) <= 0) continue;
    uint8_t buf[512];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    fb.append(buf, static_cast<size_t>(n));
  }
  return std::nullopt;
}

TEST(Peer, BacklogCheckedBeforeQueueing) {
  Pair p;
  int small = 4096;
  setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  Peer peer(p.a);  // p.b never reads
  const proto::Message m{1, proto::TokenRequest{7}};
  size_t sent = 0;
  while (peer.send(m)) {
    ASSERT_LE(peer.backlog(), Peer::kMaxBacklog);
    ASSERT_LT(++sent, 100000u) << "a peer that never reads was never refused";
  }
  const size_t at_refusal = peer.backlog();
  EXPECT_LE(at_refusal, Peer::kMaxBacklog);
  EXPECT_GT(at_refusal + 28, Peer::kMaxBacklog) << "refused only when the next frame would not fit";
  EXPECT_FALSE(peer.send(m));
  EXPECT_EQ(peer.backlog(), at_refusal) << "a refused frame is not queued";
  close(p.b);
}

TEST(Peer, ReadBudgetPerCallLosesNothing) {
  Pair p;
  Peer peer(p.b);
  std::vector<uint8_t> bytes;
  const size_t frames = 4000;  // 4000 * 28 bytes = 112 KB, several budgets
  for (size_t i = 0; i < frames; ++i) proto::encode({i, proto::TokenRequest{i}}, &bytes);
  std::thread writer([&] { net::send_all(p.a, bytes.data(), bytes.size(), 5000); });
  std::vector<proto::Message> got;
  int calls = 0;
  while (got.size() < frames && calls < 100000) {
    std::vector<proto::Message> batch;
    std::string why;
    bool more = false;
    ASSERT_TRUE(peer.read_messages(&batch, &why, &more)) << why;
    EXPECT_LE(batch.size() * 28, Peer::kReadBudget + 4096) << "one call read past its budget";
    got.insert(got.end(), batch.begin(), batch.end());
    ++calls;
    if (!more) {
      pollfd pf{p.b, POLLIN, 0};
      poll(&pf, 1, 50);
    }
  }
  writer.join();
  ASSERT_EQ(got.size(), frames);
  for (size_t i = 0; i < frames; ++i) ASSERT_EQ(got[i].request_id, i);
  EXPECT_GT(calls, 6) << "112 KB should take several 16 KiB rounds";
  close(p.a);
}

TEST(Listener, CapRefusesWithBusyAndKeepsTheOthers) {
  const std::string dir = temp_dir();
  net::Endpoint ep;
  ep.unix_path = dir + "/cap.sock";
  std::string err;
  const int lfd = net::listen_on(ep, &err);
  ASSERT_GE(lfd, 0) << err;
  ListenerOptions o;
  o.max_connections = 2;
  Listener l(lfd, true, o);
  std::vector<int> clients, accepted;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(net::connect_to(ep, 1000, &err));
    ASSERT_GE(clients.back(), 0) << err;
  }
  for (int round = 0; round < 100 && accepted.size() + l.refused() < 3; ++round) {
    for (int fd : l.accept_ready(accepted.size())) accepted.push_back(fd);
    usleep(2000);
  }
  EXPECT_EQ(accepted.size(), 2u);
  EXPECT_EQ(l.refused(), 1u);
  const auto m = read_frame(clients[2]);
  ASSERT_TRUE(m.has_value()) << "the refused client is told why";
  const auto* e = std::get_if<proto::Error>(&m->body);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, proto::ErrorCode::kBusy);
  EXPECT_NE(e->message.find("connection cap of 2"), std::string::npos) << e->message;
  for (int fd : clients) close(fd);
  for (int fd : accepted) close(fd);
  std::system(("rm -rf " + dir).c_str());
}

// Both ends of a TCP connection run without Nagle's algorithm: a daemon writes a Heartbeat and then a
// TokenGrant to a peer that answers neither, and with Nagle on the grant waited for the heartbeat's
// delayed ACK (up to 40 ms of idle GPU per hand-off; docs/scheduling.md, "Hand-offs").
TEST(Listener, AcceptedTcpConnectionsHaveNoDelay) {
  net::Endpoint ep;  // 127.0.0.1, port 0: the kernel picks one
  std::string err;
  const int lfd = net::listen_on(ep, &err);
  ASSERT_GE(lfd, 0) << err;
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ep.port = ntohs(addr.sin_port);
  Listener l(lfd, false, ListenerOptions{});
  const int client = net::connect_to(ep, 1000, &err);
  ASSERT_GE(client, 0) << err;
  std::vector<int> accepted;
  for (int round = 0; round < 500 && accepted.empty(); ++round) {
    accepted = l.accept_ready(0);
    if (accepted.empty()) usleep(2000);
  }
  ASSERT_EQ(accepted.size(), 1u);
  for (const int fd : {accepted[0], client}) {
    int on = 0;
    socklen_t n = sizeof on;
    ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &n), 0);
    EXPECT_NE(on, 0) << (fd == client ? "the connecting end" : "the accepted end");
  }
  close(client);
  close(accepted[0]);
}

TEST(Listener, SocketFileIs0660WhateverTheUmask) {
  const std::string dir = temp_dir();
  net::Endpoint ep;
  ep.unix_path = dir + "/mode.sock";
  const mode_t old = umask(0);
  std::string err;
  const int lfd = net::listen_on(ep, &err);
  umask(old);
  ASSERT_GE(lfd, 0) << err;
  struct stat st {};
  ASSERT_EQ(stat(ep.unix_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  close(lfd);
  std::system(("rm -rf " + dir).c_str());
}

// A peer of another uid is refused with kDenied unless --allow_uids lists it. Needs root (to
// become another uid in a child); skipped otherwise.
TEST(Listener, PeerUidChecked) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  const std::string dir = temp_dir();
  chmod(dir.c_str(), 0755);
  for (const bool allow : {false, true}) {
    net::Endpoint ep;
    ep.unix_path = dir + (allow ? "/allow.sock" : "/deny.sock");
    std::string err;
    const int lfd = net::listen_on(ep, &err, 0666);  // the file mode lets anyone connect: test the uid check
    ASSERT_GE(lfd, 0) << err;
    ListenerOptions o;
    if (allow) o.allowed_uids = {65534};
    Listener l(lfd, true, o);
    int sv[2];
    ASSERT_EQ(pipe(sv), 0);
    const pid_t child = fork();
    if (child == 0) {
      if (setuid(65534) != 0) _exit(3);
      std::string e;
      const int fd = net::connect_to(ep, 2000, &e);
      if (fd < 0) _exit(4);
      const auto m = read_frame(fd);
      // 0: refused with kDenied; 1: accepted (no frame, connection stays open until we exit).
      const bool denied = m && std::holds_alternative<proto::Error>(m->body) &&
                          std::get<proto::Error>(m->body).code == proto::ErrorCode::kDenied;
      _exit(denied ? 0 : 1);
    }
    std::vector<int> accepted;
    int status = 0;
    for (int i = 0; i < 400; ++i) {
      for (int fd : l.accept_ready(accepted.size())) accepted.push_back(fd);
      if (waitpid(child, &status, WNOHANG) == child) break;
      usleep(10000);
    }
    ASSERT_TRUE(WIFEXITED(status));
    if (allow) {
      EXPECT_EQ(WEXITSTATUS(status), 1) << "an allowed uid is accepted";
      EXPECT_EQ(accepted.size(), 1u);
    } else {
      EXPECT_EQ(WEXITSTATUS(status), 0) << "another uid is refused with kDenied";
      EXPECT_TRUE(accepted.empty());
    }
    for (int fd : accepted) close(fd);
    close(sv[0]);
    close(sv[1]);
  }
  std::system(("rm -rf " + dir).c_str());
}

// Out of descriptors: the pending client is shed through the reserved descriptor (it sees a close
// at once instead of hanging in the backlog), accepting pauses for a moment, nothing spins, and
// once descriptors are free again connections are accepted. Runs in a child with a low fd limit.
TEST(Listener, EmfileShedsThePendingClientAndPauses) {
  const std::string dir = temp_dir();
  const pid_t child = fork();
  if (child == 0) {
    net::Endpoint ep;
    ep.unix_path = dir + "/emfile.sock";
    std::string err;
    const int lfd = net::listen_on(ep, &err);
    if (lfd < 0) _exit(10);
    ListenerOptions o;
    o.max_connections = 1000;  // not the cap: the descriptors run out first
    Listener l(lfd, true, o);
    const int client = net::connect_to(ep, 1000, &err);
    if (client < 0) _exit(11);
    // Use up every descriptor left (below a low limit), as a daemon flooded with connections would.
    struct rlimit rl {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(12);
    std::vector<int> hogs;
    for (;;) {
      const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      hogs.push_back(fd);
    }
    const std::vector<int> got = l.accept_ready(0);
    if (!got.empty()) _exit(13);                       // nothing could be accepted
    if (l.refused() != 1) _exit(14);                   // counted
    if (l.accepting(mono_us())) _exit(15);             // paused: the caller stops polling the fd
    if (l.resume_at() - mono_us() > 100000) _exit(16);  // for 100 ms at most
    char c;
    pollfd p{client, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1 || recv(client, &c, 1, 0) != 0) _exit(17);  // the client saw a close
    for (int fd : hogs) close(fd);
    const int again = net::connect_to(ep, 1000, &err);
    if (again < 0) _exit(18);
    std::vector<int> later;
    for (int i = 0; i < 100 && later.empty(); ++i) {
      usleep(5000);
      if (l.accepting(mono_us())) later = l.accept_ready(0);
    }
    _exit(later.size() == 1 ? 0 : 19);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "step " << WEXITSTATUS(status) << " failed (see the exit codes in the test)";
  std::system(("rm -rf " + dir).c_str());
}

TEST(Listener, ParseUidList) {
  std::vector<uid_t> v;
  std::string err;
  EXPECT_TRUE(parse_uid_list("1000,1001,0", &v, &err));
  EXPECT_EQ(v, (std::vector<uid_t>{1000, 1001, 0}));
  for (const char* bad : {"", "1000,", "abc", "1000,-1", "99999999999", "1 000"}) {
    EXPECT_FALSE(parse_uid_list(bad, &v, &err)) << bad;
    EXPECT_NE(err.find("bad uid"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace gem
