// libFuzzer target: the webhook's AdmissionReview handler, gemwh::review() (webhook/admission.h),
// which the server calls on every POST /mutate body. The input is the request body.
//
// Properties (abort on violation):
//  - review() answers 200 or 400, never 500 (500 means an exception escaped mutate_pod, which
//    promises never to throw for any JSON input), with a JSON body;
//  - 400: {"error": "..."}; 200: an admission.k8s.io/v1 AdmissionReview whose response echoes
//    request.uid and says allowed true/false; a rejection under --failure_policy=Fail is an allowed
//    pod with a warning under Ignore;
//  - a patch is base64 of a JSON array of patch_ops RFC 6902 operations that applies to
//    request.object (nlohmann::json::patch), and the patched pod needs no further patch
//    (mutate_pod says kUnchanged: a reinvocation changes nothing);
//  - a gemini-pod-manager sidecar the webhook adds passes gem-pmgr values it accepts: --request and
//    --limit shares gem::parse_share takes and gem::admission_error admits (as gem-pmgr checks them),
//    --gpu_mem a size gem::parse_size accepts (a sidecar already in the pod is kept as it is, by design);
//  - base64 round-trips the input.
// Each input is reviewed twice: with the default options and with MPS on (--mps_pipe_directory,
// webhook/mps.h), whose patch must apply and be final the same way.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

#include "admission.h"
#include "base64.h"
#include "gem/config.h"

using nlohmann::json;

#include "fuzz_check.h"

namespace {

constexpr const char* kFuzzTarget = "fuzz_admission";

const json* find_path(const json& j, std::initializer_list<const char*> keys) {
  const json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(k);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

void check_sidecar(const json& pod) {
  const json& inits = pod.at("spec").at("initContainers");
  CHECK(inits.is_array() && !inits.empty());
  const json& sc = inits.at(0);
  CHECK(sc.value("name", "") == gemwh::kSidecarName);
  CHECK(sc.value("restartPolicy", "") == "Always");
  const json& args = sc.at("args");
  CHECK(args.is_array() && args.size() % 2 == 0);
  std::string request, limit, mem;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string flag = args[i].get<std::string>();
    const std::string value = args[i + 1].get<std::string>();
    if (flag == "--request") request = value;
    if (flag == "--limit") limit = value;
    if (flag == "--gpu_mem") mem = value;
  }
  double r = 0, l = 0;
  uint64_t bytes = 0;
  CHECK(gem::parse_share(request, &r));
  CHECK(gem::parse_share(limit, &l));
  CHECK(gem::admission_error(r, l, 0).empty());
  CHECK(gem::parse_size(mem, &bytes));
}

void check_patch(const json& response, size_t patch_ops, std::string_view body, const gemwh::MutateOptions& opts) {
  CHECK(response.value("patchType", "") == "JSONPatch");
  std::string raw;
  CHECK(gemwh::base64_decode(response.at("patch").get<std::string>(), &raw));
  const json ops = json::parse(raw, nullptr, false);
  CHECK(ops.is_array() && !ops.empty() && ops.size() == patch_ops);
  const json doc = json::parse(body, nullptr, false);
  const json& pod = doc.at("request").at("object");
  json patched;
  try {
    patched = pod.patch(ops);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "patch: %s\nerror: %s\n", ops.dump().c_str(), e.what());
    FAIL("the patch applies to request.object");
  }
  const gemwh::MutateResult again = gemwh::mutate_pod(patched, opts);
  if (again.outcome != gemwh::Outcome::kUnchanged) {
    std::fprintf(stderr, "patched pod: %s\noutcome %d, patch %s, message %s\n", patched.dump().c_str(),
                 static_cast<int>(again.outcome), again.patch.ops().dump().c_str(), again.message.c_str());
    FAIL("a reinvocation on the patched pod changes nothing");
  }
  bool had_sidecar = false;
  if (const json* inits = find_path(pod, {"spec", "initContainers"}); inits && inits->is_array()) {
    for (const json& c : *inits) had_sidecar = had_sidecar || (c.is_object() && c.value("name", json()) == gemwh::kSidecarName);
  }
  if (!had_sidecar) check_sidecar(patched);
}

void check_review(std::string_view body, const gemwh::AdmissionOptions& opts) {
  const gemwh::AdmissionResult r = gemwh::review(body, opts);
  if (r.http_status == 500) {
    std::fprintf(stderr, "500: %s\n", r.body.c_str());
    FAIL("review() does not answer 500");
  }
  CHECK(r.http_status == 200 || r.http_status == 400);
  const json out = json::parse(r.body, nullptr, false);
  CHECK(out.is_object());
  if (r.http_status == 400) {
    CHECK(r.decision == "bad_request" && !r.reason.empty());
    CHECK(out.at("error").is_string());
  } else {
    CHECK(!r.uid.empty());
    CHECK(out.value("apiVersion", "") == "admission.k8s.io/v1" && out.value("kind", "") == "AdmissionReview");
    const json& response = out.at("response");
    CHECK(response.value("uid", "") == r.uid);
    CHECK(response.at("allowed").is_boolean());
    const bool allowed = response.at("allowed").get<bool>();
    CHECK(allowed == (r.decision != "rejected"));
    CHECK(response.contains("patch") == (r.decision == "patched"));
    if (r.decision == "patched") {
      check_patch(response, r.patch_ops, body, opts.mutate);
    } else if (r.decision == "rejected" && response.at("status").value("code", 0) == 400) {
      gemwh::AdmissionOptions ignore = opts;
      ignore.failure_policy = gemwh::FailurePolicy::kIgnore;
      const gemwh::AdmissionResult ri = gemwh::review(body, ignore);
      CHECK(ri.http_status == 200 && ri.decision == "ignored" && ri.reason == r.reason);
      const json o2 = json::parse(ri.body, nullptr, false);
      CHECK(o2.at("response").at("allowed") == true && o2.at("response").at("warnings").is_array());
    } else {
      CHECK(r.decision == "skipped" || r.decision == "not_opted_in" || r.decision == "no_gpu" ||
            r.decision == "unchanged" || r.decision == "rejected");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  gemwh::AdmissionOptions opts;
  opts.failure_policy = gemwh::FailurePolicy::kFail;
  check_review(body, opts);
  opts.mutate.mps_pipe_directory = "/run/gemini/mps";
  check_review(body, opts);
  std::string decoded;
  CHECK(gemwh::base64_decode(gemwh::base64_encode(body), &decoded) && decoded == body);
  return 0;
}
