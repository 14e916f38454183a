"""Counting JUnit XML into the tier summary lines CI reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from grantscope.lab import junit
from grantscope.lab.junit import Counts, count_file, count_xml, main

PYTEST_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="3.2">
<testcase classname="tests.xen.test_lab" name="test_a" time="0.1"/>
<testcase classname="tests.xen.test_lab" name="test_b" time="0.1"/>
<testcase classname="tests.xen.test_lab" name="test_c" time="0.1">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.xen.test_lab" name="test_d" time="0.1">
  <skipped type="pytest.skip" message="needs a Xen dom0">skip</skipped></testcase>
<testcase classname="tests.xen.test_lab" name="test_e" time="0.1">
  <error message="failed on teardown with &quot;left behind&quot;">trace</error></testcase>
</testsuite></testsuites>
"""


def test_counts_each_outcome() -> None:
    assert count_xml(PYTEST_XML) == Counts(passed=2, failed=2, skipped=1)


def test_bare_testsuite_root_and_collection_errors() -> None:
    # A module that fails to import: pytest reports the error on the suite, no test case.
    xml = '<testsuite errors="1" tests="1"><testcase name="x"/></testsuite>'
    assert count_xml(xml) == Counts(passed=1, failed=1, skipped=0)


def test_lines_in_both_forms() -> None:
    counts = Counts(passed=23, failed=0, skipped=2)
    assert counts.line("real-Xen tier") == "real-Xen tier: 23 passed, 0 failed, 2 skipped"
    assert counts.plain() == "23 passed, 0 failed"
    assert counts.plain(skips_fail=True) == "23 passed, 2 failed"


def test_skips_fail_the_xen_tier_and_no_tests_is_not_ok() -> None:
    assert Counts(3, 0, 0).ok(skips_fail=True)
    assert not Counts(3, 0, 1).ok(skips_fail=True)
    assert Counts(3, 0, 1).ok()
    assert not Counts(3, 1, 0).ok()
    assert not Counts().ok()


def test_counts_add_up_across_reports() -> None:
    assert Counts(1, 2, 3) + Counts(10, 20, 30) == Counts(11, 22, 33)


def test_missing_and_broken_files_say_why(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no JUnit report"):
        count_file(tmp_path / "absent.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<testsuite><testcase")
    with pytest.raises(ValueError, match="not valid XML"):
        count_file(bad)


def test_main_prints_both_lines_and_fails_on_skips(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "junit.xml"
    report.write_text('<testsuite><testcase name="a"/><testcase name="b"><skipped/></testcase>'
                      "</testsuite>")
    assert main(["--label", "real-Xen tier", str(report)]) == 0
    assert main(["--label", "real-Xen tier", "--skips-fail", str(report)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["real-Xen tier: 1 passed, 0 failed, 1 skipped", "1 passed, 1 failed"]


def test_main_fails_when_the_report_is_missing(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--label", "real-Xen tier", str(tmp_path / "none.xml")]) == 1
    captured = capsys.readouterr()
    assert "0 passed, 0 failed" in captured.out
    assert "no JUnit report" in captured.err


def test_counts_by_param_give_a_line_per_guest_type(tmp_path: Path) -> None:
    xml = """<testsuites><testsuite name="pytest" errors="0">
      <testcase classname="tests.xen.test_guest_types" name="test_a[pv]"/>
      <testcase classname="tests.xen.test_guest_types" name="test_b[pv]"/>
      <testcase classname="tests.xen.test_guest_types" name="test_a[hvm]"><failure/></testcase>
      <testcase classname="tests.xen.test_guest_types" name="test_a[pvh]"><skipped/></testcase>
      <testcase classname="tests.xen.test_other" name="test_c[pv]"/>
    </testsuite></testsuites>"""
    by = junit.count_by_param(xml, "test_guest_types")
    assert by == {"pv": junit.Counts(passed=2), "hvm": junit.Counts(failed=1),
                  "pvh": junit.Counts(skipped=1)}
    report = tmp_path / "j.xml"
    report.write_text(xml)
    assert junit.main(["--label", "guest types", "--by-param", "test_guest_types",
                       str(report)]) == 1
