"""Domain names next to domids where test_first_hour does not look: the Page view's titles
(host pages, grants opened from the Grants tab) and the findings' subjects (issue 16 item 6)."""

from __future__ import annotations

from types import SimpleNamespace

from pilot import SIZE, async_test, make_app, settle, wait_for
from textual.widgets import DataTable, Label, OptionList, Static

from grantscope.ui.domains import name_domids
from grantscope.ui.panes.findings import subject_text
from grantscope.ui.panes.grants import GrantsPane
from grantscope.ui.panes.page import PagePane
from grantscope.ui.panes.xenstore import XenStorePane
from grantscope.ui.widgets.host_bar import HostBar


def test_bare_domids_in_a_title_get_their_names() -> None:
    app = SimpleNamespace(domain_names={1: "web-frontend"})
    assert name_domids(app, "map d1 gref 8, d7 too") == "map d1 web-frontend gref 8, d7 too"
    assert name_domids(app, "dd1 ad1 d12") == "dd1 ad1 d12"  # only whole dN words


def test_a_findings_subject_names_its_domains_but_not_other_numbers() -> None:
    names = {1: "web-frontend", 2: "storage-01"}
    assert subject_text({"granter": 1, "ref": 31, "mapper": 2, "refs": [31]}, names) == (
        "granter=d1 web-frontend ref=31 mapper=d2 storage-01")
    assert subject_text({"domid": 3, "used": 2}, names) == "domid=d3 used=2"


@async_test
async def test_page_titles_and_findings_show_domain_names() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = app.domain_names
        await pilot.press("4")
        await settle(pilot)
        page = app.query_one(PagePane)
        listed = page.query_one("#page-list", OptionList)
        prompts = [str(listed.get_option_at_index(i).prompt) for i in range(listed.option_count)]
        assert f"d1 {names[1]} vbd ring (gref 8)" in prompts, prompts
        assert str(page.query_one("#page-title", Label).render()).startswith(f"d1 {names[1]}")
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("enter")  # opens the first own grant's page in the Page view
        assert await wait_for(pilot, lambda: app.query_one("#tabs").active == "page")
        own = app.host.grants().own[0]
        assert await wait_for(pilot, lambda: page.current == own.page_key)
        title = str(page.query_one("#page-title", Label).render())
        assert f"d{own.domid} {names[own.domid]} " in title, title
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        table = app.query_one("#findings-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count > 0)
        details = str(app.query_one("#finding-details", Static).render())
        assert f"granter=d1 {names[1]}" in details, details


@async_test
async def test_names_read_again_reach_the_header_and_every_pane_by_message() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        grants = app.query_one(GrantsPane)
        assert grants.domain_names == app.domain_names  # built with the names read so far
        app.tell_domain_names({0: "control", 1: "renamed"})
        await settle(pilot)
        assert grants.domain_names == {0: "control", 1: "renamed"}
        assert app.query_one(XenStorePane).domain_names[1] == "renamed"
        assert "d0 control" in str(app.query_one(HostBar).render())
