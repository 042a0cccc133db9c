"""kube-scheduler placing pods by the device plugin's capacity on shared nodes (test_80..83 of
test_e2e.py, which mixes these cases into its one-cluster test class): binding while the share and
memory fit, Pending with the scheduler's reason when not, and only pods the webhook governed landing
on a node labelled and tainted gemini.gpu-sharing.io/shared=true. Also the pod builders test_e2e.py
uses. docs/kubernetes-tests.md, "End-to-end test"."""

import os
import sys

from cluster import wait_for

SIDECAR = "gemini-pod-manager"
LABEL = "gemini.gpu-sharing.io/enabled"
NS = "team-a"
# The device plugin's extended resources (gem-device-plugin advertises them; webhook/settings.h):
# time in hundredths of a GPU, memory in units of 256 MiB (--memory_unit_mib of both).
SHARE = "gemini.gpu-sharing.io/gpu-share"
GPU_MEM = "gemini.gpu-sharing.io/gpu-memory"
UNIT_MIB = 256
GPU_MIB = 81559  # an H100 80GB's memory as nvidia-smi shows it: 318 units (the plugin's whole chunks)
# Node groups keep the placement tests apart (nodeSelector). Every GPU node is a shared node as
# docs/kubernetes.md has the admin make it: labelled and tainted gemini.gpu-sharing.io/shared=true.
GROUP = "e2e.gemini.gpu-sharing.io/group"
SHARED = "gemini.gpu-sharing.io/shared"
SHARED_TAINT = {"key": SHARED, "value": "true", "effect": "NoSchedule"}
# How long kube-scheduler may take to bind a pod, or to record why it cannot.
SCHEDULE_DEADLINE_S = float(os.environ.get("GEM_E2E_SCHEDULE_DEADLINE_S", "90"))


def gpu_pod(name, annotations=None, gpu=True, labels=None, namespace=NS):
    c = {"name": "main", "image": "cuda:e2e", "command": ["sleep", "1"]}
    if gpu:
        c["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace,
                        "labels": {LABEL: "true"} if labels is None else labels},
           "spec": {"restartPolicy": "Never", "containers": [c]}}
    if annotations:
        pod["metadata"]["annotations"] = annotations
    return pod


def sharing_pod(name, group, share=None, memory=None, labels=None):
    """An opted-in pod (unless `labels` says otherwise) whose one container asks for the plugin's
    resources in limits (extended resources are not overcommitted: the API server copies them to
    requests; memory in UNIT_MIB units), on nodes of `group`."""
    pod = gpu_pod(name, gpu=False, labels=labels)
    limits = {}
    if share is not None:
        limits[SHARE] = str(share)
    if memory is not None:
        limits[GPU_MEM] = str(memory)
    pod["spec"]["containers"][0]["resources"] = {"limits": limits}
    pod["spec"]["nodeSelector"] = {GROUP: group}
    return pod


