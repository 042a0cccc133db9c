// A client that speaks the protocol by hand (gem::proto::encode / FrameBuffer) over a Unix socket:
// forgers, flooders, silent and duplicate connections for the hardening tests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "gem/clock.h"
#include "gem/protocol.h"

namespace gemtest {

class RawClient {
 public:
  RawClient() = default;
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  /// Connects (blocking); false with *why.
  bool connect(const std::string& socket_path, std::string* why = nullptr);
  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void close();

  /// Sends one message (blocking, up to 2 s). False when the connection is broken.
  bool send(const gem::proto::Message& m);
  /// Sends a Hello; role kPodManager unless told otherwise.
  bool hello(const std::string& client, gem::proto::Role role = gem::proto::Role::kPodManager,
             const std::string& device_uuid = "", const std::string& secret = "");

  /// The next message within `seconds`; nullopt on timeout, close or malformed bytes (closed() tells).
  std::optional<gem::proto::Message> receive(double seconds);
  /// The next message that is not a Heartbeat (heartbeats are counted).
  std::optional<gem::proto::Message> receive_skipping_heartbeats(double seconds);
  /// Reads until the peer closes (true, *after_s = seconds waited) or `seconds` pass (false).
  /// Messages read meanwhile are appended to *seen when given.
  bool wait_closed(double seconds, double* after_s = nullptr, std::vector<gem::proto::Message>* seen = nullptr);
  /// True once a read saw the peer close (or reset) the connection.
  bool closed() const { return closed_; }
  int heartbeats() const { return heartbeats_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
  int heartbeats_ = 0;
  gem::proto::FrameBuffer in_;
};

/// Error code of a message, or -1 when it is not an Error.
int error_code(const gem::proto::Message& m);

}  // namespace gemtest
