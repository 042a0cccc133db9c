// One JSON object on one line, built field by field (fake-mem-app's output).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace memapp {

class JsonLine {
 public:
  void str(const char* key, const std::string& v) {
    sep(key);
    quote(v);
  }
  void num(const char* key, uint64_t v) {
    sep(key);
    text_ += std::to_string(v);
  }
  void real(const char* key, double v) {
    char b[32];
    snprintf(b, sizeof b, "%.1f", v);
    sep(key);
    text_ += b;
  }
  // A nested object, already rendered.
  void obj(const char* key, const JsonLine& v) {
    sep(key);
    text_ += v.text();
  }
  std::string text() const { return "{" + text_ + "}"; }

 private:
  void sep(const char* key) {
    if (!text_.empty()) text_ += ", ";
    quote(key);
    text_ += ": ";
  }
  void quote(const std::string& s) {
    text_ += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') {
        text_ += '\\';
        text_ += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char b[8];
        snprintf(b, sizeof b, "\\u%04x", c);
        text_ += b;
      } else {
        text_ += c;
      }
    }
    text_ += '"';
  }
  std::string text_;
};

}  // namespace memapp
