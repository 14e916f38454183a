"""Number keys switch tabs, and the last key pressed wins however fast the keys come."""

from __future__ import annotations

from pilot import SIZE, async_test, make_app, settle, wait_for
from textual.widgets import TabbedContent


@async_test
async def test_quick_number_keys_end_on_the_last_tab_pressed() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        # no settling first: the keys arrive while the lazy tabs are still being composed
        await pilot.press("2", "3", "4", "5")
        await settle(pilot)
        tabs = app.query_one(TabbedContent)
        assert await wait_for(pilot, lambda: tabs.active == "probes")
        # a stale retry from an earlier key must not switch back later
        await pilot.pause(1.2)
        assert tabs.active == "probes"
        await pilot.press("1", "2", "3", "4", "5", "3")
        await pilot.pause(1.2)
        assert tabs.active == "events"
