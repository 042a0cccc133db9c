// The accepting side of a daemon (gem-schd, gem-pmgr): caps connections, checks the peer's
// credentials on Unix sockets, and never spins when the process runs out of file descriptors.
// Single-threaded use, from the daemon's poll loop. docs/design.md ("Trust") gives the rules.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "gem/clock.h"

namespace gem {

struct ListenerOptions {
  /// Connections open at once, at most (further ones are told kBusy and closed). Clamped at start
  /// to the process's file-descriptor limit less a reserve.
  size_t max_connections = 1024;
  /// Unix sockets only: peers whose SO_PEERCRED uid is neither the daemon's effective uid, root,
  /// nor one of these are told kDenied and closed. TCP peers are not checked (see docs/design.md:
  /// loopback inside the pod's network namespace is the boundary; --secrets adds a shared secret).
  std::vector<uid_t> allowed_uids;
};

class Listener {
 public:
  /// Takes ownership of the listening fd (non-blocking). `is_unix`: check peer credentials.
  Listener(int fd, bool is_unix, ListenerOptions opts);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_; }
  /// False while accepting is paused after the process ran out of file descriptors: the caller
  /// leaves the fd out of its poll set until resume_at().
  bool accepting(Micros now) const { return now >= paused_until_; }
  Micros resume_at() const { return paused_until_; }
  size_t max_connections() const { return opts_.max_connections; }

  /// Accepts what is pending (at most 64 per call) and returns the fds that pass the checks
  /// (close-on-exec; the caller owns them). `open_now`: connections the caller has open.
  /// Connections over the cap or with refused credentials get an Error frame and are closed.
  /// On EMFILE/ENFILE the oldest pending connection is accepted into a reserved descriptor and
  /// closed (its client sees the close at once instead of hanging) and accepting pauses 100 ms.
  std::vector<int> accept_ready(size_t open_now);

  /// Connections refused so far (cap, credentials, no descriptors).
  uint64_t refused() const { return refused_; }

 private:
  bool peer_allowed(int fd, std::string* why) const;
  void refuse(int fd, int code, const std::string& why);

  int fd_;
  bool is_unix_;
  ListenerOptions opts_;
  int reserve_fd_ = -1;
  Micros paused_until_ = 0;
  Micros last_warn_ = -1;
  uint64_t refused_ = 0;
};

/// Parses "1000,1001" into uids. False with *err naming the bad item.
bool parse_uid_list(const std::string& text, std::vector<uid_t>* out, std::string* err);

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit now in force.
size_t raise_fd_limit();

}  // namespace gem
