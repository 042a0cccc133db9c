// One non-blocking protocol connection of a daemon (gem-schd, gem-pmgr): reads whole frames, queues
// writes it could not finish. Single-threaded use, from the daemon's poll loop.
//
// Bounds (issue 6, "Backpressure"): a read takes at most kReadBudget bytes per call, so one
// flooding connection cannot starve the others of a poll round nor grow the message list without
// limit; the write backlog is checked *before* a frame is queued, so a peer that does not read is
// refused (send() false: the caller drops that connection) while at most kMaxBacklog bytes wait.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "gem/clock.h"
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

  /// Reads up to kReadBudget bytes of what the socket has and appends each whole message to *out.
  /// Returns false when the peer closed or sent a malformed frame (*why says which): the caller
  /// drops this connection. *more (optional) is set when the budget stopped the read with bytes
  /// possibly left: poll reports the fd readable again, so nothing is lost.
  bool read_messages(std::vector<proto::Message>* out, std::string* why, bool* more = nullptr);

  /// Encodes and writes `msg`, queueing what the socket does not take now. Returns false (and
  /// queues nothing) when the connection is broken or the frame would take the backlog past
  /// kMaxBacklog bytes (a peer that does not read): the caller drops this connection.
  bool send(const proto::Message& msg);

  /// Writes queued bytes (call on POLLOUT). False when the connection is broken.
  bool flush();
  bool wants_write() const { return out_start_ < out_.size(); }
  size_t backlog() const { return out_.size() - out_start_; }

  /// CLOCK_MONOTONIC µs when the connection was accepted or made.
  Micros created() const { return created_; }
  /// CLOCK_MONOTONIC µs of the last byte read from this peer (the creation time before any).
  Micros last_heard() const { return last_heard_; }
  /// CLOCK_MONOTONIC µs of the last frame queued to this peer (0 before any).
  Micros last_sent() const { return last_sent_; }

  static constexpr size_t kMaxBacklog = 64 * 1024;
  static constexpr size_t kReadBudget = 16 * 1024;

 private:
  int fd_;
  proto::FrameBuffer in_;
  std::vector<uint8_t> out_;
  size_t out_start_ = 0;  // bytes of out_ already written
  Micros created_ = 0;
  Micros last_heard_ = 0;
  Micros last_sent_ = 0;
};

}  // namespace gem
