"""Docs say what the code does: a number a doc states names the constant it comes from, and this
test fails when the two differ (issue 18).

The form, in docs/*.md and README.md: a number, an optional unit word, then the constant's name in
backticks inside parentheses, nothing else between:

    every 0.5 ms (`kIdlePoll`)          1 s (`kHelloTimeoutMs`)          64 MiB (`kMaxConfigBytes`)
    128 launches (`kDefaultMaxInflight`)                                 10^6 clients (`kMaxConfigClients`)

Numbers: 500, 0.5, 1,000,000, 10^6, 10⁶, 2^50. Units: µs/us, ms, s (time); B/bytes, KiB, MiB, GiB
(size); any other word (launches, clients, beats) or none is a plain count.

The constant is found by NAME (never by file: constants move between files) in the C++ sources under
hook/ common/ scheduler/ pod-manager/ metrics/ webhook/ tools/ include/ device-plugin/, as a definition
`[static|inline] constexpr TYPE kName = EXPR;`. It must be defined exactly once there. EXPR may be
simple arithmetic on literals and other such constants (`2 * kMiB`, `uint64_t{1} << 50`,
`proto::kHeartbeatPeriodMs * 1000`). The constant's unit comes from its type or name: type `Micros`
or a name ending in `Us` is µs, a name ending in `Ms` is ms; anything else is a count, or bytes when
the doc gives a size. A doc number with a time unit against a constant without one fails (give the
constant the type Micros or an Ms/Us name), as does a unitless doc number against a timed constant.

A flag's or environment variable's default is referenced the same way, through the named constant
the source gives it (`kDefaultWindow` for gem-schd --window, `kDefaultIdleUs` for GEMINI_IDLE_MS).

Also: every `kName` a doc writes in backticks (constants, error codes, flags) is defined somewhere
in those sources, so a rename cannot leave a doc pointing at nothing. Numbers a doc derives (32
launches from GEMINI_MAX_INFLIGHT's 128) or measures (docs/gpu-results.md) carry no reference.
"""

import ast
import os
import re
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["hook", "common", "scheduler", "pod-manager", "metrics", "webhook", "tools", "include",
               "device-plugin"]
SOURCE_EXTS = {".h", ".hpp", ".cpp", ".cc", ".def", ".in"}

# µs per time unit; bytes per size unit.
TIME_UNITS = {"µs": 1, "us": 1, "ms": 1000, "s": 1000000}
SIZE_UNITS = {"B": 1, "bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

NUMBER = r"(?:10\^\d+|10[⁰¹²³⁴⁵⁶⁷⁸⁹]+|2\^\d+|\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
REFERENCE = re.compile(r"(?<![\w.,^])(?P<num>" + NUMBER + r")(?:[ \u00a0]+(?P<unit>[A-Za-zµ]+))?"
                       r"[ \u00a0]*\(`(?P<name>k[A-Z]\w*)`\)")
MENTION = re.compile(r"`(k[A-Z]\w*)`")
DEFINITION = re.compile(r"\b(?:static\s+|inline\s+)*constexpr\s+(?P<type>[\w:]+(?:\s*<[^<>;]*>)?)\s+"
                        r"(?P<name>k[A-Z]\w*)\s*=\s*(?P<expr>[^;]+);")
ENUMERATOR = re.compile(r"\b(k[A-Z]\w*)\s*(?:=|,|\})")
SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
KNOWN_NAMES = {"INT64_MAX": 2**63 - 1, "INT32_MAX": 2**31 - 1, "UINT64_MAX": 2**64 - 1}


def parse_number(text):
    """The doc's number as a float: 500, 0.5, 1,000,000, 10^6, 10⁶, 2^50."""
    if "^" in text:
        base, exp = text.split("^")
        return float(int(base) ** int(exp))
    if re.fullmatch(r"10[⁰¹²³⁴⁵⁶⁷⁸⁹]+", text):
        return float(10 ** int(text[2:].translate(SUPERSCRIPT)))
    return float(text.replace(",", ""))


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def source_files(root):
    for d in SOURCE_DIRS:
        for dirpath, _, files in os.walk(Path(root) / d):
            for f in files:
                if Path(f).suffix in SOURCE_EXTS:
                    yield Path(dirpath) / f


def find_definitions(root):
    """{name: [(path, type, expr)]} for every constexpr kName, and the set of every kName that is
    defined in any way (constants, enumerators) for the existence check."""
    defs, names = {}, set()
    for path in source_files(root):
        src = strip_comments(path.read_text(errors="replace"))
        for m in DEFINITION.finditer(src):
            defs.setdefault(m["name"], []).append((path, m["type"].strip(), " ".join(m["expr"].split())))
        names.update(ENUMERATOR.findall(src))
    names.update(defs)
    return defs, names


class EvalError(Exception):
    pass


def evaluate(name, defs, seen=()):
    """The value of constant `name` (a number); raises EvalError when it is not one unique, simple
    arithmetic definition."""
    if name in KNOWN_NAMES:
        return KNOWN_NAMES[name]
    found = defs.get(name, [])
    if len(found) != 1:
        raise EvalError(f"`{name}` is defined {len(found)} times" +
                        (": " + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
                                          for p, _, _ in found) if found else "") +
                        " (a doc's constant must be defined exactly once)")
    if name in seen:
        raise EvalError(f"`{name}` is defined in terms of itself")
    expr = found[0][2]
    py = expr.replace("'", "")
    py = re.sub(r"static_cast<[^<>]*>", "", py)
    py = re.sub(r"\b[A-Za-z_][\w:]*(?:<[^<>]*>)?\s*\{([^{}]*)\}", r"(\1)", py)  # uint64_t{1} -> (1)
    py = re.sub(r"(\d)(?:ULL|ull|LL|ll|UL|ul|u|U|L)\b", r"\1", py)
    py = re.sub(r"\b(?:[A-Za-z_]\w*::)+", "", py)  # proto::kX -> kX
    try:
        tree = ast.parse(py, mode="eval")
    except SyntaxError as e:
        raise EvalError(f"`{name}` = `{expr}` is not simple arithmetic") from e

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name):
            return evaluate(node.id, defs, seen + (name,))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.Div: lambda: a // b if isinstance(a, int) and isinstance(b, int) else a / b,
                   ast.LShift: lambda: a << b, ast.Mod: lambda: a % b}
            if type(node.op) in ops:
                return ops[type(node.op)]()
        raise EvalError(f"`{name}` = `{expr}` is not simple arithmetic")

    return walk(tree)


