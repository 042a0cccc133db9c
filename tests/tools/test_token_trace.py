"""bench/token_trace.py: a busy client's slices given back as idle soon after the grant, from the
hook's debug trace (issue 19; docs/operations.md, "Tracing the token protocol")."""
import io
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

import gemtest_util as U

sys.path.insert(0, str(U.REPO / "bench"))
import token_trace as TT  # noqa: E402

P = "gemhook[42] DEBUG: token:"
# A busy slice (quota ran out: release-and-request), a slice given back as idle 4 ms after its grant
# (the case the tool lists), then one given back as idle 40 ms after its grant (not listed).
TRACE = f"""2026-12-06T20:00:00.000Z {P} request 0 us (state Asking quota=0; launches entered 1, exited 1)
2026-12-06T20:00:00.002Z {P} prefetch 0 us (state Starting quota=57142; launches entered 1, exited 1)
2026-12-06T20:00:00.059Z {P} renew 57000 us (state Renewing quota=57142; launches entered 40, exited 40)
2026-12-06T20:00:00.060Z {P} shut 0 us (state Shutting quota=57142; launches entered 41, exited 41)
2026-12-06T20:00:00.061Z {P} drain 0 us (state Draining quota=57142; launches entered 41, exited 41)
2026-12-06T20:00:00.073Z {P} release-and-request 71000 us, again (state Asking quota=57142; launches entered 41, exited 41)
2026-12-06T20:00:00.200Z {P} prefetch 0 us (state Starting quota=40000; launches entered 42, exited 42)
2026-12-06T20:00:00.203Z {P} sync 0 us (state Syncing quota=40000; launches entered 42, exited 42)
2026-12-06T20:00:00.203Z gemhook[42] DEBUG: token: sync returned after 90 us (launches entered 42)
2026-12-06T20:00:00.203Z {P} shut 0 us (state Shutting quota=40000; launches entered 42, exited 42)
2026-12-06T20:00:00.203Z {P} drain 0 us (state Draining quota=40000; launches entered 42, exited 42)
2026-12-06T20:00:00.204Z {P} release 1000 us (state Releasing quota=40000; launches entered 42, exited 42)
2026-12-06T20:00:00.208Z gemhook[42] WARN: an unrelated line
2026-12-06T20:00:00.208Z {P} request 0 us (state Asking quota=40000; launches entered 43, exited 42)
2026-12-06T20:00:00.400Z {P} prefetch 0 us (state Starting quota=40000; launches entered 44, exited 44)
2026-12-06T20:00:00.440Z {P} release 38000 us (state Releasing quota=40000; launches entered 60, exited 60)
"""


class TestTokenTrace(unittest.TestCase):
    def test_slices_and_the_short_idle_one(self):
        steps = TT.parse(TRACE.splitlines())
        self.assertEqual(len(steps), 15)  # the WARN line is not a trace step
        self.assertEqual([(idle) for _, _, idle in TT.slices(steps)], [False, True, True])
        short = TT.short_idle(steps, 10)
        self.assertEqual(len(short), 1)
        a, b = short[0]
        self.assertAlmostEqual((steps[b][0] - steps[a][0]) * 1000, 4, places=3)
        self.assertEqual(steps[a][1], "prefetch")
        self.assertIn("sync returned after 90 us", "\n".join(s[3] for s in steps[a:b + 1]))
        # With a wider threshold the 40 ms idle slice counts too.
        self.assertEqual(len(TT.short_idle(steps, 50)), 2)

    def test_report_and_exit_status(self):
        with tempfile.TemporaryDirectory() as d:
            log = Path(d) / "r30.err"
            log.write_text(TRACE)
            quiet = Path(d) / "quiet.err"
            quiet.write_text("no trace here\n")
            out = io.StringIO()
            with redirect_stdout(out):
                rc = TT.main([str(log), str(quiet), "--context", "1"])
            text = out.getvalue()
            self.assertEqual(rc, 1, text)  # a short idle release was found
            self.assertIn("3 slices, 2 idle releases, 1 within 10 ms of the grant", text)
            self.assertIn("held 4 ms:", text)
            # --context 1: the line before the grant, then the grant to the release.
            self.assertIn("release-and-request 71000 us, again", text)
            self.assertNotIn("drain 0 us (state Draining quota=57142", text)
            self.assertIn("no token trace lines (was the program run with GEMINI_LOG_LEVEL=debug?)", text)
            with redirect_stdout(io.StringIO()):
                self.assertEqual(TT.main([str(log), "--short_ms", "2"]), 0)
                self.assertEqual(TT.main([str(Path(d) / "missing.err")]), 2)


if __name__ == "__main__":
    unittest.main()
