// Standard base64 (RFC 4648 section 4, with '=' padding), as the AdmissionReview "patch" field
// ([]byte in Go's encoding/json) requires. Pure, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace gemwh {

/// Encodes bytes to RFC 4648 section 4 base64 with padding. Never fails.
std::string base64_encode(std::string_view bytes);

/// Decodes RFC 4648 section 4 base64 (padding required, no whitespace). Returns false on any other
/// input and leaves *out unspecified.
bool base64_decode(std::string_view text, std::string* out);

}  // namespace gemwh
