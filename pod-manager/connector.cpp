#include "connector.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gem/net.h"

namespace gem::pmgr {

namespace {
std::string fail_text(const net::Endpoint& ep, int e) { return "connect " + ep.to_string() + ": " + std::strerror(e); }

// connect() on a fresh non-blocking socket: 0 connected or in progress, else an errno value.
int try_connect(int fd, const sockaddr* sa, socklen_t len) {
  for (;;) {
    if (connect(fd, sa, len) == 0) return 0;
    if (errno == EINTR) continue;
    // EAGAIN: a Unix listener's backlog is full. Treat it as a failure: retried after retry_at.
    return errno == EINPROGRESS ? 0 : errno;
  }
}
}  // namespace

int start_connect(const net::Endpoint& ep, std::string* err) {
  if (!ep.unix_path.empty()) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (ep.unix_path.size() >= sizeof(sa.sun_path)) {
      *err = "unix socket path too long: " + ep.unix_path;
      return -1;
    }
    std::memcpy(sa.sun_path, ep.unix_path.data(), ep.unix_path.size());
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *err = fail_text(ep, errno);
      return -1;
    }
    const int e = try_connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
    if (e != 0) {
      *err = fail_text(ep, e);
      close(fd);
      return -1;
    }
    return fd;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(ep.port);
  const int rc = getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    *err = "resolve " + ep.to_string() + ": " + (rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
    return -1;
  }
  const int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
  int e = fd < 0 ? errno : try_connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (fd < 0 || e != 0) {
    *err = fail_text(ep, e);
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

bool connect_result(int fd, const net::Endpoint& ep, std::string* err) {
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
  if (so_error == 0) {
    // getpeername tells a finished connection from one still in progress (a spurious wake-up).
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) so_error = errno == ENOTCONN ? ECONNREFUSED : errno;
  }
  if (so_error != 0) {
    *err = fail_text(ep, so_error);
    return false;
  }
  if (ep.unix_path.empty()) net::set_tcp_nodelay(fd);
  return true;
}

}  // namespace gem::pmgr
