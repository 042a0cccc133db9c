// Unit tests: what mutate_pod adds, checked by applying the patch with nlohmann's RFC 6902 code.
#include <gtest/gtest.h>

#include "mutate.h"
#include "pod_fixtures.h"

using nlohmann::json;
using namespace gemwh;
using namespace webhook_test;

namespace {

void expect_shared_container(const json& c) {
  const json* pn = find_env(c, "POD_NAME");
  ASSERT_NE(pn, nullptr) << c.dump();
  EXPECT_EQ((*pn)["value"], "$(GEMINI_POD_NAMESPACE)/$(GEMINI_POD_NAME_ONLY)");
  ASSERT_NE(find_env(c, "GEMINI_POD_NAMESPACE"), nullptr);
  EXPECT_EQ((*find_env(c, "GEMINI_POD_NAMESPACE"))["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
  EXPECT_EQ((*find_env(c, "GEMINI_POD_NAME_ONLY"))["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
  EXPECT_EQ((*find_env(c, "POD_MANAGER_IP"))["value"], "127.0.0.1");
  EXPECT_EQ((*find_env(c, "POD_MANAGER_PORT"))["value"], "50052");
  // Dependent expansion needs the referenced variables first.
  size_t i_ns = 0, i_name = 0, i_pod = 0;
  for (size_t i = 0; i < c["env"].size(); ++i) {
    if (c["env"][i]["name"] == "GEMINI_POD_NAMESPACE") i_ns = i;
    if (c["env"][i]["name"] == "GEMINI_POD_NAME_ONLY") i_name = i;
    if (c["env"][i]["name"] == "POD_NAME") i_pod = i;
  }
  EXPECT_LT(i_ns, i_pod);
  EXPECT_LT(i_name, i_pod);
  bool mounted = false;
  for (const auto& m : c["volumeMounts"]) {
    if (m["mountPath"] == kLibMountPath) {
      EXPECT_EQ(m["name"], kLibVolume);
      EXPECT_EQ(m["readOnly"], true);
      mounted = true;
    }
  }
  EXPECT_TRUE(mounted);
}

}  // namespace

TEST(Mutate, NotOptedInIsUntouched) {
  json pod = shared_pod();
  pod["metadata"]["labels"][kLabelEnabled] = "false";
  MutateResult r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kNotOptedIn);
  EXPECT_TRUE(r.patch.empty());
  pod["metadata"].erase("labels");
  pod["metadata"]["annotations"] = {{kLabelEnabled, "true"}};  // an annotation is not the opt-in
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).outcome, Outcome::kNotOptedIn);
}

TEST(Mutate, OptedInWithoutGpuGetsWarningNoPatch) {
  json pod = shared_pod();
  pod["spec"]["containers"][0].erase("resources");
  MutateResult r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kNoGpu);
  EXPECT_TRUE(r.patch.empty());
  ASSERT_EQ(r.warnings.size(), 1u);
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{"nvidia.com/gpu", "0"}}}};
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).outcome, Outcome::kNoGpu);
}

