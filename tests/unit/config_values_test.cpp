// resource-config.txt's value parsers (gem/config.h), the one home of these rules for the config
// file, gem-schd --mem_budget, gem-pmgr --request/--limit/--gpu_mem/--latency and the webhook's
// annotations: the size forms (Kubernetes quantities included), and what a bad value's message says.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "gem/config.h"

namespace gem {
namespace {

// The reason parse_size gives for `text`, or "" when it parses; checks the output is left alone.
std::string size_why(const std::string& text) {
  uint64_t v = 12345;
  std::string why = "unset";
  const bool ok = parse_size(text, &v, &why);
  if (ok) {
    EXPECT_EQ(why, "") << text;
    return "";
  }
  EXPECT_EQ(v, 12345u) << text << ": output changed on failure";
  // Every message names the text and lists the accepted forms.
  EXPECT_EQ(why.rfind("'", 0), 0u) << why;
  EXPECT_NE(why.find(std::string("expected ") + kSizeForms), std::string::npos) << why;
  return why;
}

uint64_t size_of(const std::string& text) {
  uint64_t v = 0;
  std::string why;
  EXPECT_TRUE(parse_size(text, &v, &why)) << text << ": " << why;
  return v;
}

TEST(SizeForms, KubernetesBinaryQuantities) {
  EXPECT_EQ(size_of("8Gi"), 8ull << 30);
  EXPECT_EQ(size_of("512Mi"), 512ull << 20);
  EXPECT_EQ(size_of("64Ki"), 64ull << 10);
  EXPECT_EQ(size_of("2Ti"), 2ull << 40);
  EXPECT_EQ(size_of("1.5Gi"), 3ull << 29);
}

TEST(SizeForms, KubernetesDecimalQuantities) {
  EXPECT_EQ(size_of("500k"), 500000u);  // Kubernetes writes kilo as k
  EXPECT_EQ(size_of("8G"), 8000000000u);
  EXPECT_EQ(size_of("512M"), 512000000u);
  EXPECT_EQ(size_of("2T"), 2000000000000u);
}

TEST(SizeForms, TheSameWithAByteSuffixAndInAnyCase) {
  EXPECT_EQ(size_of("8GiB"), size_of("8Gi"));
  EXPECT_EQ(size_of("8gi"), size_of("8Gi"));
  EXPECT_EQ(size_of("512MB"), size_of("512M"));
  EXPECT_EQ(size_of("512m"), size_of("512M")) << "m is mega here, not Kubernetes' milli";
  EXPECT_EQ(size_of("4096"), 4096u);
  EXPECT_EQ(size_of("4096B"), 4096u);
}

TEST(SizeForms, ABadValueSaysWhatIsWrong) {
  EXPECT_EQ(size_why("8Gi"), "");
  EXPECT_NE(size_why("").find("'' is not a size (empty)"), std::string::npos);
  EXPECT_NE(size_why("-1").find("'-1' is not a size (it does not start with a digit)"), std::string::npos);
  EXPECT_NE(size_why(" 8Gi").find("(it does not start with a digit)"), std::string::npos);
  EXPECT_NE(size_why("8Gx").find("'8Gx' is not a size (unknown unit 'Gx')"), std::string::npos);
  EXPECT_NE(size_why("1Pi").find("(unknown unit 'Pi')"), std::string::npos) << "no P/E: no GPU has that much";
  EXPECT_NE(size_why("1Ei").find("(unknown unit 'Ei')"), std::string::npos);
  EXPECT_NE(size_why("8e9").find("(unknown unit 'e9')"), std::string::npos) << "no exponents";
  EXPECT_NE(size_why("8 Gi").find("(unknown unit ' Gi')"), std::string::npos);
  EXPECT_NE(size_why("1.").find("(no digit after the '.')"), std::string::npos);
  EXPECT_NE(size_why("1.5").find("(a fraction of a byte)"), std::string::npos);
  EXPECT_NE(size_why("16777216Ti").find("(more than 18446744073709551615 bytes)"), std::string::npos);
  EXPECT_NE(size_why("99999999999999999999").find("(more than 18446744073709551615 bytes)"), std::string::npos);
  EXPECT_NE(size_why("4\x01G").find("'4\\x01G'"), std::string::npos) << "control bytes are shown escaped";
}

TEST(ShareForms, DecimalsInZeroToOne) {
  double v = -1;
  std::string why = "unset";
  for (const char* good : {"0", "1", "0.25", ".5", "25e-2", "1.0", "-0"}) {
    EXPECT_TRUE(parse_share(good, &v, &why)) << good << ": " << why;
    EXPECT_EQ(why, "");
  }
  EXPECT_TRUE(parse_share("-0", &v));
  EXPECT_FALSE(std::signbit(v)) << "-0 becomes 0";
  v = 0.5;
  for (const char* bad : {"", ".", "1.5", "-0.1", "+0.5", " 0.5", "0.5 ", "0x0.8", "nan", "inf", "0,5", "half"}) {
    EXPECT_FALSE(parse_share(bad, &v)) << bad;
    EXPECT_EQ(v, 0.5) << bad << ": output changed on failure";
  }
  EXPECT_FALSE(parse_share("1.5", &v, &why));
  EXPECT_EQ(why, "1.5 is not between 0 and 1");
  EXPECT_FALSE(parse_share("half", &v, &why));
  EXPECT_EQ(why, "'half' is not a number");
}

TEST(LatencyForms, MillisecondsUpToAMinute) {
  uint32_t us = 7;
  std::string why;
  EXPECT_TRUE(parse_latency_ms("5", &us, &why));
  EXPECT_EQ(us, 5000u);
  EXPECT_TRUE(parse_latency_ms("2.5", &us));
  EXPECT_EQ(us, 2500u);
  EXPECT_TRUE(parse_latency_ms("60000", &us));
  EXPECT_EQ(us, 60000000u);
  us = 7;
  EXPECT_TRUE(parse_latency_ms("0.001", &us));
  EXPECT_EQ(us, 1u);
  EXPECT_TRUE(parse_latency_ms("0.0015", &us));
  EXPECT_EQ(us, 2u) << "rounded to the nearest µs";
  us = 7;
  for (const char* bad : {"", "0", "-1", "60000.5", "5ms", " 5", "+5", "0x10", "inf", "nan"}) {
    EXPECT_FALSE(parse_latency_ms(bad, &us)) << bad;
    EXPECT_EQ(us, 7u) << bad;
  }
  EXPECT_FALSE(parse_latency_ms("5ms", &us, &why));
  EXPECT_EQ(why, "'5ms' is not a plain decimal number of milliseconds in [0.001, 60000] (digits, optionally '.' and digits)");
}

// Issue 21, item 5: what would round to 0 µs (no latency client, silently), and what is not a plain
// decimal, is refused with the value named.
TEST(LatencyForms, NothingThatRoundsToZeroOrIsNotAPlainDecimal) {
  uint32_t us = 7;
  std::string why;
  for (const char* bad : {"1e-9", "0.0004", "0.0001", "0.00", "1e3", "5.", ".5", "5.e1", "0x10", "0X1p4", "1,5", "5 "}) {
    EXPECT_FALSE(parse_latency_ms(bad, &us, &why)) << bad << " taken as " << us << " µs";
    EXPECT_EQ(us, 7u) << bad;
    EXPECT_NE(why.find(std::string("'") + bad + "'"), std::string::npos) << "the error names the value: " << why;
  }
  EXPECT_FALSE(parse_latency_ms("0.0004", &us, &why));
  EXPECT_EQ(why, "'0.0004' ms rounds to 0 µs, which is no latency target: a number of milliseconds in [0.001, 60000]");
  EXPECT_TRUE(parse_latency_ms("0.0005", &us)) << "0.5 µs rounds to 1";
  EXPECT_EQ(us, 1u);
}

// GPU_MEM in the file takes every form the flags and the webhook take (one parser).
TEST(SizeForms, GpuMemInTheConfigFileTakesThem) {
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(parse_config("3\na 0.1 1 8Gi\nb 0.1 1 512Mi\nc 0.1 1 500k\n", "f", &cfg, &err)) << err.to_string();
  EXPECT_EQ(cfg.clients[0].gpu_mem_bytes, 8ull << 30);
  EXPECT_EQ(cfg.clients[1].gpu_mem_bytes, 512ull << 20);
  EXPECT_EQ(cfg.clients[2].gpu_mem_bytes, 500000u);
}

}  // namespace
}  // namespace gem