def constant_unit(name, type_):
    """'µs', 'ms' or None (a count or a size) for a constant."""
    if type_.split("::")[-1] == "Micros" or name.endswith("Us") or name.endswith("Micros"):
        return "µs"
    if name.endswith("Ms"):
        return "ms"
    return None


def doc_files(root):
    root = Path(root)
    return sorted((root / "docs").glob("*.md")) + [root / "README.md"]


def references(text):
    """(line number, stated text, number, unit or None, name) for each reference in a doc."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in REFERENCE.finditer(line):
            out.append((lineno, m.group(0).split("(`")[0].strip(), parse_number(m["num"]), m["unit"], m["name"]))
    return out


def fmt(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def check_reference(where, stated, number, unit, name, defs):
    """None, or why the doc's number and the constant differ."""
    try:
        value = evaluate(name, defs)
    except EvalError as e:
        return f"{where}: '{stated}' names {e}"
    cunit = constant_unit(name, defs[name][0][1]) if name in defs else None
    if unit in TIME_UNITS:
        if cunit is None:
            return (f"{where}: '{stated}' is a time but `{name}` = {fmt(value)} has no time unit "
                    "(give it the type Micros or a name ending in Ms or Us)")
        doc_us, const_us = number * TIME_UNITS[unit], value * TIME_UNITS[cunit]
        ok = abs(doc_us - const_us) <= 1e-9 * max(abs(const_us), 1)
        shown = f"{fmt(value)} {cunit} = {fmt(const_us / TIME_UNITS[unit])} {unit}"
    else:
        if cunit is not None:
            return f"{where}: '{stated}' has no time unit but `{name}` = {fmt(value)} {cunit}"
        scale = SIZE_UNITS.get(unit, 1)
        ok = abs(number * scale - value) <= 1e-9 * max(abs(value), 1)
        shown = fmt(value) + (f" bytes = {fmt(value / scale)} {unit}" if unit in SIZE_UNITS else "")
    if not ok:
        return f"{where}: the doc says '{stated}' but `{name}` = {shown}"
    return None


def check_docs(root, docs=None, defs_names=None):
    """(problems, number of references checked, the constants referenced)."""
    defs, names = defs_names or find_definitions(root)
    problems, count, used = [], 0, set()
    for doc in docs or doc_files(root):
        text = doc.read_text()
        rel = doc.relative_to(root) if doc.is_relative_to(root) else doc
        for lineno, stated, number, unit, name in references(text):
            count += 1
            used.add(name)
            why = check_reference(f"{rel}:{lineno}", stated, number, unit, name, defs)
            if why:
                problems.append(why)
        for lineno, line in enumerate(text.splitlines(), 1):
            for name in MENTION.findall(line):
                if name not in names:
                    problems.append(f"{rel}:{lineno}: `{name}` is not defined under {', '.join(SOURCE_DIRS)}")
    return problems, count, used


