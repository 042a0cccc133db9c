// Notices when resource-config.txt changes, however it is updated:
//  - in place (truncate + write, as `echo > f` or most `>` redirections do),
//  - by renaming a new file over it (vim, sed -i, `kubectl cp`, most editors' atomic save),
//  - by a Kubernetes ConfigMap volume update, where the path is a symlink
//    `f -> ..data/f`, and kubelet renames a new `..data` symlink over the old one.
// It watches the directory holding the path (not the file: an inotify watch on a file follows the
// inode, which a rename replaces), plus the directory the path currently resolves to, and on any
// event re-reads the file through the path. A change is reported only when the bytes differ from
// the last ones read, so touches, no-op saves and unrelated files in the directory cost one small
// read and nothing else.
//
// It does not parse: the caller parses what check() returns and keeps its last good config when
// that fails. A writer that truncates and then writes may be seen half-way (an empty or partial
// file); its closing write raises another event, so the caller sees the final text right after.
#pragma once

#include <cstddef>
#include <string>

#include "gem/config.h"

namespace gem::sched {

/// Reads a whole regular file into *out (replaced). Follows symlinks. Refuses anything that is
/// not a regular file (a FIFO would block) and files above `max_bytes` (default
/// gem::kMaxConfigBytes, 64 MiB, include/gem/config.h), with "PATH is larger than 67108864 bytes
/// (64 MiB), the most gem-schd reads"; a file whose size says so is refused before any byte is
/// read. Returns false and sets *err (e.g. "open resource-config.txt: No such file or
/// directory") on failure, leaving *out unspecified. Thread-safe (touches only its arguments).
bool read_file(const std::string& path, std::string* out, std::string* err, size_t max_bytes = gem::kMaxConfigBytes);

using gem::kMaxConfigBytes;

/// Not thread-safe: one thread owns it (start, fd, check). Not copyable; closes its inotify fd.
class ConfigWatcher {
 public:
  /// `max_bytes`: the largest file check() reads (read_file()).
  explicit ConfigWatcher(std::string path, size_t max_bytes = kMaxConfigBytes);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  /// Sets up inotify. Does not read the file: the first check() does.
  /// Returns false with *err set when inotify cannot be used: without inotify at all (fd() is -1)
  /// the watcher still works through periodic check() calls; when only the watch on the directory
  /// failed (it does not exist yet, watch limit reached), check() retries adding it.
  /// Call once.
  bool start(std::string* err);

  /// inotify descriptor to poll() for POLLIN; readable means "call check()". -1 without inotify.
  /// Owned by the watcher.
  int fd() const { return fd_; }

  /// Drains pending inotify events (never blocks) and re-reads the file. Returns true with the
  /// file's contents in *new_text when they differ from the last contents read (the first
  /// successful read always counts as a change). Returns false when they are the same, or when
  /// the file cannot be read or is empty; the last contents are kept then, and last_error() says
  /// why. (An empty file is never a valid config, and it is what a reader sees between the
  /// truncate and the write of an in-place update, so it is not reported.)
  /// Call it when fd() is readable and also on a timer (about once a second) as a fallback for
  /// file systems without inotify (NFS, some FUSE) and for watches that broke. Cost: a realpath()
  /// and one read of the file per call.
  bool check(std::string* new_text);

  /// Why the last check() could not read the file; empty when it could. Log it when it changes,
  /// not on every check().
  const std::string& last_error() const { return last_error_; }

  const std::string& path() const { return path_; }

 private:
  void drain();
  void watch_target_dir();

  std::string path_;
  size_t max_bytes_;
  std::string dir_;         // directory holding path_
  std::string target_dir_;  // directory of the file path_ resolves to, when watched separately
  int fd_ = -1;
  int dir_wd_ = -1;
  int target_wd_ = -1;
  bool have_text_ = false;
  std::string text_;
  std::string last_error_;
};

}  // namespace gem::sched
