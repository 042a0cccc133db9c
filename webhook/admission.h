// admission.k8s.io/v1 AdmissionReview handling for POST /mutate. Pure: request body in, HTTP status
// and response body out; no I/O, thread-safe.
//
// Envelope rules (what the API server sends, Kubernetes API reference "AdmissionReview v1"):
//  - Body not JSON, nested deeper than kMaxJsonDepth, not an admission.k8s.io/v1 AdmissionReview, or
//    without request.uid: HTTP 400 with {"error": "..."}; there is no uid to answer to, and the API
//    server then applies the MutatingWebhookConfiguration's failurePolicy.
//  - Otherwise HTTP 200 and an AdmissionReview whose response echoes request.uid:
//    objects other than core/v1 pods, and pods that did not opt in: allowed, no patch;
//    UPDATE of a pod that changes or drops the gemini-pod-manager sidecar: allowed=false, 403;
//    opted-in pods: allowed with patchType JSONPatch and a base64 RFC 6902 patch (or no patch when
//    nothing is missing); opted-in pods that cannot be mutated: the --failure_policy (below).
#pragma once

#include <string>
#include <string_view>

#include "mutate.h"

namespace gemwh {

inline constexpr int kMaxJsonDepth = 64;

/// What to do with an opted-in pod the webhook cannot mutate (bad annotation, malformed or
/// conflicting spec). kFail: allowed=false, status.code 400 and the reason, so the user sees why.
/// kIgnore: allowed=true without a patch and the reason as a warning (the pod runs unshared).
enum class FailurePolicy { kFail, kIgnore };

struct AdmissionOptions {
  MutateOptions mutate;
  FailurePolicy failure_policy = FailurePolicy::kFail;
};

/// Result of one review, with the fields the access log records.
struct AdmissionResult {
  int http_status = 200;
  std::string body;  // JSON, Content-Type application/json
  // For the access log:
  std::string uid, kind, operation, ns, name;
  std::string decision;  // bad_request | skipped | not_opted_in | no_gpu | unchanged | patched | rejected | ignored
  std::string reason;    // empty unless bad_request/rejected/ignored
  size_t patch_ops = 0;
};

/// Reviews one AdmissionReview request body (bytes as received). Never throws.
AdmissionResult review(std::string_view body, const AdmissionOptions& opts);

/// UPDATE rule: the gemini-pod-manager sidecar (the only container that mounts the schedulers'
/// sockets) must be identical in `new_pod` when `old_pod` has it; a pod update may otherwise change
/// container images. Returns false with the reason in *why. Pure.
bool sidecar_unchanged(const nlohmann::json& old_pod, const nlohmann::json& new_pod, std::string* why);

/// Largest nesting depth of arrays/objects in `text`, scanning at most until it exceeds `limit`
/// (strings and escapes are skipped). O(n), no allocation; guards the parser against deep nesting.
int json_depth(std::string_view text, int limit);

}  // namespace gemwh
