#include "raw_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gemtest {

RawClient::~RawClient() { close(); }

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::connect(const std::string& socket_path, std::string* why) {
  close();
  closed_ = false;
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (why != nullptr) *why = std::string("connect ") + socket_path + ": " + std::strerror(errno);
    close();
    return false;
  }
  return true;
}

bool RawClient::send(const gem::proto::Message& m) {
  std::vector<uint8_t> buf;
  if (fd_ < 0 || !gem::proto::encode(m, &buf)) return false;
  size_t off = 0;
  const gem::Micros deadline = gem::mono_us() + 2000000;
  while (off < buf.size()) {
    const ssize_t n = ::send(fd_, buf.data() + off, buf.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && gem::mono_us() < deadline) {
      pollfd p{fd_, POLLOUT, 0};
      poll(&p, 1, 50);
      continue;
    }
    return false;
  }
  return true;
}

bool RawClient::hello(const std::string& client, gem::proto::Role role, const std::string& device_uuid,
                      const std::string& secret) {
  gem::proto::Hello h;
  h.role = role;
  h.client = client;
  h.device_uuid = device_uuid;
  h.pid = static_cast<uint32_t>(getpid());
  h.secret = secret;
  return send({1, h});
}

std::optional<gem::proto::Message> RawClient::receive(double seconds) {
  const gem::Micros deadline = gem::mono_us() + static_cast<gem::Micros>(seconds * 1e6);
  for (;;) {
    gem::proto::Message m;
    std::string err;
    const auto st = in_.next(&m, &err);
    if (st == gem::proto::DecodeStatus::kOk) return m;
    if (st == gem::proto::DecodeStatus::kMalformed || fd_ < 0 || closed_) return std::nullopt;
    const gem::Micros left = deadline - gem::mono_us();
    if (left <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left / 1000) + 1);
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (r <= 0) continue;
    uint8_t buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      closed_ = true;
    }
  }
}

std::optional<gem::proto::Message> RawClient::receive_skipping_heartbeats(double seconds) {
  const gem::Micros deadline = gem::mono_us() + static_cast<gem::Micros>(seconds * 1e6);
  for (;;) {
    const double left = (deadline - gem::mono_us()) / 1e6;
    if (left <= 0) return std::nullopt;
    auto m = receive(left);
    if (!m) return m;
    if (std::holds_alternative<gem::proto::Heartbeat>(m->body)) {
      ++heartbeats_;
      continue;
    }
    return m;
  }
}

bool RawClient::wait_closed(double seconds, double* after_s, std::vector<gem::proto::Message>* seen) {
  const gem::Micros start = gem::mono_us();
  const gem::Micros deadline = start + static_cast<gem::Micros>(seconds * 1e6);
  while (!closed_ && fd_ >= 0) {
    const gem::Micros left = deadline - gem::mono_us();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left / 1000) + 1);
    if (r <= 0) continue;
    uint8_t buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      gem::proto::Message m;
      std::string err;
      while (in_.next(&m, &err) == gem::proto::DecodeStatus::kOk) {
        if (seen != nullptr) seen->push_back(m);
      }
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      closed_ = true;
    }
  }
  if (after_s != nullptr) *after_s = (gem::mono_us() - start) / 1e6;
  return closed_;
}

int error_code(const gem::proto::Message& m) {
  const auto* e = std::get_if<gem::proto::Error>(&m.body);
  return e == nullptr ? -1 : static_cast<int>(e->code);
}

}  // namespace gemtest
