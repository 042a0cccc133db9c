"""bench/latency_trace.py: where a latency client's slow requests spent their time (issue 19,
share_latency.py --trace)."""
import sys
import tempfile
import unittest
from pathlib import Path

import gemtest_util as U

sys.path.insert(0, str(U.REPO / "bench"))
import latency_trace as LT  # noqa: E402

LOG = """launch-backend: starting gem-schd: ...
2026-12-06T20:00:00.000Z gem-schd[7] INFO: listening on 127.0.0.1:1
2026-12-06T20:00:00.100Z gem-schd[7] DEBUG: sat0 requests the token
2026-12-06T20:00:00.100Z gem-schd[7] DEBUG: grant sat0 quota 250000 us
2026-12-06T20:00:00.200Z gem-schd[7] DEBUG: infer0 requests the token
2026-12-06T20:00:00.202Z gem-schd[7] DEBUG: grant infer0 quota 100000 us (co-run)
2026-12-06T20:00:00.350Z gem-schd[7] DEBUG: sat0 released: used 250000 us, burst 9000 us
2026-12-06T20:00:00.351Z gem-schd[7] DEBUG: sat0 renewal after 1000 us: refused
"""
T0 = 1796587200.0  # 2026-12-06T20:00:00Z


class TestLatencyTrace(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.log = Path(self.dir.name) / "backend.log"
        self.log.write_text(LOG)

    def test_events_carry_the_log_time_and_the_co_run_flag(self):
        ev = LT.read_events(self.log)
        self.assertEqual([e[1] for e in ev], ["request", "grant", "request", "grant", "release", "renew"])
        self.assertAlmostEqual(ev[3][0], T0 + 0.202, places=6)
        self.assertEqual(ev[3][2:], ("infer0", "100 ms co-run"))
        self.assertEqual(ev[1][3], "250 ms")
        self.assertEqual(ev[5][3], "refused")

    def test_the_holder_is_the_last_plain_grant_not_yet_released(self):
        ev = LT.read_events(self.log)
        self.assertIsNone(LT.holder_at(ev, T0 + 0.05))
        self.assertEqual(LT.holder_at(ev, T0 + 0.3), "sat0")  # the co-run grant does not change it
        self.assertIsNone(LT.holder_at(ev, T0 + 0.4))

    def test_slow_requests_are_split_into_token_wait_and_gpu(self):
        ev = LT.read_events(self.log)
        reqs = [(T0 + 0.18, 0.05, 1.1),   # fast
                (T0 + 0.20, 2.40, 3.5),   # waited 2.4 ms in the launch call: the token
                (T0 + 0.22, 0.05, 3.0)]   # launched at once, 3 ms to finish: the GPU
        lines = LT.report("infer0", reqs, ev, kernel_ms=1.0)
        self.assertIn("2 of 3 requests over 1.5x the kernel", lines[0])
        self.assertIn("1 waited in the launch call (token), 1 on the GPU", lines[0])
        self.assertIn("GPU extra median 1.95 ms", lines[0])
        token_line = next(ln for ln in lines[2:] if "token" in ln.split())
        self.assertIn("sat0", token_line)
        self.assertIn("grant(100 ms co-run)@+2", token_line)

    def test_the_warm_up_is_left_out(self):
        reqs = [(T0, 0.0, 9.0), (T0 + 2.5, 0.0, 1.0)]
        self.assertIn("0 of 1 requests", LT.report("i", reqs, [], kernel_ms=1.0, skip_s=2.0)[0])

    def test_malformed_trace_lines_are_skipped(self):
        p = Path(self.dir.name) / "x.trace"
        p.write_text("1.0 0.1 1.2\ngarbage\n2.0 x 1\n3.0 0.2 1.3\n")
        self.assertEqual(LT.read_trace(p), [(1.0, 0.1, 1.2), (3.0, 0.2, 1.3)])


if __name__ == "__main__":
    unittest.main()
