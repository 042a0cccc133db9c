#include "pmgr_conn.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "gem/clock.h"

namespace gem::hook {

PmgrConn::~PmgrConn() { close(); }

void PmgrConn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_ = proto::FrameBuffer();
}

bool PmgrConn::open(const net::Endpoint& ep, const proto::Hello& hello, int timeout_ms, proto::Message* reply,
                    std::string* why) {
  close();
  timeout_ms_ = timeout_ms;
  fd_ = net::connect_to(ep, timeout_ms_, why);
  if (fd_ < 0) return false;
  if (!send(hello)) {
    *why = "cannot send Hello";
    return false;
  }
  for (;;) {
    if (!receive(reply, timeout_ms_, why)) {
      close();
      return false;
    }
    if (std::holds_alternative<proto::Heartbeat>(reply->body)) continue;
    if (const auto* e = std::get_if<proto::Error>(&reply->body)) {
      *why = e->message;
      close();
      return false;
    }
    return true;
  }
}

bool PmgrConn::send(const proto::Body& body, uint64_t* id) {
  std::vector<uint8_t> buf;
  const uint64_t my_id = next_id_++;
  if (id != nullptr) *id = my_id;
  if (fd_ < 0 || !proto::encode({my_id, body}, &buf) || !net::send_all(fd_, buf.data(), buf.size(), timeout_ms_)) {
    close();
    return false;
  }
  return true;
}

bool PmgrConn::receive(proto::Message* m, int timeout_ms, std::string* why, bool* timed_out) {
  if (timed_out != nullptr) *timed_out = false;
  const Micros deadline = mono_us() + static_cast<Micros>(timeout_ms < 0 ? 0 : timeout_ms) * 1000;
  for (;;) {
    switch (in_.next(m, why)) {
      case proto::DecodeStatus::kOk:
        return true;
      case proto::DecodeStatus::kMalformed:
        close();
        return false;
      case proto::DecodeStatus::kNeedMore:
        break;
    }
    if (fd_ < 0) {
      *why = "not connected";
      return false;
    }
    const Micros left = deadline - mono_us();
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, left <= 0 ? 0 : static_cast<int>((left + 999) / 1000));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *why = std::strerror(errno);
      close();
      return false;
    }
    if (r == 0) {
      if (mono_us() < deadline) continue;  // poll woke early
      *why = "pod manager did not answer";
      if (timed_out != nullptr) *timed_out = true;
      return false;
    }
    uint8_t buf[1024];
    const ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) {
      *why = n == 0 ? "pod manager closed the connection" : std::strerror(errno);
      close();
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace gem::hook
