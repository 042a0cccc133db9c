// Unit tests: RFC 6901 escaping, the patch builder, base64 (RFC 4648 test vectors), settings (from
// annotations and from the device plugin's resources).
#include <gtest/gtest.h>

#include <tuple>
#include <vector>

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

// -- the device plugin's extended resources (settings_for_pod) -------------------------------------

namespace {
json resource_spec(json containers, json inits = json()) {
  json spec = {{"containers", std::move(containers)}};
  if (!inits.is_null()) spec["initContainers"] = std::move(inits);
  return spec;
}
json asking(const std::string& name, json limits, const char* kind = "limits") {
  return {{"name", name}, {"image", "cuda:13"}, {"resources", {{kind, std::move(limits)}}}};
}
}  // namespace

TEST(Resources, ShareText) {
  EXPECT_EQ(share_text(30), "0.3");
  EXPECT_EQ(share_text(35), "0.35");
  EXPECT_EQ(share_text(5), "0.05");
  EXPECT_EQ(share_text(1), "0.01");
  EXPECT_EQ(share_text(100), "1");
  EXPECT_EQ(share_text(0), "0");
  for (int64_t u = 0; u <= kShareUnitsPerGpu; ++u) {  // every one is a share gem-pmgr takes, exactly
    double v = -1;
    ASSERT_TRUE(gem::parse_share(share_text(u), &v)) << u;
    EXPECT_DOUBLE_EQ(v * kShareUnitsPerGpu, double(u)) << u;
  }
}

TEST(Resources, AskIsWhatKubeSchedulerCounts) {
  ResourceAsk ask;
  std::string err;
  // Nothing asked: -1, as for a pod with only nvidia.com/gpu.
  ASSERT_TRUE(resource_ask(resource_spec(json::array({asking("a", {{"nvidia.com/gpu", "1"}})})), &ask, &err));
  EXPECT_EQ(ask.share, -1);
  EXPECT_EQ(ask.memory, -1);
  ASSERT_TRUE(resource_ask(json::object(), &ask, &err));
  EXPECT_EQ(ask.share, -1);
  // Containers add up; init containers count by the largest (they run one at a time, first).
  json spec = resource_spec(json::array({asking("a", {{kResShare, "30"}, {kResMemory, "8192"}}),
                                         asking("b", {{kResShare, "20"}}), asking("c", json::object())}),
                            json::array({asking("init", {{kResShare, "40"}, {kResMemory, "81559"}})}));
  ASSERT_TRUE(resource_ask(spec, &ask, &err)) << err;
  EXPECT_EQ(ask.share, 50);
  EXPECT_EQ(ask.memory, 81559);
  spec["initContainers"][0]["resources"]["limits"][kResShare] = "60";
  ASSERT_TRUE(resource_ask(spec, &ask, &err)) << err;
  EXPECT_EQ(ask.share, 60);
  // requests alone (the API server copies limits to requests; a request alone is refused later).
  ASSERT_TRUE(resource_ask(resource_spec(json::array({asking("a", {{kResShare, "25"}}, "requests")})), &ask, &err));
  EXPECT_EQ(ask.share, 25);
  // Zero is not asking.
  ASSERT_TRUE(resource_ask(resource_spec(json::array({asking("a", {{kResShare, "0"}, {kResMemory, 0}})})), &ask, &err));
  EXPECT_EQ(ask.share, -1);
  EXPECT_EQ(ask.memory, -1);
  // Kubernetes quantities that are whole numbers, in the forms the API server writes them.
  for (const auto& [q, want] : std::vector<std::pair<json, int64_t>>{
           {"81559", 81559}, {"1k", 1000}, {"80Ki", 81920}, {"1e3", 1000}, {"1.5k", 1500}, {"2Mi", 2097152},
           {"100", 100}, {json(4096), 4096}, {"0.5Ki", 512}}) {
    ASSERT_TRUE(resource_ask(resource_spec(json::array({asking("a", {{kResMemory, q}})})), &ask, &err))
        << q.dump() << ": " << err;
    EXPECT_EQ(ask.memory, want) << q.dump();
  }
  for (const json& bad : {json("1.5"), json("500m"), json("-1"), json("abc"), json(""), json("1x"), json(1.5),
                          json("1e99"), json("99999999999999999999999")}) {
    EXPECT_FALSE(resource_ask(resource_spec(json::array({asking("a", {{kResMemory, bad}})})), &ask, &err))
        << bad.dump();
    EXPECT_NE(err.find(kResMemory), std::string::npos) << err;
  }
  EXPECT_FALSE(resource_ask(resource_spec(json::array({asking("main", {{kResShare, "1.5"}})})), &ask, &err));
  EXPECT_EQ(err, "container main: resources.limits[gemini.gpu-sharing.io/gpu-share]=\"1.5\" is not a whole number");
  // More than one GPU's time for one pod: refused (a pod manager holds one REQUEST).
  EXPECT_FALSE(resource_ask(resource_spec(json::array({asking("a", {{kResShare, "70"}}), asking("b", {{kResShare, "40"}})})),
                            &ask, &err));
  EXPECT_EQ(err, "the pod asks for gemini.gpu-sharing.io/gpu-share=110, more than one GPU (100)");
}

