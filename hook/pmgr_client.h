// The hook's connection to its pod manager for one GPU. Used by that GPU's gate worker thread only.
//
// Every wait here has a deadline (docs/design.md, "Liveness"): the pod manager sends a Heartbeat
// every proto::kHeartbeatPeriodMs while a request of ours is queued, so silence for `timeout_ms`
// (GEMINI_PMGR_TIMEOUT_MS, 800 ms) while we wait means a stopped or hung pod manager: the
// connection is closed and the caller takes its fail-open (or fail-closed) path.
#pragma once

#include <functional>
#include <string>

#include "gem/net.h"
#include "gem/protocol.h"
#include "pmgr_conn.h"

namespace gem::hook {

class PmgrClient {
 public:
  PmgrClient() = default;
  PmgrClient(const PmgrClient&) = delete;
  PmgrClient& operator=(const PmgrClient&) = delete;

  /// Connects and says Hello (with `secret`), each step within timeout_ms. False with *why.
  bool connect(const net::Endpoint& ep, const std::string& client, const std::string& uuid,
               const std::string& secret, int timeout_ms, std::string* why);
  bool connected() const { return conn_.is_open(); }
  void close();

  enum class Answer { kGranted, kRefused, kBroken };
  /// Asks for the token and waits for the answer while heartbeats keep coming: kGranted with
  /// *quota_us; kRefused (the pod manager or scheduler said no: *why); kBroken (connection lost or
  /// silent for timeout_ms: closed, *why).
  Answer request_token(uint64_t last_burst_us, uint64_t* quota_us, std::string* why);
  /// Gives the token back. False when the connection broke (then closed).
  bool release_token(const proto::TokenRelease& rel);
  /// Gives the token back and asks for it again in the same message (rel.again is set here);
  /// waits for the answer like request_token.
  Answer release_and_request(proto::TokenRelease rel, uint64_t* quota_us, std::string* why);

  /// Asks to keep the token for another quota (proto::TokenRenew). kGranted with *quota_us > 0:
  /// renewed; kGranted with 0: refused, drain and release.
  Answer renew_token(uint64_t used_us, uint64_t burst_us, uint64_t* quota_us, std::string* why);

  enum class Event { kNone, kRevoked, kBroken, kEvict };
  /// While holding the token: waits up to wait_us for a message. kRevoked: the scheduler took the
  /// token back (TokenRevoke); kBroken: the connection closed (closed here); kNone: the time passed
  /// (heartbeats and settings are consumed on the way). Never waits longer than wait_us.
  Event wait_event(int64_t wait_us);

  /// True (once) when an Evict arrived while waiting for something else (docs/memory.md, "Residency").
  /// Called (on the calling thread) when an Evict arrives while a request waits for its answer:
  /// a client waiting for the token does not run, so its memory may leave meanwhile.
  void on_evict_while_waiting(std::function<void(uint32_t flags)> f) { on_evict_ = std::move(f); }

  /// *flags: Evict.flags (kEvictDemandPaging).
  bool take_evict(uint32_t* flags = nullptr) {
    const bool e = evict_;
    evict_ = false;
    if (flags != nullptr) *flags = evict_flags_;
    return e;
  }

  /// The client's settings as the scheduler last sent them.
  const proto::ClientSettings& client_settings() const { return settings_; }

 private:
  Answer await_answer(uint64_t* quota_us, std::string* why);

  PmgrConn conn_;
  bool evict_ = false;  // an Evict seen and not yet taken
  uint32_t evict_flags_ = 0;
  std::function<void(uint32_t)> on_evict_;
  proto::ClientSettings settings_;
};

}  // namespace gem::hook
