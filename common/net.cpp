// Socket helpers (include/gem/net.h). Used inside libgemhook, i.e. inside arbitrary programs: every fd
// is close-on-exec, nothing raises SIGPIPE, nothing throws, errno-based messages are built in *err.
#include "gem/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "gem/clock.h"

namespace gem::net {
namespace {

std::string errstr(int e) {
  char buf[128];
  // GNU strerror_r returns the message pointer (possibly a static string, not buf).
  return strerror_r(e, buf, sizeof(buf));
}

void set_err(std::string* err, const std::string& what, const Endpoint& ep, int e) {
  if (err != nullptr) *err = what + " " + ep.to_string() + ": " + errstr(e);
}

void close_keep_errno(int fd) {
  int e = errno;
  close(fd);
  errno = e;
}

bool parse_port(const std::string& s, uint16_t* port) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

bool valid_host(const std::string& h) {
  if (h.empty()) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':';
    if (!ok) return false;
  }
  return true;
}

bool fill_unix(const Endpoint& ep, sockaddr_un* sa, std::string* err) {
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (ep.unix_path.size() >= sizeof(sa->sun_path)) {
    if (err != nullptr) *err = "unix socket path too long: " + ep.unix_path;
    return false;
  }
  memcpy(sa->sun_path, ep.unix_path.data(), ep.unix_path.size());
  return true;
}

// Numeric addresses resolve without NSS; names ("localhost") go through getaddrinfo as usual.
addrinfo* resolve(const Endpoint& ep, bool passive, std::string* err) {
  addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  std::string port = std::to_string(ep.port);
  addrinfo* res = nullptr;
  int rc = getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    if (err != nullptr) {
      *err = "resolve " + ep.to_string() + ": " +
             (rc == EAI_SYSTEM ? errstr(errno) : std::string(gai_strerror(rc)));
    }
    return nullptr;
  }
  return res;
}

// Milliseconds left until deadline_us; -1 when there is no deadline.
int remaining_ms(Micros deadline_us) {
  if (deadline_us < 0) return -1;
  Micros left = deadline_us - mono_us();
  if (left <= 0) return 0;
  return static_cast<int>((left + 999) / 1000);
}

Micros deadline_after(int timeout_ms) {
  return timeout_ms < 0 ? -1 : mono_us() + static_cast<Micros>(timeout_ms) * 1000;
}

// Waits for `events` on fd until the deadline. 1: ready, 0: timed out, -1: poll failed (errno).
int wait_fd(int fd, short events, Micros deadline_us) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, remaining_ms(deadline_us));
    if (rc > 0) return 1;
    if (rc == 0) {
      if (remaining_ms(deadline_us) == 0) return 0;
      continue;  // poll rounds; go again for the remainder
    }
    if (errno != EINTR) return -1;
  }
}

// Connects a fresh non-blocking socket to one address. Returns 0 or an errno value.
int connect_one(int fd, const sockaddr* sa, socklen_t len, bool is_unix, Micros deadline_us) {
  for (;;) {
    if (connect(fd, sa, len) == 0) return 0;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EINPROGRESS) {
      int w = wait_fd(fd, POLLOUT, deadline_us);
      if (w == 0) return ETIMEDOUT;
      if (w < 0) return errno;
      int so_error = 0;
      socklen_t sl = sizeof(so_error);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl) != 0) return errno;
      return so_error;
    }
    // A Unix listener with a full backlog answers EAGAIN and offers nothing to poll on: retry.
    if (is_unix && e == EAGAIN) {
      int left = remaining_ms(deadline_us);
      if (left == 0) return ETIMEDOUT;
      poll(nullptr, 0, left < 0 || left > 10 ? 10 : left);
      continue;
    }
    return e;
  }
}

// Finishes a connected socket: blocking again, TCP_NODELAY for TCP. Returns fd or -1.
int finish_connect(int fd, bool is_unix, const Endpoint& ep, std::string* err) {
  if (!set_nonblocking(fd, false)) {
    set_err(err, "connect", ep, errno);
    close_keep_errno(fd);
    return -1;
  }
  if (!is_unix) set_tcp_nodelay(fd);
  return fd;
}

std::string connect_error(const Endpoint& ep, int e, int timeout_ms) {
  if (e == ETIMEDOUT) {
    return "connect " + ep.to_string() + ": timed out after " + std::to_string(timeout_ms) + " ms";
  }
  return "connect " + ep.to_string() + ": " + errstr(e);
}

// True when something accepts connections on the Unix socket at `sa`, i.e. the file is not stale.
bool unix_socket_live(const sockaddr_un& sa) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  int e = errno;
  close(fd);
  return rc == 0 || e == EAGAIN || e == EINPROGRESS;
}

