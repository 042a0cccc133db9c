// Command-line flags of the daemons, Gemini style: "--name value" or "--name=value"; boolean flags
// take no value. Not thread-safe; used once in main().
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gem {

class Flags {
 public:
  /// value_flags: flags that take a value; bool_flags: flags that do not. Anything else is an error.
  Flags(std::vector<std::string> value_flags, std::vector<std::string> bool_flags);

  /// False with *err naming the bad argument ("unknown flag --foo", "--port needs a value",
  /// "unexpected argument 'x'": the daemons take flags only, so a stray word is a mistake).
  bool parse(int argc, char** argv, std::string* err);

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  /// Integer flag; false with *err when the value is not an integer in [lo, hi].
  bool get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi, int64_t* out,
               std::string* err) const;
  /// Number in [lo, hi]; false with *err otherwise.
  bool get_double(const std::string& name, double fallback, double lo, double hi, double* out,
                  std::string* err) const;

 private:
  std::vector<std::string> value_flags_, bool_flags_;
  std::map<std::string, std::string> values_;
};

}  // namespace gem