TEST(Mutate, GenerateNamePodGetsEverything) {
  json pod = shared_pod();
  pod["metadata"]["annotations"] = {{kAnnRequest, "0.3"}, {kAnnLimit, "0.6"}, {kAnnGpuMemory, "4GiB"}};
  MutateOptions opts;
  opts.pmgr_image = "registry.example/gemini-node:test";
  MutateResult r = mutate_pod(pod, opts);
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  EXPECT_EQ(out["metadata"]["annotations"][kAnnMutated], "true");
  EXPECT_EQ(out["metadata"]["annotations"][kAnnRequest], "0.3");  // kept: single-key add
  for (const auto& op : r.patch.ops()) EXPECT_NE(op["path"], "/metadata/annotations") << op.dump();
  const json& c = out["spec"]["containers"][0];
  expect_shared_container(c);
  EXPECT_EQ((*find_env(c, "LD_PRELOAD"))["value"], kHookPath);
  ASSERT_EQ(out["spec"]["initContainers"].size(), 1u);
  const json& sc = out["spec"]["initContainers"][0];
  EXPECT_EQ(sc["name"], kSidecarName);
  EXPECT_EQ(sc["restartPolicy"], "Always");
  EXPECT_EQ(sc["image"], "registry.example/gemini-node:test");
  EXPECT_EQ(sc["args"], json({"--name", "$(POD_NAME)", "--ip", "127.0.0.1", "--port", "50052",
                              "--metrics_port", "19500", "--metrics_address", "0.0.0.0",
                              "--scheduler_dir", "/run/gemini", "--request", "0.3", "--limit", "0.6",
                              "--gpu_mem", "4GiB"}));
  // Its metrics, on the pod IP, behind the named port the PodMonitor scrapes.
  EXPECT_EQ(sc["ports"], json::array({{{"name", "gem-metrics"}, {"containerPort", 19500}, {"protocol", "TCP"}}}));
  EXPECT_EQ(sc["volumeMounts"][0]["mountPath"], "/run/gemini");
  // Unified-memory mode reaches gem-pmgr as --um on.
  pod["metadata"]["annotations"][kAnnUnifiedMemory] = "on";
  const MutateResult um = mutate_pod(pod, opts);
  ASSERT_EQ(um.outcome, Outcome::kPatched) << um.message;
  const json um_args = apply_patch(pod, um)["spec"]["initContainers"][0]["args"];
  EXPECT_EQ(um_args[um_args.size() - 2], "--um");
  EXPECT_EQ(um_args[um_args.size() - 1], "on");
  // Only the sidecar mounts the schedulers' sockets.
  for (const auto& m : c["volumeMounts"]) EXPECT_NE(m["name"], kSchedVolume);
  ASSERT_EQ(out["spec"]["volumes"].size(), 2u);
  EXPECT_EQ(out["spec"]["volumes"][0]["hostPath"]["path"], kLibHostPath);
  EXPECT_EQ(out["spec"]["volumes"][1]["hostPath"]["path"], kSchedHostPath);
}

TEST(Mutate, PmgrMetricsPortFollowsTheFlag) {
  json pod = shared_pod();
  MutateOptions opts;
  opts.pmgr_metrics_port = 20123;
  const json sc = apply_patch(pod, mutate_pod(pod, opts))["spec"]["initContainers"][0];
  EXPECT_EQ(json(std::vector<json>(sc["args"].begin() + 6, sc["args"].begin() + 10)),
            json({"--metrics_port", "20123", "--metrics_address", "0.0.0.0"}));
  EXPECT_EQ(sc["ports"], json::array({{{"name", kPmgrMetricsPortName}, {"containerPort", 20123}, {"protocol", "TCP"}}}));
  // 0: no metrics, no port; the arguments are those before metrics existed.
  opts.pmgr_metrics_port = 0;
  const json off = apply_patch(pod, mutate_pod(pod, opts))["spec"]["initContainers"][0];
  EXPECT_FALSE(off.contains("ports"));
  for (const auto& a : off["args"]) EXPECT_NE(a, "--metrics_port");
  EXPECT_EQ(off["args"][6], "--scheduler_dir");
}

TEST(Mutate, KeepsUserEnvVolumesAndPrependsLdPreload) {
  json pod = shared_pod();
  json& c = pod["spec"]["containers"][0];
  c["env"] = json::array({{{"name", "A"}, {"value", "1"}}, {{"name", "LD_PRELOAD"}, {"value", "/opt/libx.so"}}});
  c["volumeMounts"] = json::array({{{"name", "data"}, {"mountPath", "/data"}}});
  pod["spec"]["volumes"] = json::array({{{"name", "data"}, {"emptyDir", json::object()}}});
  MutateResult r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  bool tested = false;
  for (const auto& op : r.patch.ops()) {
    EXPECT_NE(op["path"], "/spec/containers/0/env");
    EXPECT_NE(op["path"], "/spec/volumes");
    EXPECT_NE(op["path"], "/spec/containers/0/volumeMounts");
    if (op["op"] == "test" && op["path"] == "/spec/containers/0/env/1/value") tested = true;
  }
  EXPECT_TRUE(tested);
  json out = apply_patch(pod, r);
  const json& oc = out["spec"]["containers"][0];
  EXPECT_EQ(oc["env"][0], (json{{"name", "A"}, {"value", "1"}}));
  int n = 0;
  EXPECT_EQ((*find_env(oc, "LD_PRELOAD", &n))["value"], std::string(kHookPath) + ":/opt/libx.so");
  EXPECT_EQ(n, 1);
  EXPECT_EQ(oc["volumeMounts"][0]["name"], "data");
  EXPECT_EQ(out["spec"]["volumes"][0]["name"], "data");
  EXPECT_EQ(out["spec"]["volumes"].size(), 3u);
  expect_shared_container(oc);
}

