// Unit tests: gem-webhook --mps_pipe_directory (webhook/mps.h). What a shared pod gets with MPS on
// (checked on the patched pod), that nothing MPS-related comes with it off, the pods refused, and
// which directories the flag takes.
#include <gtest/gtest.h>

#include "mps.h"
#include "mutate.h"
#include "pod_fixtures.h"

using nlohmann::json;
using namespace gemwh;
using namespace webhook_test;

namespace {

const char kDir[] = "/run/gemini/mps";

MutateOptions mps_on() {
  MutateOptions opts;
  opts.mps_pipe_directory = kDir;
  return opts;
}

// The container's mounts at `path` (every one, to catch duplicates).
std::vector<json> mounts_at(const json& c, const std::string& path) {
  std::vector<json> out;
  for (const auto& m : c.value("volumeMounts", json::array())) {
    if (m["mountPath"] == path) out.push_back(m);
  }
  return out;
}

const json* volume(const json& pod, const std::string& name) {
  if (!pod["spec"].contains("volumes")) return nullptr;
  for (const auto& v : pod["spec"]["volumes"]) {
    if (v["name"] == name) return &v;
  }
  return nullptr;
}

void expect_mps_client(const json& c) {
  int n = 0;
  const json* e = find_env(c, kMpsPipeEnv, &n);
  ASSERT_NE(e, nullptr) << c.dump();
  EXPECT_EQ(n, 1);
  EXPECT_EQ(*e, (json{{"name", kMpsPipeEnv}, {"value", kDir}}));
  auto m = mounts_at(c, kDir);
  ASSERT_EQ(m.size(), 1u) << c.dump();
  EXPECT_EQ(m[0]["name"], kMpsVolume);
  EXPECT_FALSE(m[0].value("readOnly", false));  // read-write, as the daemon mounts it
}

MutateResult refused(const json& pod) {
  MutateResult r = mutate_pod(pod, mps_on());
  EXPECT_EQ(r.outcome, Outcome::kInvalid) << pod.dump();
  EXPECT_TRUE(r.patch.empty());
  return r;
}

}  // namespace

TEST(Mps, OnGivesGpuContainersEnvMountAndThePodHostIpc) {
  json pod = shared_pod();
  pod["spec"]["containers"].push_back({{"name", "log"}, {"image", "busybox"}});
  json second = gpu_container("second");
  second["volumeMounts"] = json::array({{{"name", "data"}, {"mountPath", "/data"}}});
  pod["spec"]["containers"].push_back(second);
  pod["spec"]["volumes"] = json::array({{{"name", "data"}, {"emptyDir", json::object()}}});
  pod["spec"]["initContainers"] = json::array({gpu_container("warmup")});
  MutateResult r = mutate_pod(pod, mps_on());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);

  EXPECT_EQ(out["spec"]["hostIPC"], true);
  const json* v = volume(out, kMpsVolume);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ((*v)["hostPath"], (json{{"path", kDir}, {"type", "Directory"}}));
  EXPECT_NE(volume(out, "data"), nullptr);
  expect_mps_client(out["spec"]["containers"][0]);
  expect_mps_client(out["spec"]["containers"][2]);
  EXPECT_EQ(out["spec"]["containers"][2]["volumeMounts"][0]["name"], "data");  // the user's mount kept
  expect_mps_client(out["spec"]["initContainers"][1]);
  // Neither the container without a GPU nor the pod manager (no CUDA) is an MPS client.
  EXPECT_FALSE(out["spec"]["containers"][1].contains("env"));
  EXPECT_FALSE(out["spec"]["containers"][1].contains("volumeMounts"));
  const json& sidecar = out["spec"]["initContainers"][0];
  ASSERT_EQ(sidecar["name"], kSidecarName);
  EXPECT_EQ(find_env(sidecar, kMpsPipeEnv), nullptr);
  EXPECT_TRUE(mounts_at(sidecar, kDir).empty());
}

TEST(Mps, OffAddsNothingMpsRelatedAndLeavesTheUsersVariable) {
  json pod = shared_pod();
  pod["spec"]["hostIPC"] = false;
  pod["spec"]["containers"][0]["env"] = json::array({{{"name", kMpsPipeEnv}, {"value", "/tmp/mine"}}});
  MutateResult r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  EXPECT_EQ(out["spec"]["hostIPC"], false);
  EXPECT_EQ(volume(out, kMpsVolume), nullptr);
  for (const auto& op : r.patch.ops()) {
    EXPECT_EQ(op.dump().find("mps"), std::string::npos) << op.dump();
    EXPECT_EQ(op.dump().find("MPS"), std::string::npos) << op.dump();
    EXPECT_NE(op["path"], "/spec/hostIPC");
  }
  int n = 0;
  EXPECT_EQ((*find_env(out["spec"]["containers"][0], kMpsPipeEnv, &n))["value"], "/tmp/mine");
  EXPECT_EQ(n, 1);
}

TEST(Mps, OnReplacesTheUsersPipeDirectory) {
  json pod = shared_pod();
  pod["spec"]["containers"][0]["env"] = json::array({{{"name", kMpsPipeEnv}, {"value", "/tmp/nvidia-mps"}},
                                                     {{"name", "KEEP"}, {"value", "1"}}});
  MutateResult r = mutate_pod(pod, mps_on());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  expect_mps_client(out["spec"]["containers"][0]);
  EXPECT_NE(find_env(out["spec"]["containers"][0], "KEEP"), nullptr);
}

