"""The test suite's summary: JUnit XML reports (pytest --junitxml) and failed steps, counted.

``scripts/test-all.sh`` ends with ``python scripts/junit_summary.py summary``, which prints a
count line per tier, a line per guest type, the failed steps, and last the total alone on a
line (CI reads it)::

    unit+UI tiers: 706 passed, 0 failed, 0 skipped
    real-Xen tier: 0 passed, 137 failed, 0 skipped (FAILED: no JUnit report at ...)
    guest types [hvm]: 0 passed, 6 failed, 0 retried after a guest death (FAILED: ...)
    ...
    failed step: lab build
    706 passed, 157 failed

The summary never prints a clean total it did not earn: a tier whose report is missing,
unreadable or holds fewer tests than ``tests/expected-counts.toml`` expects counts every test it
did not report as failed; a guest type with fewer tests than expected likewise; a tier whose
command failed while its report shows no failure counts one failure; each failed step (ruff,
mypy, pip, the lab build, the lab run) counts one.  For the real-Xen tier a skipped test is a
failure (``skips_fail``): it did not run against Xen.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Test support, not part of grantscope: it runs from the checkout with PYTHONPATH at its root
# (test-all.sh), so the retry property comes from the lab module that decides retries.
from grantscope._toml import tomllib
from grantscope.lab.guest_death import RETRY_PROPERTY


@dataclass(frozen=True)
class Counts:
    """Outcome counts of one or more JUnit reports (a test with an error counts as failed)."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        """All test cases seen."""
        return self.passed + self.failed + self.skipped

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.passed + other.passed, self.failed + other.failed,
                      self.skipped + other.skipped)

    def line(self, label: str) -> str:
        """``"LABEL: N passed, N failed, N skipped"``."""
        return f"{label}: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def _outcome(case: ET.Element) -> Counts:
    tags = {child.tag for child in case}
    if tags & {"failure", "error"}:
        return Counts(failed=1)
    if "skipped" in tags:
        return Counts(skipped=1)
    return Counts(passed=1)


def count_xml(text: str) -> Counts:
    """Count the test cases of one JUnit XML document (``<testsuites>`` or ``<testsuite>``)."""
    root = ET.fromstring(text)
    total = Counts()
    for case in root.iter("testcase"):
        total = total + _outcome(case)
    # A collection error has no test case, only the suite's errors counter.
    suite_errors = 0
    for suite in root.iter("testsuite"):
        cases = list(suite.iter("testcase"))
        declared = int(suite.get("errors", "0") or 0)
        case_errors = sum(1 for c in cases if any(ch.tag == "error" for ch in c))
        suite_errors += max(0, declared - case_errors)
    return total + Counts(failed=suite_errors)


@dataclass(frozen=True)
class ParamCounts:
    """One test parameter's outcomes (e.g. one guest type), and how many guest deaths it retried."""

    counts: Counts = Counts()
    retries: int = 0

    def __add__(self, other: ParamCounts) -> ParamCounts:
        return ParamCounts(self.counts + other.counts, self.retries + other.retries)


def count_by_param(text: str, module: str) -> dict[str, ParamCounts]:
    """Counts per test parameter (``test_x[pvh]`` -> ``pvh``) of the tests in ``module``.

    A test case's retries are its ``guest_death_retry`` properties (pytest's record_property).
    """
    by: dict[str, ParamCounts] = {}
    for case in ET.fromstring(text).iter("testcase"):
        name = case.get("name", "")
        if module not in case.get("classname", "") or not name.endswith("]") or "[" not in name:
            continue
        param = name[name.rindex("[") + 1:-1]
        retries = sum(1 for prop in case.iter("property") if prop.get("name") == RETRY_PROPERTY)
        by[param] = by.get(param, ParamCounts()) + ParamCounts(_outcome(case), retries)
    return by


