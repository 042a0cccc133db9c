"""The monitoring bundle (webhook/deploy/monitoring/, issue 20): the alert rules pass promtool's check
and their unit tests (tests/tools/testdata/gemini_rules_test.yml: each alert fires on what it is for
and stays quiet otherwise), and every query of the rules and of the Grafana dashboard is valid PromQL
naming only metrics the daemons write (or dcgm-exporter's / kube-state-metrics' for the joins).

promtool comes from Debian's prometheus package, unpacked by .ci/install-deps into
/usr/local/lib/gem-promtool (no Prometheus service installed); GEM_PROMTOOL names another."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "webhook" / "deploy" / "monitoring"
RULES_TEST = Path(__file__).resolve().parent / "testdata" / "gemini_rules_test.yml"
SOURCES = ["scheduler", "pod-manager", "common", "metrics"]
# Metrics of the exporters the dashboard joins with (dcgm-exporter on UUID, kube-state-metrics on
# namespace/pod); anything else must be a gem daemon's.
FOREIGN = {"DCGM_FI_DEV_GPU_UTIL", "kube_pod_info"}
PROMQL_WORDS = {"sum", "by", "on", "rate", "increase", "histogram_quantile", "count", "max", "min",
                "min_over_time", "group_left", "and", "le", "without", "ignoring"}


def promtool():
    for p in (os.environ.get("GEM_PROMTOOL"), shutil.which("promtool"), "/usr/local/lib/gem-promtool/usr/bin/promtool"):
        if p and os.access(p, os.X_OK):
            return p
    raise AssertionError("promtool not found: run .ci/install-deps (it unpacks Debian's prometheus package "
                         "into /usr/local/lib/gem-promtool) or set GEM_PROMTOOL")


def rule_groups():
    """The PrometheusRule's spec: the rule file promtool reads."""
    doc = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert doc["kind"] == "PrometheusRule", doc["kind"]
    return doc["spec"]


def daemon_metric_names():
    """Every gem_* metric family the C++ sources write (their names are string literals)."""
    names = set()
    for d in SOURCES:
        for f in (REPO / d).rglob("*.cpp"):
            names.update(re.findall(r'"(gem_[a-z0-9_]+)"', f.read_text(errors="replace")))
    return names


def metric_names(expr):
    """The metric names an expression uses (identifiers followed by `{`, `[`, or standing alone),
    without histogram suffixes, PromQL's own words and label names inside braces or by()/on()."""
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    no_labels = re.sub(r"\{[^}]*\}", "{}", no_strings)
    no_groupings = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", no_labels)
    words = set(re.findall(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\b", no_groupings))
    names = set()
    for w in words - PROMQL_WORDS:
        if w.startswith("gem_") or w in FOREIGN or w.startswith("DCGM_") or w.startswith("kube_"):
            names.add(re.sub(r"_(bucket|sum|count)$", "", w) if w.startswith("gem_") else w)
        elif not re.fullmatch(r"\d+[smhd]?", w):
            raise AssertionError(f"unexpected word {w!r} in {expr!r}")
    return names


def dashboard_exprs():
    dash = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


class TestMonitoring(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="gem-monitoring-"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_promtool(self, *args):
        r = subprocess.run([promtool(), *args], cwd=self.tmp, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, f"promtool {' '.join(args)}:\n{r.stdout}{r.stderr}")
        return r.stdout

    def test_alert_rules_pass_promtool_check_and_their_unit_tests(self):
        (self.tmp / "gemini.rules.yml").write_text(yaml.safe_dump(rule_groups()))
        shutil.copy(RULES_TEST, self.tmp / RULES_TEST.name)
        out = self.run_promtool("check", "rules", "gemini.rules.yml")
        self.assertIn("4 rules found", out)
        self.run_promtool("test", "rules", RULES_TEST.name)
        alerts = {r["alert"] for g in rule_groups()["groups"] for r in g["rules"]}
        self.assertEqual(alerts, {"GeminiClientRefused", "GeminiClientBelowRequest", "GeminiGpuXidError", "GeminiGpuLost"})
        tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
        self.assertEqual(tested, alerts, "every alert has a unit test")

    def test_a_broken_rule_fails_its_unit_test(self):
        # The unit tests can fail: without the "waited the whole minute" clause a served client is alerted.
        groups = rule_groups()
        for g in groups["groups"]:
            for r in g["rules"]:
                if r["alert"] == "GeminiClientBelowRequest":
                    r["expr"] = "gem_client_share_ratio < 0.9 * gem_client_request_ratio"
        (self.tmp / "gemini.rules.yml").write_text(yaml.safe_dump(groups))
        shutil.copy(RULES_TEST, self.tmp / RULES_TEST.name)
        r = subprocess.run([promtool(), "test", "rules", RULES_TEST.name], cwd=self.tmp, capture_output=True,
                           text=True, timeout=120)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("GeminiClientBelowRequest", r.stdout + r.stderr)

    def test_queries_are_promql_naming_metrics_the_daemons_write(self):
        exprs = dashboard_exprs()
        self.assertGreaterEqual(len(exprs), 10)
        # Grafana's variables are not PromQL: give them a value, then let promtool parse every query
        # as a recording rule.
        rules = [{"record": f"gem:dashboard_query_{i}", "expr": re.sub(r"\$\{?\w+\}?", ".*", e)} for i, e in enumerate(exprs)]
        (self.tmp / "dashboard.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        self.run_promtool("check", "rules", "dashboard.rules.yml")
        known = daemon_metric_names()
        self.assertIn("gem_client_share_ratio", known)
        rule_exprs = [r["expr"] for g in rule_groups()["groups"] for r in g["rules"]]
        for e in exprs + rule_exprs:
            for name in metric_names(e):
                if name.startswith("gem_"):
                    self.assertIn(name, known, f"{name} in {e!r} is not written by gem-schd or gem-pmgr")

    def test_the_monitoring_kustomization_lists_the_rules(self):
        k = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
        self.assertIn("prometheusrule.yaml", k["resources"])


if __name__ == "__main__":
    unittest.main()
