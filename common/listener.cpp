#include "gem/listener.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gem/log.h"
#include "gem/net.h"
#include "gem/protocol.h"

namespace gem {

namespace {
constexpr Micros kEmfilePause = 100000;   // µs without accepting after running out of fds
constexpr Micros kWarnPeriod = 10000000;  // one warning per 10 s, whatever the rate of refusals
constexpr size_t kFdReserve = 16;         // descriptors kept for the daemon's own use
constexpr int kMaxAcceptsPerCall = 64;

int open_reserve() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }
}  // namespace

Listener::Listener(int fd, bool is_unix, ListenerOptions opts) : fd_(fd), is_unix_(is_unix), opts_(std::move(opts)) {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > kFdReserve * 2) {
    opts_.max_connections = std::min<size_t>(opts_.max_connections, rl.rlim_cur - kFdReserve);
  }
  if (opts_.max_connections == 0) opts_.max_connections = 1;
  reserve_fd_ = open_reserve();
}

Listener::~Listener() {
  if (fd_ >= 0) close(fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

std::vector<int> Listener::accept_ready(size_t open_now) {
  std::vector<int> out;
  for (int i = 0; i < kMaxAcceptsPerCall; ++i) {
    const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        ++refused_;
        // Shed one pending connection through the reserved descriptor so its client is not left
        // hanging in the backlog, and stop polling the listener for a moment: never a spin.
        if (reserve_fd_ >= 0) {
          close(reserve_fd_);
          const int victim = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (victim >= 0) close(victim);
          reserve_fd_ = open_reserve();
        }
        paused_until_ = mono_us() + kEmfilePause;
        const Micros now = mono_us();
        if (last_warn_ < 0 || now - last_warn_ >= kWarnPeriod) {
          last_warn_ = now;
          LOG_WARN("out of file descriptors (%s) with %zu connections open: refusing new connections",
                   std::strerror(errno), open_now + out.size());
        }
      }
      return out;  // EAGAIN and anything else: nothing more now
    }
    std::string why;
    if (open_now + out.size() >= opts_.max_connections) {
      refuse(fd, static_cast<int>(proto::ErrorCode::kBusy),
             "connection cap of " + std::to_string(opts_.max_connections) + " reached");
      continue;
    }
    if (!peer_allowed(fd, &why)) {
      refuse(fd, static_cast<int>(proto::ErrorCode::kDenied), why);
      continue;
    }
    if (!is_unix_) net::set_tcp_nodelay(fd);  // grants and heartbeats go out on this end
    out.push_back(fd);
  }
  return out;
}

bool Listener::peer_allowed(int fd, std::string* why) const {
  if (!is_unix_) return true;
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    *why = std::string("SO_PEERCRED: ") + std::strerror(errno);
    return false;
  }
  if (cred.uid == geteuid() || cred.uid == 0) return true;
  if (std::find(opts_.allowed_uids.begin(), opts_.allowed_uids.end(), cred.uid) != opts_.allowed_uids.end()) {
    return true;
  }
  *why = "uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) +
         ") is not allowed (--allow_uids)";
  return false;
}

void Listener::refuse(int fd, int code, const std::string& why) {
  ++refused_;
  std::vector<uint8_t> frame;
  if (proto::encode({0, proto::Error{static_cast<proto::ErrorCode>(code), why}}, &frame)) {
    (void)::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  close(fd);
  const Micros now = mono_us();
  if (last_warn_ < 0 || now - last_warn_ >= kWarnPeriod) {
    last_warn_ = now;
    LOG_WARN("connection refused: %s", why.c_str());
  }
}

bool parse_uid_list(const std::string& text, std::vector<uid_t>* out, std::string* err) {
  out->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    if (item.empty() || item.size() > 10 || item.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(item) > 0xfffffffeULL) {
      *err = "bad uid '" + item + "' in '" + text + "' (want a comma-separated list of numeric uids)";
      return false;
    }
    out->push_back(static_cast<uid_t>(std::stoull(item)));
    pos = comma + 1;
  }
  return true;
}

size_t raise_fd_limit() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(rl.rlim_cur);
}

}  // namespace gem