class TestDocConstants(unittest.TestCase):
    def test_docs_numbers_match_their_constants(self):
        problems, count, used = check_docs(ROOT)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))
        # The docs carry these references; a pattern that silently matches nothing would pass.
        self.assertGreaterEqual(count, 40, sorted(used))
        for name in ["kIdlePoll", "kDefaultIdleUs", "kDefaultMaxInflight", "kHeartbeatPeriodMs",
                     "kDefaultWindow", "kDefaultBaseQuota", "kDefaultMinQuota", "kDefaultLeaseGrace",
                     "kDefaultSchedulerTimeout", "kDefaultPmgrTimeoutMs", "kHelloTimeoutMs"]:
            self.assertIn(name, used)


class TestTheChecker(unittest.TestCase):
    """The checker itself, on made-up sources and docs, so that it can be seen to fail."""

    def setUp(self):
        import tempfile
        self.tmp = Path(tempfile.mkdtemp(prefix="gem-doc-const-"))
        (self.tmp / "hook").mkdir()
        (self.tmp / "include").mkdir()
        (self.tmp / "hook" / "a.cpp").write_text(
            "namespace {\nconstexpr Micros kIdlePoll = 500;  // µs\nconstexpr int kEvery = 32;\n"
            "constexpr uint64_t kMiB = uint64_t{1} << 20;\nconstexpr uint64_t kStep = 32 * kMiB;\n"
            "constexpr Micros kTwice = 1000;\n}\nenum class Code { kBusy = 1, kDenied };\n")
        (self.tmp / "include" / "b.h").write_text(
            "inline constexpr int kPeriodMs = 200;\nconstexpr Micros kPeriod = proto::kPeriodMs * 1000;\n"
            "constexpr Micros kTwice = 2000;\nconstexpr int64_t kBig = int64_t{1} << 50;\n")
        (self.tmp / "docs").mkdir()
        self.doc = self.tmp / "docs" / "x.md"

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp)

    def problems(self, text):
        self.doc.write_text(text)
        (self.tmp / "README.md").write_text("")
        return check_docs(self.tmp)

    def test_matching_numbers_pass(self):
        problems, count, used = self.problems(
            "idle after 0.5 ms (`kIdlePoll`) or 500 µs (`kIdlePoll`); every 32 launches (`kEvery`);\n"
            "chunks of 32 MiB (`kStep`); beats every 200 ms (`kPeriodMs`), 0.2 s (`kPeriod`);\n"
            "at most 2^50 (`kBig`) and 1,125,899,906,842,624 (`kBig`); an `Error kBusy`.\n")
        self.assertEqual(problems, [])
        self.assertEqual(count, 8)
        self.assertEqual(used, {"kIdlePoll", "kEvery", "kStep", "kPeriodMs", "kPeriod", "kBig"})

    def test_a_number_that_drifted_fails_naming_doc_line_and_both_values(self):
        problems, _, _ = self.problems("text\nthe idle look after 1 ms (`kIdlePoll`)\n")
        self.assertEqual(len(problems), 1)
        self.assertIn("docs/x.md:2", problems[0])
        self.assertIn("1 ms", problems[0])
        self.assertIn("`kIdlePoll` = 500 µs = 0.5 ms", problems[0])

    def test_a_count_or_size_that_drifted_fails(self):
        problems, _, _ = self.problems("every 64 launches (`kEvery`), chunks of 64 MiB (`kStep`)\n")
        self.assertEqual(len(problems), 2)
        self.assertIn("`kEvery` = 32", problems[0])
        self.assertIn("`kStep` = 33554432 bytes = 32 MiB", problems[1])

    def test_units_must_agree(self):
        problems, _, _ = self.problems("32 ms (`kEvery`) and 500 (`kIdlePoll`)\n")
        self.assertEqual(len(problems), 2)
        self.assertIn("has no time unit", problems[0])
        self.assertIn("has no time unit but `kIdlePoll`", problems[1])

    def test_unknown_and_twice_defined_constants_fail(self):
        problems, _, _ = self.problems("1 ms (`kTwice`), 5 s (`kNowhere`), `kGone`, `kDenied`\n")
        self.assertEqual(len(problems), 4, problems)
        self.assertIn("`kTwice` is defined 2 times", problems[0])
        self.assertIn("`kNowhere` is defined 0 times", problems[1])
        self.assertIn("`kNowhere` is not defined", problems[2])
        self.assertIn("`kGone` is not defined", problems[3])

    def test_number_forms(self):
        self.assertEqual(parse_number("10^6"), 1e6)
        self.assertEqual(parse_number("10⁶"), 1e6)
        self.assertEqual(parse_number("1,000,000"), 1e6)
        self.assertEqual(parse_number("0.5"), 0.5)


if __name__ == "__main__":
    unittest.main()
