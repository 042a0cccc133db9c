#include "gem/peer.h"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "gem/net.h"

namespace gem {

Peer::Peer(int fd) : fd_(fd), created_(mono_us()), last_heard_(created_) { net::set_nonblocking(fd_, true); }

Peer::~Peer() {
  if (fd_ >= 0) close(fd_);
}

bool Peer::read_messages(std::vector<proto::Message>* out, std::string* why, bool* more) {
  uint8_t buf[4096];
  size_t taken = 0;
  if (more != nullptr) *more = false;
  while (taken < kReadBudget) {
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      taken += static_cast<size_t>(n);
      last_heard_ = mono_us();
      in_.append(buf, static_cast<size_t>(n));
      proto::Message msg;
      proto::DecodeStatus st;
      while ((st = in_.next(&msg, why)) == proto::DecodeStatus::kOk) out->push_back(std::move(msg));
      if (st == proto::DecodeStatus::kMalformed) return false;
      continue;
    }
    if (n == 0) {
      *why = "connection closed by peer";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    *why = std::string("recv: ") + std::strerror(errno);
    return false;
  }
  if (more != nullptr) *more = true;
  return true;
}

bool Peer::send(const proto::Message& msg) {
  // Encode aside first: the backlog is checked before anything is queued.
  std::vector<uint8_t> frame;
  if (!proto::encode(msg, &frame)) return false;
  if (backlog() + frame.size() > kMaxBacklog) return false;
  if (out_start_ == out_.size()) {
    out_.clear();
    out_start_ = 0;
  }
  out_.insert(out_.end(), frame.begin(), frame.end());  // geometric growth, capped by kMaxBacklog
  last_sent_ = mono_us();
  return flush();
}

bool Peer::flush() {
  while (out_start_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_start_, out_.size() - out_start_, MSG_NOSIGNAL);
    if (n > 0) {
      out_start_ += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return false;
    }
  }
  if (out_start_ == out_.size()) {
    out_.clear();
    out_start_ = 0;
  } else if (out_start_ * 2 >= out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_start_));
    out_start_ = 0;
  }
  return true;
}

}  // namespace gem
