// What a pod that opted into GPU sharing gets, as an RFC 6902 patch. Pure: pod JSON in, patch out.
// The rules (docs/kubernetes.md has the user's view):
//  - Opt-in: label gemini.gpu-sharing.io/enabled="true". Anything else is left alone.
//  - A container "uses a GPU" when resources.limits or resources.requests names nvidia.com/gpu, or
//    the device plugin's gemini.gpu-sharing.io/gpu-share or /gpu-memory, with a quantity other than 0. Such containers (regular and init) get LD_PRELOAD, the hook's
//    environment and the read-only hook volume. An opted-in pod with no such container is allowed
//    unchanged, with a warning.
//  - The pod manager is the only container that mounts the schedulers' socket directory. By default
//    (SidecarMode::kNative) it is a native sidecar: initContainers[0] with restartPolicy Always
//    (Kubernetes 1.29+). SidecarMode::kContainer, for older clusters, appends it to spec.containers
//    as an ordinary container instead (docs/kubernetes-reference.md, "Clusters without native sidecars").
//  - REQUEST and GPU_MEM come from the pod's gpu-share and gpu-memory resources when it has them
//    (settings_for_pod), the annotations staying overrides.
//  - A pod asking for gpu-share or gpu-memory gets the toleration of the shared nodes' taint and a
//    nodeSelector for their label (placement.h); one asking for those and whole GPUs is refused.
//  - With MutateOptions::mps_pipe_directory set, the GPU containers are NVIDIA MPS clients of the
//    node's control daemon (mps.h): CUDA_MPS_PIPE_DIRECTORY, the pipe directory mounted read-write,
//    and spec.hostIPC: true; a pod with hostIPC: false is refused.
//  - Only missing pieces are added, so a pod that already has them (reinvocation) gets no patch.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "patch.h"
#include "settings.h"

namespace gemwh {

inline constexpr const char* kLabelEnabled = "gemini.gpu-sharing.io/enabled";
inline constexpr const char* kAnnMutated = "gemini.gpu-sharing.io/mutated";
inline constexpr const char* kHookPath = "/gemini/lib/libgemhook.so.1";
inline constexpr const char* kLibVolume = "gemini-lib";
inline constexpr const char* kLibHostPath = "/var/lib/gemini/lib";
inline constexpr const char* kLibMountPath = "/gemini/lib";
inline constexpr const char* kSchedVolume = "gemini-scheduler";
inline constexpr const char* kSchedHostPath = "/run/gemini";
inline constexpr const char* kSidecarName = "gemini-pod-manager";
inline constexpr const char* kPodManagerIp = "127.0.0.1";
inline constexpr const char* kPodManagerPort = "50052";
/// The pod manager's Prometheus metrics port on the pod IP unless gem-webhook --pmgr_metrics_port
/// says otherwise (0: none). Next to gem-schd's 19400 + GPU index (GEM_METRICS_BASE_PORT in
/// tools/gemtools/prom.py) and, like it, outside Prometheus' exporter range 9100-9999 (docs/operations.md,
/// "Metrics ports"). It is in the pod's network namespace: an application container of the pod must
/// not listen on it.
inline constexpr int kDefaultPmgrMetricsPort = 19500;
/// The sidecar's named containerPort of those metrics (webhook/deploy/monitoring/podmonitor.yaml scrapes it).
inline constexpr const char* kPmgrMetricsPortName = "gem-metrics";
// The default of MutateOptions::gpu_resource (gem-webhook --gpu_resource).
inline constexpr const char* kGpuResource = "nvidia.com/gpu";

/// Where the pod manager goes (gem-webhook --sidecar_mode).
enum class SidecarMode {
  kNative,     // "native": initContainers[0] with restartPolicy Always (Kubernetes 1.29+)
  kContainer,  // "container": appended to spec.containers (clusters without native sidecars)
};

/// Parses "native" or "container"; false otherwise.
bool parse_sidecar_mode(const std::string& text, SidecarMode* out);

/// True when `name` can be an extended resource name as a container's resources.limits holds it:
/// "prefix/name", prefix a DNS subdomain (lower case, at most 253), name at most 63 of [A-Za-z0-9._-]
/// beginning and ending alphanumeric (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#extended-resources).
/// `why` (if given) says what is wrong.
bool valid_resource_name(const std::string& name, std::string* why = nullptr);

struct MutateOptions {
  std::string pmgr_image = "ghcr.io/gemini-gpu-sharing/gemini-node:0.1.0";
  std::string image_pull_policy = "IfNotPresent";
  SharingSettings defaults;  // for annotations a pod leaves out
  SidecarMode sidecar_mode = SidecarMode::kNative;
  // A container uses a GPU when its limits or requests name this resource with a non-zero quantity.
  std::string gpu_resource = kGpuResource;
  // MiB per gpu-memory unit: gem-device-plugin's --memory_unit_mib (gem-webhook --memory_unit_mib).
  int64_t memory_unit_mib = kDefaultResMemoryUnitMiB;
  // Pods asking for gpu-share/gpu-memory get the shared-node toleration and nodeSelector
  // (placement.h; gem-webhook --shared_nodes).
  bool shared_nodes = true;
  // gem-pmgr's --metrics_port on 0.0.0.0 and the sidecar's containerPort kPmgrMetricsPortName
  // (gem-webhook --pmgr_metrics_port); 0: no metrics.
  int pmgr_metrics_port = kDefaultPmgrMetricsPort;
  // The node's MPS pipe directory (gem-webhook --mps_pipe_directory; checked with
  // valid_mps_pipe_directory in mps.h); empty: MPS off, nothing MPS-related added.
  std::string mps_pipe_directory;
};

enum class Outcome {
  kNotOptedIn,  // no opt-in label: allowed, no patch
  kNoGpu,       // opted in, no container uses a GPU: allowed, no patch, a warning
  kUnchanged,   // opted in and already mutated (reinvocation): allowed, no patch
  kPatched,     // allowed with `patch`
  kInvalid,     // opted in but cannot be mutated (bad annotation, malformed or conflicting spec):
                // the caller applies the failure policy; `message` says why
};

struct MutateResult {
  Outcome outcome = Outcome::kNotOptedIn;
  PatchBuilder patch;
  std::string message;
  std::vector<std::string> warnings;
};

/// Computes the patch for `pod` (a core/v1 Pod as JSON, as found in AdmissionReview request.object).
/// Never throws for any JSON input; malformed pods give Outcome::kInvalid. Thread-safe (pure).
MutateResult mutate_pod(const nlohmann::json& pod, const MutateOptions& opts);

/// The environment the hook needs, in dependency order (POD_NAME refers to the two variables before
/// it through Kubernetes dependent environment variable expansion "$(VAR)"), and CUDA_MPS_PIPE_DIRECTORY
/// when opts.mps_pipe_directory is set. The webhook owns these names in the containers it patches:
/// a user's definitions of them are replaced.
nlohmann::json hook_env(const MutateOptions& opts);

/// The pod manager sidecar container for `settings` (with restartPolicy Always in kNative mode).
nlohmann::json pod_manager_sidecar(const SharingSettings& settings, const MutateOptions& opts);

}  // namespace gemwh
