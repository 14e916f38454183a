"""Counting a JUnit XML report (pytest --junitxml) into one summary line per test tier.

CI reads ``N passed, N failed`` alone on a line, so the tier summary is printed both ways::

    real-Xen tier: 23 passed, 0 failed, 0 skipped
    23 passed, 0 failed

For the real-Xen tier a skipped test is a failure of the tier (``skips_fail``): it means the
test did not run against Xen, and the tier must never pass without running.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


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

    def ok(self, *, skips_fail: bool = False, require_tests: bool = True) -> bool:
        """True if nothing failed (nor was skipped, with ``skips_fail``) and tests ran."""
        if require_tests and self.total == 0:
            return False
        return self.failed == 0 and not (skips_fail and self.skipped)

    def line(self, label: str) -> str:
        """``"LABEL: N passed, N failed, N skipped"``."""
        return f"{label}: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"

    def plain(self, *, skips_fail: bool = False) -> str:
        """``"N passed, N failed"``; with ``skips_fail`` the skips are counted as failures."""
        failed = self.failed + (self.skipped if skips_fail else 0)
        return f"{self.passed} passed, {failed} failed"


def count_xml(text: str) -> Counts:
    """Count the test cases of one JUnit XML document (``<testsuites>`` or ``<testsuite>``)."""
    root = ET.fromstring(text)
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
    # A collection error has no test case, only the suite's errors counter.
    suite_errors = 0
    for suite in root.iter("testsuite"):
        cases = list(suite.iter("testcase"))
        declared = int(suite.get("errors", "0") or 0)
        case_errors = sum(1 for c in cases if any(ch.tag == "error" for ch in c))
        suite_errors += max(0, declared - case_errors)
    return Counts(passed, failed + suite_errors, skipped)


def count_by_param(text: str, module: str) -> dict[str, Counts]:
    """Counts per test parameter (``test_x[pvh]`` -> ``pvh``) of the tests in ``module``."""
    by: dict[str, Counts] = {}
    for case in ET.fromstring(text).iter("testcase"):
        name = case.get("name", "")
        if module not in case.get("classname", "") or not name.endswith("]") or "[" not in name:
            continue
        param = name[name.rindex("[") + 1:-1]
        tags = {child.tag for child in case}
        one = (Counts(failed=1) if tags & {"failure", "error"}
               else Counts(skipped=1) if "skipped" in tags else Counts(passed=1))
        by[param] = by.get(param, Counts()) + one
    return by


def count_file(path: Path) -> Counts:
    """Count a JUnit XML file; a missing or unreadable file raises ValueError with the reason."""
    try:
        return count_xml(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as err:
        raise ValueError(f"no JUnit report at {path}: {err.strerror}") from err
    except ET.ParseError as err:
        raise ValueError(f"JUnit report {path} is not valid XML: {err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grantscope.lab.junit --label L [--skips-fail] FILE...``: print, exit 0/1."""
    parser = argparse.ArgumentParser(prog="python -m grantscope.lab.junit",
                                     description="Summarise JUnit XML reports.")
    parser.add_argument("--label", default="tests")
    parser.add_argument("--skips-fail", action="store_true",
                        help="count skipped tests as failures of the tier")
    parser.add_argument("--by-param", metavar="MODULE",
                        help="one line per test parameter of the tests in MODULE "
                        "(e.g. test_guest_types: a line per guest type)")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.by_param:
        return _print_by_param(args.label, args.by_param, args.files)
    total = Counts()
    missing = []
    for path in args.files:
        try:
            total = total + count_file(path)
        except ValueError as err:
            missing.append(str(err))
    for reason in missing:
        print(f"{args.label}: {reason}", file=sys.stderr)
    print(total.line(args.label))
    print(total.plain(skips_fail=args.skips_fail))
    ok = total.ok(skips_fail=args.skips_fail) and not missing
    if total.total == 0:
        print(f"{args.label}: no test ran", file=sys.stderr)
    return 0 if ok else 1


def _print_by_param(label: str, module: str, files: Sequence[Path]) -> int:
    by: dict[str, Counts] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            found = count_by_param(text, module)
        except (OSError, ET.ParseError) as err:
            print(f"{label}: cannot read {path}: {err}", file=sys.stderr)
            return 1
        for param, counts in found.items():
            by[param] = by.get(param, Counts()) + counts
    if not by:
        print(f"{label}: no test of {module} ran")
        return 1
    for param in sorted(by):
        print(by[param].line(f"{label} [{param}]"))
    return 0 if all(c.ok(skips_fail=True) for c in by.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
