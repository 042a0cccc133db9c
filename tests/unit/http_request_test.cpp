// The /metrics endpoint's request parser (include/gem/http_request.h) and the --secrets parser
// (scheduler/secrets.h): the refusals that bound what a client or a file can make a daemon hold.
#include <gtest/gtest.h>

#include "gem/http_request.h"
#include "../../scheduler/secrets.h"

namespace {

int parse(const std::string& head, gem::http::Request* r = nullptr) {
  gem::http::Request tmp;
  return gem::http::parse_request(head, r != nullptr ? r : &tmp);
}

TEST(HttpRequest, ServesGetAndHeadOnly) {
  gem::http::Request r;
  EXPECT_EQ(parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", &r), 200);
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_FALSE(r.head_only);
  EXPECT_EQ(parse("HEAD /healthz HTTP/1.0\n\n", &r), 200);
  EXPECT_TRUE(r.head_only);
  EXPECT_EQ(parse("POST /metrics HTTP/1.1\r\n\r\n"), 405);
  EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\nContent-Length: 500000000\r\n\r\n"), 413);
  EXPECT_EQ(parse("POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 413);
  EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 200);
  EXPECT_EQ(parse("GET /metrics HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(parse("GET metrics HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"), 400);
  EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\nX: " + std::string(gem::http::kMaxRequestHead, 'a') + "\r\n\r\n"), 431);
}

TEST(HttpRequest, HeadLengthFindsTheFirstEmptyLine) {
  EXPECT_EQ(gem::http::head_length("GET / HTTP/1.1\r\nA: b\r\n"), 0u);
  EXPECT_EQ(gem::http::head_length("GET / HTTP/1.1\r\n\r\nbody"), 18u);
  EXPECT_EQ(gem::http::head_length("GET / HTTP/1.1\n\nbody"), 16u);
}

TEST(SecretsParse, CapsLinesAndLineLength) {
  gem::sched::SecretTable t;
  std::string err;
  EXPECT_TRUE(gem::sched::parse_secrets("# c\na s1\n\nb s2 # x\n", "f", &t, &err)) << err;
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t["b"], "s2");
  EXPECT_FALSE(gem::sched::parse_secrets("a " + std::string(gem::sched::kMaxSecretLineBytes, 'x') + "\n", "f", &t, &err));
  EXPECT_NE(err.find("f:1: line longer than"), std::string::npos) << err;
  EXPECT_FALSE(gem::sched::parse_secrets(std::string(gem::sched::kMaxSecretLines + 1, '\n'), "f", &t, &err));
  EXPECT_NE(err.find("more than"), std::string::npos) << err;
  EXPECT_FALSE(gem::sched::parse_secrets("a s1\na s2\n", "f", &t, &err));
  EXPECT_NE(err.find("f:2: second secret"), std::string::npos) << err;
  EXPECT_EQ(t.size(), 2u) << "a refused text leaves the table as it was";
}

}  // namespace
