// valid_resource_name (declared in mutate.h): the rule for extended resource names, in one place.
#include "mutate.h"

namespace gemwh {

bool valid_resource_name(const std::string& name, std::string* why) {
  auto fail = [&](const std::string& w) {
    if (why) *why = "\"" + name + "\" is not an extended resource name (prefix/name, e.g. nvidia.com/gpu): " + w;
    return false;
  };
  const size_t slash = name.find('/');
  if (slash == std::string::npos || name.find('/', slash + 1) != std::string::npos) {
    return fail("it needs exactly one '/'");
  }
  const std::string prefix = name.substr(0, slash), base = name.substr(slash + 1);
  auto alnum = [](char c, bool upper) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z');
  };
  // The prefix: a DNS subdomain (RFC 1123 labels of [a-z0-9-], joined by dots).
  if (prefix.empty() || prefix.size() > 253) return fail("the prefix must have 1 to 253 characters");
  size_t start = 0;
  while (start <= prefix.size()) {
    size_t dot = prefix.find('.', start);
    if (dot == std::string::npos) dot = prefix.size();
    const std::string label = prefix.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || !alnum(label.front(), false) || !alnum(label.back(), false)) {
      return fail("the prefix must be a lower-case DNS subdomain");
    }
    for (char c : label) {
      if (!alnum(c, false) && c != '-') return fail("the prefix must be a lower-case DNS subdomain");
    }
    start = dot + 1;
  }
  if (base.empty() || base.size() > 63) return fail("the name after '/' must have 1 to 63 characters");
  if (!alnum(base.front(), true) || !alnum(base.back(), true)) {
    return fail("the name after '/' must begin and end with a letter or digit");
  }
  for (char c : base) {
    if (!alnum(c, true) && c != '-' && c != '_' && c != '.') {
      return fail("the name after '/' may only hold letters, digits, '-', '_' and '.'");
    }
  }
  return true;
}

}  // namespace gemwh
