"""The Grants and Events panes share one poll loop (PolledPane): a snapshot that arrives while
the pane is hidden is kept and painted when it shows, and one chain of polls runs however
often the user refreshes.  The Grants pane's table use is a second feed of the same loop."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pilot import SIZE, async_test, make_app, settle, wait_for
from textual.widgets import TabbedContent

from grantscope.host.sim import SimHost
from grantscope.ui.panes.base import PolledPane, SnapshotPolled
from grantscope.ui.panes.events import EventsPane
from grantscope.ui.panes.grants import USAGE_FEED, USAGE_SECONDS, GrantsPane


@pytest.mark.parametrize("pane_cls, tab", [(GrantsPane, "2"), (EventsPane, "3")])
@async_test
async def test_a_hidden_pane_paints_its_snapshot_only_when_shown(
        pane_cls: type[PolledPane], tab: str) -> None:  # type: ignore[type-arg]
    app = make_app(live=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(tab)
        assert await wait_for(pilot, lambda: bool(app.query(pane_cls)))
        pane = app.query_one(pane_cls)
        assert await wait_for(pilot, lambda: pane.snapshot is not None)
        painted: list[object] = []
        original = pane.apply
        pane.apply = lambda snap: (painted.append(snap), original(snap))  # type: ignore[method-assign]
        await pilot.press("1")
        assert await wait_for(pilot, lambda: not pane.is_on_screen)
        fresh = pane.take()
        pane.post_message(SnapshotPolled(fresh))
        assert await wait_for(pilot, lambda: pane.pending is fresh or fresh in painted)
        assert fresh not in painted  # hidden: kept, not painted
        await pilot.press(tab)
        assert await wait_for(pilot, lambda: fresh in painted)
        assert app.query_one(TabbedContent).active == pane.parent.id  # type: ignore[union-attr]


class CountingHost(SimHost):
    """A simulated host that counts how often the Events pane polls it."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def events(self):  # type: ignore[no-untyped-def]
        self.polls += 1
        return super().events()


@async_test
async def test_refreshing_does_not_start_a_second_chain_of_polls() -> None:
    host = CountingHost()
    app = make_app(live=True, host=host)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert await wait_for(pilot, lambda: bool(app.query(EventsPane)))
        pane = app.query_one(EventsPane)
        assert await wait_for(pilot, lambda: pane.snapshot is not None)
        await settle(pilot)
        for _ in range(5):  # each r polls once, and each result re-arms the one timer
            await pilot.press("r")
            await pilot.pause(0.05)
        await settle(pilot)
        start = host.polls
        await pilot.pause(3.5)  # one chain at 1 poll/s: 3 or 4 polls, not 6 x that
        assert 1 <= host.polls - start <= 5, host.polls - start


async def _grants_with_table_use(pilot: Any) -> GrantsPane:
    """Show the Grants tab; its pane once the first table use is painted."""
    await pilot.press("2")
    assert await wait_for(pilot, lambda: bool(pilot.app.query(GrantsPane)))
    pane: GrantsPane = pilot.app.query_one(GrantsPane)
    assert await wait_for(pilot, lambda: pane.usage is not None)
    return pane


@async_test
async def test_the_table_use_feed_obeys_the_same_hidden_rule() -> None:
    # The gauges once came from a second interval of their own, painted even while hidden.
    app = make_app(live=True)
    async with app.run_test(size=SIZE) as pilot:
        pane = await _grants_with_table_use(pilot)
        painted: list[object] = []
        original = pane.show_usage
        pane.add_feed(USAGE_FEED, USAGE_SECONDS, pane.read_usage,
                      lambda snap: (painted.append(snap), original(snap)))
        await pilot.press("1")
        assert await wait_for(pilot, lambda: not pane.is_on_screen)
        fresh = pane.read_usage()
        pane.post_message(SnapshotPolled(fresh, USAGE_FEED))
        await settle(pilot)
        assert fresh not in painted  # hidden: kept, not painted
        await pilot.press("2")
        assert await wait_for(pilot, lambda: fresh in painted)
        assert pane.usage is fresh


class SlowUsageHost(SimHost):
    """A host whose table-use reading is slow (tools per domain on the xen host)."""

    def __init__(self) -> None:
        super().__init__()
        self.readings = 0
        self.alongside = 0
        self._running = 0

    def usage(self):  # type: ignore[no-untyped-def]
        self.readings += 1
        self._running += 1
        self.alongside = max(self.alongside, self._running)
        time.sleep(0.3)
        self._running -= 1
        return super().usage()


@async_test
async def test_refreshing_reads_the_table_use_once_at_a_time() -> None:
    host = SlowUsageHost()
    async with make_app(live=True, host=host).run_test(size=SIZE) as pilot:
        await _grants_with_table_use(pilot)
        # r reads every feed, four times within one slow reading: none runs alongside it
        await pilot.press("r", "r", "r", "r")
        await settle(pilot)
        assert host.alongside == 1 and host.readings >= 2