TEST(Mutate, LdPreloadFromValueFromIsChained) {
  json pod = shared_pod();
  pod["spec"]["containers"][0]["env"] = json::array(
      {{{"name", "LD_PRELOAD"}, {"valueFrom", {{"configMapKeyRef", {{"name", "cm"}, {"key", "pre"}}}}}}});
  MutateResult r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  const json& env = out["spec"]["containers"][0]["env"];
  EXPECT_TRUE(env[0].contains("valueFrom"));
  EXPECT_EQ(env.back(), (json{{"name", "LD_PRELOAD"}, {"value", std::string(kHookPath) + ":$(LD_PRELOAD)"}}));
  EXPECT_EQ(mutate_pod(defaulted(out), MutateOptions()).outcome, Outcome::kUnchanged);
}

TEST(Mutate, ReservedEnvIsReplacedNotDuplicated) {
  json pod = shared_pod();
  pod["spec"]["containers"][0]["env"] = json::array({{{"name", "POD_NAME"}, {"value", "other/pod"}},
                                                     {{"name", "POD_MANAGER_SOCKET"}, {"value", "/tmp/x"}},
                                                     {{"name", "KEEP"}, {"value", "$(POD_NAME)"}}});
  MutateResult r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  const json& c = out["spec"]["containers"][0];
  int n = 0;
  find_env(c, "POD_NAME", &n);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(find_env(c, "POD_MANAGER_SOCKET"), nullptr);
  EXPECT_NE(find_env(c, "KEEP"), nullptr);
  expect_shared_container(c);
}

TEST(Mutate, SeveralContainersAndInitContainers) {
  json pod = shared_pod();
  pod["spec"]["containers"].push_back({{"name", "sidecar-log"}, {"image", "busybox"}});
  pod["spec"]["containers"].push_back(
      {{"name", "second"}, {"image", "cuda"}, {"resources", {{"requests", {{"nvidia.com/gpu", 1}}}}}});
  pod["spec"]["initContainers"] =
      json::array({{{"name", "fetch"}, {"image", "busybox"}}, gpu_container("warmup")});
  MutateResult r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  const json& inits = out["spec"]["initContainers"];
  ASSERT_EQ(inits.size(), 3u);
  EXPECT_EQ(inits[0]["name"], kSidecarName);  // before every init container that may use the GPU
  EXPECT_EQ(inits[1]["name"], "fetch");
  EXPECT_FALSE(inits[1].contains("env"));
  EXPECT_EQ(inits[2]["name"], "warmup");
  expect_shared_container(inits[2]);
  expect_shared_container(out["spec"]["containers"][0]);
  EXPECT_FALSE(out["spec"]["containers"][1].contains("env"));
  EXPECT_FALSE(out["spec"]["containers"][1].contains("volumeMounts"));
  expect_shared_container(out["spec"]["containers"][2]);
}

TEST(Mutate, IdempotentOnReinvocation) {
  json pod = shared_pod();
  pod["metadata"]["annotations"] = {{"team", "a"}};
  pod["spec"]["containers"][0]["env"] = json::array({{{"name", "LD_PRELOAD"}, {"value", "/x.so"}}});
  pod["spec"]["initContainers"] = json::array({gpu_container("warmup")});
  MutateResult r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched);
  json once = apply_patch(pod, r);
  MutateResult again = mutate_pod(once, MutateOptions());
  EXPECT_EQ(again.outcome, Outcome::kUnchanged) << again.patch.ops().dump();
  EXPECT_TRUE(again.patch.empty());
  EXPECT_EQ(mutate_pod(defaulted(once), MutateOptions()).outcome, Outcome::kUnchanged);
}

TEST(Mutate, ReinvocationAfterAnotherWebhookAddedAGpuContainer) {
  json pod = shared_pod();
  json once = apply_patch(pod, mutate_pod(pod, MutateOptions()));
  once["spec"]["containers"].push_back(gpu_container("added-later"));
  MutateResult r = mutate_pod(once, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched);
  for (const auto& op : r.patch.ops()) {
    EXPECT_EQ(op["path"].get<std::string>().rfind("/spec/containers/1/", 0), 0u) << op.dump();
  }
  json twice = apply_patch(once, r);
  expect_shared_container(twice["spec"]["containers"][1]);
  EXPECT_EQ(twice["spec"]["initContainers"].size(), 1u);
}

