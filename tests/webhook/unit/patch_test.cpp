// Unit tests: RFC 6901 escaping, the patch builder, base64 (RFC 4648 test vectors), settings.
#include <gtest/gtest.h>

#include "base64.h"
#include "gem/config.h"
#include "patch.h"
#include "settings.h"

using nlohmann::json;
using namespace gemwh;

TEST(Pointer, EscapesTildeBeforeSlash) {
  EXPECT_EQ(escape_pointer_token("gemini.gpu-sharing.io/request"), "gemini.gpu-sharing.io~1request");
  EXPECT_EQ(escape_pointer_token("a~b"), "a~0b");
  EXPECT_EQ(escape_pointer_token("~1"), "~01");  // not "~1" -> "/"
  EXPECT_EQ(escape_pointer_token("/~/"), "~1~0~1");
  EXPECT_EQ(escape_pointer_token(""), "");
}

TEST(Pointer, EscapedKeyAddsExactlyThatKey) {
  json doc = {{"m", {{"x", 1}}}};
  PatchBuilder p;
  p.add("/m/" + escape_pointer_token("a/b~c"), "v");
  json out = doc.patch(p.ops());  // nlohmann's own RFC 6902 application
  EXPECT_EQ(out["m"]["a/b~c"], "v");
  EXPECT_EQ(out["m"]["x"], 1);
  EXPECT_EQ(out["m"].size(), 2u);
}

TEST(PatchBuilder, OperationsInOrder) {
  PatchBuilder p;
  EXPECT_TRUE(p.empty());
  p.test("/a", 1);
  p.replace("/a", 2);
  p.add("/b/-", "x");
  p.remove("/c");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p.ops()[0], (json{{"op", "test"}, {"path", "/a"}, {"value", 1}}));
  EXPECT_EQ(p.ops()[1]["op"], "replace");
  EXPECT_EQ(p.ops()[2]["path"], "/b/-");
  EXPECT_EQ(p.ops()[3], (json{{"op", "remove"}, {"path", "/c"}}));
  json doc = {{"a", 1}, {"b", json::array()}, {"c", true}};
  EXPECT_EQ(doc.patch(p.ops()), (json{{"a", 2}, {"b", {"x"}}}));
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> v[] = {{"", ""},         {"f", "Zg=="},
                                                    {"fo", "Zm8="},   {"foo", "Zm9v"},
                                                    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                    {"foobar", "Zm9vYmFy"}};
  for (auto& [plain, enc] : v) {
    EXPECT_EQ(base64_encode(plain), enc);
    std::string back;
    ASSERT_TRUE(base64_decode(enc, &back)) << enc;
    EXPECT_EQ(back, plain);
  }
}

TEST(Base64, BinaryRoundTripAndRejects) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += char(i);
  std::string back;
  ASSERT_TRUE(base64_decode(base64_encode(bytes), &back));
  EXPECT_EQ(back, bytes);
  EXPECT_FALSE(base64_decode("Zm9", &back));
  EXPECT_FALSE(base64_decode("Zm9v!A==", &back));
  EXPECT_FALSE(base64_decode("Zg==Zg==", &back));
  EXPECT_FALSE(base64_decode("Z===", &back));
}

// The annotations are checked with resource-config.txt's parsers (gem/config.h): what GPU_MEM takes,
// the gpu-memory annotation takes, Kubernetes quantities included; a bad value names what is wrong.
std::string annotation_error(const char* key, const std::string& value) {
  SharingSettings d, s;
  std::string err;
  if (settings_from_annotations(json{{key, value}}, d, &s, &err)) return "";
  EXPECT_NE(err.find(key), std::string::npos) << err;
  return err;
}

TEST(Settings, SharesAsTheConfigTakesThem) {
  for (const char* good : {"0.25", "1", ".5", "0", "25e-2"}) EXPECT_EQ(annotation_error(kAnnRequest, good), "") << good;
  for (const char* bad : {"", ".", "1.5", "-0.1", "0.1.2", " 0.5", "0.5 ", "abc", "nan", "inf", "0x0.8"}) {
    EXPECT_NE(annotation_error(kAnnRequest, bad), "") << bad;
  }
  EXPECT_EQ(annotation_error(kAnnLimit, "1.5"),
            "annotation gemini.gpu-sharing.io/limit: 1.5 is not between 0 and 1 (e.g. \"0.6\")");
  EXPECT_EQ(annotation_error(kAnnRequest, "half"),
            "annotation gemini.gpu-sharing.io/request: 'half' is not a number (e.g. \"0.3\")");
}

