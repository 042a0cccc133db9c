#include "gem/secret.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gem/protocol.h"

namespace gem {

std::string secret_file_mode_error(const std::string& path, unsigned mode) {
  if ((mode & 007) == 0) return {};
  char text[8];
  std::snprintf(text, sizeof text, "%03o", mode & 0777);
  return path + ": readable or writable by others (mode " + text + "): chmod o-rwx it";
}

bool read_secret_file(const std::string& path, std::string* secret, std::string* err, const std::string& what,
                      bool private_file) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    *err = what + " " + path + ": " + std::strerror(errno);
    return false;
  }
  if (private_file) {  // the file opened, not the path again: no window for a swap
    struct stat st {};
    std::string why = fstat(fileno(f), &st) != 0 ? path + ": " + std::strerror(errno)
                                                  : secret_file_mode_error(path, static_cast<unsigned>(st.st_mode));
    if (!why.empty()) {
      std::fclose(f);
      *err = what + " " + why;
      return false;
    }
  }
  char buf[4096];
  const size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  std::string line(buf, n);
  line = line.substr(0, line.find('\n'));
  const char* ws = " \t\r\n\v\f";
  const size_t b = line.find_first_not_of(ws);
  line = b == std::string::npos ? std::string() : line.substr(b, line.find_last_not_of(ws) - b + 1);
  if (line.empty() || line.size() > proto::kMaxSecret) {
    *err = what + " " + path + ": the first line must hold 1 to " + std::to_string(proto::kMaxSecret) +
           " bytes (it holds " + std::to_string(line.size()) + ")";
    return false;
  }
  if (!std::all_of(line.begin(), line.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    *err = what + " " + path + ": the secret must be printable ASCII";
    return false;
  }
  *secret = line;
  return true;
}

bool secrets_equal(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

}  // namespace gem
