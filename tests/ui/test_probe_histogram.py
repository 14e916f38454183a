"""The pingpong probe's round trips as a latency histogram in the Probes log: the same
histogram ``grantscope pingpong`` prints (grantscope.model.histogram), sized to the log."""

from __future__ import annotations

from typing import Any

import pytest
from pilot import async_test, make_app, settle

from grantscope.model.histogram import histogram
from grantscope.probing.engine import StepRecord
from grantscope.probing.steps import SAMPLES_KEY
from grantscope.ui.panes.probes import ProbesPane, StepDone, format_record

# round trips in µs with a slow tail, as a loopback pair under an emulator gives them
SAMPLES = [41.0, 42.5, 43.0, 44.2, 45.9, 47.0, 52.3, 60.1, 88.4, 140.0, 390.5, 1210.0]


def _record(result: dict[str, Any]) -> StepRecord:
    return StepRecord(index=3, name="ping-pong", call="round_trips",
                      arguments={"port": 7, "count": len(SAMPLES)}, ok=True, result=result,
                      errno=None, explanation="12 round trips, median 49 µs", duration_s=0.02,
                      mutating=True)


def test_a_record_with_samples_shows_the_cli_histogram_not_the_numbers() -> None:
    text = format_record(_record({"round_trips": 12, "median_us": 49.6,
                                  SAMPLES_KEY: SAMPLES}), bar_width=20).plain
    for line in histogram(SAMPLES, width=20):
        assert f"   {line}\n" in text
    assert "median_us=49.6" in text and "1210.0" not in text.split("round trips (12)")[0]
    assert SAMPLES_KEY not in text


def test_a_record_without_samples_has_no_histogram() -> None:
    assert "│" not in format_record(_record({"round_trips": 12})).plain


async def _log_after_pingpong(size: tuple[int, int]) -> tuple[list[str], int]:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.open_probe("pingpong")
        await settle(pilot)
        pane = app.query_one(ProbesPane)
        pane.post_message(StepDone(_record({"round_trips": 12, SAMPLES_KEY: SAMPLES})))
        await settle(pilot)
        log = pane.query_one("#probe-log")
        return "".join(pane.transcript).splitlines(), log.scrollable_content_region.width


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=lambda s: f"{s[0]}x{s[1]}")
@async_test
async def test_the_histogram_fits_the_probes_log(size: tuple[int, int]) -> None:
    lines, width = await _log_after_pingpong(size)
    bars = [line for line in lines if "│" in line]
    assert len(bars) == len(histogram(SAMPLES))
    assert all(len(line) <= width for line in bars), (width, bars)  # no wrapped bar
    assert sum(int(line.rsplit(" ", 1)[1]) for line in bars) == len(SAMPLES)