def read_report(path: Path) -> str:
    """The text of a JUnit report that parses; ValueError saying why if it is missing or broken."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise ValueError(f"no JUnit report at {path}: {err.strerror}") from err
    try:
        ET.fromstring(text)
    except ET.ParseError as err:
        raise ValueError(f"JUnit report {path} is unreadable (truncated or not XML: {err})") \
            from err
    return text


def merge_reports(texts: Sequence[str]) -> str:
    """One JUnit document holding the test cases of several (a tier run in several parts)."""
    root = ET.Element("testsuites")
    for text in texts:
        part = ET.fromstring(text)
        if part.tag == "testsuites":
            root.extend(list(part))
        else:
            root.append(part)
    return ET.tostring(root, encoding="unicode")


def count_file(path: Path) -> Counts:
    """Count a JUnit XML file; a missing or unreadable file raises ValueError with the reason."""
    return count_xml(read_report(path))


# ------------------------------------------------------------------ what the suite must hold


@dataclass(frozen=True)
class TierSpec:
    """A test tier as tests/expected-counts.toml describes it."""

    name: str
    label: str
    minimum: int
    skips_fail: bool = False


@dataclass(frozen=True)
class MatrixSpec:
    """Tests of ``module`` in ``tier`` that must run for every one of ``params``."""

    tier: str
    label: str
    module: str
    params: tuple[str, ...]
    minimum: int                # tests per parameter


@dataclass(frozen=True)
class Expected:
    """The whole of tests/expected-counts.toml."""

    tiers: dict[str, TierSpec]
    matrices: tuple[MatrixSpec, ...]


def load_expected(path: Path) -> Expected:
    """Read the expected counts; ValueError naming the file and the problem."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read the expected test counts {path}: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from err
    try:
        tiers = {name: TierSpec(name, str(t["label"]), int(t["minimum"]),
                                bool(t.get("skips_fail", False)))
                 for name, t in doc["tier"].items()}
        matrices = tuple(MatrixSpec(str(m["tier"]), str(m["label"]), str(m["module"]),
                                    tuple(str(p) for p in m["params"]), int(m["minimum"]))
                         for m in doc.get("matrix", {}).values())
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: each [tier.NAME] needs label and minimum, each "
                         f"[matrix.NAME] tier, label, module, params and minimum ({err!r})") \
            from err
    for matrix in matrices:
        if matrix.tier not in tiers:
            raise ValueError(f"{path}: matrix {matrix.label!r} names an unknown tier "
                             f"{matrix.tier!r}")
    return Expected(tiers, matrices)


# ------------------------------------------------------------------ the summary


@dataclass(frozen=True)
class Line:
    """One line of the summary and what it adds to the total."""

    text: str
    passed: int
    failed: int
    missing: int = 0            # of ``failed``: expected tests that never reported


def _with_reasons(text: str, reasons: Sequence[str]) -> str:
    return f"{text} (FAILED: {'; '.join(reasons)})" if reasons else text


def tier_line(spec: TierSpec, report: str | None, why_missing: str, exit_status: int) -> Line:
    """The tier's count line.  ``report`` is its JUnit text, None if missing/unreadable."""
    reasons: list[str] = []
    counts = Counts()
    if report is None:
        reasons.append(why_missing)
    else:
        if why_missing:  # one part of a tier run in parts
            reasons.append(why_missing)
        counts = count_xml(report)
        if counts.total == 0:
            reasons.append("its report holds no test")
    failed = counts.failed + (counts.skipped if spec.skips_fail else 0)
    if spec.skips_fail and counts.skipped:
        reasons.append(f"{counts.skipped} skipped (did not run against Xen)")
    # Tests that never reported (a missing or short report) are failures too: at least one.
    short = max(spec.minimum - counts.total, 1 if counts.total == 0 else 0)
    if short:
        if report is not None and counts.total:
            reasons.append(f"{counts.total} tests reported, expected at least {spec.minimum} "
                           "(tests/expected-counts.toml)")
        reasons.append(f"{short} missing counted as failed")
        failed += short
    if exit_status != 0 and failed == 0:
        reasons.append(f"its command exited {exit_status} with no failing test")
        failed = 1
    shown = Counts(counts.passed, failed, counts.skipped)
    return Line(_with_reasons(shown.line(spec.label), reasons), counts.passed, failed, short)


def matrix_lines(spec: MatrixSpec, report: str | None) -> list[Line]:
    """A line per parameter.  Its ``failed`` counts only tests that never ran (``missing``):
    the tier line has counted every test that ran."""
    by = count_by_param(report, spec.module) if report is not None else {}
    lines = []
    for param in spec.params:
        got = by.get(param, ParamCounts())
        short = max(spec.minimum - got.counts.total, 1 if got.counts.total == 0 else 0)
        reasons = []
        if short:
            reasons.append(f"{got.counts.total} tests of {spec.module} ran for {param}, "
                           f"expected at least {spec.minimum}")
        failed = got.counts.failed + got.counts.skipped + short
        text = (f"{spec.label} [{param}]: {got.counts.passed} passed, {failed} failed, "
                f"{got.retries} retried after a guest death")
        lines.append(Line(_with_reasons(text, reasons), 0, short, short))
    for param in sorted(set(by) - set(spec.params)):
        got = by[param]
        lines.append(Line(f"{spec.label} [{param}]: {got.counts.passed} passed, "
                          f"{got.counts.failed + got.counts.skipped} failed, "
                          f"{got.retries} retried after a guest death", 0, 0))
    return lines


