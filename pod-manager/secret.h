// gem-pmgr's shared secret (--secret_file): read once at start, compared in constant time.
#pragma once

#include <string>

namespace gem::pmgr {

/// Reads the secret from the first line of `path`, surrounding whitespace trimmed. It must be 1 to
/// proto::kMaxSecret printable ASCII bytes. Reads at most 4 KiB. False with *err (naming the file
/// and the problem, never the secret) otherwise.
bool read_secret_file(const std::string& path, std::string* secret, std::string* err);

/// True when a == b, in time that depends on the lengths only.
bool secrets_equal(const std::string& a, const std::string& b);

}  // namespace gem::pmgr
