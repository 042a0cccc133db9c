#include "gem/flags.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace gem {

Flags::Flags(std::vector<std::string> value_flags, std::vector<std::string> bool_flags)
    : value_flags_(std::move(value_flags)), bool_flags_(std::move(bool_flags)) {}

bool Flags::parse(int argc, char** argv, std::string* err) {
  auto known = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      *err = "unexpected argument '" + arg + "' (flags are --name value or --name=value)";
      return false;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (known(bool_flags_, name)) {
      if (inline_value) {
        *err = "--" + name + " takes no value";
        return false;
      }
      values_[name] = "1";
    } else if (known(value_flags_, name)) {
      if (!inline_value) {
        if (i + 1 >= argc) {
          *err = "--" + name + " needs a value";
          return false;
        }
        value = argv[++i];
      }
      values_[name] = value;
    } else {
      *err = "unknown flag --" + name;
      return false;
    }
  }
  return true;
}

std::string Flags::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

bool Flags::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi, int64_t* out,
                    std::string* err) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    *out = fallback;
    return true;
  }
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    *err = "--" + name + " must be an integer from " + std::to_string(lo) + " to " +
           std::to_string(hi) + ", got '" + it->second + "'";
    return false;
  }
  *out = v;
  return true;
}

bool Flags::get_double(const std::string& name, double fallback, double lo, double hi, double* out,
                       std::string* err) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    *out = fallback;
    return true;
  }
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    *err = "--" + name + " must be a number from " + std::to_string(lo) + " to " +
           std::to_string(hi) + ", got '" + it->second + "'";
    return false;
  }
  *out = v;
  return true;
}

}  // namespace gem
