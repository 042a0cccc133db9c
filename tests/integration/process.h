// A child process for the integration tests: fork/exec with a chosen environment and stdout/stderr
// redirected to files. The destructor stops it (SIGTERM, then SIGKILL after a grace period) and
// reaps it, so a failing test never leaves daemons behind.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gemtest {

struct SpawnOptions {
  std::vector<std::string> argv;                // argv[0] is the program path
  std::map<std::string, std::string> env;       // set (or override) in the child
  std::vector<std::string> unset_env;           // removed from the child's environment
  std::string stdout_path;                      // empty: /dev/null
  std::string stderr_path;                      // empty: /dev/null
};

class Process {
 public:
  /// Starts the child; throws std::runtime_error when fork fails. An exec failure shows as exit 127.
  explicit Process(const SpawnOptions& opts);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  /// True while the child has not exited (reaps it when it has).
  bool alive();
  /// Waits up to `seconds` for the child to exit; its wait status, or nullopt on timeout.
  std::optional<int> wait_for(double seconds);
  /// Sends a signal (no-op once reaped).
  void signal(int sig);
  /// SIGTERM, up to `grace` seconds, then SIGKILL; returns the wait status.
  int stop(double grace = 3.0);
  /// Wait status once reaped.
  std::optional<int> status() const { return status_; }
  const std::string& name() const { return name_; }

 private:
  bool try_reap(bool block);
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string name_;
};

/// "exit 0", "killed by signal 9", ... for messages.
std::string describe_status(int status);
/// True when the status is a normal exit with code 0.
bool exited_ok(int status);

}  // namespace gemtest
