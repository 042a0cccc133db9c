// Reloads a file off gem-schd's poll loop (issue 6 for resource-config.txt, issue 21 for --secrets):
// a thread of its own waits on a ConfigWatcher (inotify, plus a check every second), reads each new
// version of the file (at most `max_bytes`: a larger one is refused by its size, never read), parses
// it with the caller's function and hands the result to the loop through a mailbox whose eventfd
// the loop polls. The loop then only swaps the parsed value in: a 10^6-line file (about 0.5 s to
// parse) no longer holds up token grants while it is read and parsed.
//
// The one home of that mechanism: ConfigLoader (config_loader.h) and the secrets' loader
// (secrets.h) are this template with their parser and their cap.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "config_watcher.h"

namespace gem::sched {

namespace file_loader {
/// Fallback period of the worker's check when inotify misses an update (NFS, broken watch), ms.
inline constexpr int kCheckPeriodMs = 1000;
/// Creates the two eventfds (non-blocking, close-on-exec); false with *err.
bool make_fds(int* event_fd, int* stop_fd, std::string* err);
void signal_fd(int fd);  // adds 1 to an eventfd (never blocks; saturated is readable anyway)
void drain_fd(int fd);   // reads an eventfd's counter (never blocks)
/// Waits up to kCheckPeriodMs for `watch_fd` (may be -1) or `stop_fd`; true when stop_fd fired.
bool wait(int stop_fd, int watch_fd);
void close_fd(int fd);
}  // namespace file_loader

/// One result of the worker: a good new value, or why the file could not be used.
template <class T>
struct FileUpdate {
  bool ok = false;
  T value;            // when ok
  std::string error;  // when !ok: "file:line: why" or a read error ("open f: No such file...")
};

/// Thread-safety: start(), fd(), take() and the destructor belong to one thread (the poll loop);
/// the worker thread touches only the watcher, the parser and the mailbox. Not copyable.
template <class T>
class FileLoader {
 public:
  /// Parses a whole file's text into *out; false with *err ("file:line: why"). Runs on the worker
  /// thread (and once in start()'s caller): must touch nothing but its arguments.
  using Parse = std::function<bool(const std::string& text, T* out, std::string* err)>;
  using Update = FileUpdate<T>;
  /// Pending read or parse errors kept for the loop (the newest).
  static constexpr size_t kMaxPendingErrors = 16;

  /// `max_bytes`: the largest file read (bytes); a larger one is an error, found by its size.
  FileLoader(std::string path, size_t max_bytes, Parse parse)
      : path_(path), parse_(std::move(parse)), watcher_(std::move(path), max_bytes) {}
  /// Stops the worker (it notices within one poll, at most the time of one read + parse) and joins.
  ~FileLoader() {
    if (worker_.joinable()) {
      file_loader::signal_fd(stop_fd_);
      worker_.join();
    }
    file_loader::close_fd(event_fd_);
    file_loader::close_fd(stop_fd_);
  }
  FileLoader(const FileLoader&) = delete;
  FileLoader& operator=(const FileLoader&) = delete;

  /// Start-up, in the calling thread: sets up the watch, reads and parses the file into *initial
  /// (a missing, empty, oversized or bad file is an error: false with *err = "cannot read PATH:
  /// why" or the parser's "file:line: why"), then starts the worker. *warning is set (and true
  /// still returned) when inotify cannot be used and the file is only checked once a second.
  /// Call once.
  bool start(T* initial, std::string* warning, std::string* err) {
    std::string werr;
    if (!watcher_.start(&werr)) *warning = werr;
    std::string text;
    if (!watcher_.check(&text)) {
      *err = "cannot read " + path_ + ": " + watcher_.last_error();
      return false;
    }
    if (!parse_(text, initial, err)) return false;
    if (!file_loader::make_fds(&event_fd_, &stop_fd_, err)) return false;
    try {
      worker_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
      *err = "cannot start the thread that reloads " + path_ + ": " + e.what();
      return false;
    }
    return true;
  }

  /// eventfd that is readable when take() has something; -1 before start(). Owned by the loader.
  int fd() const { return event_fd_; }

  /// Moves the pending updates into *out (replaced), oldest first; never blocks for long (the
  /// worker holds the lock only to append). An ok update supersedes the ok ones before it, so at
  /// most one value is pending; errors are kept (at most kMaxPendingErrors, the newest).
  /// Returns false when there is nothing.
  bool take(std::vector<Update>* out) {
    out->clear();
    if (event_fd_ < 0) return false;
    file_loader::drain_fd(event_fd_);
    std::lock_guard<std::mutex> lock(mu_);
    out->swap(pending_);
    return !out->empty();
  }

  /// Hands a value the loop no longer needs (the one a new value replaced) to the worker, which
  /// destroys it within kCheckPeriodMs: freeing a 10^6-entry table took the loop past a pod
  /// manager's timeout under AddressSanitizer (issue 21). Loop thread only.
  void retire(T old) {
    if (event_fd_ < 0) return;  // not started: destroyed here
    std::lock_guard<std::mutex> lock(mu_);
    retired_.push_back(std::move(old));
  }

 private:
  void push(Update u) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (u.ok) {
        // The loop has not taken the older value yet: it is superseded (and would cost memory).
        for (size_t i = pending_.size(); i-- > 0;) {
          if (pending_[i].ok) pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        }
      } else {
        size_t errors = 0;
        for (const Update& p : pending_) errors += p.ok ? 0 : 1;
        for (size_t i = 0; errors >= kMaxPendingErrors && i < pending_.size();) {
          if (!pending_[i].ok) {
            pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
            --errors;
          } else {
            ++i;
          }
        }
      }
      pending_.push_back(std::move(u));
    }
    file_loader::signal_fd(event_fd_);
  }

  void run() {
    while (!file_loader::wait(stop_fd_, watcher_.fd())) {
      {
        std::vector<T> retired;  // destroyed here, on the worker, outside the lock
        std::lock_guard<std::mutex> lock(mu_);
        retired.swap(retired_);
      }
      try {
        std::string text;
        const std::string before = watcher_.last_error();
        if (!watcher_.check(&text)) {
          // A read error is reported when it first appears, not at every check.
          if (!watcher_.last_error().empty() && watcher_.last_error() != before) {
            push({false, T{}, watcher_.last_error()});
          }
          continue;
        }
        Update u;
        u.ok = parse_(text, &u.value, &u.error);
        if (!u.ok) u.value = T{};
        text.clear();
        text.shrink_to_fit();
        push(std::move(u));
      } catch (const std::exception& e) {  // bad_alloc: keep serving the last good value
        try {
          push({false, T{}, path_ + ": cannot reload: " + e.what()});
        } catch (...) {
        }
      }
    }
  }

  const std::string path_;
  const Parse parse_;
  ConfigWatcher watcher_;  // the worker's once started
  int event_fd_ = -1;      // worker -> loop: updates pending
  int stop_fd_ = -1;       // loop -> worker: stop
  std::thread worker_;
  std::mutex mu_;
  std::vector<Update> pending_;  // guarded by mu_
  std::vector<T> retired_;       // guarded by mu_: values the loop gave back, destroyed by the worker
};

}  // namespace gem::sched
