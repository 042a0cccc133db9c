// What the webhook adds besides the patch of the GPU containers: the hook's environment and the pod
// manager sidecar (declared in mutate.h). Pure; thread-safe.
#include "env_var.h"
#include "mps.h"
#include "mutate.h"

namespace gemwh {

using nlohmann::json;

namespace {

// gem-pmgr's arguments: --um only when on, so pods without the annotation keep their exact args;
// the metrics on every address of the pod (its IP, for Prometheus) unless metrics_port is 0.
json pmgr_args(const SharingSettings& s, int metrics_port) {
  json a = json::array({"--name", "$(POD_NAME)", "--ip", kPodManagerIp, "--port", kPodManagerPort});
  if (metrics_port > 0) {
    a.push_back("--metrics_port");
    a.push_back(std::to_string(metrics_port));
    a.push_back("--metrics_address");
    a.push_back("0.0.0.0");
  }
  for (const std::string& v : {std::string("--scheduler_dir"), std::string(kSchedHostPath), std::string("--request"),
                               s.request, std::string("--limit"), s.limit, std::string("--gpu_mem"), s.gpu_memory}) {
    a.push_back(v);
  }
  if (s.unified_memory == "on") {
    a.push_back("--um");
    a.push_back("on");
  }
  if (!s.latency_ms.empty()) {
    a.push_back("--latency");
    a.push_back(s.latency_ms);
  }
  return a;
}

// POD_NAME = "namespace/name", the client's name in resource-config.txt, from the downward API: both
// the hook's container and the pod manager's need it, in this order ($(VAR) refers only to earlier
// variables; Kubernetes API, EnvVar.value).
json pod_name_env() {
  return json::array({field_env("GEMINI_POD_NAMESPACE", "metadata.namespace"),
                      field_env("GEMINI_POD_NAME_ONLY", "metadata.name"),
                      value_env("POD_NAME", "$(GEMINI_POD_NAMESPACE)/$(GEMINI_POD_NAME_ONLY)")});
}
}  // namespace

bool parse_sidecar_mode(const std::string& text, SidecarMode* out) {
  if (text == "native") {
    *out = SidecarMode::kNative;
  } else if (text == "container") {
    *out = SidecarMode::kContainer;
  } else {
    return false;
  }
  return true;
}

json hook_env(const MutateOptions& opts) {
  json env = pod_name_env();
  env.push_back(value_env("POD_MANAGER_IP", kPodManagerIp));
  env.push_back(value_env("POD_MANAGER_PORT", kPodManagerPort));
  if (!opts.mps_pipe_directory.empty()) env.push_back(value_env(kMpsPipeEnv, opts.mps_pipe_directory));
  return env;
}

json pod_manager_sidecar(const SharingSettings& s, const MutateOptions& opts) {
  const json env = pod_name_env();
  json c = {
      {"name", kSidecarName},
      {"image", opts.pmgr_image},
      {"imagePullPolicy", opts.image_pull_policy},
      {"command", json::array({"gem-pmgr"})},
      {"args", pmgr_args(s, opts.pmgr_metrics_port)},
      {"env", env},
      {"volumeMounts", json::array({{{"name", kSchedVolume}, {"mountPath", kSchedHostPath}}})},
      // gem-pmgr listens on loopback only, which a tcpSocket probe (pod IP) cannot reach.
      {"startupProbe",
       {{"exec", {{"command", json::array({"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/50052"})}}},
        {"periodSeconds", 1},
        {"failureThreshold", 60}}},
      {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}, {"limits", {{"memory", "64Mi"}}}}},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"readOnlyRootFilesystem", true},
        {"capabilities", {{"drop", json::array({"ALL"})}}}}},
  };
  if (opts.pmgr_metrics_port > 0) {
    c["ports"] = json::array(
        {{{"name", kPmgrMetricsPortName}, {"containerPort", opts.pmgr_metrics_port}, {"protocol", "TCP"}}});
  }
  if (opts.sidecar_mode == SidecarMode::kNative) c["restartPolicy"] = "Always";
  return c;
}

}  // namespace gemwh