TEST(Mutate, InvalidInputsNeverThrow) {
  const json bad_pods[] = {
      json::array(),
      json("pod"),
      {{"metadata", {{"labels", {{kLabelEnabled, "true"}}}}}},
      {{"metadata", {{"labels", {{kLabelEnabled, "true"}}}}}, {"spec", {{"containers", "main"}}}},
      {{"metadata", {{"labels", {{kLabelEnabled, "true"}}}}}, {"spec", {{"containers", json::array()}}}},
      {{"metadata", {{"labels", {{kLabelEnabled, "true"}}}}}, {"spec", {{"containers", {1, 2}}}}},
      {{"metadata", {{"labels", {{kLabelEnabled, "true"}}}, {"annotations", "x"}}},
       {"spec", {{"containers", json::array({gpu_container("a")})}}}},
  };
  for (const auto& pod : bad_pods) {
    MutateResult r = mutate_pod(pod, MutateOptions());
    EXPECT_EQ(r.outcome, Outcome::kInvalid) << pod.dump();
    EXPECT_FALSE(r.message.empty());
    EXPECT_TRUE(r.patch.empty());
  }
  json pod = shared_pod();
  pod["spec"]["containers"][0]["env"] = "A=1";
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).outcome, Outcome::kInvalid);
  pod = shared_pod();
  pod["spec"]["containers"][0]["env"] = json::array({{{"name", "LD_PRELOAD"}, {"value", 5}}});
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).outcome, Outcome::kInvalid);
  pod = shared_pod();
  pod["spec"]["containers"][0]["resources"] = {{"limits", "lots"}};  // not a map: no GPU
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).outcome, Outcome::kNoGpu);
}

TEST(Mutate, ConflictsAreInvalid) {
  json pod = shared_pod();
  pod["spec"]["volumes"] = json::array({{{"name", kLibVolume}, {"emptyDir", json::object()}}});
  MutateResult r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_NE(r.message.find("reserved"), std::string::npos);

  pod = shared_pod();
  pod["spec"]["containers"][0]["volumeMounts"] = json::array({{{"name", "x"}, {"mountPath", "/gemini/lib/"}}});
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).outcome, Outcome::kInvalid);

  pod = shared_pod();
  pod["spec"]["containers"].push_back({{"name", kSidecarName}, {"image", "x"}});
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).outcome, Outcome::kInvalid);

  pod = shared_pod();
  pod["metadata"]["annotations"] = {{kAnnRequest, "0.9"}, {kAnnLimit, "0.5"}};
  r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_NE(r.message.find(kAnnRequest), std::string::npos);
}

TEST(Mutate, SidecarModeParses) {
  SidecarMode m = SidecarMode::kContainer;
  ASSERT_TRUE(parse_sidecar_mode("native", &m));
  EXPECT_EQ(m, SidecarMode::kNative);
  ASSERT_TRUE(parse_sidecar_mode("container", &m));
  EXPECT_EQ(m, SidecarMode::kContainer);
  EXPECT_FALSE(parse_sidecar_mode("Native", &m));
  EXPECT_FALSE(parse_sidecar_mode("", &m));
}

