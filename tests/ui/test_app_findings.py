"""Pilot tests of the Findings tab and the Events tab's hypervisor port table (simulated host)."""

from __future__ import annotations

from pilot import FROZEN_AT, SIZE, async_test, make_app, settle, wait_for
from textual.widgets import DataTable, Label, Static

from grantscope.errors import UsageError
from grantscope.host.base import EventsSnapshot, FindingsSnapshot
from grantscope.host.sim import SimHost
from grantscope.ui.app import binding_ids
from grantscope.ui.commands import GrantscopeCommands
from grantscope.ui.panes.findings import FindingsPane


class LiveLikeHost(SimHost):
    """A simulated host that behaves like the xen backend: nothing until the user's key."""

    def __init__(self) -> None:
        super().__init__(frozen_at=FROZEN_AT)
        self.analyses = 0
        self.captures = 0
        self.last: FindingsSnapshot | None = None

    def findings(self) -> FindingsSnapshot | None:
        return self.last

    def analyze(self) -> FindingsSnapshot:
        self.analyses += 1
        self.last = super().analyze()
        return self.last

    def capture_hypervisor_events(self) -> str:
        self.captures += 1
        return ""

    def events(self) -> EventsSnapshot:
        snap = super().events()
        if not self.captures:  # like xen: no table before the first capture
            return EventsSnapshot(snap.interrupts, snap.ports, snap.taken_at, None)
        return snap


class FailingHost(LiveLikeHost):
    """Its analysis fails the way a host without the tools does."""

    def analyze(self) -> FindingsSnapshot:
        self.analyses += 1
        raise UsageError("cannot analyze here", "because the test says so")


def _details(app: object) -> str:
    return str(app.query_one("#finding-details", Static).render())  # type: ignore[attr-defined]


def _rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@async_test
async def test_findings_tab_lists_the_analysis_and_details_follow_the_cursor() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        assert app.query_one("#tabs").active == "findings"
        expected = app.host.analyze().findings
        table = app.query_one("#findings-table", DataTable)
        rows = _rows(table)
        assert [r[1] for r in rows] == [f.code for f in expected]
        assert [r[0] for r in rows] == [f.severity.upper() for f in expected]
        assert [r[3] for r in rows] == [f.title for f in expected]
        names = app.domain_names  # domains read as "d1 web-frontend" (issue 16 item 6)
        assert rows[0][2] == f"granter=d1 {names[1]} ref=31 mapper=d2 {names[2]}"
        label = str(app.query_one("#findings-label", Label).render())
        assert f"Findings: {len(expected)}" in label and "3 warning" in label
        # the first finding is shown in full: every evidence line and the action
        text = _details(app)
        assert all(e in text for e in expected[0].evidence) and expected[0].action in text
        assert "Not checked" in text and "event storms" in text
        await pilot.press("down")
        await settle(pilot)
        text = _details(app)
        assert expected[1].code == "stale-backend"
        assert "/local/domain/3 does not exist" in text and expected[1].action in text
        assert expected[0].action not in text
        await pilot.press("down", "enter")
        await settle(pilot)
        assert expected[2].title in _details(app)


@async_test
async def test_a_live_host_is_analyzed_only_on_the_key() -> None:
    host = LiveLikeHost()
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        assert host.analyses == 0  # showing the tab sends no debug key
        assert app.query_one("#findings-table", DataTable).row_count == 0
        assert "Press a to analyze" in _details(app)
        await pilot.press("a")
        assert await wait_for(pilot, lambda: app.query_one(FindingsPane).snapshot is not None)
        await settle(pilot)
        assert host.analyses == 1
        assert app.query_one("#findings-table", DataTable).row_count == 3
        assert "again" in str(app.query_one("#findings-label", Label).render())


@async_test
async def test_a_failed_analysis_is_a_notification_not_a_crash() -> None:
    host = FailingHost()
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("a")
        assert await wait_for(pilot, lambda: not app.query_one(FindingsPane).busy)
        await settle(pilot)
        assert host.analyses == 1 and app.return_code is None
        messages = [n.message for n in app._notifications]
        assert any("cannot analyze here" in m and "because the test says so" in m
                   for m in messages), messages
        assert app.query_one("#findings-table", DataTable).row_count == 0
        assert "not analyzed yet" in str(app.query_one("#findings-label", Label).render())


@async_test
async def test_palette_offers_the_findings_tab_and_an_analysis() -> None:
    host = LiveLikeHost()
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        provider = GrantscopeCommands(app.screen)
        entries = {text: cb for text, _help, cb in provider._entries()}
        assert "Show Findings" in entries and "Analyze: findings now" in entries
        entries["Analyze: findings now"]()  # type: ignore[operator]
        assert await wait_for(pilot, lambda: host.analyses == 1)
        await settle(pilot)
        assert app.query_one("#tabs").active == "findings"
        assert app.query_one("#findings-table", DataTable).row_count == 3


def test_new_bindings_have_ids() -> None:
    assert {"app.tab.findings", "findings.analyze", "events.capture"} <= binding_ids()


@async_test
async def test_events_tab_shows_the_hypervisor_port_table() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        rows = app.host.events().hypervisor
        assert rows is not None
        table = app.query_one("#hv-ports", DataTable)
        shown = _rows(table)
        # domains are shown with their names: "d1 web-frontend"
        assert [(r[0].split()[0], r[1]) for r in shown] == [(f"d{p.domid}", str(p.port))
                                                            for p in rows]
        vbd = next(r for r in shown if r[0].startswith("d1 ") and r[1] == "5")
        assert vbd[2] == "interdomain" and vbd[3].startswith("d0:")
        label = str(app.query_one("#hv-ports-label", Label).render())
        assert f"{len(rows)} ports in 3 domains" in label


@async_test
async def test_hypervisor_ports_are_captured_only_on_the_key() -> None:
    host = LiveLikeHost()
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        table = app.query_one("#hv-ports", DataTable)
        assert host.captures == 0 and table.row_count == 0
        assert "not captured" in str(app.query_one("#hv-ports-label", Label).render())
        await pilot.press("e")
        assert await wait_for(pilot, lambda: table.row_count > 0)
        assert host.captures == 1
        assert table.row_count == len(host.events().hypervisor or ())
