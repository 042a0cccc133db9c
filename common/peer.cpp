#include "gem/peer.h"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "gem/net.h"

namespace gem {

Peer::Peer(int fd) : fd_(fd) { net::set_nonblocking(fd_, true); }

Peer::~Peer() {
  if (fd_ >= 0) close(fd_);
}

bool Peer::read_messages(std::vector<proto::Message>* out, std::string* why) {
  uint8_t buf[4096];
  for (;;) {
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
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
}

bool Peer::send(const proto::Message& msg) {
  if (!proto::encode(msg, &out_)) return false;
  if (out_.size() > kMaxBacklog) return false;
  return flush();
}

bool Peer::flush() {
  size_t done = 0;
  while (done < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return false;
    }
  }
  out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(done));
  return true;
}

}  // namespace gem
