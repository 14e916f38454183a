"""The exposition and the example alert rules, checked by Prometheus' own promtool.

promtool comes with Debian's ``prometheus`` package, which scripts/install-deps.sh installs;
without it these tests fail (they do not skip): the rules in docs/metrics-alerts.yml are a
promise the unit tier keeps.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from metrics_helpers import reading
from prometheus_client.parser import text_string_to_metric_families

from grantscope.cli import main
from grantscope.metrics.exposition import make_registry, render
from grantscope.metrics.maptrack import MaptrackReading, MaptrackUse

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "metrics-alerts.yml"
RULE_TESTS = Path(__file__).parent / "fixtures" / "metrics" / "alerts-test.yml"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's 'prometheus' package "
                    "(scripts/install-deps.sh installs it)", pytrace=False)
    return path


def run(args: list[str], *, stdin: bytes | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, cwd=cwd,
                          timeout=120, check=False)


def test_example_rules_are_valid() -> None:
    res = run(["check", "rules", str(RULES)])
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    assert b"SUCCESS: 7 rules found" in res.stdout


def test_example_rules_fire_on_recorded_series() -> None:
    res = run(["test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    assert b"SUCCESS" in res.stdout


@pytest.mark.parametrize("per_device", [False, True])
def test_exposition_passes_promtool_check_metrics(per_device: bool) -> None:
    text = render(make_registry(lambda: reading(), per_device=per_device))
    res = run(["check", "metrics"], stdin=text)
    assert res.returncode == 0 and res.stdout == b"" and res.stderr == b"", \
        res.stdout.decode() + res.stderr.decode()


def test_demo_output_passes_promtool_check_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "metrics", "--per-device"]) == 0
    res = run(["check", "metrics"], stdin=capsys.readouterr().out.encode())
    assert res.returncode == 0 and res.stdout == b"" and res.stderr == b"", \
        res.stdout.decode() + res.stderr.decode()


def _exported() -> dict[str, set[str]]:
    """Sample name -> label names, as the exporter writes them (default options, plus the
    opt-in maptrack series)."""
    with_maptrack = dataclasses.replace(reading(), maptrack=MaptrackReading(
        (MaptrackUse(0, 2, 8),), 12.0))
    text = render(make_registry(lambda: with_maptrack)).decode()
    return {s.name: set(s.labels) for fam in text_string_to_metric_families(text)
            for s in fam.samples}


def test_rules_use_only_exported_series() -> None:
    exported = _exported()
    names = set(re.findall(r"\bgrantscope_[a-z_]+", RULES.read_text()))
    assert names and names <= set(exported), names - set(exported)


def test_recorded_series_look_like_the_exporter_output() -> None:
    """The rule tests' input series carry the names and labels the exporter writes (Prometheus
    adds ``instance``), so the rules are tested against what a scrape stores."""
    exported = _exported()
    series = re.findall(r"series: '([^']+)'", RULE_TESTS.read_text())
    assert len(series) >= 10
    for text in series:
        (sample,) = [s for fam in text_string_to_metric_families(text + " 1\n")
                     for s in fam.samples]
        assert sample.name in exported, sample.name
        assert set(sample.labels) - {"instance"} == exported[sample.name], text
