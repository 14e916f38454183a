"""A user keymap file rebinds keys by binding id; a bad file is reported, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot import SIZE, async_test, make_app, settle, wait_for
from textual.widgets import TabbedContent

from grantscope.ui.app import binding_ids
from grantscope.ui.keymap import load_keymap


def test_load_keeps_known_ids_and_reports_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[keys]\n"app.tab.probes" = "p"\n"no.such.id" = "z"\n"app.quit" = 3\n')
    keymap = load_keymap(path, binding_ids())
    assert keymap.keys == {"app.tab.probes": "p"}
    assert any("'no.such.id'" in p for p in keymap.problems)
    assert any("'app.quit'" in p for p in keymap.problems)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    assert load_keymap(tmp_path / "absent.toml", binding_ids()).keys == {}
    broken = tmp_path / "broken.toml"
    broken.write_text("[keys\n")
    keymap = load_keymap(broken, binding_ids())
    assert keymap.keys == {} and "not read" in keymap.problems[0]


def test_binding_ids_cover_every_pane() -> None:
    ids = binding_ids()
    assert {"app.quit", "app.tab.probes", "xenstore.filter", "page.save",
            "probes.step", "grants.capture", "events.refresh"} <= ids


@async_test
async def test_app_applies_the_keymap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[keys]\n"app.tab.probes" = "p"\n')
    monkeypatch.setenv("GRANTSCOPE_KEYMAP", str(path))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        tabs = app.query_one(TabbedContent)
        assert await wait_for(pilot, lambda: tabs.active == "probes")
        await pilot.press("1")
        assert await wait_for(pilot, lambda: tabs.active == "xenstore")
        await pilot.press("5")  # the key it replaced no longer switches
        await settle(pilot)
        assert tabs.active == "xenstore"
