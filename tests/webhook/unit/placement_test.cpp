// Unit tests: shared-node placement (placement.h) and the refusal of whole GPUs beside a share, as
// mutate_pod applies them; patches applied with nlohmann's RFC 6902 code.
#include <gtest/gtest.h>

#include "../../../device-plugin/gpus.h"
#include "mutate.h"
#include "placement.h"

using nlohmann::json;
using namespace gemwh;

namespace {

json sharing_pod(json limits) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", "p"}, {"namespace", "team-a"}, {"labels", {{kLabelEnabled, "true"}}}}},
          {"spec",
           {{"containers", json::array({{{"name", "main"}, {"image", "cuda:13"}, {"resources", {{"limits", limits}}}}})}}}};
}

json mutated(const json& pod, const MutateOptions& opts = MutateOptions()) {
  MutateResult r = mutate_pod(pod, opts);
  EXPECT_EQ(r.outcome, Outcome::kPatched) << r.message;
  return pod.patch(r.patch.ops());
}

int shared_tolerations(const json& spec) {
  int n = 0;
  for (const auto& t : spec.value("tolerations", json::array())) n += t == shared_node_toleration();
  return n;
}

}  // namespace

// The webhook reads what gem-device-plugin advertises: same names, same default memory unit (the
// manifests pass the same --memory_unit_mib to both; test_manifests.py checks that).
static_assert(gemwh::kDefaultResMemoryUnitMiB == int64_t(gem::dp::kDefaultMemoryUnitMiB));
static_assert(gemwh::kMaxMemoryUnitMiB == 65536);  // gem-device-plugin's --memory_unit_mib bound (main.cpp)
static_assert(gemwh::kShareUnitsPerGpu == gem::dp::kSharesPerGpu);

TEST(Placement, TheResourceNamesAreThePlugins) {
  EXPECT_STREQ(kResShare, gem::dp::kShareResource);
  EXPECT_STREQ(kResMemory, gem::dp::kMemoryResource);
}

TEST(Placement, ASharingPodGetsTheTolerationAndTheNodeSelector) {
  json out = mutated(sharing_pod({{kResShare, "30"}}));
  EXPECT_EQ(out["spec"]["tolerations"], json::array({{{"key", "gemini.gpu-sharing.io/shared"}, {"operator", "Equal"},
                                                      {"value", "true"}, {"effect", "NoSchedule"}}}));
  EXPECT_EQ(out["spec"]["nodeSelector"], json({{"gemini.gpu-sharing.io/shared", "true"}}));
  // Reinvocation: nothing more to add.
  EXPECT_EQ(mutate_pod(out, MutateOptions()).outcome, Outcome::kUnchanged);
  // gpu-memory alone places the pod too.
  EXPECT_EQ(mutated(sharing_pod({{kResMemory, "16"}}))["spec"]["nodeSelector"]["gemini.gpu-sharing.io/shared"], "true");
}

TEST(Placement, TheUsersTolerationsAndNodeSelectorAreKept) {
  json pod = sharing_pod({{kResShare, "30"}});
  // As the API server's DefaultTolerationSeconds leaves them, plus the user's own selector.
  pod["spec"]["tolerations"] = json::array(
      {{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}, {"effect", "NoExecute"}, {"tolerationSeconds", 300}}});
  pod["spec"]["nodeSelector"] = {{"zone", "a"}};
  json out = mutated(pod);
  ASSERT_EQ(out["spec"]["tolerations"].size(), 2u);
  EXPECT_EQ(out["spec"]["tolerations"][0], pod["spec"]["tolerations"][0]);
  EXPECT_EQ(shared_tolerations(out["spec"]), 1);
  EXPECT_EQ(out["spec"]["nodeSelector"], json({{"zone", "a"}, {"gemini.gpu-sharing.io/shared", "true"}}));
}

