"""Issue 18's floor: each daemon and the hook keep at least 0.5 unit-test lines per line of code
(tools/unit-test-ratio.py counts them). A part that grows without tests fails here. gem-device-plugin
was counted from issue 20 on, at 0.40 (424 test lines for 1051): its floor is 0.4 until its tests
catch up; the webhook's is 0.5."""
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOOR = {"hook": 0.5, "scheduler": 0.5, "pod-manager": 0.5, "device-plugin": 0.4, "webhook": 0.5}


class TestUnitTestRatio(unittest.TestCase):
    def run_tool(self, *args):
        return subprocess.run([sys.executable, str(ROOT / "tools" / "unit-test-ratio.py"), *args],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)

    def test_every_part_is_at_its_floor(self):
        r = self.run_tool(*[f"--min={k}={v}" for k, v in FLOOR.items()])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for part in FLOOR:
            self.assertIn(part, r.stdout)

    def test_the_floor_check_can_fail(self):
        r = self.run_tool("--min=hook=1000")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("hook", r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
