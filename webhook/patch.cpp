#include "patch.h"

namespace gemwh {

std::string escape_pointer_token(std::string_view token) {
  std::string out;
  out.reserve(token.size() + 4);
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

void PatchBuilder::add(std::string path, nlohmann::json value) {
  ops_.push_back({{"op", "add"}, {"path", std::move(path)}, {"value", std::move(value)}});
}

void PatchBuilder::replace(std::string path, nlohmann::json value) {
  ops_.push_back({{"op", "replace"}, {"path", std::move(path)}, {"value", std::move(value)}});
}

void PatchBuilder::remove(std::string path) {
  ops_.push_back({{"op", "remove"}, {"path", std::move(path)}});
}

void PatchBuilder::test(std::string path, nlohmann::json value) {
  ops_.push_back({{"op", "test"}, {"path", std::move(path)}, {"value", std::move(value)}});
}

}  // namespace gemwh
