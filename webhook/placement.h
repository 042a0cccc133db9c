// Where a governed pod may run: shared nodes only, and only governed pods there
// (docs/kubernetes.md, "Shared nodes"). Shared nodes carry the label and the NoSchedule taint
// gemini.gpu-sharing.io/shared=true; the node DaemonSet (gem-schd, gem-device-plugin) selects the
// label and tolerates the taint. The webhook gives a governed pod (one asking for the device
// plugin's gpu-share or gpu-memory) the matching toleration and nodeSelector, so a pod that did not
// go through the webhook cannot land on a shared node. Pure, thread-safe.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "patch.h"

namespace gemwh {

/// Label (on shared nodes, in the pod's nodeSelector) and taint key of a shared node.
inline constexpr const char* kSharedNodeKey = "gemini.gpu-sharing.io/shared";
/// Value of both the label and the taint.
inline constexpr const char* kSharedNodeValue = "true";
/// Effect of the taint (and of the toleration the webhook adds).
inline constexpr const char* kSharedNodeEffect = "NoSchedule";

/// The toleration of the shared-node taint: {key, operator Equal, value, effect NoSchedule}.
nlohmann::json shared_node_toleration();

/// True when `tolerations` (a pod's spec.tolerations, or null) already tolerates the shared-node
/// taint: a toleration with the key (or an empty key with operator Exists, which tolerates every
/// taint), operator Exists or the value, and effect NoSchedule or empty (every effect).
bool tolerates_shared_node(const nlohmann::json& tolerations);

/// Adds to `patch` what pod `spec` lacks of the toleration (appended to spec.tolerations, or the
/// list created) and of nodeSelector gemini.gpu-sharing.io/shared: "true" (one key, or the map
/// created). Adds nothing for what is there (reinvocation). False with *err when spec.tolerations is
/// not a list of objects, spec.nodeSelector is not a map, or the nodeSelector already names the key
/// with another value (the pod could then never be placed on a shared node).
bool patch_shared_node_placement(const nlohmann::json& spec, PatchBuilder* patch, std::string* err);

/// False with a message in *err when a container (regular or init) of pod `spec` asks, in limits or
/// requests and not 0, for both whole GPUs (`gpu_resource`, e.g. nvidia.com/gpu) and the device
/// plugin's gpu-share or gpu-memory, or when the pod asks for them in different containers: a pod
/// takes a shared GPU or whole GPUs, and shared nodes advertise no whole GPUs.
bool check_one_kind_of_gpu(const nlohmann::json& spec, const std::string& gpu_resource, std::string* err);

}  // namespace gemwh
