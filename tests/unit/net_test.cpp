// Socket helpers against real loopback TCP and Unix sockets. No test depends on timing beyond
// generous upper bounds, and none needs a routable network.
#include "gem/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "gem/clock.h"

namespace gem::net {
namespace {

// A port nothing listens on right now: bind to port 0, read it back, release it.
uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gem-net-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

bool cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }
bool nonblocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

int accept_wait(int lfd) {
  for (int i = 0; i < 500; ++i) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    usleep(2000);
  }
  return -1;
}

// Listens on ep, connects, and sends a few bytes each way.
void exchange(const Endpoint& ep) {
  std::string err;
  int lfd = listen_on(ep, &err);
  ASSERT_GE(lfd, 0) << err;
  EXPECT_TRUE(cloexec(lfd));
  EXPECT_TRUE(nonblocking(lfd));
  int cfd = connect_to(ep, 1000, &err);
  ASSERT_GE(cfd, 0) << err;
  EXPECT_TRUE(cloexec(cfd));
  EXPECT_FALSE(nonblocking(cfd));
  if (ep.unix_path.empty()) {
    int nodelay = 0;
    socklen_t len = sizeof(nodelay);
    getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
    EXPECT_NE(nodelay, 0);
  }
  int sfd = accept_wait(lfd);
  ASSERT_GE(sfd, 0);
  const char msg[] = "hello over the wire";
  EXPECT_TRUE(send_all(cfd, msg, sizeof(msg), 1000));
  char buf[sizeof(msg)] = {};
  size_t got = 0;
  while (got < sizeof(msg)) {
    ssize_t n = read(sfd, buf + got, sizeof(msg) - got);
    ASSERT_GT(n, 0);
    got += static_cast<size_t>(n);
  }
  EXPECT_EQ(memcmp(buf, msg, sizeof(msg)), 0);
  EXPECT_TRUE(send_all(sfd, "x", 1, -1));
  char c = 0;
  EXPECT_EQ(read(cfd, &c, 1), 1);
  EXPECT_EQ(c, 'x');
  close(sfd);
  close(cfd);
  close(lfd);
}

TEST(ParseEndpoint, Accepts) {
  Endpoint ep;
  std::string err;
  ASSERT_TRUE(parse_endpoint("50051", &ep, &err)) << err;
  EXPECT_EQ(ep.host, "127.0.0.1");
  EXPECT_EQ(ep.port, 50051);
  EXPECT_TRUE(ep.unix_path.empty());
  EXPECT_EQ(ep.to_string(), "127.0.0.1:50051");

  ASSERT_TRUE(parse_endpoint("10.0.0.7:1", &ep, &err)) << err;
  EXPECT_EQ(ep.host, "10.0.0.7");
  EXPECT_EQ(ep.port, 1);
  ASSERT_TRUE(parse_endpoint("localhost:65535", &ep, &err)) << err;
  EXPECT_EQ(ep.host, "localhost");
  EXPECT_EQ(ep.port, 65535);
  ASSERT_TRUE(parse_endpoint("[::1]:8080", &ep, &err)) << err;
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.to_string(), "[::1]:8080");

  ASSERT_TRUE(parse_endpoint("/run/gem/GPU-1.sock", &ep, &err)) << err;
  EXPECT_EQ(ep.unix_path, "/run/gem/GPU-1.sock");
  EXPECT_EQ(ep.to_string(), "unix:/run/gem/GPU-1.sock");
  ASSERT_TRUE(parse_endpoint("unix:relative.sock", &ep, &err)) << err;
  EXPECT_EQ(ep.unix_path, "relative.sock");
  EXPECT_EQ(ep.to_string(), "unix:relative.sock");
}

TEST(ParseEndpoint, Rejects) {
  const char* bad[] = {"",         "0",          "65536",   "99999999999", "host:0",  "host:",
                       "abc",      "host:abc",   ":50051",  "1.2.3.4:-1",  "::1:80",  "a b:80",
                       "unix:",    "50051 ",     "+80",     "host:1x"};
  for (const char* text : bad) {
    Endpoint ep;
    ep.port = 4242;
    std::string err;
    EXPECT_FALSE(parse_endpoint(text, &ep, &err)) << text;
    EXPECT_FALSE(err.empty()) << text;
    EXPECT_EQ(ep.port, 4242) << "output left alone on failure: " << text;
  }
  std::string err;
  Endpoint ep;
  parse_endpoint("host:0", &ep, &err);
  EXPECT_EQ(err, "bad port '0' in 'host:0' (want 1-65535)");
  EXPECT_FALSE(parse_endpoint("/" + std::string(200, 'p'), &ep, &err));
  EXPECT_NE(err.find("too long"), std::string::npos) << err;
}

TEST(Net, TcpRoundTrip) {
  Endpoint ep;
  ep.port = free_port();
  exchange(ep);
}