int listen_unix(const Endpoint& ep, unsigned mode, std::string* err) {
  sockaddr_un sa;
  if (!fill_unix(ep, &sa, err)) return -1;
  struct stat st;
  if (lstat(ep.unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    // Unlinking a live socket would silently steal it from the daemon that owns it.
    if (unix_socket_live(sa)) {
      if (err != nullptr) *err = "bind " + ep.to_string() + ": another process is listening there";
      return -1;
    }
    unlink(ep.unix_path.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    set_err(err, "socket", ep, errno);
    return -1;
  }
  // The socket file is created with `mode` from the start (the umask covers the bind; callers are
  // single-threaded at start-up), then set exactly, whatever the process's umask was.
  const mode_t old_umask = umask(static_cast<mode_t>(~mode & 0777));
  const int brc = bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  const int bind_errno = errno;
  umask(old_umask);
  if (brc != 0) {
    errno = bind_errno;
    set_err(err, "bind", ep, errno);
    close_keep_errno(fd);
    return -1;
  }
  if (chmod(ep.unix_path.c_str(), static_cast<mode_t>(mode)) != 0) {
    set_err(err, "chmod", ep, errno);
    close_keep_errno(fd);
    return -1;
  }
  if (listen(fd, 128) != 0) {
    set_err(err, "listen", ep, errno);
    close_keep_errno(fd);
    return -1;
  }
  return fd;
}

int listen_tcp(const Endpoint& ep, std::string* err) {
  addrinfo* res = resolve(ep, true, err);
  if (res == nullptr) return -1;
  // The first address only: "localhost" listening on both ::1 and 127.0.0.1 would need two fds.
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
  if (fd < 0) {
    set_err(err, "socket", ep, errno);
    freeaddrinfo(res);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    set_err(err, "bind", ep, errno);
    close_keep_errno(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  if (listen(fd, 128) != 0) {
    set_err(err, "listen", ep, errno);
    close_keep_errno(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string Endpoint::to_string() const {
  if (!unix_path.empty()) return "unix:" + unix_path;
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool parse_endpoint(const std::string& text, Endpoint* out, std::string* err) {
  auto fail = [&](const std::string& why) {
    if (err != nullptr) *err = why;
    return false;
  };
  Endpoint ep;
  if (text.empty()) return fail("empty endpoint");
  if (text.compare(0, 5, "unix:") == 0 || text[0] == '/') {
    ep.unix_path = text[0] == '/' ? text : text.substr(5);
    if (ep.unix_path.empty()) return fail("empty unix socket path in '" + text + "'");
    if (ep.unix_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return fail("unix socket path too long (" + std::to_string(ep.unix_path.size()) +
                  " bytes, at most " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + ")");
    }
    *out = ep;
    return true;
  }
  std::string port_text = text;
  size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    std::string host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
      return fail("IPv6 address must be in brackets in '" + text + "'");
    }
    if (!valid_host(host)) return fail("bad host '" + host + "' in '" + text + "'");
    ep.host = host;
  }
  if (!parse_port(port_text, &ep.port)) {
    return fail("bad port '" + port_text + "' in '" + text + "' (want 1-65535)");
  }
  *out = ep;
  return true;
}

int listen_on(const Endpoint& ep, std::string* err, unsigned unix_mode) {
  return ep.unix_path.empty() ? listen_tcp(ep, err) : listen_unix(ep, unix_mode, err);
}

int connect_to(const Endpoint& ep, int timeout_ms, std::string* err) {
  Micros deadline = deadline_after(timeout_ms);
  if (!ep.unix_path.empty()) {
    sockaddr_un sa;
    if (!fill_unix(ep, &sa, err)) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      set_err(err, "socket", ep, errno);
      return -1;
    }
    int e = connect_one(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa), true, deadline);
    if (e != 0) {
      if (err != nullptr) *err = connect_error(ep, e, timeout_ms);
      close(fd);
      errno = e;
      return -1;
    }
    return finish_connect(fd, true, ep, err);
  }

  addrinfo* res = resolve(ep, false, err);
  if (res == nullptr) return -1;
  int last = ECONNREFUSED;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    last = connect_one(fd, ai->ai_addr, ai->ai_addrlen, false, deadline);
    if (last == 0) {
      freeaddrinfo(res);
      return finish_connect(fd, false, ep, err);
    }
    close(fd);
    if (last == ETIMEDOUT) break;  // the whole budget is spent
  }
  freeaddrinfo(res);
  if (err != nullptr) *err = connect_error(ep, last, timeout_ms);
  errno = last;
  return -1;
}

bool send_all(int fd, const void* data, size_t len, int timeout_ms) {
  const char* p = static_cast<const char*>(data);
  Micros deadline = deadline_after(timeout_ms);
  // MSG_DONTWAIT so a blocking fd (what connect_to returns) cannot block past the deadline.
  int flags = MSG_NOSIGNAL | (timeout_ms >= 0 ? MSG_DONTWAIT : 0);
  while (len > 0) {
    ssize_t n = send(fd, p, len, flags);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int w = wait_fd(fd, POLLOUT, deadline);
      if (w == 0) errno = ETIMEDOUT;
      if (w <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

void set_tcp_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

bool set_nonblocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return want == flags || fcntl(fd, F_SETFL, want) == 0;
}

}  // namespace gem::net
