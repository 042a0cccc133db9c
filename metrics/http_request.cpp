// The /metrics endpoint's request parser (include/gem/http_request.h).
#include "gem/http_request.h"

#include <cctype>

namespace gem::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

size_t head_length(std::string_view buf) {
  for (size_t i = buf.find('\n'); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return 0;
}

int parse_request(std::string_view head, Request* out) {
  if (head.size() > kMaxRequestHead) return 431;
  const size_t eol = head.find('\n');
  if (eol == std::string_view::npos) return 400;
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // METHOD SP TARGET SP HTTP/1.x
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return 400;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != std::string_view::npos) return 400;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  for (char c : method) {
    if (!token_char(c)) return 400;
  }
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return version.substr(0, 5) == "HTTP/" ? 505 : 400;
  }
  if (target.empty() || target.front() != '/') return 400;
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return 400;
  }
  // Headers: only the ones that announce a body matter.
  std::string_view rest = head.substr(eol + 1);
  while (!rest.empty()) {
    const size_t e = rest.find('\n');
    std::string_view h = rest.substr(0, e);
    rest.remove_prefix(e == std::string_view::npos ? rest.size() : e + 1);
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    if (h.empty()) break;  // the end of the head
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return 400;
    const std::string_view name = h.substr(0, colon);
    for (char c : name) {
      if (!token_char(c)) return 400;
    }
    const std::string_view value = trim(h.substr(colon + 1));
    if (iequals(name, "Transfer-Encoding")) return 413;
    if (iequals(name, "Content-Length") && value != "0") return value.find_first_not_of("0123456789") == std::string_view::npos && !value.empty() ? 413 : 400;
  }
  if (method != "GET" && method != "HEAD") return 405;
  out->head_only = method == "HEAD";
  out->path = std::string(target.substr(0, target.find('?')));
  return 200;
}

}  // namespace gem::http