TEST(Mps, ReinvocationAddsNothing) {
  json pod = shared_pod();
  pod["spec"]["hostIPC"] = true;  // already true: no operation on it
  MutateResult r = mutate_pod(pod, mps_on());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  for (const auto& op : r.patch.ops()) EXPECT_NE(op["path"], "/spec/hostIPC");
  json once = apply_patch(pod, r);
  MutateResult again = mutate_pod(defaulted(once), mps_on());
  EXPECT_EQ(again.outcome, Outcome::kUnchanged) << again.patch.ops().dump();

  pod.erase("spec");
  pod["spec"] = {{"containers", json::array({gpu_container("main")})}};
  once = apply_patch(pod, mutate_pod(pod, mps_on()));
  EXPECT_EQ(once["spec"]["hostIPC"], true);
  EXPECT_EQ(mutate_pod(defaulted(once), mps_on()).outcome, Outcome::kUnchanged);
}

TEST(Mps, PodsThatCannotBeMpsClientsAreRefused) {
  json pod = shared_pod();
  pod["spec"]["hostIPC"] = false;
  MutateResult r = refused(pod);
  EXPECT_NE(r.message.find("spec.hostIPC is false"), std::string::npos) << r.message;

  pod["spec"]["hostIPC"] = "true";
  r = refused(pod);
  EXPECT_NE(r.message.find("spec.hostIPC is not a boolean"), std::string::npos) << r.message;

  pod = shared_pod();
  pod["spec"]["volumes"] = json::array({{{"name", kMpsVolume}, {"emptyDir", json::object()}}});
  r = refused(pod);
  EXPECT_NE(r.message.find(std::string("volume name ") + kMpsVolume + " is reserved"), std::string::npos)
      << r.message;

  pod["spec"]["volumes"] = json::array({{{"name", kMpsVolume}, {"hostPath", {{"path", "/tmp/nvidia-mps"}}}}});
  r = refused(pod);
  EXPECT_NE(r.message.find(kMpsVolume), std::string::npos) << r.message;

  pod = shared_pod();
  pod["spec"]["containers"][0]["volumeMounts"] = json::array({{{"name", "scratch"}, {"mountPath", "/run/gemini/mps/"}}});
  r = refused(pod);
  EXPECT_NE(r.message.find("container main already mounts something else at /run/gemini/mps"), std::string::npos)
      << r.message;
}

TEST(Mps, PipeDirectoryFlagIsChecked) {
  for (const char* ok : {"/run/gemini/mps", "/tmp/nvidia-mps", "/var/run/nvidia-mps", "/run/gemini-mps", "/a"}) {
    std::string why;
    EXPECT_TRUE(valid_mps_pipe_directory(ok, &why)) << ok << ": " << why;
  }
  const std::string longest = "/" + std::string(kMaxMpsPipeDirectory - 1, 'd');
  EXPECT_TRUE(valid_mps_pipe_directory(longest));
  const struct {
    std::string dir;
    const char* why;
  } bad[] = {
      {"", "not an absolute path"},
      {"run/gemini/mps", "not an absolute path"},
      {"/", "root directory"},
      {"/run/../tmp/mps", "not a clean path"},
      {"/run/./mps", "not a clean path"},
      {"/run//mps", "not a clean path"},
      {"/run/mps/", "not a clean path"},
      {"/run/gemini", "schedulers' socket directory /run/gemini"},
      {"/run", "schedulers' socket directory"},
      {"/var/lib/gemini", "hook's directory /var/lib/gemini/lib"},
      {"/var/lib/gemini/lib/mps", "hook's directory /var/lib/gemini/lib"},
      {"/gemini", "hook's directory /gemini/lib"},
      {"/gemini/lib", "hook's directory /gemini/lib"},
      {"/run/my mps", "space"},
      {"/run/mps\n", "space"},
      {longest + "d", "longer than 80 characters"},
  };
  for (const auto& b : bad) {
    std::string why;
    EXPECT_FALSE(valid_mps_pipe_directory(b.dir, &why)) << b.dir;
    EXPECT_NE(why.find(b.why), std::string::npos) << b.dir << ": " << why;
    EXPECT_NE(why.find("\"" + b.dir + "\""), std::string::npos) << why;  // names the value
  }
}

TEST(Mps, HookEnvNamesThePipeDirectoryOnlyWhenOn) {
  auto names = [](const json& env) {
    std::vector<std::string> out;
    for (const auto& e : env) out.push_back(e["name"]);
    return out;
  };
  std::vector<std::string> off = names(hook_env(MutateOptions()));
  std::vector<std::string> on = names(hook_env(mps_on()));
  ASSERT_EQ(on.size(), off.size() + 1);
  EXPECT_EQ(std::vector<std::string>(on.begin(), on.end() - 1), off);
  EXPECT_EQ(on.back(), kMpsPipeEnv);
  EXPECT_EQ(std::count(off.begin(), off.end(), kMpsPipeEnv), 0);
}
