"""Pilot tests of the probe flows on the demo host: steps, confirm, log, Page view, cleanup."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pilot import SIZE, async_test, make_app, settle, wait_for

from grantscope.host.sim import SimHost
from grantscope.probing.engine import builtin_probes
from grantscope.ui.panes.page import PagePane
from grantscope.ui.panes.probes import ProbesPane
from grantscope.ui.screens.confirm import ConfirmScreen


def _probe_owned(host: SimHost) -> list[Any]:
    return [g for g in host.grants().own if g.owner == "probe"]


async def _open_probe(pilot: Any, name: str) -> ProbesPane:
    pilot.app.open_probe(name)
    await settle(pilot)
    return pilot.app.query_one(ProbesPane)


@async_test
async def test_map_grant_step_by_step_confirms_once_and_opens_page() -> None:
    host = SimHost(frozen_at=100.0)
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, "map-grant")
        await pilot.press("s")  # step 1 reads the gref from XenStore: no confirmation
        await wait_for(pilot, lambda: not pane.busy and pane.run is not None)
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert [r.name for r in pane.run.records] == [pane.run.step_names[0]]
        await pilot.press("s")  # step 2 maps: asks first
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(pane.run.records) == 2 and not pane.busy)
        await settle(pilot)
        assert pane.run.records[-1].ok and pane.run.records[-1].call.startswith("gntdev")
        await pilot.press("s")  # confirmed once: no second question
        await wait_for(pilot, lambda: pane.run.done and not pane.busy)
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        log_text = "\n".join(pane.transcript)
        assert "MAP_GRANT_REF" in log_text and "hello from d1" in log_text
        assert len(_probe_owned(host)) == 1
        # the mapping is offered to the Page view and 'o' shows it
        page = app.query_one(PagePane)
        key = "probe:map-grant:mapping"
        assert key in page.sources
        await pilot.press("o")
        await settle(pilot)
        assert app.query_one("#tabs").active == "page" and page.current == key
        assert page.hexdump.data.startswith(b"hello from d1 (simulated)")
        # cleanup releases the mapping and the page leaves the list
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        assert _probe_owned(host) == [] and key not in page.sources
        assert pane.run is None


@async_test
async def test_declining_confirmation_runs_nothing() -> None:
    host = SimHost(frozen_at=100.0)
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, "offer-page")
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert pane.run.records == [] and _probe_owned(host) == []


@async_test
async def test_bad_parameter_is_explained_in_the_log() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, "map-grant")
        pane.query_one("#param-gref").value = "not-a-number"
        await pilot.press("s")
        await settle(pilot)
        assert pane.run is None
        log_text = "\n".join(pane.transcript)
        assert "gref" in log_text and "✘" in log_text


@async_test
async def test_explain_map_reports_general_error() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, "explain-map")
        await pilot.press("a", "y")
        await wait_for(pilot, lambda: pane.run is not None and pane.run.done and not pane.busy)
        await settle(pilot)
        log_text = "\n".join(pane.transcript)
        assert "EINVAL" in log_text and "-1" in log_text


@pytest.mark.parametrize("name", [p.name for p in builtin_probes()])
@async_test
async def test_every_probe_runs_on_the_demo_host(name: str) -> None:
    host = SimHost(frozen_at=100.0)
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, name)
        await pilot.press("a")
        await settle(pilot)
        if isinstance(app.screen, ConfirmScreen):
            await pilot.press("y")
        assert await wait_for(pilot, lambda: pane.run is not None and pane.run.done
                              and not pane.busy, timeout=15)
        await settle(pilot)
        run = pane.run
        assert run.ok, [(r.name, r.explanation) for r in run.records if not r.ok]
        assert len(run.records) == len(run.step_names)
        shown = pane.query_one("#probe-log").lines
        assert len(shown) >= len(run.records)
    # quitting cleaned up whatever the run still held
    assert _probe_owned(host) == []
    assert host.events().ports == ()


@async_test
async def test_readonly_hides_mutating_probes() -> None:
    app = make_app(readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.query_one(ProbesPane)
        mutating = [p for p in builtin_probes() if p.mutating]
        assert mutating and all(p not in pane.probes for p in mutating)
        assert all(not p.mutating for p in app.probe_list())
        await pilot.press("5")
        await settle(pilot)
        assert "--readonly hides" in str(pane.query_one("#probe-summary").render()) or pane.probes


class _SlowDevices:
    """The simulated devices with a map that blocks until released (a hung hypercall)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.release = threading.Event()

    def map_grants(self, *args: Any, **kwargs: Any) -> Any:
        self.release.wait(10)
        return self.inner.map_grants(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


@async_test
async def test_ui_keeps_working_while_a_step_blocks() -> None:
    host = SimHost(frozen_at=100.0)
    slow = _SlowDevices(host.devices())
    host.devices = lambda: slow  # type: ignore[method-assign]
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, "map-grant")
        await pilot.press("a", "y")
        assert await wait_for(pilot, lambda: pane.busy and len(pane.run.records) == 1)
        # the step is blocked in its worker thread; the UI still switches tabs and answers
        await pilot.press("1")
        await pilot.pause()
        assert app.query_one("#tabs").active == "xenstore" and pane.busy
        slow.release.set()
        assert await wait_for(pilot, lambda: not pane.busy, timeout=10)
        assert pane.run.done and pane.run.ok
        time.sleep(0)


@async_test
async def test_stepping_twice_does_not_answer_the_confirmation() -> None:
    # The step key and the confirmation's "No" differ: a user stepping with repeated presses
    # sees the question stay up until they answer it.
    host = SimHost(frozen_at=100.0)
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, "offer-page")
        await pilot.press("s")  # offer-page's first step offers a page: asks first
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)  # still asking
        assert pane.run is None or pane.run.records == []
        await pilot.press("y")
        await wait_for(pilot, lambda: pane.run is not None and len(pane.run.records) == 1
                       and not pane.busy)
        assert pane.run.records[0].ok


@async_test
async def test_escape_leaves_a_parameter_field_and_q_is_text_there() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = await _open_probe(pilot, "map-grant")
        field = pane.query_one("#param-gref")
        field.focus()
        await settle(pilot, 1)
        field.value = ""
        await pilot.press("q", "s")
        await settle(pilot, 1)
        assert field.value == "qs"  # typed, not quit and not a step
        assert app.return_code is None and pane.run is None
        await pilot.press("escape")
        await settle(pilot, 1)
        assert app.focused is not field
        assert app.focused is pane.query_one("#probe-list")
        await pilot.press("q")
        await settle(pilot, 1)
        assert app.return_code == 0  # quit


@async_test
async def test_a_page_offered_while_the_page_pane_is_absent_waits_for_it() -> None:
    # The Page pane mounts after the first paint and goes while the app closes; a probe step
    # that ends then offered its page to a pane that was not there, and the app crashed with
    # NoMatches (seen in test_ui_keeps_working_while_a_step_blocks under load).
    from grantscope.ui.messages import OpenPage, PageReleased
    from grantscope.ui.panes.page import PagePane

    class Source:
        def read(self) -> bytes:
            return b"late" + bytes(4092)

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        old = app.query_one(PagePane)
        parent = old.parent
        assert parent is not None
        await old.remove()
        app.post_message(OpenPage("probe:late", "map-grant: mapping d1 gref 9", Source()))
        app.post_message(PageReleased("probe:gone"))
        await settle(pilot)
        assert app.return_code is None  # no crash
        fresh = PagePane(app.host, live=False)
        await parent.mount(fresh)
        assert await wait_for(pilot, lambda: "probe:late" in fresh.sources)
        assert app.return_code is None
