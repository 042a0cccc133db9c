// libFuzzer target: the /metrics endpoint's request parser (include/gem/http_request.h), as
// metrics/endpoint.cpp drives it: bytes arrive, head_length() says when the head is complete, and
// parse_request() gets the head (at most http::kMaxRequestHead + 1 bytes are ever kept).
//
// Properties (abort on violation):
//  - head_length() is 0 or ends right after an empty line ("\n\n" or "\n\r\n") and never past the
//    input; it is the first such place (a prefix that holds a complete head gives the same length);
//  - parse_request() answers one of 200, 400, 405, 413, 431, 505; 200 only for GET or HEAD, with a
//    path that starts with '/' and has no '?', and never when a body is announced (Content-Length
//    other than 0, or Transfer-Encoding);
//  - a head above kMaxRequestHead is 431 whatever it holds.
#include <cstdint>
#include <string>
#include <string_view>

#include "gem/http_request.h"

namespace http = gem::http;

constexpr const char* kFuzzTarget = "fuzz-http";
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t len = http::head_length(in);
  CHECK(len <= in.size());
  if (len > 0) {
    CHECK(len >= 2 && in[len - 1] == '\n');
    CHECK(in[len - 2] == '\n' || (len >= 3 && in[len - 2] == '\r' && in[len - 3] == '\n'));
    CHECK(http::head_length(in.substr(0, len)) == len);
    CHECK(http::head_length(in.substr(0, len - 1)) == 0);
  }
  const std::string_view head = len > 0 ? in.substr(0, len) : in;
  http::Request r;
  const int status = http::parse_request(head, &r);
  CHECK(status == 200 || status == 400 || status == 405 || status == 413 || status == 431 || status == 505);
  if (head.size() > http::kMaxRequestHead) CHECK(status == 431);
  if (status == 200) {
    CHECK(head.substr(0, 4) == "GET " || head.substr(0, 5) == "HEAD ");
    CHECK(r.head_only == (head.substr(0, 5) == "HEAD "));
    CHECK(!r.path.empty() && r.path[0] == '/' && r.path.find('?') == std::string::npos);
    // No body announced: a header line naming one would have been refused.
    std::string lower(head);
    for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    CHECK(lower.find("\ntransfer-encoding:") == std::string::npos);
  }
  return 0;
}
