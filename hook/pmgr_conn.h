// One connection from the hook to its pod manager: connect with a deadline, say Hello, send and
// receive frames with deadlines. Shared by the launch gate's token client and the memory session.
// Not thread-safe: one owner at a time (the gate's worker thread, or the memory tracker's lock).
#pragma once

#include <string>

#include "gem/net.h"
#include "gem/protocol.h"

namespace gem::hook {

class PmgrConn {
 public:
  PmgrConn() = default;
  ~PmgrConn();
  PmgrConn(const PmgrConn&) = delete;
  PmgrConn& operator=(const PmgrConn&) = delete;

  /// Connects to `ep` and sends `hello`, each within timeout_ms; then waits (heartbeats restart
  /// the wait) for the first other message and puts it in *reply. False with *why when the
  /// connection fails, times out, or the answer is an Error (its message in *why; closed).
  bool open(const net::Endpoint& ep, const proto::Hello& hello, int timeout_ms, proto::Message* reply,
            std::string* why);
  bool is_open() const { return fd_ >= 0; }
  void close();
  int timeout_ms() const { return timeout_ms_; }

  /// Sends `body` with a fresh request id (returned in *id when not null). False (closed) on failure.
  bool send(const proto::Body& body, uint64_t* id = nullptr);
  /// Next message, waiting up to timeout_ms (0: only what is already readable). False on timeout
  /// (*timed_out set, connection kept) or a broken/malformed connection (closed); *why says which.
  bool receive(proto::Message* m, int timeout_ms, std::string* why, bool* timed_out = nullptr);

 private:
  int fd_ = -1;
  int timeout_ms_ = 800;
  uint64_t next_id_ = 1;
  proto::FrameBuffer in_;
};

}  // namespace gem::hook
