// The hook's connection to its pod manager for one GPU. Used by that GPU's gate worker thread only.
#pragma once

#include <string>

#include "gem/protocol.h"
#include "gem/net.h"

namespace gem::hook {

class PmgrClient {
 public:
  PmgrClient() = default;
  ~PmgrClient();
  PmgrClient(const PmgrClient&) = delete;
  PmgrClient& operator=(const PmgrClient&) = delete;

  /// Connects and says Hello (connect timeout 1 s, answer timeout 2 s). False with *why.
  bool connect(const net::Endpoint& ep, const std::string& client, const std::string& uuid, std::string* why);
  bool connected() const { return fd_ >= 0; }
  void close();

  enum class Answer { kGranted, kRefused, kBroken };
  /// Asks for the token and blocks until the answer: kGranted with *quota_us; kRefused (the pod
  /// manager or scheduler said no: *why); kBroken (connection lost, closed: *why).
  Answer request_token(uint64_t last_burst_us, uint64_t* quota_us, std::string* why);
  /// Gives the token back. False when the connection broke (then closed).
  bool release_token(const proto::TokenRelease& rel);
  /// Gives the token back and asks for it again in the same message (rel.again is set here);
  /// blocks for the answer like request_token.
  Answer release_and_request(proto::TokenRelease rel, uint64_t* quota_us, std::string* why);

  /// Asks to keep the token for another quota (proto::TokenRenew). kGranted with *quota_us > 0:
  /// renewed; kGranted with 0: refused, drain and release.
  Answer renew_token(uint64_t used_us, uint64_t burst_us, uint64_t* quota_us, std::string* why);

  /// The client's settings as the scheduler last sent them.
  const proto::ClientSettings& client_settings() const { return settings_; }

 private:
  bool send(const proto::Message& m);
  Answer await_answer(uint64_t* quota_us, std::string* why);
  /// Next message, waiting up to timeout_ms (-1: no limit). False on timeout or a broken connection.
  bool receive(proto::Message* m, int timeout_ms, std::string* why);

  int fd_ = -1;
  uint64_t next_id_ = 1;
  proto::FrameBuffer in_;
  proto::ClientSettings settings_;
};

}  // namespace gem::hook
