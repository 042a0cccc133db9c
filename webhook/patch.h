// JSON Patch (RFC 6902) building, with JSON Pointer (RFC 6901) escaping. Pure, no I/O.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gemwh {

/// Escapes one JSON Pointer reference token per RFC 6901 section 3/4: '~' -> "~0", then '/' -> "~1"
/// (in that order, so "~1" in the input becomes "~01"). Thread-safe (pure). Example:
/// "gemini.gpu-sharing.io/request" -> "gemini.gpu-sharing.io~1request".
std::string escape_pointer_token(std::string_view token);

/// Builds an RFC 6902 patch document (a JSON array of operation objects). Operations are applied by
/// the API server in the order they were added (RFC 6902 section 3), so callers that insert into
/// arrays must add their index-shifting operations last. Not thread-safe; one builder per request.
class PatchBuilder {
 public:
  /// RFC 6902 section 4.1 "add": path is an already escaped JSON Pointer ("/spec/volumes/-").
  void add(std::string path, nlohmann::json value);
  /// RFC 6902 section 4.3 "replace": the target must exist.
  void replace(std::string path, nlohmann::json value);
  /// RFC 6902 section 4.2 "remove": the target must exist.
  void remove(std::string path);
  /// RFC 6902 section 4.6 "test": the patch fails as a whole when the value differs.
  void test(std::string path, nlohmann::json value);

  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  /// The patch document; the builder keeps its copy.
  const nlohmann::json& ops() const { return ops_; }

 private:
  nlohmann::json ops_ = nlohmann::json::array();
};

}  // namespace gemwh
