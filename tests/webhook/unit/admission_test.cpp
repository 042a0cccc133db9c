// Unit tests: the AdmissionReview envelope, failure policy, depth guard, access log lines.
#include <gtest/gtest.h>

#include <random>

#include "access_log.h"
#include "admission.h"
#include "base64.h"

using nlohmann::json;
using namespace gemwh;

namespace {

json review_of(const json& pod, const std::string& op = "CREATE") {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"requestKind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"namespace", "team-a"},
            {"operation", op},
            {"userInfo", {{"username", "alice"}}},
            {"object", pod},
            {"oldObject", nullptr},
            {"dryRun", false}}}};
}

json shared_pod() {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", "p"}, {"namespace", "team-a"}, {"labels", {{kLabelEnabled, "true"}}}}},
          {"spec",
           {{"containers",
             json::array({{{"name", "main"}, {"image", "cuda"}, {"resources", {{"limits", {{"nvidia.com/gpu", "1"}}}}}}})}}}};
}

json response_of(const AdmissionResult& r) {
  EXPECT_EQ(r.http_status, 200) << r.body;
  json doc = json::parse(r.body);
  EXPECT_EQ(doc["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(doc["kind"], "AdmissionReview");
  EXPECT_EQ(doc["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
  return doc["response"];
}

}  // namespace

TEST(Admission, PatchedPod) {
  AdmissionResult r = review(review_of(shared_pod()).dump(), AdmissionOptions());
  json resp = response_of(r);
  EXPECT_EQ(resp["allowed"], true);
  EXPECT_EQ(resp["patchType"], "JSONPatch");
  std::string raw;
  ASSERT_TRUE(base64_decode(resp["patch"].get<std::string>(), &raw));
  json patched = shared_pod().patch(json::parse(raw));
  EXPECT_EQ(patched["spec"]["initContainers"][0]["name"], kSidecarName);
  EXPECT_EQ(r.decision, "patched");
  EXPECT_GT(r.patch_ops, 0u);
  EXPECT_EQ(r.ns, "team-a");
}

TEST(Admission, NotOptedInNoPatch) {
  json pod = shared_pod();
  pod["metadata"].erase("labels");
  json resp = response_of(review(review_of(pod).dump(), AdmissionOptions()));
  EXPECT_EQ(resp["allowed"], true);
  EXPECT_FALSE(resp.contains("patch"));
  EXPECT_FALSE(resp.contains("patchType"));
}

TEST(Admission, OtherKindsAndOperationsSkipped) {
  json rv = review_of(shared_pod(), "DELETE");
  AdmissionResult r = review(rv.dump(), AdmissionOptions());
  EXPECT_FALSE(response_of(r).contains("patch"));
  EXPECT_EQ(r.decision, "skipped");
  rv = review_of(json{{"kind", "ConfigMap"}});
  rv["request"]["kind"] = {{"group", ""}, {"version", "v1"}, {"kind", "ConfigMap"}};
  rv["request"]["resource"] = {{"group", ""}, {"version", "v1"}, {"resource", "configmaps"}};
  r = review(rv.dump(), AdmissionOptions());
  EXPECT_EQ(response_of(r)["allowed"], true);
  EXPECT_EQ(r.decision, "skipped");
  rv = review_of(shared_pod());
  rv["request"]["subResource"] = "ephemeralcontainers";
  EXPECT_EQ(review(rv.dump(), AdmissionOptions()).decision, "skipped");
}

TEST(Admission, UpdateMayNotTouchTheSidecar) {
  json pod = shared_pod();
  std::string raw;
  json resp = response_of(review(review_of(pod).dump(), AdmissionOptions()));
  ASSERT_TRUE(base64_decode(resp["patch"].get<std::string>(), &raw));
  json mutated = pod.patch(json::parse(raw));

  json rv = review_of(mutated, "UPDATE");
  rv["request"]["oldObject"] = mutated;
  rv["request"]["object"]["metadata"]["labels"]["extra"] = "x";  // other updates are fine
  AdmissionResult r = review(rv.dump(), AdmissionOptions());
  EXPECT_EQ(response_of(r)["allowed"], true);
  EXPECT_FALSE(response_of(r).contains("patch"));

  rv["request"]["object"]["spec"]["initContainers"][0]["image"] = "evil/impersonator:1";
  r = review(rv.dump(), AdmissionOptions());
  resp = response_of(r);
  EXPECT_EQ(resp["allowed"], false);
  EXPECT_EQ(resp["status"]["code"], 403);
  EXPECT_EQ(r.decision, "rejected");

  rv["request"]["object"]["spec"]["containers"][0]["image"] = "new/image:2";  // user containers: fine
  rv["request"]["object"]["spec"]["initContainers"][0] = mutated["spec"]["initContainers"][0];
  EXPECT_EQ(response_of(review(rv.dump(), AdmissionOptions()))["allowed"], true);
}

TEST(Admission, UpdateMayNotTouchTheContainerModeSidecar) {
  AdmissionOptions opts;
  opts.mutate.sidecar_mode = SidecarMode::kContainer;
  json pod = shared_pod();
  std::string raw;
  json resp = response_of(review(review_of(pod).dump(), opts));
  ASSERT_TRUE(base64_decode(resp["patch"].get<std::string>(), &raw));
  json mutated = pod.patch(json::parse(raw));
  ASSERT_EQ(mutated["spec"]["containers"][1]["name"], kSidecarName);
  EXPECT_FALSE(mutated["spec"].contains("initContainers"));

  json rv = review_of(mutated, "UPDATE");
  rv["request"]["oldObject"] = mutated;
  rv["request"]["object"]["spec"]["containers"][1]["image"] = "evil/impersonator:1";
  resp = response_of(review(rv.dump(), opts));
  EXPECT_EQ(resp["allowed"], false);
  EXPECT_EQ(resp["status"]["code"], 403);
  rv["request"]["object"]["spec"]["containers"].erase(1);
  EXPECT_EQ(response_of(review(rv.dump(), opts))["allowed"], false);
  rv["request"]["object"] = mutated;
  rv["request"]["object"]["spec"]["containers"][0]["image"] = "new/image:2";
  EXPECT_EQ(response_of(review(rv.dump(), opts))["allowed"], true);
}

TEST(Admission, MalformedEnvelopesAre400) {
  json no_uid = review_of(shared_pod());
  no_uid["request"].erase("uid");
  json beta = review_of(shared_pod());
  beta["apiVersion"] = "admission.k8s.io/v1beta1";
  json wrong_kind = review_of(shared_pod());
  wrong_kind["kind"] = "Pod";
  json no_request = review_of(shared_pod());
  no_request.erase("request");
  const std::string bodies[] = {"", "not json", "{\"a\":", "[1,2]", "42", no_uid.dump(), beta.dump(),
                                wrong_kind.dump(), no_request.dump(), std::string(1000, '[')};
  for (const auto& b : bodies) {
    AdmissionResult r = review(b, AdmissionOptions());
    EXPECT_EQ(r.http_status, 400) << b.substr(0, 80);
    json err = json::parse(r.body);
    EXPECT_TRUE(err["error"].is_string());
    EXPECT_EQ(r.decision, "bad_request");
  }
  EXPECT_NE(review(beta.dump(), AdmissionOptions()).reason.find("v1beta1"), std::string::npos);
}

TEST(Admission, FailurePolicy) {
  json pod = shared_pod();
  pod["metadata"]["annotations"] = {{"gemini.gpu-sharing.io/limit", "2"}};
  AdmissionOptions opts;
  AdmissionResult r = review(review_of(pod).dump(), opts);
  json resp = response_of(r);
  EXPECT_EQ(resp["allowed"], false);
  EXPECT_EQ(resp["status"]["code"], 400);
  EXPECT_NE(resp["status"]["message"].get<std::string>().find("gemini.gpu-sharing.io/limit"), std::string::npos);
  EXPECT_FALSE(resp.contains("patch"));
  EXPECT_EQ(r.decision, "rejected");

  opts.failure_policy = FailurePolicy::kIgnore;
  r = review(review_of(pod).dump(), opts);
  resp = response_of(r);
  EXPECT_EQ(resp["allowed"], true);
  EXPECT_FALSE(resp.contains("patch"));
  ASSERT_EQ(resp["warnings"].size(), 1u);
  EXPECT_EQ(r.decision, "ignored");

  json rv = review_of(pod);
  rv["request"].erase("object");
  opts.failure_policy = FailurePolicy::kFail;
  EXPECT_EQ(response_of(review(rv.dump(), opts))["allowed"], false);
}

TEST(Admission, JsonDepth) {
  EXPECT_EQ(json_depth("{}", 10), 1);
  EXPECT_EQ(json_depth("{\"a\":[{\"b\":[]}]}", 10), 4);
  EXPECT_EQ(json_depth("{\"a\":\"[[[[\\\"[[[\"}", 10), 1);  // brackets inside strings don't count
  EXPECT_EQ(json_depth(std::string(100, '['), 10), 11);     // stops once past the limit
}

TEST(Admission, RandomCorruptionNeverCrashes) {
  const std::string good = review_of(shared_pod()).dump();
  std::mt19937 rng(12345);
  int ok = 0, bad = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string b = good;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0: b[at] = char(rng() % 128); break;
        case 1: b.erase(at, 1 + rng() % 8); break;
        default: b.insert(at, 1, "{}[]\",:0"[rng() % 8]); break;
      }
    }
    AdmissionResult r = review(b, AdmissionOptions());
    ASSERT_TRUE(r.http_status == 200 || r.http_status == 400) << r.http_status << " " << b;
    EXPECT_FALSE(json::parse(r.body).is_null());  // always a JSON body
    (r.http_status == 200 ? ok : bad)++;
  }
  EXPECT_GT(bad, 0);
}

TEST(AccessLog, OneJsonLine) {
  AdmissionResult r;
  r.uid = "u";
  r.decision = "patched";
  r.patch_ops = 3;
  r.name = "bad\xff" "name";
  AccessRecord rec{"127.0.0.1:5", "POST", "/mutate", 200, 10, 20, 42, &r};
  std::string line = format_access(rec);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  json j = json::parse(line);
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["decision"], "patched");
  EXPECT_EQ(j["patch_ops"], 3);
  EXPECT_EQ(j["dur_us"], 42);
  EXPECT_FALSE(j.contains("reason"));
}
