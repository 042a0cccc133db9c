// Per-client shared secrets of gem-schd (--secrets PATH): with them a pod manager must present its
// client's secret in its Hello. Meant for TCP, where the socket file's mode and SO_PEERCRED cannot
// say who connects (docs/design.md, "Trust"). The file is read and parsed off the poll loop by
// SecretsLoader (FileLoader, file_loader.h), like resource-config.txt; the loop swaps the parsed
// table into Secrets (issue 21).
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "file_loader.h"

namespace gem::sched {

/// Client ID -> secret.
using SecretTable = std::map<std::string, std::string>;

/// The largest --secrets file read, bytes; a larger one is refused by its size, never read.
inline constexpr size_t kMaxSecretsBytes = size_t{64} << 20;  // 64 MiB
/// The most lines a --secrets file may have (comments and blank lines included).
inline constexpr size_t kMaxSecretLines = 1000000;
/// The longest line of a --secrets file, bytes (without its newline; comments included).
inline constexpr size_t kMaxSecretLineBytes = 4096;

/// Parses a --secrets file's text: one "ID SECRET" per line, '#' comments and blank lines ignored;
/// an ID is at most proto::kMaxName bytes, a secret 1 to proto::kMaxSecret printable bytes without
/// spaces; at most kMaxSecretLines lines of at most kMaxSecretLineBytes. False with
/// *err = "PATH:LINE: why" (`path` only names the file in messages). Pure; thread-safe.
bool parse_secrets(const std::string& text, const std::string& path, SecretTable* out, std::string* err);

/// Reads and parses --secrets PATH on its own thread (FileLoader<SecretTable>, capped at
/// kMaxSecretsBytes); a file readable or writable by others (mode & 007) is refused. See
/// file_loader.h for start(), fd(), take() and thread-safety.
class SecretsLoader : public FileLoader<SecretTable> {
 public:
  explicit SecretsLoader(std::string path);
};

/// The secrets in force. Not thread-safe; owned by the server loop.
class Secrets {
 public:
  /// Puts `table` in force (taken by value, owned from then on) and turns the check on; returns
  /// the table it replaces (for the caller to destroy off the loop: FileLoader::retire).
  SecretTable set(SecretTable table) {
    enabled_ = true;
    by_client_.swap(table);
    return table;
  }

  bool enabled() const { return enabled_; }

  /// True when secrets are off, or `secret` equals the one configured for `client` (constant-time
  /// compare). A client without an entry is refused.
  bool allows(const std::string& client, const std::string& secret) const;

 private:
  bool enabled_ = false;
  SecretTable by_client_;
};

}  // namespace gem::sched
