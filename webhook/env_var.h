// EnvVar entries of a core/v1 container as JSON, for the parts of the webhook that write them
// (mutate.cpp, sidecar.cpp). Pure; thread-safe.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace gemwh {

/// {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} (the downward API).
inline nlohmann::json field_env(const char* name, const char* path) {
  return {{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", path}}}}}};
}

/// {"name": name, "value": value}.
inline nlohmann::json value_env(const char* name, std::string value) {
  return {{"name", name}, {"value", std::move(value)}};
}

}  // namespace gemwh
