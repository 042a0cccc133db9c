// A client's shared secret (docs/design.md, "Trust"): gem-pmgr --secret_file, the hook's
// GEMINI_SECRET_FILE, gem-schd --secrets. Read once, compared in constant time. No logging, no
// exceptions beyond std::bad_alloc: also linked into the hook.
#pragma once

#include <string>

namespace gem {

/// Reads the secret from the first line of `path`, surrounding whitespace trimmed. It must be 1 to
/// proto::kMaxSecret printable ASCII bytes. Reads at most 4 KiB. False with *err (starting with
/// `what`, e.g. "--secret_file", naming the file and the problem, never the secret) otherwise.
bool read_secret_file(const std::string& path, std::string* secret, std::string* err,
                      const std::string& what = "--secret_file");

/// True when a == b, in time that depends on the lengths only.
bool secrets_equal(const std::string& a, const std::string& b);

}  // namespace gem
