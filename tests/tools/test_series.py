"""bench/series.py: the per-second series the benchmarks print and plot (issue 19)."""
import sys
import tempfile
import unittest
from pathlib import Path

import gemtest_util as U

sys.path.insert(0, str(U.REPO / "bench"))
import series as SER  # noqa: E402

sys.path.insert(0, str(U.TOOLS))
from gemtools import plot as P  # noqa: E402


def samples(used_per_half_second, names=("a", "b"), t0_us=5_000_000):
    """gem-schd stats snapshots every 500 ms: used_per_half_second[i] = {name: µs used in that half second}."""
    out, total = [], {n: 0 for n in names}
    for i, used in enumerate([{}] + used_per_half_second):
        for n in names:
            total[n] += used.get(n, 0)
        st = {"time_us": t0_us + i * 500_000, "clients": {n: {"used_us_total": total[n]} for n in names}}
        out.append((st["time_us"] / 1e6, st))
    return out


class TestSharesPerSecond(unittest.TestCase):
    def test_each_second_is_its_own_share(self):
        # a: 0.25 of the GPU in the first second, 0.75 in the second; b the rest.
        s = samples([{"a": 125_000, "b": 375_000}, {"a": 125_000, "b": 375_000},
                     {"a": 375_000, "b": 125_000}, {"a": 375_000, "b": 125_000}])
        got = SER.shares_per_second(s, ["a", "b"], 5.0, 7.0)
        self.assertEqual([t for t, _ in got], [0.0, 1.0])
        self.assertAlmostEqual(got[0][1]["a"], 0.25)
        self.assertAlmostEqual(got[0][1]["b"], 0.75)
        self.assertAlmostEqual(got[1][1]["a"], 0.75)

    def test_samples_outside_the_period_are_left_out(self):
        s = samples([{"a": 500_000}] * 2 + [{"a": 0}] * 2)
        got = SER.shares_per_second(s, ["a", "b"], 6.0, 7.0)  # only the idle second
        self.assertEqual(len(got), 1)
        self.assertAlmostEqual(got[0][1]["a"], 0.0)

    def test_too_few_samples_give_no_series(self):
        self.assertEqual(SER.shares_per_second(samples([{"a": 1}]), ["a"], 0, 0.1), [])


class TestP99PerSecond(unittest.TestCase):
    def test_bins_requests_by_their_due_time_and_skips_the_warm_up(self):
        lat = [1.0] * 50 + [2.0] * 49 + [9.0] + [3.0] * 50  # 20 ms period: 50 requests a second
        got = SER.p99_per_second(lat, 20.0, skip_s=1.0)
        self.assertEqual([(t, n) for t, _, n in got], [(1.0, 50), (2.0, 50)])
        self.assertEqual(got[0][1], 9.0)  # the one slow request of the second is its p99
        self.assertEqual(got[1][1], 3.0)

    def test_a_short_last_second_is_dropped(self):
        got = SER.p99_per_second([1.0] * 60, 20.0)
        self.assertEqual(len(got), 1)


class TestPlotRows(unittest.TestCase):
    def test_rows_are_what_gemctl_plot_reads(self):
        rows = SER.plot_rows([(0.0, {"a": 0.3}), (1.0, {"a": 0.5})], {"a": 0.3})
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "series.csv"
            P.write_csv(rows, path)
            back = P.read_csv(path)
        self.assertEqual([r["share"] for r in back], [0.3, 0.5])
        self.assertEqual(back[1]["gpu_seconds"], 0.8)
        self.assertEqual(back[0]["request"], 0.3)
        self.assertEqual(set(back[0]), set(P.FIELDS))

    def test_line_names_min_and_max(self):
        self.assertEqual(SER.line("x", [0.2, 0.4]), "x: 0.20 0.40 (min 0.20, max 0.40)")
        self.assertEqual(SER.line("x", []), "x: -")


if __name__ == "__main__":
    unittest.main()