TEST(Settings, SizesAsTheConfigTakesThemKubernetesQuantitiesIncluded) {
  for (const char* good : {"0", "1024", "4GiB", "512MiB", "2G", "3TB", "18446744073709551615", "16777215TiB",
                           "8Gi", "512Mi", "64Ki", "1Ti", "500k", "4gib", "1.5Gi"}) {
    EXPECT_EQ(annotation_error(kAnnGpuMemory, good), "") << good;
  }
  for (const char* bad : {"", "G", "4 GiB", "-1", "1.5", "18446744073709551616", "16777216TiB", "1Pi", "8e9"}) {
    EXPECT_NE(annotation_error(kAnnGpuMemory, bad), "") << bad;
  }
  EXPECT_EQ(annotation_error(kAnnGpuMemory, "8Gx"),
            std::string("annotation gemini.gpu-sharing.io/gpu-memory: '8Gx' is not a size (unknown unit 'Gx'): "
                        "expected ") + gem::kSizeForms + "; 0 = no limit");
}

TEST(Settings, KubernetesQuantitiesReachThePodManagerAsWritten) {
  SharingSettings d, s;
  std::string err;
  ASSERT_TRUE(settings_from_annotations(json{{kAnnGpuMemory, "8Gi"}}, d, &s, &err)) << err;
  EXPECT_EQ(s.gpu_memory, "8Gi");
  uint64_t bytes = 0;
  ASSERT_TRUE(gem::parse_size(s.gpu_memory, &bytes));  // as gem-pmgr --gpu_mem reads it
  EXPECT_EQ(bytes, 8ull << 30);
  ASSERT_TRUE(settings_from_annotations(json{{kAnnGpuMemory, "512Mi"}}, d, &s, &err)) << err;
  ASSERT_TRUE(gem::parse_size(s.gpu_memory, &bytes));
  EXPECT_EQ(bytes, 512ull << 20);
}

TEST(Settings, LatencyAsTheConfigTakesIt) {
  for (const char* good : {"5", "2.5", "60000", "0.001"}) EXPECT_EQ(annotation_error(kAnnLatency, good), "") << good;
  for (const char* bad : {"0", "-1", "x", "60001", "5ms", " 5", "inf", "0.0001", "", "5.", "1e-9", "0x10"}) {
    EXPECT_NE(annotation_error(kAnnLatency, bad), "") << "'" << bad << "'";
  }
  EXPECT_EQ(annotation_error(kAnnLatency, "5ms"),
            "annotation gemini.gpu-sharing.io/latency-ms: '5ms' is not a plain decimal number of milliseconds in "
            "[0.001, 60000] (digits, optionally '.' and digits) (e.g. \"5\")");
  EXPECT_EQ(annotation_error(kAnnLatency, ""),
            "annotation gemini.gpu-sharing.io/latency-ms: '' is not a plain decimal number of milliseconds in "
            "[0.001, 60000] (digits, optionally '.' and digits) (e.g. \"5\")")
      << "an empty annotation is a mistake, not 'no latency client'";
}

TEST(Settings, FromAnnotations) {
  SharingSettings d, s;
  std::string err;
  ASSERT_TRUE(settings_from_annotations(json(), d, &s, &err));
  EXPECT_EQ(s.request, "0");
  EXPECT_EQ(s.limit, "1");
  EXPECT_EQ(s.gpu_memory, "0");
  json a = {{kAnnRequest, "0.3"}, {kAnnLimit, "0.6"}, {kAnnGpuMemory, "4GiB"}, {"other", 5}};
  ASSERT_TRUE(settings_from_annotations(a, d, &s, &err)) << err;
  EXPECT_EQ(s.request, "0.3");
  EXPECT_EQ(s.limit, "0.6");
  EXPECT_EQ(s.gpu_memory, "4GiB");

  a = {{kAnnRequest, "0.7"}, {kAnnLimit, "0.6"}};
  EXPECT_FALSE(settings_from_annotations(a, d, &s, &err));
  EXPECT_NE(err.find("exceeds"), std::string::npos) << err;
  a = {{kAnnRequest, "half"}};
  EXPECT_FALSE(settings_from_annotations(a, d, &s, &err));
  EXPECT_NE(err.find(kAnnRequest), std::string::npos) << err;
  a = {{kAnnGpuMemory, "lots"}};
  EXPECT_FALSE(settings_from_annotations(a, d, &s, &err));
  EXPECT_NE(err.find(kAnnGpuMemory), std::string::npos) << err;
  a = {{kAnnUnifiedMemory, "yes"}};
  EXPECT_FALSE(settings_from_annotations(a, d, &s, &err));
  EXPECT_NE(err.find("must be \"on\" or \"off\""), std::string::npos) << err;
  a = {{kAnnUnifiedMemory, "on"}};
  ASSERT_TRUE(settings_from_annotations(a, d, &s, &err)) << err;
  EXPECT_EQ(s.unified_memory, "on");
  a = {{kAnnLimit, 0.5}};  // a number, not a string
  EXPECT_FALSE(settings_from_annotations(a, d, &s, &err));
  SharingSettings bad_default;
  bad_default.limit = "2";
  EXPECT_FALSE(settings_from_annotations(json(), bad_default, &s, &err));
}
