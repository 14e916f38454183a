"""Number keys switch tabs, the last key pressed wins however fast the keys come, and the
focus follows into the pane shown, however late it mounts."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator

import pytest
from pilot import SIZE, async_test, focus_within, make_app, settle, wait_for
from textual.widgets import DataTable, TabbedContent

from grantscope.ui import app as app_module
from grantscope.ui import tabs
from grantscope.ui.messages import OpenPage
from grantscope.ui.panes.findings import FindingsPane
from grantscope.ui.panes.grants import GrantsPane
from grantscope.ui.panes.page import PagePane
from grantscope.ui.panes.probes import ProbesPane
from grantscope.ui.tabs import TABS


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


@async_test
async def test_each_tab_key_puts_the_focus_in_its_pane() -> None:
    # The pane's own keys (h, e, a, s...) reach it only when the focus is inside it.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for spec in (*TABS[1:], TABS[0], TABS[2]):
            await pilot.press(spec.key)
            assert await wait_for(pilot, lambda s=spec: app.query_one(TabbedContent).active
                                  == s.id and app.focused is not None
                                  and app.focused.id == s.focus.lstrip("#")), (
                spec.id, app.focused)
            await settle(pilot)
            assert app.query_one(TabbedContent).active == spec.id  # no bounce back


class SlowGrants(GrantsPane):
    """A Grants pane that takes 1.5 s to mount, as under QEMU (where the pane's keys once
    went nowhere because the focus had given up before the pane appeared)."""

    def on_mount(self) -> None:
        time.sleep(1.5)  # blocks the loop, as a slow CPU does


@contextlib.contextmanager
def _slow_grants_tab() -> Iterator[None]:
    """The app's Grants tab shows SlowGrants (a pane that mounts late) while inside."""
    slow = dataclasses.replace(tabs.BY_ID["grants"], load=lambda: SlowGrants)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app_module, "TABS", tuple(slow if t.id == "grants" else t
                                             for t in tabs.TABS))
        yield


@async_test
async def test_a_pane_that_mounts_late_still_gets_the_focus() -> None:
    with _slow_grants_tab():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            # no settling: the key arrives before the lazy pane has mounted
            await pilot.press("2")
            assert await wait_for(pilot, lambda: bool(app.query(SlowGrants)), 10.0)
            pane = app.query_one(SlowGrants)
            assert await wait_for(pilot, lambda: focus_within(app, pane), 10.0), app.focused
            await pilot.press("h")  # its key now reaches it
            assert await wait_for(pilot, lambda: "capturing" in " ".join(
                str(n.message) for n in app._notifications), 5.0)


@async_test
async def test_a_late_focus_never_switches_back_to_a_tab_left() -> None:
    with _slow_grants_tab():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2", "3")  # Grants is left before its pane mounts
            assert await wait_for(pilot, lambda: bool(app.query(SlowGrants)), 10.0)
            await settle(pilot)
            await pilot.pause(0.5)
            assert app.query_one(TabbedContent).active == "events"
            assert focus_within(app, app.query_one("#events"))


@async_test
async def test_a_tab_key_right_after_a_focus_does_not_bounce_back() -> None:
    # Seen in the tmux test: the first tab's focus was still queued (Widget.focus defers it)
    # when 5 switched tabs; it then landed in the tab just left, and Textual switched back.
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.set_focus(None)
        first = app.query_one(f"#{TABS[0].id}", tabs.FocusingTabPane)
        first.focus_pane()
        app.action_show_tab("probes")
        await settle(pilot)
        await pilot.pause(0.3)
        assert app.query_one(TabbedContent).active == "probes"
        assert focus_within(app, app.query_one("#probes"))


@async_test
async def test_requests_for_panes_not_mounted_yet_are_applied_when_they_mount() -> None:
    # No retries on timers: a palette entry used before its pane has mounted waits for the
    # pane's PaneMounted message, then runs once.
    with _slow_grants_tab():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            app.open_probe("pingpong")
            app.analyze_findings()
            app.post_message(OpenPage("probe:test", "a page d1 offered", FakePage()))
            assert await wait_for(pilot, lambda: "analyzing" in " ".join(
                str(n.message) for n in app._notifications), 10.0)
            findings = app.query_one(FindingsPane)
            assert await wait_for(pilot, lambda: not findings.busy, 10.0)
            assert findings.query_one("#findings-table", DataTable).row_count > 0
            assert app.query_one(TabbedContent).active == "findings"
            probes = app.query_one(ProbesPane)
            assert probes.probe is not None and probes.probe.name == "pingpong"
            page = app.query_one(PagePane)
            assert await wait_for(pilot, lambda: "probe:test" in page.sources)


class FakePage:
    """A probe's page as the Page view reads it."""

    def read(self) -> bytes:
        return bytes(4096)
