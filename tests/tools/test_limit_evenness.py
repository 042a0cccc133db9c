"""bench/limit_evenness.py: the GPU-time reading of a LIMIT client's syncs (issue 19). A GPU that runs
each matmul faster below its power limit must not read as a client above its LIMIT."""
import contextlib
import importlib.util
import io
import unittest

import gemtest_util as U

_spec = importlib.util.spec_from_file_location("limit_evenness", U.REPO / "bench" / "limit_evenness.py")
LE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(LE)


def limited_syncs(seconds, unit_s, per_sync=8, hold_syncs=5, wait_s=0.16):
    """A loop held to turns: `hold_syncs` syncs of `per_sync` matmuls at `unit_s` each, then `wait_s`
    without the token, for `seconds`. Returns [[t, n], ...] as the worker prints them."""
    t, n, out = 100.0, 0, [[100.0, 0]]
    while t < 100.0 + seconds:
        for _ in range(hold_syncs):
            t += per_sync * unit_s
            n += per_sync
            out.append([t, n])
        t += wait_s
    return out


class TestGpuTime(unittest.TestCase):
    def test_the_matmul_time_is_the_runs_own_despite_the_waits(self):
        syncs = limited_syncs(10, 0.00145)
        self.assertAlmostEqual(LE.per_matmul_s(syncs), 0.00145, places=6)

    def test_time_per_second_is_the_held_fraction_whatever_the_alone_rate(self):
        # Turns of 5 x 8 x 1.45 ms = 58 ms every 218 ms: 0.266 of the time. Against an alone rate of
        # 1 / 1.68 ms the matmul *rate* reads 0.31: the clock effect, not the LIMIT.
        unit, alone_rate = 0.00145, 1 / 0.00168
        syncs = limited_syncs(12, unit)
        held = 5 * 8 * unit / (5 * 8 * unit + 0.16)
        times = LE.per_second(syncs, 1 / LE.per_matmul_s(syncs))
        rates = LE.per_second(syncs, alone_rate)
        self.assertGreaterEqual(len(times), 10)
        for x in times[1:]:
            self.assertAlmostEqual(x, held, delta=0.06)  # one turn more or less in a second
        self.assertAlmostEqual(sum(times[1:]) / len(times[1:]), held, delta=0.01)
        self.assertAlmostEqual(sum(rates[1:]) / len(rates[1:]), held * 1.68 / 1.45, delta=0.012)

    def test_pauses_and_p99(self):
        syncs = limited_syncs(2, 0.001, wait_s=0.3)
        self.assertAlmostEqual(LE.longest_pause(syncs), 0.3 + 8 * 0.001, places=6)
        # The light client's p99 is bench/series.py's nearest-rank percentile.
        self.assertEqual(LE.SER.percentile([float(i) for i in range(1, 101)], 0.99), 99.0)
        self.assertIsNone(LE.SER.percentile([], 0.99))

    def test_unknown_runs_are_refused_by_name(self):
        err = io.StringIO()
        with self.assertRaises(SystemExit) as cm, contextlib.redirect_stderr(err):
            LE.main(["--out", "/tmp/le-unused", "--runs", "limit,bogus"])
        self.assertEqual(cm.exception.code, 2)
        self.assertIn("unknown run bogus", err.getvalue())


if __name__ == "__main__":
    unittest.main()
