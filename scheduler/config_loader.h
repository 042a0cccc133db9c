// Reloads resource-config.txt off gem-schd's poll loop (issue 6): a thread of its own waits on a
// ConfigWatcher (inotify, plus a check every second), reads and parses each new version of the file
// and hands the result to the loop through a mailbox whose eventfd the loop polls. The loop then
// only swaps the parsed Config in: a 10^6-client file (about 0.5 s to parse) no longer holds up
// token grants while it is read and parsed.
#pragma once

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gem/config.h"
#include "config_watcher.h"

namespace gem::sched {

/// One result of the worker: a good new config, or why the file could not be used.
struct ConfigUpdate {
  bool ok = false;
  Config config;      // when ok
  std::string error;  // when !ok: "file:line: why" or a read error ("open f: No such file...")
};

/// Thread-safety: start(), fd(), take() and the destructor belong to one thread (the poll loop);
/// the worker thread it starts touches only the watcher and the mailbox. Not copyable.
class ConfigLoader {
 public:
  explicit ConfigLoader(std::string path);
  /// Stops the worker (it notices within one poll, at most the time of one read + parse) and joins.
  ~ConfigLoader();
  ConfigLoader(const ConfigLoader&) = delete;
  ConfigLoader& operator=(const ConfigLoader&) = delete;

  /// Start-up, in the calling thread: sets up the watch, reads and parses the file into *initial
  /// (a missing or bad file is an error: false with *err = "cannot read PATH: why" or
  /// "file:line: why"), then starts the worker. *warning is set (and true still returned) when
  /// inotify cannot be used and the file is only checked once a second. Call once.
  bool start(Config* initial, std::string* warning, std::string* err);

  /// eventfd that is readable when take() has something; -1 before start(). Owned by the loader.
  int fd() const { return event_fd_; }

  /// Moves the pending updates into *out (replaced), oldest first; never blocks for long (the
  /// worker holds the lock only to append). An ok update supersedes the ok ones before it, so at
  /// most one Config is pending; errors are kept (at most kMaxPendingErrors, the newest).
  /// Returns false when there is nothing.
  bool take(std::vector<ConfigUpdate>* out);

  static constexpr size_t kMaxPendingErrors = 16;

 private:
  void run();
  void push(ConfigUpdate u);

  const std::string path_;
  ConfigWatcher watcher_;  // the worker's once started
  int event_fd_ = -1;      // worker -> loop: updates pending
  int stop_fd_ = -1;       // loop -> worker: stop
  std::thread worker_;
  std::mutex mu_;
  std::vector<ConfigUpdate> pending_;  // guarded by mu_
};

}  // namespace gem::sched
