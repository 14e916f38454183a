"""Gauges of table use per domain on the Grants tab: grant frames, maptrack frames and XenStore
nodes against the quota, as bars with numbers, text only in 80 columns (issue 16 item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot import async_test, make_app, settle
from rich.text import Text
from textual.widgets import DataTable, Label

from grantscope.bundle.collectors import ExportSources, standard_collectors
from grantscope.bundle.export import export_bundle
from grantscope.host.base import DomainUsage, UsageSnapshot
from grantscope.host.replay import ReplayHost
from grantscope.host.sim import SimHost
from grantscope.ui.app import GrantscopeApp
from grantscope.ui.panes.grants import GrantsPane
from grantscope.ui.themes import theme_colour
from grantscope.ui.widgets.gauge import bar, gauge, level


def test_a_gauge_is_a_bar_and_the_numbers_or_text_only() -> None:
    assert gauge((16, 64), 8).plain == "▕██░░░░░░▏ 16/64"
    assert gauge((16, 64), 0).plain == "16/64 25%"
    assert gauge(None).plain == "?"
    assert bar(1 / 1000, 8).startswith("▏")  # in use never draws as empty
    assert bar(0.0, 4) == "░░░░" and bar(1.0, 4) == "████"
    assert [level(f) for f in (0.1, 0.5, 0.8, 1.0)] == ["ok", "notice", "full", "full"]


def test_the_simulated_host_counts_each_domains_nodes_against_the_quota() -> None:
    host = SimHost(frozen_at=100.0)
    usage = {d.domid: d for d in host.usage().domains}
    assert sorted(usage) == [0, 1, 2]
    owned = [n.perms.owner if n.perms is not None else 0 for n in host.store.walk("/", perms=True)]
    for domid, d in usage.items():
        assert d.xenstore_entries == (owned.count(domid), 1000)
        assert d.grant_frames == (1, 64)  # the simulated 'g' dump's sizes
    assert usage[0].maptrack_frames == (1, 1024)


async def _usage_cells(app: GrantscopeApp, width: int) -> tuple[dict[str, list[Text]], str]:
    async with app.run_test(size=(width, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        pane = app.query_one(GrantsPane)
        table = pane.query_one("#usage", DataTable)
        rows = {str(r.value): [c for c in table.get_row(r)] for r in table.rows}
        return rows, str(pane.query_one("#usage-label", Label).render())


@pytest.mark.parametrize("width", [80, 120])
@async_test
async def test_grants_shows_one_row_of_gauges_per_domain_with_its_name(width: int) -> None:
    rows, label = await _usage_cells(make_app(), width)
    assert sorted(rows) == ["0", "1", "2"]
    name, grant, _maptrack, nodes = rows["1"]
    assert name.plain == "d1 web-frontend"
    if width < 100:  # text only: the numbers are never cut for a bar
        assert grant.plain == "1/64 2%" and "█" not in nodes.plain
    else:
        assert grant.plain.startswith("▕") and grant.plain.endswith(" 1/64")
    assert "not read" not in label


class FullHost(SimHost):
    """A host whose d1 has nearly run out of grant frames and whose quota was not read."""

    def usage(self) -> UsageSnapshot:
        return UsageSnapshot((DomainUsage(1, (60, 64), None, None),),
                             ("quota of d1: xenstore-control: permission denied",), 0.0)


@async_test
async def test_a_nearly_full_table_is_in_the_error_colour_and_unknowns_explained() -> None:
    app = make_app(host=FullHost(frozen_at=100.0))
    rows, label = await _usage_cells(app, 120)
    _name, grant, maptrack, nodes = rows["1"]
    assert grant.plain.endswith(" 60/64") and grant.spans
    assert grant.spans[0].style == theme_colour(app, "error", "red") != theme_colour(
        app, "success", "green")
    assert maptrack.plain == "?" and nodes.plain == "?"
    assert "1 not read" in label


@async_test
async def test_a_bundle_without_a_dump_says_what_it_lacks(tmp_path: Path) -> None:
    """The demo host's bundle records quota but no hypervisor dump: the nodes gauge is
    drawn, the frames cells say '?', and the label says what was not read."""
    target = tmp_path / "sim.tar.gz"
    export_bundle(str(target), standard_collectors(ExportSources(host=SimHost(frozen_at=5.0))))
    host = ReplayHost.open(str(target))
    assert host.usage().unavailable == ("hvdump.txt: not in this bundle",)
    rows, label = await _usage_cells(GrantscopeApp(host, live=False), 120)
    assert sorted(rows) == ["0", "1", "2"]
    _name, grant, maptrack, nodes = rows["1"]
    assert grant.plain.strip() == "?" and maptrack.plain.strip() == "?"
    assert "30/1000" in nodes.plain
    assert "1 not read" in label
