// Per-client shared secrets of gem-schd (--secrets PATH): with them a pod manager must present its
// client's secret in its Hello. Meant for TCP, where the socket file's mode and SO_PEERCRED cannot
// say who connects (docs/design.md, "Trust"). Not thread-safe; owned by the server loop.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

namespace gem::sched {

class Secrets {
 public:
  /// Reads PATH: one "ID SECRET" per line, '#' comments and blank lines ignored; a secret is 1 to
  /// proto::kMaxSecret printable bytes without spaces. False with *err = "file:line: why" (the
  /// secrets in force stay as they were). The file must not be readable by others
  /// (gem::secret_file_mode_error) and must hold at least one secret (an empty file is refused).
  bool load(const std::string& path, std::string* err);

  /// Reloads when the file's mtime or size changed since the last load; false with *err on a bad
  /// file (the last good secrets stay).
  bool reload_if_changed(std::string* err);

  bool enabled() const { return !path_.empty(); }

  /// True when secrets are off, or `secret` equals the one configured for `client` (constant-time
  /// compare). A client without an entry is refused.
  bool allows(const std::string& client, const std::string& secret) const;

 private:
  std::string path_;
  std::map<std::string, std::string> by_client_;
  time_t mtime_ = 0;
  long mtime_ns_ = 0;
  off_t size_ = -1;
};

}  // namespace gem::sched