TEST(Net, UnixRoundTripAndStaleSocket) {
  TempDir dir;
  Endpoint ep;
  ep.unix_path = dir.file("s.sock");
  exchange(ep);  // leaves the socket file behind, as a crashed daemon would
  struct stat st;
  ASSERT_EQ(lstat(ep.unix_path.c_str(), &st), 0);
  exchange(ep);  // stale file replaced
}

TEST(Net, UnixLiveSocketNotStolen) {
  TempDir dir;
  Endpoint ep;
  ep.unix_path = dir.file("live.sock");
  std::string err;
  int lfd = listen_on(ep, &err);
  ASSERT_GE(lfd, 0) << err;
  EXPECT_EQ(listen_on(ep, &err), -1);
  EXPECT_EQ(err, "bind unix:" + ep.unix_path + ": another process is listening there");
  int cfd = connect_to(ep, 1000, &err);  // the first listener still owns the path
  EXPECT_GE(cfd, 0) << err;
  close(cfd);
  close(lfd);
}

TEST(Net, UnixRegularFileNotRemoved) {
  TempDir dir;
  Endpoint ep;
  ep.unix_path = dir.file("data.txt");
  close(open(ep.unix_path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  std::string err;
  EXPECT_EQ(listen_on(ep, &err), -1);
  EXPECT_EQ(err, "bind unix:" + ep.unix_path + ": Address already in use");
  struct stat st;
  ASSERT_EQ(lstat(ep.unix_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(Net, TcpAddressInUse) {
  Endpoint ep;
  ep.port = free_port();
  std::string err;
  int lfd = listen_on(ep, &err);
  ASSERT_GE(lfd, 0) << err;
  EXPECT_EQ(listen_on(ep, &err), -1);
  EXPECT_EQ(err, "bind " + ep.to_string() + ": Address already in use");
  close(lfd);
}

TEST(Net, ConnectRefusedFailsFast) {
  Endpoint ep;
  ep.port = free_port();
  std::string err;
  Micros t0 = mono_us();
  EXPECT_EQ(connect_to(ep, 5000, &err), -1);
  EXPECT_LT(mono_us() - t0, 1000000);
  EXPECT_EQ(err, "connect " + ep.to_string() + ": Connection refused");

  TempDir dir;
  Endpoint un;
  un.unix_path = dir.file("nobody.sock");
  EXPECT_EQ(connect_to(un, 5000, &err), -1);
  EXPECT_EQ(err, "connect unix:" + un.unix_path + ": No such file or directory");
}

// A Unix listener with a full backlog never completes a connect; connect_to must give up on time.
TEST(Net, UnixConnectTimeoutHonoured) {
  TempDir dir;
  std::string path = dir.file("full.sock");
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, path.c_str());
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(listen(lfd, 0), 0);
  std::vector<int> fillers;
  bool full = false;
  for (int i = 0; i < 64 && !full; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno == EAGAIN) full = true;
    fillers.push_back(fd);
  }
  ASSERT_TRUE(full) << "could not fill the backlog";
  Endpoint ep;
  ep.unix_path = path;
  std::string err;
  Micros t0 = mono_us();
  EXPECT_EQ(connect_to(ep, 200, &err), -1);
  Micros took = mono_us() - t0;
  EXPECT_GE(took, 190000);
  EXPECT_LT(took, 2000000);
  EXPECT_EQ(err, "connect unix:" + path + ": timed out after 200 ms");
  for (int fd : fillers) close(fd);
  close(lfd);
}

TEST(Net, SendAllTimesOutOnFullPeer) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::vector<char> big(8 << 20, 'b');  // far more than the socket buffers hold
  Micros t0 = mono_us();
  errno = 0;
  EXPECT_FALSE(send_all(sv[0], big.data(), big.size(), 100));  // blocking fd, yet bounded
  EXPECT_EQ(errno, ETIMEDOUT);
  Micros took = mono_us() - t0;
  EXPECT_GE(took, 90000);
  EXPECT_LT(took, 2000000);
  close(sv[0]);
  close(sv[1]);
}

TEST(Net, SendAllToClosedPeerNoSigpipe) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  close(sv[1]);
  // Default SIGPIPE disposition kills the test binary if MSG_NOSIGNAL is missing.
  EXPECT_FALSE(send_all(sv[0], "x", 1, 100));
  EXPECT_EQ(errno, EPIPE);
  EXPECT_TRUE(send_all(sv[0], "", 0, 100));
  close(sv[0]);
}

TEST(Net, SetNonblocking) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_TRUE(set_nonblocking(sv[0], true));
  EXPECT_TRUE(nonblocking(sv[0]));
  EXPECT_TRUE(set_nonblocking(sv[0], true));
  EXPECT_TRUE(set_nonblocking(sv[0], false));
  EXPECT_FALSE(nonblocking(sv[0]));
  close(sv[0]);
  close(sv[1]);
  EXPECT_FALSE(set_nonblocking(sv[0], true));
}

}  // namespace
}  // namespace gem::net
