// A scripted pod manager on a real Unix socket, for the tests of the hook's connections to it
// (pmgr_client_test.cpp: the launch session; mem_session_test.cpp: the memory session). It listens
// in a fresh /tmp folder, accepts one connection and runs a script on it, on a thread of its own;
// the script sends messages, expects the hook's, answers the Hello and may hang up.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "gem/net.h"
#include "gem/protocol.h"

namespace gem::testing {

class ScriptedPeer {
 public:
  using Script = std::function<void(ScriptedPeer&)>;
  /// How long the peer waits for the hook to connect.
  static constexpr int kAcceptMs = 10000;

  /// Listens and runs `script` on the connection the hook opens. `wait_ms` bounds every send() and
  /// receive() of the script (each test file picks one no test reaches on a loaded machine).
  ScriptedPeer(Script script, int wait_ms);
  ~ScriptedPeer();
  ScriptedPeer(const ScriptedPeer&) = delete;
  ScriptedPeer& operator=(const ScriptedPeer&) = delete;

  const net::Endpoint& endpoint() const { return ep_; }
  /// Waits for the script to end (then what it recorded may be read).
  void join();

  /// Sends every message in one write, so the hook finds all of them readable at once.
  void send(const std::vector<proto::Message>& msgs);
  void send(proto::Body body, uint64_t id = 0) { send(std::vector<proto::Message>{proto::Message{id, std::move(body)}}); }
  /// Bytes as they are (not a frame).
  void send_raw(const std::string& bytes);
  /// The next message from the hook; false when the hook closed the connection or was silent for
  /// wait_ms.
  bool receive(proto::Message* m);
  /// The next message, which must be a T (a test failure otherwise; then T{}); its request id is
  /// last_id().
  template <typename T>
  T expect() {
    proto::Message m;
    EXPECT_TRUE(receive(&m));
    EXPECT_TRUE(std::holds_alternative<T>(m.body)) << "got " << proto::type_name(m.body);
    last_id_ = m.request_id;
    return std::holds_alternative<T>(m.body) ? std::get<T>(m.body) : T{};
  }
  /// Takes the Hello and answers it with `answer` (ClientSettings for a launch session, MemState
  /// for a memory session).
  proto::Hello hello(proto::Body answer = proto::ClientSettings{});
  /// The request id of the message expect() took last.
  uint64_t last_id() const { return last_id_; }
  /// Closes the connection.
  void hang_up();

 private:
  const int wait_ms_;
  std::string dir_;
  net::Endpoint ep_;
  int listen_fd_ = -1;
  int fd_ = -1;
  std::thread thread_;
  proto::FrameBuffer in_;
  uint64_t last_id_ = 0;
};

}  // namespace gem::testing
