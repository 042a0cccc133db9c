// Pods and helpers for the webhook's mutation tests (mutate_test.cpp, mps_test.cpp): a pod that
// opted in with one GPU container, the patch applied with nlohmann's RFC 6902 code, env look-ups,
// and the API server's defaulting between webhook invocations. Header-only (inline functions).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "mutate.h"

namespace webhook_test {

using nlohmann::json;

inline json gpu_container(const std::string& name) {
  return {{"name", name}, {"image", "cuda:13"}, {"resources", {{"limits", {{"nvidia.com/gpu", "1"}}}}}};
}

inline json shared_pod() {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"generateName", "job-"}, {"labels", {{gemwh::kLabelEnabled, "true"}}}}},
          {"spec", {{"containers", json::array({gpu_container("main")})}}}};
}

inline json apply_patch(const json& pod, const gemwh::MutateResult& r) { return pod.patch(r.patch.ops()); }

inline const json* find_env(const json& c, const std::string& name, int* count = nullptr) {
  const json* found = nullptr;
  int n = 0;
  if (c.contains("env")) {
    for (const auto& e : c["env"]) {
      if (e["name"] == name) {
        found = &e;
        ++n;
      }
    }
  }
  if (count) *count = n;
  return found;
}

// Mimics API server defaulting between webhook invocations (fieldRef.apiVersion, pull policy...).
inline json defaulted(json pod) {
  for (const char* list : {"containers", "initContainers"}) {
    if (!pod["spec"].contains(list)) continue;
    for (auto& c : pod["spec"][list]) {
      c["terminationMessagePath"] = "/dev/termination-log";
      if (!c.contains("imagePullPolicy")) c["imagePullPolicy"] = "IfNotPresent";
      if (c.contains("env")) {
        for (auto& e : c["env"]) {
          if (e.contains("valueFrom") && e["valueFrom"].contains("fieldRef")) {
            e["valueFrom"]["fieldRef"]["apiVersion"] = "v1";
          }
        }
      }
    }
  }
  return pod;
}

}  // namespace webhook_test
