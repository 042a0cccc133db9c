// gem-webhook: Kubernetes mutating admission webhook that puts opted-in pods under GPU sharing.
// See docs/kubernetes.md. Flags take "--name value" or "--name=value" (gem::Flags, as the daemons:
// an unknown flag or a stray word is a usage error).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gem/flags.h"
#include "mps.h"
#include "server.h"

namespace {

const char kUsage[] =
    "usage: gem-webhook --cert PATH --key PATH [options]\n"
    "  --port 8443                 TCP port\n"
    "  --bind 0.0.0.0              address to listen on\n"
    "  --cert PATH --key PATH      PEM certificate (leaf first, then chain) and key; reloaded when\n"
    "                              they change (checked every --cert_check_ms, default 2000)\n"
    "  --max_body_bytes 4194304    larger request bodies get HTTP 413\n"
    "  --threads 8                 worker threads\n"
    "  --failure_policy Fail       Fail: an opted-in pod that cannot be mutated (bad annotation,\n"
    "                              conflicting spec) is rejected with the reason; Ignore: it is\n"
    "                              admitted unchanged with the reason as a warning. Malformed\n"
    "                              AdmissionReviews always get HTTP 400 (the API server then applies\n"
    "                              the webhook configuration's failurePolicy).\n"
    "  --pmgr_image IMAGE          image of the gem-pmgr sidecar\n"
    "  --image_pull_policy IfNotPresent\n"
    "  --sidecar_mode native       native: the pod manager is a native sidecar (an init container\n"
    "                              with restartPolicy Always; Kubernetes 1.29+); container: an\n"
    "                              ordinary container appended to spec.containers, for clusters\n"
    "                              without native sidecars (docs/kubernetes-reference.md)\n"
    "  --pmgr_metrics_port 19500   the sidecar's gem-pmgr serves Prometheus metrics on this port of\n"
    "                              the pod IP (--metrics_address 0.0.0.0), declared as its container\n"
    "                              port gem-metrics (webhook/deploy/monitoring scrapes it); the pod's\n"
    "                              own containers must not use it. 0: no metrics\n"
    "  --gpu_resource nvidia.com/gpu\n"
    "                              the extended resource whose containers get the hook (a container\n"
    "                              uses a GPU when its limits or requests name it, not 0); default\n"
    "                              from $GEM_WEBHOOK_GPU_RESOURCE when set, else nvidia.com/gpu\n"
    "  --default_request 0 --default_limit 1 --default_gpu_memory 0\n"
    "                              settings for pods without the annotations (sizes as\n"
    "                              GPU_MEM takes them: 8Gi, 512MiB, 4G)\n"
    "  --memory_unit_mib 256       MiB per gemini.gpu-sharing.io/gpu-memory unit: gem-device-plugin's\n"
    "                              --memory_unit_mib (1..65536)\n"
    "  --shared_nodes true         pods asking for gpu-share/gpu-memory get the toleration of the\n"
    "                              taint gemini.gpu-sharing.io/shared=true:NoSchedule and the\n"
    "                              nodeSelector gemini.gpu-sharing.io/shared=true (true|false)\n"
    "  --mps_pipe_directory DIR    an option (default empty: off): run the shared pods' GPU\n"
    "                              containers as NVIDIA MPS clients of the node's MPS control\n"
    "                              daemon on DIR (webhook/deploy/overlays/mps runs it): they get\n"
    "                              CUDA_MPS_PIPE_DIRECTORY=DIR and the node's DIR mounted read-write\n"
    "                              (volume gemini-mps-pipe), and the pod gets hostIPC: true; a pod\n"
    "                              with hostIPC: false is refused. DIR: absolute, at most 80\n"
    "                              characters, not /run/gemini or above it, apart from the hook's\n"
    "                              directories (docs/kubernetes.md, \"MPS for latency clients\n"
    "                              (option)\")\n"
    "  --shutdown_delay_ms 0       keep serving this long after SIGTERM\n"
    "  --access_log true           one JSON line per request on stderr (true|false)\n"
    "  --help                      print this and exit\n";

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "gem-webhook: %s\n%s", why.c_str(), kUsage);
  std::exit(2);
}