// --sidecar_mode container (clusters before 1.29): the pod manager is an ordinary container, last in
// spec.containers, with no restartPolicy; init containers are left where they are.
TEST(Mutate, ContainerModePutsThePodManagerAmongTheContainers) {
  json pod = shared_pod();
  pod["metadata"]["annotations"] = {{kAnnRequest, "0.2"}, {kAnnLimit, "0.7"}};
  pod["spec"]["containers"].push_back({{"name", "sidecar-log"}, {"image", "busybox"}});
  pod["spec"]["initContainers"] = json::array({gpu_container("warmup")});
  MutateOptions opts;
  opts.sidecar_mode = SidecarMode::kContainer;
  MutateResult r = mutate_pod(pod, opts);
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  const json& cs = out["spec"]["containers"];
  ASSERT_EQ(cs.size(), 3u);
  EXPECT_EQ(cs[0]["name"], "main");  // the user's containers keep their indices
  expect_shared_container(cs[0]);
  EXPECT_EQ(cs[1]["name"], "sidecar-log");
  EXPECT_FALSE(cs[1].contains("env"));
  const json& pm = cs[2];
  EXPECT_EQ(pm["name"], kSidecarName);
  EXPECT_FALSE(pm.contains("restartPolicy"));
  EXPECT_EQ(pm["command"], json({"gem-pmgr"}));
  EXPECT_EQ(pm["args"][13], "0.2");
  EXPECT_EQ(pm["args"][15], "0.7");
  EXPECT_EQ(pm["ports"][0]["name"], kPmgrMetricsPortName);
  EXPECT_EQ(pm["volumeMounts"], json::array({{{"name", kSchedVolume}, {"mountPath", kSchedHostPath}}}));
  EXPECT_TRUE(pm.contains("startupProbe"));  // valid on regular containers since 1.16
  ASSERT_EQ(out["spec"]["initContainers"].size(), 1u);  // the user's init container only
  expect_shared_container(out["spec"]["initContainers"][0]);
  // Apart from where it sits and restartPolicy, the same container as in native mode.
  json native = pod_manager_sidecar(SharingSettings{"0.2", "0.7", "0", "off"}, MutateOptions());
  EXPECT_EQ(native["restartPolicy"], "Always");
  native.erase("restartPolicy");
  EXPECT_EQ(pm, native);

  // Reinvocation (after defaulting) adds nothing, in either mode.
  EXPECT_EQ(mutate_pod(defaulted(out), opts).outcome, Outcome::kUnchanged);
  EXPECT_EQ(mutate_pod(defaulted(out), MutateOptions()).outcome, Outcome::kUnchanged);
  // A pod with no init containers gets none.
  json plain = shared_pod();
  json plain_out = apply_patch(plain, mutate_pod(plain, opts));
  EXPECT_FALSE(plain_out["spec"].contains("initContainers"));
  EXPECT_EQ(plain_out["spec"]["containers"][1]["name"], kSidecarName);
  // A regular container that takes the name without running gem-pmgr is still a conflict.
  plain["spec"]["containers"].push_back({{"name", kSidecarName}, {"image", "x"}, {"command", {"sh"}}});
  EXPECT_EQ(mutate_pod(plain, opts).outcome, Outcome::kInvalid);
}

// --gpu_resource: the resource that marks a GPU container is configurable (default nvidia.com/gpu).
TEST(Mutate, GpuResourceIsConfigurable) {
  MutateOptions opts;
  EXPECT_EQ(opts.gpu_resource, "nvidia.com/gpu");
  json pod = shared_pod();
  pod["spec"]["containers"].push_back(
      {{"name", "shared"}, {"image", "cuda:13"}, {"resources", {{"requests", {{"example.com/accel", "1"}}}}}});
  // Default: only "main" (nvidia.com/gpu) gets the hook.
  MutateResult r = mutate_pod(pod, opts);
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  json out = apply_patch(pod, r);
  EXPECT_NE(find_env(out["spec"]["containers"][0], "LD_PRELOAD"), nullptr);
  EXPECT_EQ(find_env(out["spec"]["containers"][1], "LD_PRELOAD"), nullptr);
  // Another resource: only "shared" does.
  opts.gpu_resource = "example.com/accel";
  r = mutate_pod(pod, opts);
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  out = apply_patch(pod, r);
  EXPECT_EQ(find_env(out["spec"]["containers"][0], "LD_PRELOAD"), nullptr);
  EXPECT_NE(find_env(out["spec"]["containers"][1], "LD_PRELOAD"), nullptr);
  // A pod with neither: the warning names the configured resource.
  opts.gpu_resource = "example.com/other";
  r = mutate_pod(pod, opts);
  ASSERT_EQ(r.outcome, Outcome::kNoGpu);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("no container requests example.com/other or gemini.gpu-sharing.io/gpu-share;"), std::string::npos) << r.warnings[0];
  // A zero quantity of the configured resource is no GPU.
  pod["spec"]["containers"][1]["resources"]["requests"] = {{"example.com/other", "0"}};
  EXPECT_EQ(mutate_pod(pod, opts).outcome, Outcome::kNoGpu);
}

