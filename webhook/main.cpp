// gem-webhook: Kubernetes mutating admission webhook that puts opted-in pods under GPU sharing.
// See docs/kubernetes.md. Flags take "--name value" or "--name=value".
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

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
    "                              without native sidecars (docs/kubernetes.md)\n"
    "  --default_request 0 --default_limit 1 --default_gpu_memory 0\n"
    "                              settings for pods without the annotations\n"
    "  --shutdown_delay_ms 0       keep serving this long after SIGTERM\n"
    "  --access_log true           one JSON line per request on stderr (true|false)\n";

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
  gemwh::ServerConfig cfg;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::string value;
    size_t eq = flag.find('=');
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else {
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      value = argv[++i];
    }
    auto& m = cfg.admission.mutate;
    if (flag == "--port") {
      cfg.port = int(parse_long(flag, value, 1, 65535));
    } else if (flag == "--bind") {
      cfg.bind = value;
    } else if (flag == "--cert") {
      cfg.cert_path = value;
    } else if (flag == "--key") {
      cfg.key_path = value;
    } else if (flag == "--max_body_bytes") {
      cfg.max_body_bytes = size_t(parse_long(flag, value, 1024, 1L << 30));
    } else if (flag == "--threads") {
      cfg.threads = size_t(parse_long(flag, value, 1, 256));
    } else if (flag == "--cert_check_ms") {
      cfg.cert_check = std::chrono::milliseconds(parse_long(flag, value, 10, 3600000));
    } else if (flag == "--shutdown_delay_ms") {
      cfg.shutdown_delay = std::chrono::milliseconds(parse_long(flag, value, 0, 600000));
    } else if (flag == "--failure_policy") {
      if (value == "Fail") {
        cfg.admission.failure_policy = gemwh::FailurePolicy::kFail;
      } else if (value == "Ignore") {
        cfg.admission.failure_policy = gemwh::FailurePolicy::kIgnore;
      } else {
        usage_error("--failure_policy is Fail or Ignore");
      }
    } else if (flag == "--pmgr_image") {
      m.pmgr_image = value;
    } else if (flag == "--image_pull_policy") {
      if (value != "Always" && value != "IfNotPresent" && value != "Never") {
        usage_error("--image_pull_policy is Always, IfNotPresent or Never");
      }
      m.image_pull_policy = value;
    } else if (flag == "--sidecar_mode") {
      if (!gemwh::parse_sidecar_mode(value, &m.sidecar_mode)) usage_error("--sidecar_mode is native or container");
    } else if (flag == "--default_request") {
      m.defaults.request = value;
    } else if (flag == "--default_limit") {
      m.defaults.limit = value;
    } else if (flag == "--default_gpu_memory") {
      m.defaults.gpu_memory = value;
    } else if (flag == "--access_log") {
      if (value != "true" && value != "false") usage_error("--access_log is true or false");
      cfg.access_log = value == "true";
    } else {
      usage_error("unknown flag " + flag);
    }
  }
  if (cfg.cert_path.empty() || cfg.key_path.empty()) usage_error("--cert and --key are required");
  gemwh::SharingSettings checked;
  std::string err;
  if (!gemwh::settings_from_annotations(nlohmann::json(), cfg.admission.mutate.defaults, &checked, &err)) {
    usage_error("bad default setting: " + err);
  }
  return gemwh::run_server(cfg);
}
