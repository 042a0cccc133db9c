// gem-pmgr's I/O edge: serves the hooks of one client's processes and forwards to the scheduler of
// each GPU they use (routed by the device UUID in the hook's Hello). Single-threaded poll loop.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "gem/net.h"
#include "gem/peer.h"
#include "token_share.h"

namespace gem::pmgr {

struct ManagerOptions {
  std::string client;               // this pod manager's client ID
  net::Endpoint scheduler;          // default scheduler
  std::string scheduler_dir;        // non-empty: DIR/<GPU-UUID>.sock per device
  bool has_declared = false;        // --request/--limit/--gpu_mem given
  proto::ClientSettings declared;
};

class Manager {
 public:
  explicit Manager(ManagerOptions opts);
  ~Manager();
  /// Takes ownership of the listening fd.
  void start(int listen_fd);
  /// Runs until *stop becomes true; checks it at least every 200 ms.
  void run(const volatile bool* stop);

 private:
  struct Hook {
    std::unique_ptr<Peer> peer;
    bool hello = false;
    std::string uuid;
    uint32_t pid = 0;
  };
  struct Waiter {
    int fd;
    uint64_t request_id;
  };
  // One GPU's scheduler, and this client's token on it.
  struct Route {
    net::Endpoint endpoint;
    std::unique_ptr<Peer> sched;
    proto::ClientSettings settings;
    Micros retry_at = 0;  // no reconnect attempt before this
    bool requested = false;
    Micros last_burst = 0;
    std::deque<Waiter> waiters;
    TokenShare token;
    // A holder's renewal forwarded to the scheduler, answered by the TokenGrant with renew_id.
    bool renewing = false;
    Waiter renew_for{-1, 0};
    uint64_t renew_id = 0;
  };

  void accept_all();
  void on_hook_readable(int fd);
  void on_hook_message(int fd, const proto::Message& m);
  void on_sched_readable(const std::string& uuid);
  void drop_hook(int fd, const std::string& why);
  void drop_sched(const std::string& uuid, const std::string& why);
  Route* route_for(const std::string& uuid);  // connects if needed; nullptr if unreachable
  void serve_waiters(Route& r);
  void return_token(Route& r);

  ManagerOptions opts_;
  int listen_fd_ = -1;
  std::map<int, Hook> hooks_;
  std::map<std::string, Route> routes_;
  uint64_t next_id_ = 1;  // ids of our own requests to schedulers (0: plain token requests)
};

}  // namespace gem::pmgr
