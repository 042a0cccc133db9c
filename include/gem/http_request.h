// The one HTTP request the daemons' /metrics endpoint understands (metrics/endpoint.cpp): the head
// of a GET or HEAD without a body. The endpoint parses requests itself (not cpp-httplib, whose
// 0.11 reads any body into memory, takes unbounded header counts and lets a slow client hold a
// worker for good); this parser is pure and fuzzed (tests/fuzz/fuzz_http.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gem::http {

/// The largest request head (request line + headers + the empty line), bytes. A head that is not
/// complete within this many bytes is answered 431 and closed.
inline constexpr size_t kMaxRequestHead = 8192;

struct Request {
  bool head_only = false;  // HEAD: the response has no body
  std::string path;        // the target without its query ("/metrics")
};

/// How far `buf` (the bytes read so far) is from a complete head: the length of the head
/// including its empty line when complete (CRLF CRLF, or LF LF from lenient clients); 0 when more
/// bytes are needed. Pure; O(buf.size()).
size_t head_length(std::string_view buf);

/// Parses a complete head (as delimited by head_length()) into *out. Returns 200 when it is a
/// request the endpoint serves, else the status to answer: 400 (malformed), 405 (a method other
/// than GET or HEAD), 413 (a body announced: Content-Length other than 0, or Transfer-Encoding),
/// 431 (head larger than kMaxRequestHead), 505 (not HTTP/1.x). Never reads past `head`; pure and
/// thread-safe.
int parse_request(std::string_view head, Request* out);

}  // namespace gem::http
