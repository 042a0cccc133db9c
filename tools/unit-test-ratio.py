#!/usr/bin/env python3
"""Unit-test lines per line of code, per component (issue 18's measure of how well a part is covered).

A unit test in tests/unit belongs to the component whose headers it includes ("../../hook/...",
"../../scheduler/...", "../../pod-manager/..."), together with the scenario scripts it reads
(testdata_dir("NAME") or run_all_scripts("NAME", ...) -> tests/unit/testdata/NAME/*.txt). Components
with a test folder of their own (device-plugin: tests/device-plugin, webhook: tests/webhook/unit) own
every *_test.cpp in it: GoogleTest binaries that run in-process against fakes (the device plugin's
against a fake kubelet over Unix sockets in a temporary folder), no daemon, cluster or GPU; their
helpers (fake_kubelet.*) are not counted. Code is every .h/.cpp/.def file of the component's folder;
lines are all lines (comments included, as in `wc -l`), for code and tests alike.

  python3 tools/unit-test-ratio.py            # a table: component, code lines, test lines, ratio
  python3 tools/unit-test-ratio.py --min hook=0.5   # exit 1 when hook's ratio is below 0.5
"""
import argparse
import pathlib
import re
import sys

COMPONENTS = {"hook": "hook", "scheduler": "scheduler", "pod-manager": "pod-manager",
              "device-plugin": "device-plugin", "webhook": "webhook"}
# Components whose unit tests live in a folder of their own (all of its *_test.cpp are theirs).
OWN_TEST_DIRS = {"device-plugin": ("tests", "device-plugin"), "webhook": ("tests", "webhook", "unit")}


def lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in f)


def measure(root):
    """{component: (code_lines, test_lines, [test files])} for the repository at `root`."""
    out = {}
    unit = root / "tests" / "unit"
    for name, folder in COMPONENTS.items():
        code = sum(lines(p) for p in sorted((root / folder).iterdir())
                   if p.suffix in (".h", ".cpp", ".def") and p.is_file())
        tests, files = 0, []
        if name in OWN_TEST_DIRS:
            for t in sorted(root.joinpath(*OWN_TEST_DIRS[name]).glob("*_test.cpp")):
                tests += lines(t)
                files.append(t.name)
            out[name] = (code, tests, files)
            continue
        for t in sorted(unit.glob("*_test.cpp")):
            text = t.read_text(encoding="utf-8", errors="replace")
            if f'"../../{folder}/' not in text:
                continue
            tests += lines(t)
            files.append(t.name)
            for data in re.findall(r'(?:testdata_dir|run_all_scripts)\("([A-Za-z0-9_]+)"', text):
                for s in sorted((unit / "testdata" / data).glob("*.txt")):
                    tests += lines(s)
        out[name] = (code, tests, files)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parent.parent))
    ap.add_argument("--min", action="append", default=[], metavar="COMPONENT=RATIO",
                    help="fail (exit 1) when COMPONENT's ratio is below RATIO")
    args = ap.parse_args()
    m = measure(pathlib.Path(args.root))
    print(f"{'component':<14} {'code':>6} {'tests':>6} {'ratio':>6}")
    for name, (code, tests, _) in m.items():
        print(f"{name:<14} {code:>6} {tests:>6} {tests / code if code else 0:>6.2f}")
    bad = 0
    for spec in args.min:
        comp, _, want = spec.partition("=")
        if comp not in m or not want:
            print(f"--min {spec}: expected COMPONENT=RATIO with COMPONENT one of {', '.join(m)}", file=sys.stderr)
            return 2
        code, tests, _ = m[comp]
        if code == 0 or tests / code < float(want):
            print(f"{comp}: {tests} test lines for {code} code lines is below {want}", file=sys.stderr)
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
