"""Pilot tests of every screen on the simulated host (--demo)."""

from __future__ import annotations

import stat

import pytest
from pilot import SIZE, async_test, make_app, settle, wait_for

from grantscope.host.sim import SimHost
from grantscope.ui.panes.events import EventsPane, sparkline
from grantscope.ui.panes.grants import GrantsPane
from grantscope.ui.panes.page import PagePane
from grantscope.ui.panes.xenstore import XenStorePane
from grantscope.ui.screens.help import HelpScreen
from grantscope.ui.widgets.host_bar import HostBar
from grantscope.ui.widgets.xs_tree import CHUNK, XsTree


@async_test
async def test_header_names_host_and_badges() -> None:
    app = make_app(readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = app.query_one(HostBar).render().plain
        assert "d0 Domain-0 dom0" in text and "Xen 4.17.7" in text
        assert "SIMULATED" in text and "read-only" in text
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "read-only" not in app.query_one(HostBar).render().plain


@async_test
async def test_xenstore_tree_is_lazy_and_jumps() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one(XsTree)
        assert [str(c.label) for c in tree.root.children] == ["tool", "local", "vm"]
        assert "/local" not in tree.loaded  # nothing below the root is listed until expanded
        pane = app.query_one(XenStorePane)
        assert await pane.jump("/local/domain/1/device/vbd/51712/ring-ref")
        await settle(pilot)
        node = tree.cursor_node
        assert node is not None and node.data is not None
        assert node.data.path == "/local/domain/1/device/vbd/51712/ring-ref"
        details = str(app.query_one("#xs-details").render())
        assert '"8"' in details and "n1 r0" in details
        assert not await pane.jump("/local/domain/7")


@async_test
async def test_xenstore_filter_lists_matching_paths() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        expected = [n.path for n in app.host.xenstore_snapshot() if "ring-ref" in n.path]
        await pilot.press("slash", *"ring-ref", "enter")
        await settle(pilot)
        results = app.query_one("#xs-results")
        shown = [results.get_option_at_index(i).id for i in range(results.option_count)]
        assert shown == expected and len(expected) >= 4
        await pilot.press("enter")  # jump to the first hit
        await settle(pilot)
        assert app.query_one(XsTree).cursor_node.data.path == expected[0]


@async_test
async def test_copy_path() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.query_one(XenStorePane).jump("/local/domain/2/name")
        await settle(pilot)
        await pilot.press("c")
        assert app.clipboard == "/local/domain/2/name"


@async_test
async def test_big_directory_loads_in_chunks() -> None:
    app = make_app(big_dir=10_000)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.query_one(XenStorePane)
        assert await pane.jump("/local/domain/2/data/sessions")
        tree = app.query_one(XsTree)
        node = tree.cursor_node
        node.expand()
        await wait_for(pilot, lambda: len(node.children) > 0)
        await settle(pilot)
        assert len(node.children) == CHUNK + 1
        more = node.children[-1]
        assert more.data.more_from == CHUNK and "9,750 more" in str(more.label)
        await tree.load_more(more)
        assert len(node.children) == 2 * CHUNK + 1
        # a path beyond the loaded chunks is still reachable by jumping
        assert await pane.jump("/local/domain/2/data/sessions/s09999")


@async_test
async def test_watch_updates_the_tree() -> None:
    host = SimHost(frozen_at=100.0)
    app = make_app(host=host, live=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, 1)
        pane = app.query_one(XenStorePane)
        await pane.jump("/local/domain/1/data/note")
        tree = app.query_one(XsTree)
        host.store.write("/local/domain/1/data/note", b"changed\x02")
        host.store.write("/local/domain/1/data/added", b"new")
        node = tree.nodes_by_path["/local/domain/1/data/note"]
        assert await wait_for(pilot, lambda: "changed" in str(node.label))
        assert '"changed\\002"' in str(node.label)  # escaped like xenstore-ls
        assert await wait_for(pilot, lambda: "/local/domain/1/data/added" in tree.nodes_by_path)
        host.store.rm("/local/domain/1/data/added")
        assert await wait_for(
            pilot, lambda: "/local/domain/1/data/added" not in tree.nodes_by_path)


@async_test
async def test_grants_tables_follow_the_host() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # keys pressed before the app is ready are lost
        await pilot.press("2")
        await settle(pilot)
        snap = app.host.grants()
        assert app.query_one("#own-grants").row_count == len(snap.own)
        assert app.query_one("#proc-grants").row_count == len(snap.processes)
        assert app.query_one("#hv-grants").row_count == len(snap.hypervisor)
        dev = app.host.devices()
        offer = dev.offer(1, 1, writable=True)
        await pilot.press("r")
        await settle(pilot)
        assert app.query_one("#own-grants").row_count == len(snap.own) + 1
        assert app.query_one(GrantsPane).snapshot.own[0].grefs == offer.grefs
        offer.close()


@async_test
async def test_grants_enter_opens_page() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # keys pressed before the app is ready are lost
        await pilot.press("2")
        await settle(pilot)
        # the table takes focus after the refresh that shows it: late on a loaded machine
        assert await wait_for(pilot, lambda: app.focused is app.query_one("#own-grants"))
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one("#tabs").active == "page"
        page = app.query_one(PagePane)
        first = app.query_one(GrantsPane).snapshot.own[0]
        assert page.current == first.page_key


@async_test
async def test_events_rates_and_highlight() -> None:
    host = SimHost(frozen_at=100.0)
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # keys pressed before the app is ready are lost
        await pilot.press("3")
        await settle(pilot)
        pane = app.query_one(EventsPane)
        assert app.query_one("#irqs").row_count == len(host.events().interrupts)
        before = {r.irq: r.total for r in host.events().interrupts}
        host.freeze(102.0)
        pane.poll()
        await settle(pilot)
        after = {r.irq: r.total for r in host.events().interrupts}
        st = pane.rates.states[24]
        assert st.rate == pytest.approx((after[24] - before[24]) / 2.0)
        assert st.changed_at == 102.0  # from no rate to a rate: highlighted
        cell = app.query_one("#irqs").get_cell("24", "rate/s")
        assert cell.plain == f"{st.rate:,.1f}" and "bold" in str(cell.style)


def test_sparkline_scales_to_maximum() -> None:
    assert sparkline([0.0, 5.0, 10.0], width=3) == "▁▄█"
    assert sparkline([], width=2) == "  "
    assert sparkline([0.0, 0.0], width=2) == "▁▁"


@async_test
async def test_page_shows_ring_and_highlights_changes(tmp_path, monkeypatch) -> None:
    host = SimHost(frozen_at=100.0)
    app = make_app(host=host)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # keys pressed before the app is ready are lost
        await pilot.press("4")
        await settle(pilot)
        page = app.query_one(PagePane)
        assert page.current == "grant:1:8"
        assert page.hexdump.data == host.read_page("grant:1:8")
        ring = str(app.query_one("#ring").render())
        assert "req_prod" in ring and "unconsumed_requests" in ring
        # the ring moves: new bytes are highlighted at full strength
        host.freeze(103.0)
        new = host.read_page("grant:1:8")
        old = page.hexdump.data
        page.slot.put(99, new, 103.0)
        page.tick()
        changed = [i for i in range(16) if new[i] != old[i]]
        assert changed and all(page.hexdump.tracker.bucket(i, 103.0) == 3 for i in changed)
        # freeze keeps the bytes on screen
        await pilot.press("f")
        assert page.hexdump.frozen
        page.slot.put(100, bytes(4096), 104.0)
        page.tick()
        assert page.hexdump.data == new
        await pilot.press("f")
        monkeypatch.chdir(tmp_path)
        await pilot.press("s")
        assert page.saved_to is not None and page.saved_to.read_bytes() == page.hexdump.data
        # a new file only its owner reads (write_new_file: O_EXCL, no symlink followed)
        assert stat.S_IMODE(page.saved_to.stat().st_mode) == 0o600


@async_test
async def test_help_lists_bindings_with_ids() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        ids = {b.id for _, group in app.screen.groups for b in group}
        assert {"app.quit", "xenstore.jump", "page.freeze", "probes.step"} <= ids
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@async_test
async def test_user_keymap_rebinds_by_id() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.set_keymap({"app.tab.events": "e"})
        await pilot.press("e")
        await settle(pilot)
        assert app.query_one("#tabs").active == "events"


@async_test
async def test_palette_jumps_to_xenstore_path() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # keys pressed before the app is ready are lost
        await pilot.press("3")
        await settle(pilot)
        await app.jump_to("/local/domain/2/device/vif/0/mac")
        await settle(pilot)
        assert app.query_one("#tabs").active == "xenstore"
        assert app.query_one(XsTree).cursor_node.data.path == "/local/domain/2/device/vif/0/mac"


@async_test
async def test_themes_switch() -> None:
    for name in ("grantscope-dark", "grantscope-light", "grantscope-16"):
        app = make_app(theme=name)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.theme == name
            assert app.theme_variables["gs-changed"]


@async_test
async def test_changed_label_highlight_fades() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.query_one(XenStorePane).jump("/local/domain/1/name")
        tree = app.query_one(XsTree)
        node = tree.nodes_by_path["/local/domain/1/name"]
        tree.apply_change("/local/domain/1/name", b"renamed", True, False, "bold red", now=10.0)
        assert "bold red" in str(node.label.spans) and "renamed" in str(node.label)
        tree.fade(11.0)
        assert "bold red" in str(node.label.spans)
        tree.fade(12.5)
        assert "bold red" not in str(node.label.spans) and "renamed" in str(node.label)
