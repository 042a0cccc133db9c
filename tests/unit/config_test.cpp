// resource-config.txt parser: accepted files, one test per error class with its exact message,
// and parse_size edge cases.
#include "gem/config.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <fstream>
#include <sstream>
#include <string>

#include "gem/protocol.h"

namespace gem {
namespace {

constexpr const char* kFile = "resource-config.txt";

Config parse_ok(const std::string& text) {
  Config cfg;
  ConfigError err;
  EXPECT_TRUE(parse_config(text, kFile, &cfg, &err)) << err.to_string();
  return cfg;
}

// The full "file:line: why" message of a rejected file.
std::string parse_err(const std::string& text) {
  Config cfg;
  ConfigError err;
  if (parse_config(text, kFile, &cfg, &err)) return "(accepted)";
  return err.to_string();
}

TEST(ConfigParse, GeminiFormat) {
  Config cfg = parse_ok("2\nclient1 0.3 1.0 4294967296\nclient2 0.7 0.9 0\n");
  ASSERT_EQ(cfg.clients.size(), 2u);
  EXPECT_EQ(cfg.clients[0].name, "client1");
  EXPECT_DOUBLE_EQ(cfg.clients[0].request, 0.3);
  EXPECT_DOUBLE_EQ(cfg.clients[0].limit, 1.0);
  EXPECT_EQ(cfg.clients[0].gpu_mem_bytes, 4294967296u);
  EXPECT_EQ(cfg.clients[1].name, "client2");
  EXPECT_DOUBLE_EQ(cfg.clients[1].request, 0.7);
  EXPECT_DOUBLE_EQ(cfg.clients[1].limit, 0.9);
  EXPECT_EQ(cfg.clients[1].gpu_mem_bytes, 0u);  // no limit
  ASSERT_NE(cfg.find("client2"), nullptr);
  EXPECT_EQ(cfg.find("client2")->name, "client2");
  EXPECT_EQ(cfg.find("client3"), nullptr);
  EXPECT_EQ(cfg.find("client"), nullptr);
}

TEST(ConfigParse, CommentsBlankLinesTabsCrlfAndNoFinalNewline) {
  Config cfg = parse_ok(
      "\xEF\xBB\xBF# header\n"
      "\n"
      "   # indented comment\n"
      "2   # two clients\r\n"
      "\t\n"
      "default/pod-a\t0.25  0.5\t1.5GiB # trailing\r\n"
      "\n"
      "ns:x_y.z-1 0 1 512MiB");
  ASSERT_EQ(cfg.clients.size(), 2u);
  EXPECT_EQ(cfg.clients[0].name, "default/pod-a");
  EXPECT_DOUBLE_EQ(cfg.clients[0].request, 0.25);
  EXPECT_DOUBLE_EQ(cfg.clients[0].limit, 0.5);
  EXPECT_EQ(cfg.clients[0].gpu_mem_bytes, 1610612736u);
  EXPECT_EQ(cfg.clients[1].name, "ns:x_y.z-1");
  EXPECT_EQ(cfg.clients[1].gpu_mem_bytes, 512u << 20);
}

TEST(ConfigParse, UnifiedMemoryOptionAfterGpuMemKeepsGeminiLinesValid) {
  Config cfg = parse_ok("3\na 0.3 1.0 2GiB um=on\nb 0.3 1.0 0 um=off\nc 0.3 1.0 0\n");
  ASSERT_EQ(cfg.clients.size(), 3u);
  EXPECT_TRUE(cfg.clients[0].unified_memory);
  EXPECT_EQ(cfg.clients[0].gpu_mem_bytes, uint64_t{2} << 30);
  EXPECT_FALSE(cfg.clients[1].unified_memory);
  EXPECT_FALSE(cfg.clients[2].unified_memory);
  EXPECT_NE(parse_err("1\na 0.3 1.0 0 um=yes\n").find("unknown option 'um=yes' after GPU_MEM: expected um=on or um=off"),
            std::string::npos)
      << parse_err("1\na 0.3 1.0 0 um=yes\n");
  EXPECT_NE(parse_err("1\na 0.3 1.0 0 um=on x\n").find("extra field 'x'"), std::string::npos)
      << parse_err("1\na 0.3 1.0 0 um=on x\n");
}

TEST(ConfigParse, LatencyOptionInMillisecondsBesideUm) {
  Config cfg = parse_ok("3\na 0.3 1.0 0 latency=5\nb 0.3 1.0 2GiB um=on latency=2.5\nc 0.3 1.0 0\n");
  ASSERT_EQ(cfg.clients.size(), 3u);
  EXPECT_EQ(cfg.clients[0].latency_us, 5000u);
  EXPECT_EQ(cfg.clients[1].latency_us, 2500u);
  EXPECT_TRUE(cfg.clients[1].unified_memory);
  EXPECT_EQ(cfg.clients[2].latency_us, 0u);
  for (const char* bad : {"latency=0", "latency=-1", "latency=x", "latency=", "latency=60001", "latency=5ms",
                          "latency=1e-9", "latency=0.0004", "latency=0x10", "latency=5."}) {
    const std::string e = parse_err(std::string("1\na 0.3 1.0 0 ") + bad + "\n");
    EXPECT_NE(e.find("milliseconds in [0.001, 60000]"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("latency '" + std::string(bad).substr(8) + "'"), std::string::npos) << "names the value: " << e;
  }
  EXPECT_NE(parse_err("1\na 0.3 1.0 0 latency=5 latency=6\n").find("option 'latency' given twice"), std::string::npos);
  EXPECT_NE(parse_err("1\na 0.3 1.0 0 fast=yes\n").find("unknown option 'fast=yes' after GPU_MEM"), std::string::npos);
  EXPECT_NE(parse_err("1\na 0.3 1.0 0 um=on latency=5 x\n").find("extra field 'x' after the options"), std::string::npos)
      << parse_err("1\na 0.3 1.0 0 um=on latency=5 x\n");
}

TEST(ConfigParse, ZeroClients) { EXPECT_TRUE(parse_ok("0\n").clients.empty()); }

TEST(ConfigParse, RequestsSummingToExactlyOne) {
  // 0.1 + 0.2 + 0.7 is 1.0000000000000002 in doubles.
  EXPECT_EQ(parse_ok("3\na 0.1 1 0\nb 0.2 1 0\nc 0.7 1 0\n").clients.size(), 3u);
  EXPECT_EQ(parse_ok("1\na 1 1 0\n").clients.size(), 1u);
  EXPECT_EQ(parse_ok("1\na 1e-1 2.5e-1 0\n").clients[0].limit, 0.25);
}

TEST(ConfigParse, LongestId) {
  std::string id(proto::kMaxName, 'x');
  EXPECT_EQ(parse_ok("1\n" + id + " 0.5 1 0\n").clients[0].name, id);
  EXPECT_EQ(parse_err("1\n" + id + "y 0.5 1 0\n"),
            "resource-config.txt:2: ID '" + std::string(64, 'x') + "...' is " +
                std::to_string(proto::kMaxName + 1) + " bytes, longer than " +
                std::to_string(proto::kMaxName));
}

TEST(ConfigParse, RepoDefaultFileLoads) {
  // The unit tests run from the repository root (make unit-test).
  std::ifstream in("resource-config.txt");
  if (!in) GTEST_SKIP() << "not run from the repository root";
  std::stringstream ss;
  ss << in.rdbuf();
  Config cfg = parse_ok(ss.str());
  ASSERT_EQ(cfg.clients.size(), 2u);
  EXPECT_EQ(cfg.clients[0].name, "client1");
  EXPECT_DOUBLE_EQ(cfg.clients[0].request, 0.3);
  EXPECT_EQ(cfg.clients[1].name, "client2");
  EXPECT_DOUBLE_EQ(cfg.clients[1].request, 0.7);
}

TEST(ConfigErrors, FirstLine) {
  EXPECT_EQ(parse_err("abc\n"),
            "resource-config.txt:1: first line must be the number of clients, got 'abc'");
  EXPECT_EQ(parse_err("# c\n\n2 3\n"),
            "resource-config.txt:3: first line must be the number of clients, got '2 3'");
  EXPECT_EQ(parse_err("-1\n"),
            "resource-config.txt:1: first line must be the number of clients, got '-1'");
  EXPECT_EQ(parse_err("1.0\na 0 1 0\n"),
            "resource-config.txt:1: first line must be the number of clients, got '1.0'");
  EXPECT_EQ(parse_err("client1 0.3 1.0 0\n"),
            "resource-config.txt:1: first line must be the number of clients, got "
            "'client1 0.3 1.0 0'");
  EXPECT_EQ(parse_err(""),
            "resource-config.txt: no client count: the file is empty or only comments");
  EXPECT_EQ(parse_err("# only\n  \n"),
            "resource-config.txt: no client count: the file is empty or only comments");
}

TEST(ConfigErrors, CountMismatch) {
  EXPECT_EQ(parse_err("3\na 0.1 1 0\nb 0.1 1 0\n"),
            "resource-config.txt: 3 clients declared on line 1 but 2 listed");
  // Too many: points at the first client beyond the count.
  EXPECT_EQ(parse_err("# x\n1\na 0.1 1 0\n\nb 0.1 1 0\nc 0.1 1 0\n"),
            "resource-config.txt:5: 1 clients declared on line 2 but 3 listed");
}

TEST(ConfigErrors, Shares) {
  EXPECT_EQ(parse_err("1\na 0.5 1.5 0\n"),
            "resource-config.txt:2: LIMIT 1.5 is not between 0 and 1");
  EXPECT_EQ(parse_err("1\na -0.1 1 0\n"),
            "resource-config.txt:2: REQUEST -0.1 is not between 0 and 1");
  EXPECT_EQ(parse_err("1\na 0.5abc 1 0\n"),
            "resource-config.txt:2: REQUEST '0.5abc' is not a number");
  EXPECT_EQ(parse_err("1\na nan 1 0\n"), "resource-config.txt:2: REQUEST 'nan' is not a number");
  EXPECT_EQ(parse_err("1\na 0 inf 0\n"), "resource-config.txt:2: LIMIT 'inf' is not a number");
  EXPECT_EQ(parse_err("1\na 0 0x1 0\n"), "resource-config.txt:2: LIMIT '0x1' is not a number");
  EXPECT_EQ(parse_err("1\na 0,5 1 0\n"), "resource-config.txt:2: REQUEST '0,5' is not a number");
  EXPECT_EQ(parse_err("1\na 0.8 0.5 0\n"), "resource-config.txt:2: REQUEST 0.8 is above LIMIT 0.5");
}

TEST(ConfigErrors, RequestsAboveOne) {
  EXPECT_EQ(parse_err("3\na 0.5 1 0\nb 0.4 1 0\nc 0.2 1 0\n"),
            "resource-config.txt:4: REQUEST 0.2 brings the REQUESTs to 1.1, above 1");
}

TEST(ConfigErrors, DuplicateId) {
  EXPECT_EQ(parse_err("3\nclient1 0.1 1 0\n# gap\nclient2 0.1 1 0\nclient1 0.2 1 0\n"),
            "resource-config.txt:5: ID 'client1' already used on line 2");
}

TEST(ConfigErrors, BadIdCharacters) {
  EXPECT_EQ(
      parse_err("1\nclient$1 0.1 1 0\n"),
      "resource-config.txt:2: ID 'client$1' contains '$'; allowed are A-Z a-z 0-9 and . _ / : -");
  EXPECT_EQ(
      parse_err("1\nc\x01 0.1 1 0\n"),
      "resource-config.txt:2: ID 'c\\x01' contains '\\x01'; allowed are A-Z a-z 0-9 and . _ / : -");
  EXPECT_EQ(
      parse_err("1\nclient\xc3\xa9 0.1 1 0\n"),
      "resource-config.txt:2: ID 'client\\xc3\\xa9' contains '\\xc3'; allowed are A-Z a-z 0-9 and "
      ". _ / : -");
}

TEST(ConfigErrors, MissingAndExtraFields) {
  EXPECT_EQ(parse_err("1\nclient1 0.3 1.0\n"),
            "resource-config.txt:2: missing GPU_MEM: expected 'ID REQUEST LIMIT GPU_MEM' "
            "(GPU_MEM 0 = no limit), got 'client1 0.3 1.0'");
  EXPECT_EQ(parse_err("1\nclient1\n"),
            "resource-config.txt:2: missing REQUEST: expected 'ID REQUEST LIMIT GPU_MEM' "
            "(GPU_MEM 0 = no limit), got 'client1'");
  EXPECT_EQ(parse_err("1\nclient1 0.3 1.0 4GiB 7\n"),
            "resource-config.txt:2: extra field '7' after GPU_MEM");
  // "4 GiB": the space makes GiB a fifth field.
  EXPECT_EQ(parse_err("1\nclient1 0.3 1.0 4 GiB\n"),
            "resource-config.txt:2: extra field 'GiB' after GPU_MEM");
}

TEST(ConfigErrors, GpuMemJunk) {
  const std::string forms = std::string(": expected ") + kSizeForms + " (0 = no limit)";
  EXPECT_EQ(parse_err("1\na 0 1 4XB\n"),
            "resource-config.txt:2: GPU_MEM '4XB' is not a size (unknown unit 'XB')" + forms);
  EXPECT_EQ(parse_err("1\na 0 1 -1\n"),
            "resource-config.txt:2: GPU_MEM '-1' is not a size (it does not start with a digit)" + forms);
  EXPECT_EQ(parse_err("1\na 0 1 99999999999TiB\n"),
            "resource-config.txt:2: GPU_MEM '99999999999TiB' is not a size (more than 18446744073709551615 "
            "bytes)" + forms);
}

TEST(ConfigErrors, FailedParseLeavesOutputUntouched) {
  Config cfg = parse_ok("1\nkeep 0.5 1 1G\n");
  ConfigError err;
  for (const char* bad : {"2\na 0.1 1 0\n", "1\na 0.1 2 0\n", "", "1\na 0.1 1 0\nb 0 1 0\n"}) {
    EXPECT_FALSE(parse_config(bad, kFile, &cfg, &err)) << bad;
    ASSERT_EQ(cfg.clients.size(), 1u);
    EXPECT_EQ(cfg.clients[0].name, "keep");
    EXPECT_EQ(cfg.clients[0].gpu_mem_bytes, 1000000000u);
  }
  // A good parse replaces everything.
  ASSERT_TRUE(parse_config("1\nnew 0 1 0\n", kFile, &cfg, &err));
  ASSERT_EQ(cfg.clients.size(), 1u);
  EXPECT_EQ(cfg.clients[0].name, "new");
}

TEST(ConfigErrors, ToStringWithoutLine) {
  ConfigError e{"f.txt", 0, "why"};
  EXPECT_EQ(e.to_string(), "f.txt: why");
  e.line = 7;
  EXPECT_EQ(e.to_string(), "f.txt:7: why");
}

uint64_t size_of(const char* s) {
  uint64_t v = 12345;
  EXPECT_TRUE(parse_size(s, &v)) << s;
  return v;
}

bool size_rejected(const char* s) {
  uint64_t v = 12345;
  bool ok = parse_size(s, &v);
  EXPECT_EQ(v, 12345u) << s << ": output changed on failure";
  return !ok;
}

TEST(ParseSize, Suffixes) {
  EXPECT_EQ(size_of("0"), 0u);
  EXPECT_EQ(size_of("123"), 123u);
  EXPECT_EQ(size_of("123B"), 123u);
  EXPECT_EQ(size_of("1K"), 1000u);
  EXPECT_EQ(size_of("1KB"), 1000u);
  EXPECT_EQ(size_of("1KiB"), 1024u);
  EXPECT_EQ(size_of("3M"), 3000000u);
  EXPECT_EQ(size_of("3MB"), 3000000u);
  EXPECT_EQ(size_of("3MiB"), 3u << 20);
  EXPECT_EQ(size_of("4G"), 4000000000u);
  EXPECT_EQ(size_of("4GB"), 4000000000u);
  EXPECT_EQ(size_of("4GiB"), 4ull << 30);
  EXPECT_EQ(size_of("2T"), 2000000000000u);
  EXPECT_EQ(size_of("2TiB"), 2ull << 40);
  EXPECT_EQ(size_of("4gib"), 4ull << 30);  // case-insensitive
  EXPECT_EQ(size_of("4g"), 4000000000u);
  EXPECT_EQ(size_of("007MiB"), 7u << 20);
  EXPECT_EQ(size_of("0GiB"), 0u);
  EXPECT_EQ(size_of("4Gi"), 4ull << 30);  // Kubernetes quantity style
  EXPECT_EQ(size_of("512Mi"), 512u << 20);
}

TEST(ParseSize, FractionsRoundDown) {
  EXPECT_EQ(size_of("1.5GiB"), 1610612736u);
  EXPECT_EQ(size_of("0.5K"), 500u);
  EXPECT_EQ(size_of("0.001KiB"), 1u);   // 1.024 bytes
  EXPECT_EQ(size_of("0.0009KiB"), 0u);  // 0.9216 bytes
  EXPECT_EQ(size_of("0.9999999999999999999999999KiB"), 1023u);
  EXPECT_EQ(size_of("1.0000000000000000000001KiB"), 1024u);
  EXPECT_EQ(size_of("2.5TB"), 2500000000000u);
  EXPECT_TRUE(size_rejected("1.5"));  // fractions of a byte
  EXPECT_TRUE(size_rejected("1.5B"));
  EXPECT_TRUE(size_rejected("1.GiB"));
  EXPECT_TRUE(size_rejected(".5GiB"));
}

TEST(ParseSize, Overflow) {
  EXPECT_EQ(size_of("18446744073709551615"), UINT64_MAX);
  EXPECT_TRUE(size_rejected("18446744073709551616"));
  EXPECT_TRUE(size_rejected("99999999999999999999999"));
  EXPECT_EQ(size_of("16777215TiB"), 16777215ull << 40);
  EXPECT_TRUE(size_rejected("16777216TiB"));  // 2^64
  EXPECT_EQ(size_of("16777215.5TiB"), (16777215ull << 40) + (1ull << 39));
  EXPECT_TRUE(size_rejected("18446744073709551.616K"));
  EXPECT_EQ(size_of("18446744073709551.615K"), UINT64_MAX);
}

TEST(ParseSize, Junk) {
  for (const char* s : {"",     "-1",    "+1",   "-0",    " 1",    "1 ",   "1 GiB", "GiB",
                        "1e9",  "1_000", "0x10", "1GiBB", "1iB",   "1Gix", "1bB",   "1P",
                        "1PiB", "nan",   "inf",  "1..5G", "1.5.G", "4XB",  "1KiB!"}) {
    EXPECT_TRUE(size_rejected(s)) << "'" << s << "'";
  }
}

}  // namespace
}  // namespace gem

// The admission rule, shared by the config file and gem-schd's --dynamic_clients Hellos.
TEST(Admission, OneRuleForEveryWayIn) {
  EXPECT_EQ(gem::admission_error(0.3, 1.0, 0.0), "");
  EXPECT_EQ(gem::admission_error(0.3, 1.0, 0.7), "") << "exactly 1 is allowed";
  EXPECT_EQ(gem::admission_error(0.1, 0.1, 0.7 + 0.2), "") << "decimal fractions summing to 1 within 1e-9";
  EXPECT_EQ(gem::admission_error(0.2, 1.0, 0.9), "REQUEST 0.2 brings the REQUESTs to 1.1, above 1");
  EXPECT_EQ(gem::admission_error(0.5, 0.4, 0.0), "REQUEST 0.5 is above LIMIT 0.4");
  EXPECT_EQ(gem::admission_error(0.5, 1.5, 0.0), "REQUEST 0.5 and LIMIT 1.5 must be between 0 and 1");
  EXPECT_NE(gem::admission_error(std::numeric_limits<double>::quiet_NaN(), 1.0, 0.0), "") << "NaN is never admitted";
}