TEST(Resources, SettingsFromTheAskWithAnnotationsAsOverrides) {
  SharingSettings d, s;
  std::string err;
  std::vector<std::string> warnings;
  ResourceAsk ask;
  ask.share = 30;
  ask.memory = 32;  // units of 256 MiB (kDefaultResMemoryUnitMiB, the plugin's default)
  ASSERT_TRUE(settings_for_pod(json(), ask, d, &s, &err, &warnings)) << err;
  EXPECT_EQ(s.request, "0.3");
  EXPECT_EQ(s.limit, "1");
  EXPECT_EQ(s.gpu_memory, "8192MiB");
  uint64_t bytes = 0;
  ASSERT_TRUE(gem::parse_size(s.gpu_memory, &bytes));  // as gem-pmgr --gpu_mem reads it
  EXPECT_EQ(bytes, 8ull << 30);
  EXPECT_TRUE(warnings.empty());
  // Annotations override, with a warning when they say something else than what was counted.
  json a = {{kAnnRequest, "0.5"}, {kAnnGpuMemory, "8Gi"}, {kAnnLimit, "0.8"}};
  ASSERT_TRUE(settings_for_pod(a, ask, d, &s, &err, &warnings)) << err;
  EXPECT_EQ(s.request, "0.5");
  EXPECT_EQ(s.limit, "0.8");
  EXPECT_EQ(s.gpu_memory, "8Gi");
  ASSERT_EQ(warnings.size(), 1u);  // 8Gi is the 8192MiB counted: no warning for it
  EXPECT_EQ(warnings[0], "gemini: annotation gemini.gpu-sharing.io/request=0.5 overrides the REQUEST 0.3 of "
                         "gemini.gpu-sharing.io/gpu-share=30 that kube-scheduler counted");
  warnings.clear();
  ASSERT_TRUE(settings_for_pod(json{{kAnnGpuMemory, "4Gi"}, {kAnnRequest, "0.30"}}, ask, d, &s, &err, &warnings));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("gpu-memory=4Gi overrides the 8192MiB"), std::string::npos) << warnings[0];
  // Another unit (gem-webhook --memory_unit_mib, as the plugin was started with).
  warnings.clear();
  ASSERT_TRUE(settings_for_pod(json(), ask, d, &s, &err, &warnings, 1)) << err;
  EXPECT_EQ(s.gpu_memory, "32MiB");
  ASSERT_TRUE(settings_for_pod(json(), ask, d, &s, &err, &warnings, 1024)) << err;
  EXPECT_EQ(s.gpu_memory, "32768MiB");
  // Memory whose bytes would not fit GPU_MEM's 64 bits: an error naming the resource, not the annotation.
  ResourceAsk huge;
  huge.memory = int64_t(1) << 40;
  EXPECT_FALSE(settings_for_pod(json(), huge, d, &s, &err, &warnings));
  EXPECT_EQ(err, "the pod asks for gemini.gpu-sharing.io/gpu-memory=1099511627776 units of 256 MiB, more than "
                 "GPU_MEM can hold");
  // A limit annotation below the share counted is an error naming the resource.
  warnings.clear();
  EXPECT_FALSE(settings_for_pod(json{{kAnnLimit, "0.2"}}, ask, d, &s, &err, &warnings));
  EXPECT_EQ(err, "annotation gemini.gpu-sharing.io/limit=0.2 is below the pod's gemini.gpu-sharing.io/gpu-share=30 "
                 "(REQUEST 0.3)");
  // A default limit below the share counted is raised to it; one above it is kept.
  d.limit = "0.5";
  ask.share = 70;
  ASSERT_TRUE(settings_for_pod(json(), ask, d, &s, &err, &warnings)) << err;
  EXPECT_EQ(s.request, "0.7");
  EXPECT_EQ(s.limit, "0.7");
  ask.share = 20;
  ASSERT_TRUE(settings_for_pod(json(), ask, d, &s, &err, &warnings)) << err;
  EXPECT_EQ(s.limit, "0.5");
  // Nothing asked: exactly settings_from_annotations (pods without the resources keep their settings).
  SharingSettings s2;
  a = {{kAnnRequest, "0.3"}, {kAnnLimit, "0.6"}, {kAnnGpuMemory, "4GiB"}};
  ASSERT_TRUE(settings_for_pod(a, ResourceAsk(), d, &s, &err, &warnings)) << err;
  ASSERT_TRUE(settings_from_annotations(a, d, &s2, &err)) << err;
  EXPECT_EQ(std::tie(s.request, s.limit, s.gpu_memory), std::tie(s2.request, s2.limit, s2.gpu_memory));
  EXPECT_TRUE(warnings.empty());
  ASSERT_TRUE(settings_for_pod(json(), ResourceAsk(), SharingSettings(), &s, &err, &warnings));
  EXPECT_EQ(std::tie(s.request, s.limit, s.gpu_memory), std::make_tuple("0", "1", "0"));
}
