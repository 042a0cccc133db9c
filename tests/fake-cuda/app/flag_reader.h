// The command-line reading the stand-in's test programs share (fake-cuda-app, fake-capture-app):
// "--flag value" or "--flag=value", numbers checked against a range. Header-only: each program
// compiles its own copy.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <string>

namespace fakeflags {

/// A decimal integer in [lo, hi]; false (out untouched) when malformed or out of range.
inline bool to_long(const std::string& s, long lo, long hi, long* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long v = strtol(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/// A decimal number in [0, 1e7] (seconds); false when malformed or out of range.
inline bool to_seconds(const std::string& s, double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !(v >= 0) || v > 1e7) return false;
  *out = v;
  return true;
}

/// Walks argv one flag at a time: while (r.next()) { if (r.flag() == "--x" && r.take()) ... }.
class FlagReader {
 public:
  FlagReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  /// Moves to the next flag; false past the last.
  bool next() {
    if (++i_ >= argc_) return false;
    flag_ = argv_[i_];
    value_.clear();
    has_value_ = false;
    if (const size_t eq = flag_.find('='); eq != std::string::npos) {
      value_ = flag_.substr(eq + 1);
      flag_.resize(eq);
      has_value_ = true;
    }
    return true;
  }
  const std::string& flag() const { return flag_; }
  /// Whether the flag came as --flag=value (a switch must not).
  bool has_value() const { return has_value_; }
  /// The flag's value, from "=value" or the next argument; false when there is none.
  bool take() {
    if (has_value_) return true;
    if (i_ + 1 >= argc_) return false;
    value_ = argv_[++i_];
    has_value_ = true;
    return true;
  }
  const std::string& value() const { return value_; }
  /// Sets *error to say the flag's value is bad or missing; returns false (for `return r.bad(e)`).
  bool bad(std::string* error) const {
    *error = "bad or missing value for " + flag_;
    return false;
  }
  /// The argument as typed, for "unknown argument" errors.
  const char* arg() const { return argv_[i_]; }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string flag_, value_;
  bool has_value_ = false;
};

}  // namespace fakeflags
