// gem-pmgr's I/O edge: serves the hooks of one client's processes (launch gates and memory
// sessions) and forwards to the scheduler endpoints they are routed to. Single-threaded poll loop that only does sockets: the protocol
// state of each scheduler endpoint is a pure Route (route.h) whose Actions this edge executes.
// Nothing here blocks: connects are non-blocking, every wait has a deadline (docs/design.md).
#pragma once

#include <poll.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gem/listener.h"
#include "gem/metrics_endpoint.h"
#include "gem/net.h"
#include "gem/peer.h"
#include "gang.h"
#include "metrics.h"
#include "route.h"

namespace gem::pmgr {

struct ManagerOptions {
  std::string client;          // this pod manager's client ID
  net::Endpoint scheduler;     // default scheduler
  std::string scheduler_dir;   // non-empty: DIR/<GPU-UUID>.sock per device
  bool has_declared = false;   // --request/--limit/--gpu_mem given
  proto::ClientSettings declared;
  std::string secret;          // --secret_file: sent to the scheduler, required from hooks; "" = none
  Micros scheduler_timeout = kDefaultSchedulerTimeout;  // µs: connect, Hello answer, silence while waiting
  Micros hook_hello_timeout = proto::kHelloTimeoutMs * 1000;  // µs: a hook connection must say Hello within this
  ListenerOptions listener;    // --max_connections, --allow_uids
  Micros gang_window = kDefaultGangWindow;  // µs, --gang_window: gang tokens across GPUs (gang.h); 0 off
};

/// Where a hook's device UUID is served: with a scheduler_dir, a non-empty UUID goes to
/// DIR/<uuid>.sock; an empty UUID, and every UUID without scheduler_dir, to the default scheduler.
/// False with *why when the UUID is non-empty and not proto::valid_gpu_uuid() (never a path).
bool scheduler_for(const ManagerOptions& opts, const std::string& uuid, net::Endpoint* ep, std::string* why);

class Manager {
 public:
  explicit Manager(ManagerOptions opts);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;
  /// Takes ownership of the listening fd; `is_unix`: check the peers' uids (--allow_uids).
  void start(int listen_fd, bool is_unix);
  /// Runs until *stop becomes true; checks it at least every 200 ms. Never throws.
  void run(const volatile bool* stop);
  /// Metrics (manager_metrics.cpp): the loop renders for `endpoint` when a scrape wants it. May be
  /// null; must outlive run(). Before run().
  void set_metrics(MetricsEndpoint* endpoint) { endpoint_ = endpoint; }

  /// Routes (scheduler endpoints) open at once, at most; a Hello needing another is refused kBusy.
  static constexpr size_t kMaxRoutes = 64;

 private:
  struct Hook {
    std::unique_ptr<Peer> peer;
    bool hello = false;
    std::string route;  // key of scheds_, once Hello was accepted
    uint32_t pid = 0;
    bool memory = false;  // a memory session (Hello role kHookMemory), not a launch gate
  };
  struct Sched {
    net::Endpoint endpoint;
    Route route;
    int connecting_fd = -1;      // a connection in progress
    std::unique_ptr<Peer> peer;  // the connection, once made
  };
  enum class SlotKind { kListener, kHook, kConnecting, kSched };
  struct Slot {
    SlotKind kind;
    HookId hook;
    std::string key;
  };

  // Poll loop (manager.cpp).
  int poll_timeout_ms(Micros now) const;
  void build_poll_set(Micros now);
  void dispatch(const pollfd& p, const Slot& s);
  void tick(Micros now);
  void accept_hooks();
  // Hooks (manager_hooks.cpp), one function per message type.
  void on_hook_readable(HookId id);
  void on_hook_message(HookId id, const proto::Message& m);
  void on_hook_hello(HookId id, Hook& h, uint64_t rid, const proto::Hello& hello);
  /// The route a Hello is served by, created if new; nullptr when refused (the hook is dropped).
  Sched* route_for(HookId id, Hook& h, uint64_t rid, const proto::Hello& hello);
  void on_hook_request(Hook& h, HookId id, uint64_t rid, const proto::TokenRequest& m);
  void on_hook_release(Hook& h, HookId id, uint64_t rid, const proto::TokenRelease& m);
  void on_hook_renew(Hook& h, HookId id, uint64_t rid, const proto::TokenRenew& m);
  // Memory sessions (manager_memory.cpp), one function per message type.
  void on_mem_message(HookId id, Hook& h, const proto::Message& m);
  void on_mem_reserve(Hook& h, HookId id, uint64_t rid, const proto::MemReserve& m);
  void on_mem_return(Hook& h, HookId id, uint64_t rid, const proto::MemReturn& m);
  void on_mem_query(Hook& h, HookId id, uint64_t rid);
  void refuse_hook(HookId id, Hook& h, uint64_t rid, proto::ErrorCode code, const std::string& why);
  void drop_hook(HookId id, const std::string& why);
  Sched* sched_of(const Hook& h);
  // Scheduler connections and actions (manager_sched.cpp).
  void on_connect_ready(const std::string& key);
  void on_sched_readable(const std::string& key);
  void close_sched(Sched& s);
  void lost_sched(const std::string& key, const std::string& why);
  /// A write to gem-schd failed: reads what it sent before closing (a kBusy refusal) first, then
  /// treats the connection as lost unless the route already closed it.
  void sched_write_failed(const std::string& key, const std::string& why);
  void push(const std::string& key, Actions&& acts);
  void run_actions();
  /// Gang tokens (gang.h) over the routes, after every batch of events.
  void update_gang(Micros now);
  void execute(const std::string& key, Action& a);
  // Metrics (manager_metrics.cpp).
  PmgrView metrics_view() const;
  void publish_metrics();

  ManagerOptions opts_;
  std::unique_ptr<Listener> listener_;
  std::map<HookId, Hook> hooks_;
  std::map<std::string, Sched> scheds_;  // by endpoint (Endpoint::to_string())
  HookId next_hook_ = 1;
  std::deque<std::pair<std::string, Action>> todo_;  // actions not yet executed, in order
  std::vector<pollfd> fds_;
  std::vector<Slot> slots_;  // parallel to fds_
  PmgrMetrics metrics_;
  MetricsEndpoint* endpoint_ = nullptr;
  Gang gang_;
};

}  // namespace gem::pmgr
