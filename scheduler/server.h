// gem-schd's I/O edge: accepts pod managers, feeds their messages and the config reloads to the
// policy core, and sends the grants, revocations and heartbeats it decides. Single-threaded poll
// loop; every connection is bounded (gem::Peer, gem::Listener) and nothing it does blocks.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "gem/config.h"
#include "gem/listener.h"
#include "gem/peer.h"
#include "gem/metrics_endpoint.h"
#include "config_loader.h"
#include "gpu_health.h"
#include "metrics.h"
#include "policy.h"
#include "refusals.h"
#include "gpu_residency.h"
#include "secrets.h"

namespace gem::sched {

/// Clients copied into a metrics snapshot per loop turn (Server::publish_metrics): bounds what a
/// scrape costs the loop in one turn (about 2 ms).
inline constexpr size_t kMetricsSliceClients = 4096;

struct ServerOptions {
  PolicyOptions policy;
  std::string config_path = "resource-config.txt";
  std::string gpu_uuid;     // when set, pod managers naming another GPU are refused
  bool dynamic_clients = false;
  std::string stats_path;   // empty: no stats file
  std::string secrets_path; // empty: no shared secrets (--secrets)
  ListenerOptions listener; // --max_connections, --allow_uids
  Micros hello_timeout = proto::kHelloTimeoutMs * 1000;  // µs a new connection has to say Hello
  uint64_t mem_budget = 0;  // bytes for all clients' resident memory (--mem_budget); 0: residency off
  bool residency = true;    // --residency on|demand (true) or off
  bool demand_paging = false;  // --residency demand: Evict says kEvictDemandPaging
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();

  /// Loads the config synchronously and the secrets (a missing or bad file is an error at start),
  /// starts the thread that reloads the config, and takes the listening fd (owned from then on;
  /// `is_unix` turns on the peer uid check). False with *err.
  bool start(int listen_fd, bool is_unix, std::string* err);

  /// Runs until *stop becomes true (set from a signal handler). Checks it at least every 200 ms;
  /// otherwise sleeps until the next thing it has to do (idle: about 5 wake-ups a second).
  void run(const volatile bool* stop);

  /// Metrics (server_metrics.cpp): the loop renders for `endpoint` when a scrape wants it, with the
  /// GPU's health from `health`. Either may be null; both must outlive run(). Before run().
  void set_observers(MetricsEndpoint* endpoint, const GpuHealth* health);

 private:
  struct Conn {
    std::unique_ptr<Peer> peer;
    std::string client;  // empty until its Hello
    uint64_t pending_request = 0;  // request id of its outstanding TokenRequest
    bool waiting = false;          // asked for the token and not granted yet: gets heartbeats
  };

  void accept_all();
  void on_readable(int fd);
  void on_message(int fd, Conn& c, const proto::Message& m);
  void on_hello(int fd, Conn& c, const proto::Message& m, const proto::Hello& h);
  std::string admit(const proto::Hello& h, proto::ErrorCode* code);
  void on_request(Conn& c, const proto::Message& m, const proto::TokenRequest& r, Micros now);
  void on_release(Conn& c, const proto::Message& m, const proto::TokenRelease& r, Micros now);
  void on_renew(int fd, Conn& c, const proto::Message& m, const proto::TokenRenew& r, Micros now);
  // Residency (server_residency.cpp; docs/memory.md "Residency").
  void on_mem_usage(Conn& c, const proto::MemUsage& u);
  /// The token went to `holder` (a grant or a renewal): carries out the residency plan (Evict to
  /// the clients it names, the policy's resident hint). Before the grant is sent.
  void plan_residency(const std::string& holder, Micros now);
  void forget_residency(const std::string& client);
  /// What residency takes from a client's config, never from its reports: GPU_MEM (bytes, 0 =
  /// none; caps its charge) and unified memory (um=on and not a latency client).
  struct Terms {
    uint64_t gpu_mem = 0;
    bool um = false;
  };
  Terms residency_terms(const std::string& client) const;
  /// After a config reload: every connected client's residency terms from the new config.
  void reconfigure_residency();
  /// Sends or, when the peer's backlog is full or the socket broke, drops that connection.
  bool send_or_drop(int fd, const proto::Message& m);
  void drop(int fd, const std::string& why);
  /// Swaps in the config the loader thread parsed last, if any was good (bad ones are logged).
  void reload_config();
  /// Swaps in the secrets the loader thread parsed last, if good (bad ones are logged).
  void reload_secrets();
  void apply_clients();
  /// Revokes every token kept past its quota + lease grace (Policy::expire_lease).
  void expire_lease();
  /// Logs once per change of the client count when quotas cannot serve `clients` once per window.
  void warn_unfit(size_t clients);
  void schedule();
  void heartbeat(Micros now);
  void close_silent(Micros now);
  Micros next_wakeup(Micros now) const;
  void write_stats();
  /// Adds a slice of clients to the metrics snapshot under way (starting one if none is); hands the
  /// finished snapshot to the endpoint, which renders it on its own thread (server_metrics.cpp).
  void publish_metrics();
  /// The snapshot's head: everything but the clients.
  SchedView metrics_view(Micros now) const;
  /// The one per-client record (ClientView) of a known client, for both the --stats file and the
  /// metrics (server_metrics.cpp).
  ClientView client_view(const std::string& name, Micros now) const;
  Conn* conn_of(const std::string& client);
  proto::ClientSettings settings_of(const std::string& client) const;

  ServerOptions opts_;
  Policy policy_;
  GpuResidency residency_;
  ConfigLoader watcher_;  // watches, reads and parses the config on its own thread (issue 6)
  Config config_;  // last good resource-config.txt
  Secrets secrets_;
  std::unique_ptr<SecretsLoader> secrets_loader_;  // reads and parses --secrets on its own thread
  std::map<std::string, ClientConfig> dynamic_;  // admitted with --dynamic_clients
  std::unique_ptr<Listener> listener_;
  std::map<int, Conn> conns_;
  std::map<std::string, int> fd_of_client_;
  Micros last_stats_ = 0;
  Micros last_check_ = 0;
  size_t unfit_clients_ = 0;  // client count warn_unfit() last looked at
  Micros last_heartbeat_ = 0;
  // Metrics and health (server_metrics.cpp).
  SchedMetrics metrics_;
  Refusals refusals_;  // the clients refused lately, for status and metrics
  MetricsEndpoint* endpoint_ = nullptr;
  const GpuHealth* health_ = nullptr;
  std::unique_ptr<SchedView> snapshot_;  // the metrics snapshot under way; null when none
  std::string snapshot_cursor_;          // the last client copied into it
  Micros started_ = mono_us();
};

}  // namespace gem::sched
