"""The opt-in maptrack reading: a 'g' capture at most once per interval, its age, its refusals."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from grantscope.cli import main
from grantscope.errors import GrantscopeError
from grantscope.metrics.maptrack import MIN_INTERVAL, MaptrackReader
from grantscope.model.dumps import parse_console

G_DUMP = """\
(XEN) gnttab_usage_print_all [ key 'g' pressed
(XEN)       -------- active --------       -------- shared --------
(XEN) [ref] localdom mfn      pin          localdom gmfn     flags
(XEN) grant-table for remote d0 (v1)
(XEN)   1 frames (64 max), 3 maptrack frames (8 max)
(XEN) grant-table for remote d5 (v1)
(XEN)   2 frames (32 max), 0 maptrack frames (1024 max)
(XEN) gnttab_usage_print_all ] done
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _capture(texts: list[str | None]) -> Any:
    def capture() -> Any:
        text = texts.pop(0)
        if text is None:
            return SimpleNamespace(parse=None, unavailable="hypervisor dumps unavailable: xl "
                                   "debug-keys failed")
        return SimpleNamespace(parse=parse_console(text), unavailable="")
    return capture


def test_a_capture_is_taken_at_most_once_per_interval() -> None:
    clock = Clock()
    reader = MaptrackReader(300, capture=_capture([G_DUMP, G_DUMP]), clock=clock)
    first = reader.read()
    assert [(u.domid, u.frames, u.max_frames) for u in first.uses] == [(0, 3, 8), (5, 0, 1024)]
    assert first.age == 0
    clock.now += 299
    again = reader.read()
    assert reader.captures == 1 and again.uses == first.uses and again.age == 299
    clock.now += 1
    assert reader.read().age == 0 and reader.captures == 2


def test_a_failed_capture_is_a_reason_and_is_not_retried_before_the_interval() -> None:
    clock = Clock()
    reader = MaptrackReader(600, capture=_capture([None, G_DUMP]), clock=clock)
    with pytest.raises(GrantscopeError, match="xl debug-keys failed"):
        reader.read()
    clock.now += 100
    with pytest.raises(GrantscopeError):
        reader.read()
    assert reader.captures == 1
    clock.now += 500
    assert reader.read().uses[0].frames == 3 and reader.captures == 2


def test_the_interval_has_a_floor() -> None:
    with pytest.raises(ValueError, match="at least 300"):
        MaptrackReader(MIN_INTERVAL - 1, capture=_capture([]))


def test_demo_exports_maptrack_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "metrics"]) == 0
    assert "grantscope_maptrack" not in capsys.readouterr().out
    assert main(["--demo", "metrics", "--maptrack-every", "300"]) == 0
    samples = {(s.name, s.labels.get("domid"), s.labels.get("source")): s.value
               for fam in text_string_to_metric_families(capsys.readouterr().out)
               for s in fam.samples}
    assert samples[("grantscope_source_up", None, "maptrack")] == 1.0
    assert samples[("grantscope_maptrack_frames_max", "0", None)] > 0
    assert ("grantscope_maptrack_frames", "0", None) in samples
    assert samples[("grantscope_maptrack_age_seconds", None, None)] == 0.0


@pytest.mark.parametrize(("argv", "said"), [
    (["--demo", "metrics", "--maptrack-every", "30"], "at least 300 seconds"),
    (["--demo", "metrics", "--maptrack-every", "nan"], "at least 300 seconds"),
    (["--demo", "--readonly", "metrics", "--maptrack-every", "300"], "--readonly"),
])
def test_refusals_exit_2_naming_why(argv: list[str], said: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert said in capsys.readouterr().err
