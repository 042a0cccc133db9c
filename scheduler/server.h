// gem-schd's I/O edge: accepts pod managers, feeds their messages and the config reloads to the
// policy core, and sends the grants it decides. Single-threaded poll loop.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "gem/config.h"
#include "gem/peer.h"
#include "config_loader.h"
#include "policy.h"

namespace gem::sched {

struct ServerOptions {
  PolicyOptions policy;
  std::string config_path = "resource-config.txt";
  std::string gpu_uuid;     // when set, pod managers naming another GPU are refused
  bool dynamic_clients = false;
  std::string stats_path;   // empty: no stats file
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();

  /// Loads the config synchronously (a missing or bad file is an error at start), starts the
  /// thread that reloads it, and takes the listening fd (owned from then on). False with *err.
  bool start(int listen_fd, std::string* err);

  /// Runs until *stop becomes true (set from a signal handler). Checks it at least every 200 ms.
  void run(const volatile bool* stop);

 private:
  struct Conn {
    std::unique_ptr<Peer> peer;
    std::string client;  // empty until its Hello
    uint64_t pending_request = 0;  // request id of its outstanding TokenRequest
  };

  void accept_all();
  void on_readable(int fd);
  void on_message(int fd, Conn& c, const proto::Message& m);
  void on_hello(int fd, Conn& c, const proto::Message& m, const proto::Hello& h);
  void drop(int fd, const std::string& why);
  void reload_config(bool at_start);
  void apply_clients();
  void schedule();
  void write_stats();
  Conn* conn_of(const std::string& client);
  proto::ClientSettings settings_of(const std::string& client) const;

  ServerOptions opts_;
  Policy policy_;
  ConfigLoader watcher_;  // watches, reads and parses the config on its own thread (issue 6)
  Config config_;  // last good resource-config.txt
  std::map<std::string, ClientConfig> dynamic_;  // admitted with --dynamic_clients
  int listen_fd_ = -1;
  std::map<int, Conn> conns_;
  std::map<std::string, int> fd_of_client_;
  Micros last_stats_ = 0;
  Micros last_check_ = 0;
};

}  // namespace gem::sched
