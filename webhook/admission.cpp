#include "admission.h"

#include "base64.h"

namespace gemwh {

using nlohmann::json;

int json_depth(std::string_view text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        max_depth = depth;
        if (max_depth > limit) return max_depth;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

namespace {

AdmissionResult bad_request(AdmissionResult r, std::string why) {
  r.http_status = 400;
  r.decision = "bad_request";
  r.reason = why;
  r.body = json{{"error", std::move(why)}}.dump();
  return r;
}

std::string str_at(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The pod manager: an init container (native sidecar) or, in --sidecar_mode container, a regular one.
const json* find_sidecar(const json& pod) {
  if (!pod.is_object()) return nullptr;
  auto spec = pod.find("spec");
  if (spec == pod.end() || !spec->is_object()) return nullptr;
  for (const char* list : {"initContainers", "containers"}) {
    auto cs = spec->find(list);
    if (cs == spec->end() || !cs->is_array()) continue;
    for (const auto& c : *cs) {
      if (str_at(c, "name") == kSidecarName) return &c;
    }
  }
  return nullptr;
}

}  // namespace

bool sidecar_unchanged(const json& old_pod, const json& new_pod, std::string* why) {
  const json* before = find_sidecar(old_pod);
  if (!before) return true;
  const json* after = find_sidecar(new_pod);
  if (!after) {
    *why = std::string("the ") + kSidecarName + " sidecar cannot be removed";
    return false;
  }
  if (*before != *after) {
    *why = std::string("the ") + kSidecarName + " sidecar cannot be changed";
    return false;
  }
  return true;
}

AdmissionResult review(std::string_view body, const AdmissionOptions& opts) {
  AdmissionResult r;
  try {
    if (json_depth(body, kMaxJsonDepth) > kMaxJsonDepth) {
      return bad_request(r, "body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return bad_request(r, "body is not JSON");
    if (!doc.is_object()) return bad_request(r, "body is not a JSON object");
    std::string api_version = str_at(doc, "apiVersion"), kind = str_at(doc, "kind");
    if (kind != "AdmissionReview") {
      return bad_request(r, "kind is \"" + kind + "\", expected AdmissionReview");
    }
    if (api_version != "admission.k8s.io/v1") {
      return bad_request(r, "apiVersion is \"" + api_version +
                                "\", only admission.k8s.io/v1 is served (admissionReviewVersions: [\"v1\"])");
    }
    auto req_it = doc.find("request");
    if (req_it == doc.end() || !req_it->is_object()) return bad_request(r, "request is missing");
    const json& req = *req_it;
    r.uid = str_at(req, "uid");
    if (r.uid.empty()) return bad_request(r, "request.uid is missing");
    r.operation = str_at(req, "operation");
    r.ns = str_at(req, "namespace");
    r.name = str_at(req, "name");
    auto kind_it = req.find("kind");
    const json& gvk = kind_it != req.end() ? *kind_it : json();
    r.kind = str_at(gvk, "kind");
    auto res_it = req.find("resource");
    const json& gvr = res_it != req.end() ? *res_it : json();

    json response = {{"uid", r.uid}, {"allowed", true}};
    auto answer = [&](std::string decision) {
      r.decision = std::move(decision);
      r.body = json{{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", response}}
                   .dump();
      return r;
    };
    auto failure = [&](const std::string& why) {
      r.reason = why;
      if (opts.failure_policy == FailurePolicy::kFail) {
        response["allowed"] = false;
        response["status"] = {{"code", 400}, {"reason", "BadRequest"}, {"message", "gemini: " + why}};
        return answer("rejected");
      }
      response["warnings"] = json::array({"gemini: pod not put under GPU sharing: " + why});
      return answer("ignored");
    };

    bool is_pod = str_at(gvk, "group").empty() && str_at(gvk, "version") == "v1" && r.kind == "Pod" &&
                  str_at(gvr, "resource") == "pods" && str_at(req, "subResource").empty();
    if (!is_pod) return answer("skipped");
    if (r.operation == "UPDATE") {
      // Containers' images are the one mutable part of a pod's containers: the sidecar's must stay
      // (it alone mounts the schedulers' sockets). Everything else about updates is allowed.
      auto old_it = req.find("oldObject");
      auto new_it = req.find("object");
      if (old_it != req.end() && new_it != req.end()) {
        std::string why;
        if (!sidecar_unchanged(*old_it, *new_it, &why)) {
          r.reason = why;
          response["allowed"] = false;
          response["status"] = {{"code", 403}, {"reason", "Forbidden"}, {"message", "gemini: " + why}};
          return answer("rejected");
        }
      }
      return answer("skipped");
    }
    if (r.operation != "CREATE") return answer("skipped");

    auto obj_it = req.find("object");
    if (obj_it == req.end() || !obj_it->is_object()) {
      // Only opted-in pods reach the webhook (objectSelector), so this is a failure to mutate one.
      return failure("request.object is missing");
    }
    const json& pod = *obj_it;
    if (r.name.empty()) {
      auto meta = pod.find("metadata");
      if (meta != pod.end()) {
        r.name = str_at(*meta, "name");
        if (r.name.empty() && !str_at(*meta, "generateName").empty()) {
          r.name = str_at(*meta, "generateName") + "*";
        }
      }
    }

    MutateResult m = mutate_pod(pod, opts.mutate);
    if (!m.warnings.empty()) response["warnings"] = m.warnings;
    switch (m.outcome) {
      case Outcome::kNotOptedIn:
        return answer("not_opted_in");
      case Outcome::kNoGpu:
        return answer("no_gpu");
      case Outcome::kUnchanged:
        return answer("unchanged");
      case Outcome::kInvalid:
        return failure(m.message);
      case Outcome::kPatched:
        break;
    }
    r.patch_ops = m.patch.size();
    response["patchType"] = "JSONPatch";
    response["patch"] = base64_encode(m.patch.ops().dump());
    return answer("patched");
  } catch (const std::exception& e) {
    AdmissionResult err = bad_request(AdmissionResult(), std::string("internal error: ") + e.what());
    err.http_status = 500;
    err.decision = "error";
    return err;
  }
}

}  // namespace gemwh
