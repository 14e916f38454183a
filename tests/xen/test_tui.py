"""The real-Xen tier for the TUI: the app headless on the ``xen`` backend in dom0.

It runs mailbox-loopback step by step through the Probes screen (confirming once), then opens
the offered page in the Page view and checks the bytes the probe wrote through its mapping.
Run it in the lab: ``grantscope lab run -- .venv/bin/pytest -m xen tests/xen/test_tui.py``.
"""

from __future__ import annotations

import pytest
from pilot import SIZE, async_test, focus_within, open_tab, settle, wait_for

pytestmark = pytest.mark.xen


@pytest.mark.timeout(1500)  # Textual under QEMU TCG is slow (minutes, not seconds)
@async_test
async def test_mailbox_loopback_step_by_step_and_page_view() -> None:
    from grantscope.host.xen import XenHost
    from grantscope.ui.app import GrantscopeApp
    from grantscope.ui.panes.page import PagePane
    from grantscope.ui.panes.probes import ProbesPane
    from grantscope.ui.screens.confirm import ConfirmScreen

    host = XenHost()
    app = GrantscopeApp(host, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "xen:" in str(app.query_one("#hostbar").render())
        app.open_probe("mailbox-loopback")
        await settle(pilot)
        pane = app.query_one(ProbesPane)
        message = pane.query_one("#param-message").value
        asked = 0
        for _ in range(40):
            if pane.run is not None and pane.run.done:
                break
            before = len(pane.run.records) if pane.run is not None else 0
            await pilot.press("s")
            # under TCG everything is slow: wait on conditions, not on fixed pauses
            assert await wait_for(pilot, lambda b=before: isinstance(app.screen, ConfirmScreen)
                                  or pane.busy or (pane.run is not None
                                                   and len(pane.run.records) > b), 120)
            if isinstance(app.screen, ConfirmScreen):
                asked += 1
                await pilot.press("y")
            assert await wait_for(pilot, lambda b=before: not pane.busy and pane.run is not None
                                  and len(pane.run.records) > b, 300)
            record = pane.run.records[-1]
            print(f"step {record.index + 1} {record.name}: ok={record.ok}", flush=True)
        run = pane.run
        assert run is not None and run.ok, [(r.name, r.explanation) for r in run.records]
        assert asked == 1  # the first mutating step asked; the others did not
        page = app.query_one(PagePane)
        offered = [k for k in page.sources if k.startswith("probe:mailbox-loopback:")]
        assert offered, page.sources.keys()
        key = next((k for k in offered if k.endswith(":offer")), offered[0])
        app.open_page(key)
        expected = message.encode() + b"\0"
        assert await wait_for(pilot, lambda: page.hexdump.data.startswith(expected), 120)
        pane.action_cleanup()
        assert await wait_for(pilot, lambda: not any(k in page.sources for k in offered), 120)
        assert pane.run is None


@pytest.mark.timeout(1500)
@async_test
async def test_every_screen_shows_the_real_host() -> None:
    """XenStore, Grants (with the hypervisor table captured by 'h'), Events (with the port
    table captured by 'e') and Findings (analyzed on 'a') on real Xen."""
    from textual.widgets import DataTable, TabbedContent

    from grantscope.host.xen import XenHost
    from grantscope.ui.app import GrantscopeApp
    from grantscope.ui.panes.events import EventsPane
    from grantscope.ui.panes.findings import FindingsPane
    from grantscope.ui.panes.grants import GrantsPane
    from grantscope.ui.widgets.row_table import RowTable
    from grantscope.ui.widgets.xs_tree import XsTree
    from grantscope.xen.evtchn import EventChannel
    from grantscope.xen.gntalloc import GrantOffer
    from grantscope.xen.gntdev import GrantMapping

    # one grant of dom0 mapped by dom0 (no XenStore key names it: an unowned grant the
    # findings must list) and one unbound port, so the hypervisor tables have rows we know
    with GrantOffer(0, 1, writable=True) as offer, GrantMapping(0, offer.grefs), \
            EventChannel() as ch:
        port = ch.bind_unbound(0)
        app = GrantscopeApp(XenHost(), live=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            tree = app.query_one(XsTree)
            assert "local" in [str(c.label) for c in tree.root.children]

            grants = await open_tab(pilot, "2", GrantsPane)
            assert await wait_for(pilot, lambda: grants.snapshot is not None, 120)
            holders = {p.name for p in grants.snapshot.processes}
            assert holders & {"xenstored", "xenconsoled"}, holders
            # the pane's keys reach it once it has the focus (the tab strip ignores them)
            assert await wait_for(pilot, lambda: focus_within(app, grants), 120), (
                app.focused, app.query_one(TabbedContent).active)
            await pilot.press("h")
            assert await wait_for(pilot, lambda: grants.snapshot is not None
                                  and grants.snapshot.hypervisor is not None, 300)
            rows = [(r.granter, r.ref, r.mapper) for r in grants.snapshot.hypervisor]
            assert (0, offer.grefs[0], 0) in rows, rows
            assert grants.query_one("#hv-grants", DataTable).row_count == len(rows)

            events = await open_tab(pilot, "3", EventsPane)
            assert await wait_for(pilot, lambda: events.snapshot is not None, 120)
            chips = {row.chip for row in events.snapshot.interrupts}
            assert any(c.startswith("xen") for c in chips), chips
            assert events.query_one("#irqs", RowTable).row_count == len(
                events.snapshot.interrupts)
            assert events.snapshot.hypervisor is None  # never captured without the key
            assert await wait_for(pilot, lambda: focus_within(app, events), 120), (
                app.focused, app.query_one(TabbedContent).active)
            await pilot.press("e")
            assert await wait_for(pilot, lambda: events.snapshot is not None
                                  and events.snapshot.hypervisor is not None, 300)
            hv = {(r.domid, r.port): r for r in events.snapshot.hypervisor}
            assert hv[(0, port)].state == "unbound" and hv[(0, port)].remote_domid == 0, hv
            assert any(r.state == "virq" for r in hv.values())
            assert await wait_for(pilot, lambda: events.query_one(
                "#hv-ports", DataTable).row_count == len(hv), 120)

            findings = await open_tab(pilot, "6", FindingsPane)
            await settle(pilot)
            assert findings.snapshot is None and app.host.findings() is None
            assert await wait_for(pilot, lambda: focus_within(app, findings), 120), (
                app.focused, app.query_one(TabbedContent).active)
            await pilot.press("a")
            assert await wait_for(pilot, lambda: findings.snapshot is not None, 600)
            snap = findings.snapshot
            mine = [f for f in snap.findings if f.subject.get("granter") == 0
                    and f.subject.get("ref") == offer.grefs[0]]
            assert [f.code for f in mine] == ["grant-unowned"], [f.to_json()
                                                                 for f in snap.findings]
            assert mine[0].subject["mapper"] == 0
            table = findings.query_one("#findings-table", DataTable)
            assert await wait_for(pilot, lambda: table.row_count == len(snap.findings), 120)