TEST(Mutate, ResourceNamesAreChecked) {
  for (const char* ok : {"nvidia.com/gpu", "gemini.gpu-sharing.io/gpu-share", "amd.com/gpu", "a/B_1.x"}) {
    std::string why;
    EXPECT_TRUE(valid_resource_name(ok, &why)) << ok << ": " << why;
  }
  for (const char* bad : {"", "gpu", "/gpu", "nvidia.com/", "nvidia.com/gpu/x", "Nvidia.com/gpu", "nvidia..com/gpu",
                          "-nvidia.com/gpu", "nvidia.com/-gpu", "nvidia.com/gpu!", "nvidia.com/g pu"}) {
    std::string why;
    EXPECT_FALSE(valid_resource_name(bad, &why)) << bad;
    EXPECT_NE(why.find("is not an extended resource name"), std::string::npos) << why;
  }
  EXPECT_FALSE(valid_resource_name("x.io/" + std::string(64, 'a')));
  EXPECT_TRUE(valid_resource_name("x.io/" + std::string(63, 'a')));
}

TEST(Mutate, DevicePluginResourcesGiveRequestAndGpuMem) {
  // No nvidia.com/gpu: the plugin's gpu-share alone makes the container a GPU container. Memory in
  // units of 256 MiB (the plugin's default): 318 units are 81408 MiB.
  json pod = shared_pod();
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{kResShare, "30"}, {kResMemory, "318"}}}};
  pod["spec"]["containers"].push_back({{"name", "log"}, {"image", "busybox"}});
  MutateResult r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  EXPECT_TRUE(r.warnings.empty());
  json out = apply_patch(pod, r);
  expect_shared_container(out["spec"]["containers"][0]);
  EXPECT_FALSE(out["spec"]["containers"][1].contains("env"));
  const json& args = out["spec"]["initContainers"][0]["args"];
  EXPECT_EQ(json(std::vector<json>(args.end() - 6, args.end())),
            json({"--request", "0.3", "--limit", "1", "--gpu_mem", "81408MiB"}));
  EXPECT_EQ(mutate_pod(defaulted(out), MutateOptions()).outcome, Outcome::kUnchanged);

  // Annotations stay overrides, with a warning the API server shows the user.
  pod["metadata"]["annotations"] = {{kAnnRequest, "0.5"}, {kAnnLimit, "0.6"}};
  r = mutate_pod(pod, MutateOptions());
  ASSERT_EQ(r.outcome, Outcome::kPatched) << r.message;
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("overrides the REQUEST 0.3"), std::string::npos) << r.warnings[0];
  const json args2 = apply_patch(pod, r)["spec"]["initContainers"][0]["args"];
  EXPECT_EQ(json(std::vector<json>(args2.end() - 6, args2.end())),
            json({"--request", "0.5", "--limit", "0.6", "--gpu_mem", "81408MiB"}));

  // gpu-memory alone is a GPU container too (16 units of 256 MiB); the share stays the default.
  json mem_only = shared_pod();
  mem_only["spec"]["containers"][0]["resources"] = {{"limits", {{kResMemory, "16"}}}};
  const json args3 = apply_patch(mem_only, mutate_pod(mem_only, MutateOptions()))["spec"]["initContainers"][0]["args"];
  EXPECT_EQ(json(std::vector<json>(args3.end() - 6, args3.end())),
            json({"--request", "0", "--limit", "1", "--gpu_mem", "4096MiB"}));

  // Unchanged for a pod with nvidia.com/gpu only: the defaults, as before.
  json plain = shared_pod();
  const json args4 = apply_patch(plain, mutate_pod(plain, MutateOptions()))["spec"]["initContainers"][0]["args"];
  EXPECT_EQ(json(std::vector<json>(args4.end() - 6, args4.end())),
            json({"--request", "0", "--limit", "1", "--gpu_mem", "0"}));

  // A quantity the webhook cannot turn into a share, or a share above one GPU: invalid (failure policy).
  pod["spec"]["containers"][0]["resources"]["limits"][kResShare] = "500m";
  r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_NE(r.message.find("is not a whole number"), std::string::npos) << r.message;
  pod["spec"]["containers"][0]["resources"]["limits"][kResShare] = "101";
  r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_NE(r.message.find("more than one GPU"), std::string::npos) << r.message;
}

TEST(Mutate, NoGpuWarningNamesBothResources) {
  json pod = shared_pod();
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{kResShare, "0"}}}};
  MutateResult r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kNoGpu);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0], "gemini: pod has label gemini.gpu-sharing.io/enabled=true but no container requests "
                           "nvidia.com/gpu or gemini.gpu-sharing.io/gpu-share; it is not put under GPU sharing");
}
