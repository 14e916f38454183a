"""SVG snapshots of every screen in every theme (pytest-textual-snapshot), on a frozen demo host.

Update after a deliberate visual change with ``pytest tests/ui/test_snapshots.py
--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

from typing import Any

import pytest
from pilot import SIZE, make_app, settle

from grantscope.host.sim import SimHost
from grantscope.ui.panes.events import EventsPane
from grantscope.ui.panes.xenstore import XenStorePane
from grantscope.ui.tabs import TABS

THEMES = ("grantscope-dark", "grantscope-light", "grantscope-16")
SCREENS = tuple(t.id for t in TABS)


async def _prepare(pilot: Any, screen: str) -> None:
    app = pilot.app
    await settle(pilot)
    if screen == "xenstore":
        await app.query_one(XenStorePane).jump("/local/domain/1/device/vbd/51712/ring-ref")
    elif screen == "events":
        # three polls on the frozen clock give rates, a sparkline and a highlight
        host: SimHost = app.host
        pane = app.query_one(EventsPane)
        for at in (101.0, 102.0, 103.0, 104.0):
            host.freeze(at)
            pane.apply(host.events())
    app.action_show_tab(screen)
    await settle(pilot)


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare: Any, screen: str, theme: str) -> None:
    async def run_before(pilot: Any) -> None:
        await _prepare(pilot, screen)

    assert snap_compare(make_app(theme=theme), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare: Any) -> None:
    from grantscope.model.toolout import ProcessInfo

    # the help shows the TUI's own CPU and memory: a fixed process keeps the picture still
    own = ProcessInfo(pid=4242, name="grantscope", cmdline=("grantscope", "--demo"),
                      user="alice", started=1.7e9, cpu_s=1.5, rss=60 << 20)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.own_process = lambda: own
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_confirm_before_mutating_step(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.open_probe("offer-page")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_readonly_probes(snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)

    assert snap_compare(make_app(readonly=True), terminal_size=SIZE, run_before=run_before)


# The smallest terminal a user is promised (80x24) and a big one (160x45): every screen must
# keep its essentials on screen (rates and sparklines, the findings' titles, the ring header).
@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_at_size(snap_compare: Any, screen: str, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _prepare(pilot, screen)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


# The pingpong probe's round trips as a histogram in the Probes log, at both sizes.
@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_pingpong_histogram_at_size(snap_compare: Any, size: tuple[int, int]) -> None:
    from test_probe_histogram import SAMPLES, _record

    from grantscope.probing.steps import SAMPLES_KEY
    from grantscope.ui.panes.probes import ProbesPane, StepDone

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.open_probe("pingpong")
        await settle(pilot)
        pane = pilot.app.query_one(ProbesPane)
        pane.post_message(StepDone(_record({"round_trips": len(SAMPLES), SAMPLES_KEY: SAMPLES})))
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
