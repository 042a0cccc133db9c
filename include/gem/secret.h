// A client's shared secret (docs/design.md, "Trust"): gem-pmgr --secret_file, the hook's
// GEMINI_SECRET_FILE, gem-schd --secrets. Read once, compared in constant time. No logging, no
// exceptions beyond std::bad_alloc: also linked into the hook.
#pragma once

#include <string>

namespace gem {

/// The one rule for who may read a daemon's file of secrets (gem-schd --secrets, gem-pmgr
/// --secret_file): its owner and group, never others (`mode & 007 == 0`; 0600 and 0640 pass, 0644
/// does not). `mode`: the file's st_mode. Returns "" when it passes, else
/// "PATH: readable or writable by others (mode 644): chmod o-rwx it".
std::string secret_file_mode_error(const std::string& path, unsigned mode);

/// Reads the secret from the first line of `path`, surrounding whitespace trimmed. It must be 1 to
/// proto::kMaxSecret printable ASCII bytes. Reads at most 4 KiB. With `private_file` (the daemons)
/// the opened file must also pass secret_file_mode_error(). False with *err (starting with `what`,
/// e.g. "--secret_file", naming the file and the problem, never the secret) otherwise.
bool read_secret_file(const std::string& path, std::string* secret, std::string* err,
                      const std::string& what = "--secret_file", bool private_file = false);

/// True when a == b, in time that depends on the lengths only.
bool secrets_equal(const std::string& a, const std::string& b);

}  // namespace gem
