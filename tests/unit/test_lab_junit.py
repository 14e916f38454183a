"""The test suite's summary: JUnit reports and failed steps counted into lines CI reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import junit_summary as junit
import pytest
from junit_summary import Counts, count_file, count_xml, load_expected, main

ROOT = Path(__file__).resolve().parents[2]

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

EXPECTED = """
[tier.unit-ui]
label = "unit+UI tiers"
minimum = 2

[tier.xen]
label = "real-Xen tier"
minimum = 4
skips_fail = true

[matrix.guest-types]
tier = "xen"
label = "guest types"
module = "test_guest_types"
params = ["pv", "pvh", "hvm"]
minimum = 1
"""


def _cases(*names: str, classname: str = "tests.unit.test_x", body: str = "") -> str:
    return "".join(f'<testcase classname="{classname}" name="{n}">{body}</testcase>'
                   for n in names)


def _report(path: Path, cases: str) -> Path:
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0">'
                    f"{cases}</testsuite></testsuites>")
    return path


GOOD_XEN = (_cases("test_a", "test_b", classname="tests.xen.test_lab")
            + _cases("test_g[pv]", "test_g[pvh]", classname="tests.xen.test_guest_types")
            + _cases("test_g[hvm]", classname="tests.xen.test_guest_types",
                     body='<properties><property name="guest_death_retry" '
                          'value="booting: d5 Triple fault"/></properties>'))


@pytest.fixture()
def expected(tmp_path: Path) -> Path:
    path = tmp_path / "expected.toml"
    path.write_text(EXPECTED)
    return path


@pytest.fixture()
def reports(tmp_path: Path) -> tuple[Path, Path]:
    unit = _report(tmp_path / "unit.xml", _cases("test_1", "test_2"))
    xen = _report(tmp_path / "xen.xml", GOOD_XEN)
    return unit, xen


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    rc = main(["summary", *argv])
    return rc, capsys.readouterr().out.splitlines()


def test_counts_each_outcome() -> None:
    assert count_xml(PYTEST_XML) == Counts(passed=2, failed=2, skipped=1)


def test_bare_testsuite_root_and_collection_errors() -> None:
    # A module that fails to import: pytest reports the error on the suite, no test case.
    xml = '<testsuite errors="1" tests="1"><testcase name="x"/></testsuite>'
    assert count_xml(xml) == Counts(passed=1, failed=1, skipped=0)


def test_counts_add_up_and_print_a_line() -> None:
    assert Counts(1, 2, 3) + Counts(10, 20, 30) == Counts(11, 22, 33)
    assert Counts(23, 0, 2).line("real-Xen tier") == "real-Xen tier: 23 passed, 0 failed, 2 skipped"


def test_missing_and_broken_files_say_why(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no JUnit report"):
        count_file(tmp_path / "absent.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<testsuite><testcase")
    with pytest.raises(ValueError, match="unreadable"):
        count_file(bad)


def test_counts_by_param_give_a_line_per_guest_type_with_retries() -> None:
    xml = f"""<testsuites><testsuite name="pytest" errors="0">{GOOD_XEN}
      <testcase classname="tests.xen.test_guest_types" name="test_h[hvm]"><failure/></testcase>
      <testcase classname="tests.xen.test_other" name="test_c[pv]"/>
    </testsuite></testsuites>"""
    by = junit.count_by_param(xml, "test_guest_types")
    assert by == {"pv": junit.ParamCounts(Counts(passed=1)),
                  "pvh": junit.ParamCounts(Counts(passed=1)),
                  "hvm": junit.ParamCounts(Counts(passed=1, failed=1), retries=1)}


def test_the_repository_expected_counts_load_and_name_every_guest_type() -> None:
    expected = load_expected(ROOT / "tests" / "expected-counts.toml")
    assert expected.tiers["xen"].skips_fail and expected.tiers["xen"].minimum > 100
    assert expected.tiers["unit-ui"].minimum > 500
    # The trixie lab's core suite has its own count line (scripts/test-all.sh).
    assert expected.tiers["xen-trixie"].skips_fail and expected.tiers["xen-trixie"].minimum > 50
    (matrix,) = expected.matrices
    assert (matrix.tier, matrix.module, matrix.params) == ("xen", "test_guest_types",
                                                          ("pv", "pvh", "hvm"))


def _default_args(variable: str) -> list[str]:
    """The pytest arguments scripts/test-all.sh gives one part by default (its ${VAR:-...})."""
    text = (ROOT / "scripts" / "test-all.sh").read_text()
    found = re.search(r'"\$\{' + variable + r':-([^}]*)\}"', text)
    assert found, f"{variable} has no default in test-all.sh"
    default = found.group(1)
    if default.startswith("$"):  # a shell variable: NAME="..." earlier, lines joined by \
        name = default[1:]
        assigned = re.search(r'^' + name + r'="([^"]*)"', text, re.MULTILINE)
        assert assigned, f"{name} is not assigned in test-all.sh"
        default = assigned.group(1).replace("\\\n", " ")
    return default.split()


def test_the_real_xen_minimums_are_exactly_what_their_parts_collect() -> None:
    """A minimum below what the parts collect would let a lost part (say the 25 XenStore tests
    under oxenstored) hide behind tests added since: the minimums must be raised with them."""
    def collect(args: list[str]) -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m",
                               "xen", "-p", "no:cacheprovider", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=600, check=False)
        ids = [line for line in proc.stdout.splitlines() if "::" in line]
        assert ids, proc.stdout[-2000:] + proc.stderr[-2000:]
        return ids

    main = collect(_default_args("GRANTSCOPE_TEST_XEN"))
    ids = collect(["tests/xen"])

    def collected(variable: str) -> int:
        modules = _default_args(variable)
        assert all(m.endswith(".py") for m in modules), modules  # whole modules, no -k
        return sum(1 for i in ids if i.split("::")[0] in modules)

    # The main boot leaves out exactly the modules the two-CPU boot runs: together, tests/xen.
    assert len(main) + collected("GRANTSCOPE_TEST_XEN_TWO_CPUS") == len(ids)
    expected = load_expected(ROOT / "tests" / "expected-counts.toml")
    xen = len(ids) + collected("GRANTSCOPE_TEST_XEN_OXENSTORED")
    assert expected.tiers["xen"].minimum == xen, "raise tests/expected-counts.toml on purpose"
    for release in ("trixie", "bullseye"):
        modules = collected(f"GRANTSCOPE_TEST_XEN_{release.upper()}")
        assert expected.tiers[f"xen-{release}"].minimum == modules, "raise expected-counts"


def test_a_clean_run_prints_a_clean_total_last(expected: Path, reports: tuple[Path, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    unit, xen = reports
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--report", f"xen={xen}:0")
    assert out == [
        "unit+UI tiers: 2 passed, 0 failed, 0 skipped",
        "real-Xen tier: 5 passed, 0 failed, 0 skipped",
        "guest types [pv]: 1 passed, 0 failed, 0 retried after a guest death",
        "guest types [pvh]: 1 passed, 0 failed, 0 retried after a guest death",
        "guest types [hvm]: 1 passed, 0 failed, 1 retried after a guest death",
        "7 passed, 0 failed",
    ]
    assert rc == 0


@pytest.mark.parametrize("content, why", [
    (None, "no JUnit report at"),
    ("", "unreadable"),
    ('<?xml version="1.0"?><testsuites><testsuite name="pytest"></testsuite></testsuites>',
     "its report holds no test"),
    ('<?xml version="1.0"?><testsuites><testsuite name="pytest">'
     '<testcase classname="tests.xen.test_lab" name="test_a"/><testcase classn', "unreadable"),
], ids=["missing", "empty-file", "no-test", "truncated"])
def test_a_missing_empty_or_truncated_xen_report_fails_the_tier_and_the_total(
        expected: Path, reports: tuple[Path, Path], tmp_path: Path, content: str | None,
        why: str, capsys: pytest.CaptureFixture[str]) -> None:
    unit, _ = reports
    xen = tmp_path / "junit-xen.xml"
    if content is not None:
        xen.write_text(content)
    # The lab run's exit status does not matter: the report decides (125 = dom0 died).
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--report", f"xen={xen}:125")
    assert rc == 1
    tier = next(line for line in out if line.startswith("real-Xen tier:"))
    # Every expected test that did not report counts as failed, with the reason on the line.
    assert tier.startswith("real-Xen tier: 0 passed, 4 failed, 0 skipped (FAILED: "), tier
    assert why in tier and tier.endswith("; 4 missing counted as failed)"), tier
    # The unit tier's 2 passed; the 4 expected real-Xen tests failed, and nothing else is
    # counted twice (the guest-type lines show the gap without adding to it).
    assert out[-1] == "2 passed, 4 failed"
    assert [line for line in out if "guest types" in line and "FAILED" not in line] == []


def test_a_tier_below_its_minimum_fails_with_the_shortfall(
        expected: Path, reports: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    unit, _ = reports
    xen = _report(tmp_path / "xen.xml", _cases("test_a", classname="tests.xen.test_lab")
                  + _cases("test_g[pv]", "test_g[pvh]", classname="tests.xen.test_guest_types"))
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--report", f"xen={xen}:0")
    assert rc == 1
    assert out[1] == ("real-Xen tier: 3 passed, 1 failed, 0 skipped (FAILED: 3 tests reported, "
                      "expected at least 4 (tests/expected-counts.toml); 1 missing counted "
                      "as failed)")
    assert out[4] == ("guest types [hvm]: 0 passed, 1 failed, 0 retried after a guest death "
                      "(FAILED: 0 tests of test_guest_types ran for hvm, expected at least 1)")
    # The missing hvm test is the one the tier misses: counted once.
    assert out[-1] == "5 passed, 1 failed"


def test_a_guest_type_that_did_not_run_fails_even_when_the_tier_is_full(
        expected: Path, reports: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    unit, _ = reports
    xen = _report(tmp_path / "xen.xml", _cases("a", "b", "c", "d", classname="tests.xen.t")
                  + _cases("test_g[pv]", "test_g[pvh]", classname="tests.xen.test_guest_types"))
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--report", f"xen={xen}:0")
    assert rc == 1
    assert out[1] == "real-Xen tier: 6 passed, 0 failed, 0 skipped"
    assert "FAILED: 0 tests of test_guest_types ran for hvm" in out[4]
    assert out[-2:] == ["guest types: 1 expected tests missing beyond the xen tier's count",
                        "8 passed, 1 failed"]


def test_skips_fail_the_xen_tier_and_count_in_the_total(
        expected: Path, reports: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    unit, _ = reports
    xen = _report(tmp_path / "xen.xml", GOOD_XEN + _cases("test_s", classname="tests.xen.t",
                                                          body="<skipped/>"))
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--report", f"xen={xen}:1")
    assert rc == 1
    assert out[1] == ("real-Xen tier: 5 passed, 1 failed, 1 skipped (FAILED: 1 skipped "
                      "(did not run against Xen))")
    assert out[-1] == "7 passed, 1 failed"


def test_failed_steps_and_a_failing_command_count(
        expected: Path, reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    unit, xen = reports
    # pytest said 2 passed but exited 1 (e.g. an internal error after the report): one failure.
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:1",
                   "--report", f"xen={xen}:0", "--failed-step", "ruff check",
                   "--failed-step", "mypy")
    assert rc == 1
    assert out[0] == ("unit+UI tiers: 2 passed, 1 failed, 0 skipped (FAILED: its command "
                      "exited 1 with no failing test)")
    assert out[-3:] == ["failed step: ruff check", "failed step: mypy", "7 passed, 3 failed"]


def test_a_tier_that_did_not_run_fails(expected: Path, reports: tuple[Path, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    unit, _ = reports
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--failed-step", "lab build")
    assert rc == 1
    assert out[-2:] == ["failed step: lab build", "2 passed, 5 failed"]
    assert out[1].endswith("(FAILED: the tier did not run; 4 missing counted as failed)")


def test_a_broken_expected_counts_file_is_a_failing_total(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "expected.toml"
    bad.write_text("[tier.xen]\nlabel = 'x'\n")
    rc = main(["summary", "--expected", str(bad)])
    captured = capsys.readouterr()
    assert rc == 1 and captured.out.splitlines()[-1] == "0 passed, 1 failed"
    assert "needs label and minimum" in captured.err


def test_a_tier_run_in_two_parts_is_counted_together(
        expected: Path, reports: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    unit, _ = reports
    main_part = _report(tmp_path / "xen-main.xml",
                        _cases("test_a", "test_b", classname="tests.xen.test_lab")
                        + _cases("test_g[pv]", classname="tests.xen.test_guest_types"))
    guests = _report(tmp_path / "xen-guests.xml",
                     _cases("test_g[pvh]", "test_g[hvm]", classname="tests.xen.test_guest_types"))
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--report", f"xen={main_part}:0", "--report", f"xen={guests}:0")
    assert out[1] == "real-Xen tier: 5 passed, 0 failed, 0 skipped"
    assert out[-1] == "7 passed, 0 failed" and rc == 0
    # A part that left no report fails the tier, with its reason, though the other counted.
    rc, out = _run(capsys, "--expected", str(expected), "--report", f"unit-ui={unit}:0",
                   "--report", f"xen={main_part}:0",
                   "--report", f"xen={tmp_path / 'none.xml'}:125")
    assert rc == 1
    assert out[1].startswith("real-Xen tier: 3 passed, 1 failed, 0 skipped (FAILED: no JUnit "
                             "report at"), out[1]
    assert "guest types [pvh]: 0 passed, 1 failed" in "\n".join(out)


def test_summary_runs_as_test_all_runs_it(tmp_path: Path) -> None:
    """test-all.sh: the system python, PYTHONPATH at the checkout, the script by its path."""
    expected = tmp_path / "expected.toml"
    expected.write_text('[tier.unit-ui]\nlabel = "unit"\nminimum = 1\n')
    report = tmp_path / "unit.xml"
    report.write_text('<testsuite><testcase name="a"/></testsuite>')
    done = subprocess.run(
        ["/usr/bin/python3", str(ROOT / "scripts" / "junit_summary.py"), "summary",
         "--expected", str(expected), "--report", f"unit-ui={report}:0"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 passed, 0 failed"