def gpu_node_resources(gpus=1, mib=GPU_MIB):
    """A node's capacity as gem-device-plugin advertises it (memory in whole UNIT_MIB chunks per
    GPU), with CPU, memory and pods to spare."""
    return {SHARE: str(100 * gpus), GPU_MEM: str(mib // UNIT_MIB * gpus), "cpu": "16", "memory": "64Gi",
            "pods": "110"}


class PlacementCases:
    """Mixed into the test class, which provides self.cluster, self.create and self.get."""

    # -- kube-scheduler places pods by the plugin's capacity -------------------------------------

    def bound_to(self, name):
        """The node kube-scheduler bound pod `name` to (waits for spec.nodeName)."""
        sched = self.cluster.scheduler
        return wait_for(f"pod {name} bound", lambda: self.get(name)["spec"].get("nodeName"),
                        SCHEDULE_DEADLINE_S, sched.proc, sched.log)

    def unschedulable(self, name):
        """The PodScheduled=False condition kube-scheduler recorded for pod `name` (waits for it);
        the pod is checked to be unbound and Pending."""
        sched = self.cluster.scheduler

        def condition():
            for c in self.get(name).get("status", {}).get("conditions", []):
                if c.get("type") == "PodScheduled" and c.get("status") == "False":
                    return c
            return None
        cond = wait_for(f"pod {name} found unschedulable", condition, SCHEDULE_DEADLINE_S, sched.proc, sched.log)
        pod = self.get(name)
        self.assertNotIn("nodeName", pod["spec"])
        self.assertEqual(pod["status"]["phase"], "Pending")
        self.assertEqual(cond["reason"], "Unschedulable")
        return cond["message"]

    def delete_now(self, name):
        # No kubelet confirms a graceful deletion of a bound pod: remove it at once.
        self.cluster.kubectl("delete", "pod", "-n", NS, name, "--grace-period=0", "--force", "--wait=false")

    def shared_node(self, name, group, **resources):
        """A shared GPU node of `group`: the label and the taint of docs/kubernetes.md, "Shared nodes"."""
        return self.cluster.node(name, gpu_node_resources(**resources), {GROUP: group, SHARED: "true"},
                                 [SHARED_TAINT])

    def test_80_scheduler_binds_while_the_share_fits(self):
        self.shared_node("gpu-one", "one")
        self.create(sharing_pod("share-30", "one", share=30, memory=156))
        self.assertEqual(self.bound_to("share-30"), "gpu-one")
        stored = self.get("share-30")
        self.assertEqual(stored["spec"]["containers"][0]["resources"]["requests"][SHARE], "30")
        # The webhook read REQUEST and GPU_MEM from the resources kube-scheduler counted.
        pm = stored["spec"]["containers"][-1]
        self.assertEqual(pm["name"], SIDECAR)
        self.assertEqual(pm["args"][-6:], ["--request", "0.3", "--limit", "1", "--gpu_mem", "39936MiB"])  # 156 x 256
        self.create(sharing_pod("share-70", "one", share=70, memory=78))
        self.assertEqual(self.bound_to("share-70"), "gpu-one")
        # REQUESTs at 1: one more hundredth does not fit; the scheduler says why.
        self.create(sharing_pod("share-10", "one", share=10))
        msg = self.unschedulable("share-10")
        self.assertIn(f"1 Insufficient {SHARE}", msg)
        self.assertNotIn(f"Insufficient {GPU_MEM}", msg)
        # Once a pod goes, the waiting one fits and is bound.
        self.delete_now("share-70")
        self.assertEqual(self.bound_to("share-10"), "gpu-one")
        print(f"\ne2e: scheduler on gpu-one: share-30, share-70 bound; share-10 pending ({msg!r}), "
              "bound after share-70 went", file=sys.stderr)

    def test_81_scheduler_keeps_a_pod_pending_when_memory_would_pass_the_gpus(self):
        self.shared_node("gpu-mem", "mem")
        self.create(sharing_pod("mem-234", "mem", share=20, memory=234))
        self.assertEqual(self.bound_to("mem-234"), "gpu-mem")
        # 84 of 318 units left: 117 do not fit, although the share (20 of 80 left) would.
        self.create(sharing_pod("mem-117", "mem", share=20, memory=117))
        msg = self.unschedulable("mem-117")
        self.assertIn(f"1 Insufficient {GPU_MEM}", msg)
        self.assertNotIn(f"Insufficient {SHARE}", msg)
        # What is left still fits.
        self.create(sharing_pod("mem-78", "mem", share=20, memory=78))
        self.assertEqual(self.bound_to("mem-78"), "gpu-mem")

    def test_82_scheduler_puts_a_pod_where_it_fits_among_two_nodes(self):
        self.shared_node("pair-small", "pair", mib=16384)  # 64 units
        self.shared_node("pair-big", "pair")
        # Memory only the big GPU has.
        self.create(sharing_pod("pair-156", "pair", share=10, memory=156))
        self.assertEqual(self.bound_to("pair-156"), "pair-big")
        # A share only the untouched GPU has left (the big one has 90).
        self.create(sharing_pod("pair-95", "pair", share=95))
        self.assertEqual(self.bound_to("pair-95"), "pair-small")
        self.create(sharing_pod("pair-60", "pair", share=60))
        self.assertEqual(self.bound_to("pair-60"), "pair-big")
        # 30 and 5 left: 60 fits neither.
        self.create(sharing_pod("pair-60-again", "pair", share=60))
        msg = self.unschedulable("pair-60-again")
        self.assertIn(f"2 Insufficient {SHARE}", msg)

    def test_83_only_governed_pods_land_on_a_shared_node(self):
        node = self.shared_node("gpu-shared", "taint")
        self.assertEqual(node["spec"]["taints"], [SHARED_TAINT])
        # kube-scheduler v1.20 names the taint for every shared node of the test cluster (its
        # TaintToleration filter fails them before the nodeSelector is looked at).
        taint_msg = f"node(s) had taint {{{SHARED}: true}}, that the pod didn't tolerate"
        # Not through the webhook (no opt-in label): no toleration, whatever the pod asks for.
        for name, limits in (("untolerated", {}), ("bypass-share", {SHARE: "10"})):
            pod = sharing_pod(name, "taint", labels={"app": "plain"})
            pod["spec"]["containers"][0]["resources"] = {"limits": limits}
            self.create(pod)
            self.assertIn(taint_msg, self.unschedulable(name))
        # Whole GPUs: a shared node has none to give (NVIDIA's plugin does not run there).
        whole = gpu_pod("whole-gpu", labels={"app": "plain"})
        whole["spec"]["nodeSelector"] = {GROUP: "taint"}
        self.create(whole)
        msg = self.unschedulable("whole-gpu")
        self.assertTrue("Insufficient nvidia.com/gpu" in msg or taint_msg in msg, msg)
        # Governed: the webhook adds the toleration and the nodeSelector, and the pod is bound.
        self.create(sharing_pod("governed", "taint", share=10, memory=16))
        self.assertEqual(self.bound_to("governed"), "gpu-shared")
        spec = self.get("governed")["spec"]
        self.assertIn({"key": SHARED, "operator": "Equal", **SHARED_TAINT}, spec["tolerations"])
        self.assertEqual(spec["nodeSelector"], {GROUP: "taint", SHARED: "true"})
        # Whole GPUs and a share in one pod: refused by the webhook, nothing stored.
        both = sharing_pod("both", "taint", share=10)
        both["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "1"
        p = self.create(both, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("the pod asks for both nvidia.com/gpu (container main) and a shared GPU", p.stderr)
        self.assertEqual(self.cluster.kubectl("get", "pod", "-n", NS, "both", check=False).returncode, 1)
        print(f"\ne2e: shared node: untolerated, bypass-share pending ({taint_msg!r}), whole-gpu pending ({msg!r}), "
              "governed bound, both refused", file=sys.stderr)
