// One non-blocking protocol connection of a daemon (gem-schd, gem-pmgr): reads whole frames, queues
// writes it could not finish. Single-threaded use, from the daemon's poll loop.
#pragma once

#include <string>
#include <vector>

#include "gem/protocol.h"

namespace gem {

class Peer {
 public:
  /// Takes ownership of fd (closed by the destructor) and makes it non-blocking.
  explicit Peer(int fd);
  ~Peer();
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  int fd() const { return fd_; }

  /// Reads what the socket has and appends each whole message to *out. Returns false when the
  /// peer closed or sent a malformed frame (*why says which): the caller drops this connection.
  bool read_messages(std::vector<proto::Message>* out, std::string* why);

  /// Encodes and writes `msg`, queueing what the socket does not take now. Returns false when the
  /// connection is broken or more than kMaxBacklog bytes wait (a peer that does not read).
  bool send(const proto::Message& msg);

  /// Writes queued bytes (call on POLLOUT). False when the connection is broken.
  bool flush();
  bool wants_write() const { return !out_.empty(); }

  static constexpr size_t kMaxBacklog = 64 * 1024;

 private:
  int fd_;
  proto::FrameBuffer in_;
  std::vector<uint8_t> out_;
};

}  // namespace gem