TEST(Placement, AnExistingTolerationOfTheTaintIsEnough) {
  for (const json& t : {json{{"key", kSharedNodeKey}, {"operator", "Exists"}},
                        json{{"key", kSharedNodeKey}, {"value", "true"}, {"effect", "NoSchedule"}},
                        json{{"operator", "Exists"}}}) {
    EXPECT_TRUE(tolerates_shared_node(json::array({t}))) << t;
    json pod = sharing_pod({{kResShare, "30"}});
    pod["spec"]["tolerations"] = json::array({t});
    EXPECT_EQ(shared_tolerations(mutated(pod)["spec"]), 0) << t;
  }
  for (const json& t : {json{{"key", kSharedNodeKey}, {"value", "false"}},
                        json{{"key", kSharedNodeKey}, {"operator", "Exists"}, {"effect", "NoExecute"}},
                        json{{"key", "other"}, {"operator", "Exists"}}}) {
    EXPECT_FALSE(tolerates_shared_node(json::array({t}))) << t;
  }
  EXPECT_FALSE(tolerates_shared_node(json()));
}

TEST(Placement, ANodeSelectorThatExcludesSharedNodesIsRefused) {
  json pod = sharing_pod({{kResShare, "30"}});
  pod["spec"]["nodeSelector"] = {{kSharedNodeKey, "false"}};
  MutateResult r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_EQ(r.message, "spec.nodeSelector gemini.gpu-sharing.io/shared=false excludes the shared nodes that "
                       "gemini.gpu-sharing.io/gpu-share and /gpu-memory are on; remove it");
  pod["spec"]["nodeSelector"] = "x";
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).message, "spec.nodeSelector is not a map");
  pod["spec"].erase("nodeSelector");
  pod["spec"]["tolerations"] = json::array({1});
  EXPECT_EQ(mutate_pod(pod, MutateOptions()).message, "spec.tolerations is not a list of objects");
}

TEST(Placement, WholeGpusOnlyPodsAndTheFlagOffAreNotPlaced) {
  // nvidia.com/gpu only (time-slicing clusters): mutated as before, no placement.
  json out = mutated(sharing_pod({{"nvidia.com/gpu", "1"}}));
  EXPECT_FALSE(out["spec"].contains("tolerations"));
  EXPECT_FALSE(out["spec"].contains("nodeSelector"));
  MutateOptions off;
  off.shared_nodes = false;
  out = mutated(sharing_pod({{kResShare, "30"}}), off);
  EXPECT_FALSE(out["spec"].contains("tolerations"));
  EXPECT_FALSE(out["spec"].contains("nodeSelector"));
}

TEST(Placement, WholeGpusBesideASharedGpuAreRefused) {
  // In one container.
  MutateResult r = mutate_pod(sharing_pod({{"nvidia.com/gpu", "1"}, {kResShare, "30"}}), MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_EQ(r.message, "the pod asks for both nvidia.com/gpu (container main) and a shared GPU "
                       "(gemini.gpu-sharing.io/gpu-share or gemini.gpu-sharing.io/gpu-memory, container main); a pod "
                       "takes whole GPUs or a share of one, and shared nodes do not advertise nvidia.com/gpu: remove "
                       "nvidia.com/gpu");
  // In two containers, one an init container, the whole GPU in requests.
  json pod = sharing_pod({{kResMemory, "16"}});
  pod["spec"]["initContainers"] = json::array(
      {{{"name", "warmup"}, {"image", "cuda:13"}, {"resources", {{"requests", {{"nvidia.com/gpu", "1"}}}}}}});
  r = mutate_pod(pod, MutateOptions());
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_NE(r.message.find("nvidia.com/gpu (container warmup) and a shared GPU"), std::string::npos) << r.message;
  // The --gpu_resource the webhook runs with is the one checked; 0 is not asking.
  MutateOptions amd;
  amd.gpu_resource = "amd.com/gpu";
  EXPECT_EQ(mutate_pod(sharing_pod({{"amd.com/gpu", "2"}, {kResShare, "30"}}), amd).outcome, Outcome::kInvalid);
  EXPECT_EQ(mutate_pod(sharing_pod({{"nvidia.com/gpu", "0"}, {kResShare, "30"}}), MutateOptions()).outcome,
            Outcome::kPatched);
}
