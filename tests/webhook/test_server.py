"""gem-webhook over real TLS: AdmissionReview fixtures shaped like the API server's, the returned
patch applied with python3-jsonpatch and read back with python3-kubernetes' V1Pod; malformed input;
certificate rotation without dropped requests. Needs GEM_WEBHOOK_BIN (make webhook-test sets it)."""

import copy
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from webhook_server import (WebhookServer, apply_response, decoded_patch, kubelet_env, load_fixture,
                            to_v1pod, webhook_bin)

HOOK = "/gemini/lib/libgemhook.so.1"
SIDECAR = "gemini-pod-manager"


def container(pod, name):
    for c in (pod.spec.init_containers or []) + pod.spec.containers:
        if c.name == name:
            return c
    raise AssertionError(f"no container {name}")


def mounts(c):
    return {m.mount_path: m for m in (c.volume_mounts or [])}


class SharedPods(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = WebhookServer("--pmgr_image", "registry.example/gemini-node:test").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def admit(self, fixture):
        rv = load_fixture(fixture) if isinstance(fixture, str) else fixture
        out = self.server.review(rv)
        self.assertEqual(out["apiVersion"], "admission.k8s.io/v1")
        self.assertEqual(out["kind"], "AdmissionReview")
        resp = out["response"]
        self.assertEqual(resp["uid"], rv["request"]["uid"])
        return rv["request"]["object"], resp

    def assert_shared(self, pod, c, namespace, name):
        env = kubelet_env(c, namespace, name)
        self.assertEqual(env["POD_NAME"], f"{namespace}/{name}")
        self.assertEqual(env["POD_MANAGER_IP"], "127.0.0.1")
        self.assertEqual(env["POD_MANAGER_PORT"], "50052")
        self.assertNotIn("POD_MANAGER_SOCKET", env)
        self.assertEqual(env["LD_PRELOAD"].split(":")[0], HOOK)
        m = mounts(c)["/gemini/lib"]
        self.assertTrue(m.read_only)
        vol = {v.name: v for v in pod.spec.volumes}[m.name]
        self.assertEqual(vol.host_path.path, "/var/lib/gemini/lib")
        # The user's containers never see the schedulers' sockets.
        self.assertNotIn("/run/gemini", mounts(c))

    def assert_sidecar(self, pod, namespace, name, request, limit, mem, raw):
        sc = pod.spec.init_containers[0]
        self.assertEqual(sc.name, SIDECAR)
        # Debian's python3-kubernetes (22.x, Kubernetes 1.22 models) predates native sidecars and
        # drops containers[].restartPolicy when deserializing: read it from the patched JSON.
        self.assertEqual(raw["spec"]["initContainers"][0]["restartPolicy"], "Always")
        self.assertEqual(raw["spec"]["initContainers"][0]["startupProbe"]["exec"]["command"][0], "bash")
        self.assertEqual(sc.image, "registry.example/gemini-node:test")
        self.assertEqual(sc.command, ["gem-pmgr"])
        args = sc.args
        opts = dict(zip(args[0::2], args[1::2]))
        self.assertEqual(opts["--name"], "$(POD_NAME)")
        self.assertEqual(kubelet_env(sc, namespace, name)["POD_NAME"], f"{namespace}/{name}")
        self.assertEqual(opts["--ip"], "127.0.0.1")
        self.assertEqual(opts["--port"], "50052")
        self.assertEqual(opts["--scheduler_dir"], "/run/gemini")
        self.assertEqual((opts["--request"], opts["--limit"], opts["--gpu_mem"]), (request, limit, mem))
        self.assertEqual(mounts(sc)["/run/gemini"].name, "gemini-scheduler")
        vol = {v.name: v for v in pod.spec.volumes}["gemini-scheduler"]
        self.assertEqual(vol.host_path.path, "/run/gemini")
        users = [c for c in (pod.spec.init_containers or []) + pod.spec.containers if c.name != SIDECAR]
        for c in users:
            self.assertNotIn("gemini-scheduler", [m.name for m in c.volume_mounts or []])

    def test_not_opted_in_gets_no_patch(self):
        _, resp = self.admit("pod-not-opted-in.json")
        self.assertIs(resp["allowed"], True)
        self.assertNotIn("patch", resp)
        self.assertNotIn("patchType", resp)

    def test_other_kinds_get_no_patch(self):
        _, resp = self.admit("configmap.json")
        self.assertIs(resp["allowed"], True)
        self.assertNotIn("patch", resp)

    def test_generate_name_pod(self):
        obj, resp = self.admit("pod-generate-name.json")
        self.assertIs(resp["allowed"], True)
        ops = decoded_patch(resp)
        self.assertTrue(ops)
        # Single keys only: never the whole annotations map, env or volume list the user set.
        for op in ops:
            self.assertNotIn(op["path"], ("/metadata/annotations", "/spec/volumes", "/spec/containers",
                                          "/spec/containers/0/volumeMounts"), op)
        self.assertIn({"op": "add", "path": "/metadata/annotations/gemini.gpu-sharing.io~1mutated",
                       "value": "true"}, ops)
        raw = apply_response(obj, resp)
        pod = to_v1pod(raw)
        self.assertIsNone(pod.metadata.name)
        self.assertEqual(pod.metadata.generate_name, "train-")
        self.assertEqual(pod.metadata.annotations["team.example.com/owner"], "alice")
        self.assertEqual(pod.metadata.annotations["gemini.gpu-sharing.io/mutated"], "true")
        # The API server names the pod after admission; the downward API gives the hook that name.
        name = "train-x7k2p"
        self.assert_shared(pod, container(pod, "train"), "team-a", name)
        self.assertEqual(kubelet_env(container(pod, "train"), "team-a", name)["LD_PRELOAD"], HOOK)
        self.assert_sidecar(pod, "team-a", name, "0.3", "0.6", "8GiB", raw)
        self.assertIn("kube-api-access-9xk2v", [v.name for v in pod.spec.volumes])
        self.assertIn("/var/run/secrets/kubernetes.io/serviceaccount", mounts(container(pod, "train")))

    def test_several_containers_and_init_containers(self):
        obj, resp = self.admit("pod-multi-container.json")
        raw = apply_response(obj, resp)
        pod = to_v1pod(raw)
        self.assertEqual([c.name for c in pod.spec.init_containers], [SIDECAR, "fetch-model", "warmup"])
        self.assertEqual([c.name for c in pod.spec.containers], ["infer", "log-shipper", "embed"])
        for name in ("warmup", "infer", "embed"):
            self.assert_shared(pod, container(pod, name), "team-a", "pipeline")
        for name in ("fetch-model", "log-shipper"):
            c = container(pod, name)
            self.assertFalse(any(e.name in ("LD_PRELOAD", "POD_NAME") for e in c.env or []), name)
            self.assertNotIn("/gemini/lib", mounts(c))
        infer = container(pod, "infer")
        self.assertEqual([e.name for e in infer.env[:2]], ["MODEL", "MY_POD_IP"])
        self.assertEqual(infer.env[1].value_from.field_ref.field_path, "status.podIP")
        self.assertTrue(mounts(infer)["/models"].read_only)
        self.assertEqual([v.name for v in pod.spec.volumes][:2], ["models", "kube-api-access-9xk2v"])
        self.assert_sidecar(pod, "team-a", "pipeline", "0", "1", "0", raw)

    def test_existing_ld_preload_is_kept_and_reserved_env_replaced(self):
        obj, resp = self.admit("pod-existing-ld-preload.json")
        ops = decoded_patch(resp)
        self.assertIn({"op": "test", "path": "/spec/containers/0/env/0/value",
                       "value": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, ops)
        raw = apply_response(obj, resp)
        pod = to_v1pod(raw)
        c = container(pod, "app")
        env = kubelet_env(c, "team-a", "with-preload")
        self.assertEqual(env["LD_PRELOAD"], HOOK + ":/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
        self.assertEqual([e.name for e in c.env].count("LD_PRELOAD"), 1)
        self.assertEqual([e.name for e in c.env].count("POD_NAME"), 1)
        self.assert_shared(pod, c, "team-a", "with-preload")
        self.assert_sidecar(pod, "team-a", "with-preload", "0.5", "1", "0", raw)

    def test_ld_preload_from_configmap_is_chained(self):
        obj, resp = self.admit("pod-ld-preload-valuefrom.json")
        pod = to_v1pod(apply_response(obj, resp))
        c = container(pod, "app")
        self.assertIsNotNone(c.env[0].value_from.config_map_key_ref)
        last = [e for e in c.env if e.name == "LD_PRELOAD"][-1]
        self.assertEqual(last.value, HOOK + ":$(LD_PRELOAD)")

    def test_reinvocation_changes_nothing(self):
        _, resp = self.admit("pod-reinvocation.json")
        self.assertIs(resp["allowed"], True)
        self.assertNotIn("patch", resp)
        # And for every fixture: the mutated pod, admitted again, gets no patch.
        for f in ("pod-generate-name.json", "pod-multi-container.json", "pod-existing-ld-preload.json",
                  "pod-ld-preload-valuefrom.json"):
            rv = load_fixture(f)
            _, resp = self.admit(rv)
            rv2 = copy.deepcopy(rv)
            rv2["request"]["object"] = apply_response(rv["request"]["object"], resp)
            _, again = self.admit(rv2)
            self.assertNotIn("patch", again, f)

    def test_opted_in_without_gpu_is_warned(self):
        _, resp = self.admit("pod-opted-in-no-gpu.json")
        self.assertIs(resp["allowed"], True)
        self.assertNotIn("patch", resp)
        self.assertIn("nvidia.com/gpu", resp["warnings"][0])

    def test_bad_annotation_is_rejected_with_reason(self):
        _, resp = self.admit("pod-bad-annotation.json")
        self.assertIs(resp["allowed"], False)
        self.assertEqual(resp["status"]["code"], 400)
        self.assertIn("gemini.gpu-sharing.io/request", resp["status"]["message"])

    def test_keep_alive_and_access_log(self):
        conn = self.server.connect()
        try:
            rv = load_fixture("pod-generate-name.json")
            for i in range(20):
                rv["request"]["uid"] = f"keepalive-{i}"
                self.assertEqual(self.server.review(rv, conn=conn)["response"]["uid"], f"keepalive-{i}")
        finally:
            conn.close()
        time.sleep(0.1)
        recs = [r for r in self.server.log_records() if r.get("uid", "").startswith("keepalive-")]
        self.assertEqual(len(recs), 20)
        remotes = {r["remote"] for r in recs}
        self.assertEqual(len(remotes), 1)  # one connection
        for r in recs:
            self.assertEqual((r["method"], r["path"], r["status"], r["decision"]), ("POST", "/mutate", 200, "patched"))
            self.assertEqual(r["namespace"], "team-a")
            self.assertGreaterEqual(r["dur_us"], 0)


class MalformedRequests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = WebhookServer("--max_body_bytes", "65536").__enter__()
        cls.good = load_fixture("pod-generate-name.json")

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def assert_still_serving(self, conn=None):
        out = self.server.review(self.good, conn=conn)
        self.assertIn("patch", out["response"])

    def post(self, body, headers=None):
        status, data = self.server.request("POST", "/mutate", body, headers)
        return status, data

    def test_bad_bodies_get_400_with_reason(self):
        no_uid = copy.deepcopy(self.good)
        del no_uid["request"]["uid"]
        beta = copy.deepcopy(self.good)
        beta["apiVersion"] = "admission.k8s.io/v1beta1"
        wrong_kind = copy.deepcopy(self.good)
        wrong_kind["kind"] = "AdmissionRequest"
        no_request = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
        cases = {
            "not json": b"this is not json",
            "truncated": json.dumps(self.good).encode()[:-10],
            "empty": b"",
            "array": b"[]",
            "no uid": json.dumps(no_uid).encode(),
            "v1beta1": json.dumps(beta).encode(),
            "wrong kind": json.dumps(wrong_kind).encode(),
            "no request": json.dumps(no_request).encode(),
            "deep nesting": b"[" * 5000 + b"]" * 5000,
            "invalid utf-8": b'{"apiVersion": "\xff\xfe"}',
        }
        conn = self.server.connect()
        try:
            for what, body in cases.items():
                with self.subTest(what):
                    status, data = self.server.request("POST", "/mutate", body, conn=conn)
                    self.assertEqual(status, 400, data)
                    self.assertTrue(json.loads(data)["error"])
                    self.assert_still_serving(conn)  # same keep-alive connection
        finally:
            conn.close()
        self.assertIn("v1beta1", json.loads(self.post(cases["v1beta1"])[1])["error"])

    def test_huge_body_gets_413(self):
        rv = copy.deepcopy(self.good)
        rv["request"]["object"]["metadata"]["annotations"]["big"] = "x" * (1 << 20)
        status, data = self.post(json.dumps(rv).encode())
        self.assertEqual(status, 413)
        self.assertIn("max_body_bytes", json.loads(data)["error"])
        self.assert_still_serving()

    def test_huge_chunked_body_gets_413(self):
        def chunks():
            for _ in range(64):
                yield b"[" * 4096
        conn = self.server.connect()
        try:
            conn.request("POST", "/mutate", body=chunks(), encode_chunked=True,
                         headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 413)
            resp.read()
        except (ConnectionError, ssl.SSLError):
            pass  # the server may close while the client still sends; it must go on serving
        finally:
            conn.close()
        self.assert_still_serving()

    def test_wrong_content_type_method_and_path(self):
        status, _ = self.post(json.dumps(self.good).encode(), {"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        status, _ = self.server.request("GET", "/mutate")
        self.assertIn(status, (404, 405))
        status, data = self.server.request("POST", "/validate", b"{}")
        self.assertEqual(status, 404)
        self.assertTrue(json.loads(data)["error"])
        self.assert_still_serving()

    def test_non_tls_and_garbage_connections(self):
        for payload in (b"POST /mutate HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b""):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
                # The server may drop a garbage connection before we are done with it (ENOTCONN,
                # ECONNRESET, EPIPE): that is a fine answer; what matters is that it keeps serving.
                try:
                    s.sendall(payload)
                    s.shutdown(socket.SHUT_WR)
                    s.recv(100)
                except OSError:
                    pass
        # Garbage HTTP inside TLS.
        ctx = self.server.ssl_context()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"\x00\x01garbage\r\n\r\n")
                data = s.recv(200)
                self.assertTrue(data.startswith(b"HTTP/1.1 400"), data)
        self.assert_still_serving()

    def test_wrong_shapes_inside_a_valid_envelope(self):
        shapes = [
            {"spec": {"containers": "not-a-list"}},
            {"spec": {"containers": [{"name": "a", "env": "A=1",
                                       "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}},
            {"spec": None},
        ]
        for i, spec in enumerate(shapes):
            rv = copy.deepcopy(self.good)
            rv["request"]["object"]["spec"] = spec["spec"]
            rv["request"]["uid"] = f"shape-{i}"
            resp = self.server.review(rv)["response"]
            self.assertEqual(resp["uid"], f"shape-{i}")
            self.assertIs(resp["allowed"], False)
            self.assertNotIn("patch", resp)
        self.assert_still_serving()


class IgnorePolicy(unittest.TestCase):
    def test_ignore_admits_unchanged_with_warning(self):
        with WebhookServer("--failure_policy", "Ignore") as server:
            resp = server.review(load_fixture("pod-bad-annotation.json"))["response"]
            self.assertIs(resp["allowed"], True)
            self.assertNotIn("patch", resp)
            self.assertIn("gemini.gpu-sharing.io/request", resp["warnings"][0])


class ContainerSidecarMode(unittest.TestCase):
    def test_pod_manager_is_the_last_container(self):
        with WebhookServer("--sidecar_mode", "container") as server:
            rv = load_fixture("pod-generate-name.json")
            pod = apply_response(rv["request"]["object"], server.review(rv)["response"])
            self.assertEqual(pod["spec"]["containers"][-1]["name"], SIDECAR)
            self.assertNotIn("restartPolicy", pod["spec"]["containers"][-1])
            self.assertNotIn(SIDECAR, [c["name"] for c in pod["spec"].get("initContainers", [])])

    def test_bad_mode_is_a_usage_error(self):
        p = subprocess.run([webhook_bin(), "--cert", "c", "--key", "k", "--sidecar_mode", "sidecar"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--sidecar_mode is native or container", p.stderr)


class GpuResource(unittest.TestCase):
    """--gpu_resource (or $GEM_WEBHOOK_GPU_RESOURCE): the resource that marks a GPU container."""

    RESOURCE = "example.com/accel"

    def review_with(self, server, resource):
        rv = load_fixture("pod-generate-name.json")
        for c in rv["request"]["object"]["spec"]["containers"]:
            limits = c.get("resources", {}).get("limits", {})
            if "nvidia.com/gpu" in limits:
                limits[resource] = limits.pop("nvidia.com/gpu")
        return rv, server.review(rv)["response"]

    def check(self, server):
        rv, resp = self.review_with(server, self.RESOURCE)
        pod = apply_response(rv["request"]["object"], resp)
        self.assertEqual(pod["spec"]["initContainers"][0]["name"], SIDECAR)
        # nvidia.com/gpu no longer marks a GPU container: the warning names the configured resource.
        _, resp = self.review_with(server, "nvidia.com/gpu")
        self.assertNotIn("patch", resp)
        self.assertIn(f"no container requests {self.RESOURCE} or gemini.gpu-sharing.io/gpu-share;", resp["warnings"][0])

    def test_flag(self):
        with WebhookServer("--gpu_resource", self.RESOURCE) as server:
            self.check(server)

    def test_environment(self):
        os.environ["GEM_WEBHOOK_GPU_RESOURCE"] = self.RESOURCE
        try:
            with WebhookServer() as server:
                self.check(server)
        finally:
            del os.environ["GEM_WEBHOOK_GPU_RESOURCE"]

    def test_bad_name_is_a_usage_error(self):
        p = subprocess.run([webhook_bin(), "--cert", "c", "--key", "k", "--gpu_resource", "gpu"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn('--gpu_resource: "gpu" is not an extended resource name', p.stderr)


class MpsPipeDirectory(unittest.TestCase):
    """--mps_pipe_directory (docs/kubernetes.md, "MPS for latency clients (option)"): the GPU
    containers of a shared pod as MPS clients of the node's daemon; off by default."""

    DIR = "/run/gemini/mps"

    def patched(self, server, rv):
        resp = server.review(rv)["response"]
        self.assertIs(resp["allowed"], True, resp.get("status"))
        raw = apply_response(rv["request"]["object"], resp)
        return raw, to_v1pod(raw)

    def test_gpu_containers_become_mps_clients(self):
        with WebhookServer("--mps_pipe_directory", self.DIR) as server:
            raw, pod = self.patched(server, load_fixture("pod-generate-name.json"))
            self.assertIs(pod.spec.host_ipc, True)
            c = container(pod, "train")
            self.assertEqual(kubelet_env(c, "team-a", "train-x")["CUDA_MPS_PIPE_DIRECTORY"], self.DIR)
            m = mounts(c)[self.DIR]
            self.assertFalse(m.read_only)
            vol = {v.name: v for v in pod.spec.volumes}[m.name]
            self.assertEqual((m.name, vol.host_path.path, vol.host_path.type), ("gemini-mps-pipe", self.DIR, "Directory"))
            sc = container(pod, SIDECAR)
            self.assertNotIn("CUDA_MPS_PIPE_DIRECTORY", [e.name for e in sc.env])
            self.assertNotIn(self.DIR, mounts(sc))
            # A reinvocation changes nothing.
            rv2 = load_fixture("pod-generate-name.json")
            rv2["request"]["object"] = raw
            self.assertNotIn("patch", server.review(rv2)["response"])

    def test_host_ipc_false_is_rejected_with_reason(self):
        rv = load_fixture("pod-generate-name.json")
        rv["request"]["object"]["spec"]["hostIPC"] = False
        with WebhookServer("--mps_pipe_directory", self.DIR) as server:
            resp = server.review(rv)["response"]
        self.assertIs(resp["allowed"], False)
        self.assertEqual(resp["status"]["code"], 400)
        self.assertIn("spec.hostIPC is false", resp["status"]["message"])

    def test_off_by_default(self):
        with WebhookServer() as server:
            _, pod = self.patched(server, load_fixture("pod-generate-name.json"))
        self.assertFalse(pod.spec.host_ipc)
        self.assertNotIn("gemini-mps-pipe", [v.name for v in pod.spec.volumes])
        self.assertNotIn("CUDA_MPS_PIPE_DIRECTORY", [e.name for e in container(pod, "train").env])

    def test_bad_directory_is_a_usage_error(self):
        for value, why in (("/run/gemini", "is or contains the schedulers' socket directory"),
                           ("run/mps", "is not an absolute path"), ("/", "is the root directory"),
                           ("/a/../b", "is not a clean path")):
            p = subprocess.run([webhook_bin(), "--cert", "c", "--key", "k", "--mps_pipe_directory", value],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, value)
            self.assertIn(f'--mps_pipe_directory "{value}" {why}', p.stderr)


class CertificateRotation(unittest.TestCase):
    def served_serial(self, server):
        ctx = server.ssl_context()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return int(s.getpeercert()["serialNumber"], 16)

    def test_rotation_without_dropped_requests(self):
        with WebhookServer() as server:
            old = server.serial
            self.assertEqual(self.served_serial(server), old)
            good = load_fixture("pod-generate-name.json")
            stop = threading.Event()
            results = {"ok": 0, "errors": []}

            def hammer():
                conn = None
                while not stop.is_set():
                    try:
                        if conn is None or results["ok"] % 7 == 0:  # new handshakes and keep-alive
                            if conn:
                                conn.close()
                            conn = server.connect()
                        server.review(good, conn=conn)
                        results["ok"] += 1
                    except Exception as e:  # noqa: BLE001 - any failure is a dropped request
                        results["errors"].append(repr(e))
                        conn = None
                if conn:
                    conn.close()

            kept = server.connect()
            server.review(good, conn=kept)  # a connection opened before the rotation
            t = threading.Thread(target=hammer)
            t.start()
            try:
                time.sleep(0.3)
                crt, key, new = server.pki.issue("rotated")
                # Half-rotated: new certificate, old key. The server must keep the old pair.
                shutil.copy(crt, server.cert + ".tmp")
                os.rename(server.cert + ".tmp", server.cert)
                time.sleep(0.5)
                self.assertEqual(self.served_serial(server), old)
                shutil.copy(key, server.key + ".tmp")
                os.rename(server.key + ".tmp", server.key)
                deadline = time.time() + 5
                while self.served_serial(server) != new:
                    self.assertLess(time.time(), deadline, "new certificate not served")
                    time.sleep(0.05)
                time.sleep(0.3)
            finally:
                stop.set()
                t.join()
            self.assertEqual(results["errors"], [])
            self.assertGreater(results["ok"], 10)
            server.review(good, conn=kept)  # still usable
            kept.close()
            msgs = [r["msg"] for r in server.log_records()]
            self.assertTrue(any("does not match" in m for m in msgs), msgs)
            self.assertTrue(any(m.startswith("reloaded certificate") for m in msgs), msgs)


class Lifecycle(unittest.TestCase):
    def test_sigterm_exits_zero(self):
        server = WebhookServer().__enter__()
        try:
            server.proc.send_signal(signal.SIGTERM)
            self.assertEqual(server.proc.wait(10), 0)
        finally:
            server.__exit__(None, None, None)

    def test_bad_certificate_fails_at_start(self):
        server = WebhookServer()
        with open(server.key, "w") as f:
            f.write("not a key\n")
        with self.assertRaises(RuntimeError):
            server.__enter__()
        self.assertEqual(server.proc.returncode, 1)
        self.assertIn("cannot load the serving certificate", server.log_text())
        server.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