long parse_long(const std::string& flag, const std::string& v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || n < lo || n > hi) {
    usage_error(flag + " wants an integer in [" + std::to_string(lo) + "," + std::to_string(hi) +
                "], got \"" + v + "\"");
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  gem::Flags flags({"port", "bind", "cert", "key", "max_body_bytes", "threads", "cert_check_ms",
                    "shutdown_delay_ms", "failure_policy", "pmgr_image", "image_pull_policy", "sidecar_mode",
                    "default_request", "default_limit", "default_gpu_memory", "access_log", "gpu_resource",
                    "memory_unit_mib", "shared_nodes", "pmgr_metrics_port", "mps_pipe_directory"},
                   {"help"});
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  std::string err;
  if (!flags.parse(argc, argv, &err)) usage_error(err);
  if (flags.has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  gemwh::ServerConfig cfg;
  auto& m = cfg.admission.mutate;
  auto value = [&](const char* name, const std::string& fallback) { return flags.get(name, fallback); };
  auto number = [&](const char* name, long fallback, long lo, long hi) {
    return flags.has(name) ? parse_long(std::string("--") + name, flags.get(name, ""), lo, hi) : fallback;
  };
  cfg.port = int(number("port", cfg.port, 1, 65535));
  cfg.bind = value("bind", cfg.bind);
  cfg.cert_path = value("cert", cfg.cert_path);
  cfg.key_path = value("key", cfg.key_path);
  cfg.max_body_bytes = size_t(number("max_body_bytes", long(cfg.max_body_bytes), 1024, 1L << 30));
  cfg.threads = size_t(number("threads", long(cfg.threads), 1, 256));
  cfg.cert_check = std::chrono::milliseconds(number("cert_check_ms", long(cfg.cert_check.count()), 10, 3600000));
  cfg.shutdown_delay = std::chrono::milliseconds(number("shutdown_delay_ms", long(cfg.shutdown_delay.count()), 0, 600000));
  if (flags.has("failure_policy")) {
    const std::string v = value("failure_policy", "");
    if (v == "Fail") {
      cfg.admission.failure_policy = gemwh::FailurePolicy::kFail;
    } else if (v == "Ignore") {
      cfg.admission.failure_policy = gemwh::FailurePolicy::kIgnore;
    } else {
      usage_error("--failure_policy is Fail or Ignore");
    }
  }
  m.pmgr_image = value("pmgr_image", m.pmgr_image);
  m.image_pull_policy = value("image_pull_policy", m.image_pull_policy);
  if (m.image_pull_policy != "Always" && m.image_pull_policy != "IfNotPresent" && m.image_pull_policy != "Never") {
    usage_error("--image_pull_policy is Always, IfNotPresent or Never");
  }
  if (flags.has("sidecar_mode") && !gemwh::parse_sidecar_mode(value("sidecar_mode", ""), &m.sidecar_mode)) {
    usage_error("--sidecar_mode is native or container");
  }
  {
    const char* env = std::getenv("GEM_WEBHOOK_GPU_RESOURCE");
    const bool from_flag = flags.has("gpu_resource");
    if (from_flag || (env && *env)) {
      m.gpu_resource = from_flag ? value("gpu_resource", "") : std::string(env);
      if (!gemwh::valid_resource_name(m.gpu_resource, &err)) {
        usage_error(std::string(from_flag ? "--gpu_resource" : "GEM_WEBHOOK_GPU_RESOURCE") + ": " + err);
      }
    }
  }
  m.defaults.request = value("default_request", m.defaults.request);
  m.defaults.limit = value("default_limit", m.defaults.limit);
  m.defaults.gpu_memory = value("default_gpu_memory", m.defaults.gpu_memory);
  m.pmgr_metrics_port = int(number("pmgr_metrics_port", m.pmgr_metrics_port, 0, 65535));
  m.memory_unit_mib = number("memory_unit_mib", long(m.memory_unit_mib), 1, long(gemwh::kMaxMemoryUnitMiB));
  if (flags.has("shared_nodes")) {
    const std::string v = value("shared_nodes", "");
    if (v != "true" && v != "false") usage_error("--shared_nodes is true or false");
    m.shared_nodes = v == "true";
  }
  m.mps_pipe_directory = value("mps_pipe_directory", "");
  if (!m.mps_pipe_directory.empty() && !gemwh::valid_mps_pipe_directory(m.mps_pipe_directory, &err)) {
    usage_error("--mps_pipe_directory " + err);
  }
  if (flags.has("access_log")) {
    const std::string v = value("access_log", "");
    if (v != "true" && v != "false") usage_error("--access_log is true or false");
    cfg.access_log = v == "true";
  }
  if (cfg.cert_path.empty() || cfg.key_path.empty()) usage_error("--cert and --key are required");
  gemwh::SharingSettings checked;
  if (!gemwh::settings_from_annotations(nlohmann::json(), cfg.admission.mutate.defaults, &checked, &err)) {
    usage_error("bad default setting: " + err);
  }
  return gemwh::run_server(cfg);
}
