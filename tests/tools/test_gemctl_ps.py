"""gemctl ps (issue 20) against stand-in endpoints: a process on two GPUs (one gem-schd each) is one
row per GPU, its launch gate and memory session merged, with the share its client has on that GPU."""

import json
import unittest

import metrics_stub as M
from test_gemctl import gemctl

GPU1 = "GPU-fa4e0000-0000-0000-0000-000000000001"
SCHD1 = M.SCHD.replace(M.GPU, GPU1).replace('gpu="0"', 'gpu="1"').replace(" 0.267144698", " 0.75")
PMGR = f"""# TYPE gem_pmgr_processes gauge
gem_pmgr_processes{{client="ns/client1",namespace="ns",pod="client1",kind="launch"}} 2
gem_pmgr_process_token_held{{client="ns/client1",pid="41",scheduler="unix:/run/gemini/{M.GPU}.sock"}} 1
gem_pmgr_process_token_held{{client="ns/client1",pid="41",scheduler="unix:/run/gemini/{GPU1}.sock"}} 0
gem_pmgr_process_memory_bytes{{client="ns/client1",pid="41",scheduler="unix:/run/gemini/{M.GPU}.sock"}} 1073741824
"""


class TestGemctlPs(unittest.TestCase):
    def setUp(self):
        # The stand-in gem-schds know the client as client1: rename it as the pod's ID.
        self.servers = [M.metrics(M.SCHD.replace('client="client1"', 'client="ns/client1"')),
                        M.metrics(SCHD1.replace('client="client1"', 'client="ns/client1"')), M.metrics(PMGR)]

    def tearDown(self):
        for s in self.servers:
            s.close()

    def test_one_row_per_process_and_gpu_with_its_share(self):
        args = [a for s in self.servers for a in ("--endpoint", f"127.0.0.1:{s.port}")]
        r = gemctl("ps", "--json", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = json.loads(r.stdout)["processes"]
        self.assertEqual(rows, [
            {"pid": 41, "client": "ns/client1", "gpu": M.GPU, "mem_bytes": 1 << 30, "token": 1, "share": 0.267144698},
            {"pid": 41, "client": "ns/client1", "gpu": GPU1, "mem_bytes": None, "token": 0, "share": 0.75},
        ])
        text = gemctl("ps", *args)
        self.assertRegex(text.stdout, rf"41\s+ns/client1\s+{M.GPU}\s+1\.0 GiB\s+0\.27 held")

    def test_no_pod_manager_is_an_error(self):
        r = gemctl("ps", "--endpoint", f"127.0.0.1:{self.servers[0].port}")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no processes", r.stdout)


if __name__ == "__main__":
    unittest.main()
