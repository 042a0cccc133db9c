// One process's memory session with its pod manager for one GPU (docs/memory.md): a connection
// of its own (Hello role kHookMemory), opened at the first allocation or memory query on that GPU.
// Every call waits at most GEMINI_PMGR_TIMEOUT_MS (heartbeats restart the wait); a push of the
// pod manager (MemState with request id 0: the limit changed) met on the way is kept for
// take_push(). Not thread-safe: the memory tracker calls it under its lock. The hook's LeaseChannel
// (lease_sync.h). The settings (the pod manager's address, the client, its secret, the timeout) are
// passed in (settings() in the hook, its own in tests): no driver calls.
#pragma once

#include <optional>
#include <string>

#include "gem/protocol.h"
#include "lease_sync.h"
#include "pmgr_conn.h"
#include "settings.h"

namespace gem::hook {

class MemSession final : public LeaseChannel {
 public:
  /// `s` is borrowed and outlives this (settings() is never destroyed).
  explicit MemSession(const Settings& s) : s_(s) {}

  /// Connects and says Hello for GPU `uuid`; true with *state (the limit) on success, false with *why.
  bool open(const std::string& uuid, proto::MemState* state, std::string* why) override;
  bool is_open() const override { return conn_.is_open(); }
  void close() { conn_.close(); }

  /// Asks for a lease (proto::MemReserve); true with the answer in *state (granted_bytes 0 = refused).
  /// False when the connection broke or the pod manager fell silent (then closed).
  bool reserve(uint64_t need, uint64_t want, bool existing, proto::MemState* state, std::string* why) override;
  /// Gives back `bytes` of this process's lease. False when the connection broke (closed).
  bool give_back(uint64_t bytes) override;
  /// The limit and the client's total now (proto::MemQuery). False when the connection broke.
  bool query(proto::MemState* state, std::string* why) override;
  /// The latest push received so far, reading what is already readable without waiting; nullopt
  /// when none. Closes the connection (and returns nullopt) when it broke.
  std::optional<proto::MemState> take_push() override;

 private:
  bool await(uint64_t id, proto::MemState* state, std::string* why);
  const Settings& s_;
  PmgrConn conn_;
  std::optional<proto::MemState> push_;
};

}  // namespace gem::hook