def summary(expected: Expected, reports: dict[str, list[tuple[Path, int]]],
            failed_steps: Sequence[str]) -> list[Line]:
    """Every line of the summary, the total last.

    ``reports`` maps a tier's name to its JUnit files (a tier may run in parts, e.g. in two
    lab boots) and the exit status of the command that wrote each; a tier of ``expected``
    that is not in ``reports`` did not run (a failure).
    """
    lines: list[Line] = []
    texts: dict[str, str | None] = {}
    tier_missing: dict[str, int] = {}
    for name, spec in expected.tiers.items():
        if name in reports:
            parts, problems = [], []
            for path, _rc in reports[name]:
                try:
                    parts.append(read_report(path))
                except ValueError as err:
                    problems.append(str(err))
            texts[name] = merge_reports(parts) if parts else None
            why = "; ".join(problems)
            status = next((rc for _path, rc in reports[name] if rc != 0), 0)
        else:
            texts[name], status, why = None, 0, "the tier did not run"
        lines.append(tier_line(spec, texts[name], why, status))
        tier_missing[name] = lines[-1].missing
    for matrix in expected.matrices:
        params = matrix_lines(matrix, texts[matrix.tier])
        # The tier line already counted the tests its report lacks; a guest type with fewer
        # tests than expected adds only what goes beyond that (never counted twice).
        extra = max(0, sum(p.missing for p in params) - tier_missing[matrix.tier])
        tier_missing[matrix.tier] = max(0, tier_missing[matrix.tier]
                                        - sum(p.missing for p in params))
        lines.extend(Line(p.text, 0, 0) for p in params)
        if extra:
            lines.append(Line(f"{matrix.label}: {extra} expected tests missing beyond the "
                              f"{matrix.tier} tier's count", 0, extra, extra))
    lines.extend(Line(f"failed step: {step}", 0, 1) for step in failed_steps)
    for name in sorted(set(reports) - set(expected.tiers)):
        lines.append(Line(f"{name}: not a tier of the expected counts", 0, 1))
    passed = sum(line.passed for line in lines)
    failed = sum(line.failed for line in lines)
    lines.append(Line(f"{passed} passed, {failed} failed", passed, failed))
    return lines


def _report_arg(value: str) -> tuple[str, Path, int]:
    name, sep, rest = value.partition("=")
    path, colon, status = rest.rpartition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{value!r}: expected TIER=FILE[:EXIT_STATUS]")
    if not colon or not status.lstrip("-").isdigit():
        return name, Path(rest), 0
    return name, Path(path), int(status)


def main(argv: Sequence[str] | None = None) -> int:
    """``python scripts/junit_summary.py summary --expected TOML --report TIER=FILE[:RC]...
    [--failed-step NAME]...``: print the summary, the total last; exit 0 only if nothing
    failed."""
    parser = argparse.ArgumentParser(prog="scripts/junit_summary.py",
                                     description="The test suite's summary lines.")
    parser.add_argument("command", choices=["summary"])
    parser.add_argument("--expected", type=Path, required=True,
                        help="the expected test counts (tests/expected-counts.toml)")
    parser.add_argument("--report", type=_report_arg, action="append", default=[],
                        metavar="TIER=FILE[:EXIT_STATUS]",
                        help="a tier's JUnit report and its command's exit status "
                        "(repeat a tier run in parts: their tests are counted together)")
    parser.add_argument("--failed-step", action="append", default=[], metavar="NAME",
                        help="a step that failed (counts one failure)")
    args = parser.parse_args(argv)
    try:
        expected = load_expected(args.expected)
    except ValueError as err:
        print(f"summary: {err}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    reports: dict[str, list[tuple[Path, int]]] = {}
    for name, path, rc in args.report:
        reports.setdefault(name, []).append((path, rc))
    lines = summary(expected, reports, args.failed_step)
    for line in lines:
        print(line.text)
    return 0 if lines[-1].failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
