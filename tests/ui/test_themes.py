"""Theme files: every shipped theme loads; a bad colour is reported with the file and field."""

from __future__ import annotations  # the X | Y annotations below: 3.9 cannot evaluate them

import argparse
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pilot import SIZE, async_test, make_app, settle
from textual.theme import BUILTIN_THEMES

from grantscope.ui import app as ui_app
from grantscope.ui.settings import saved_theme, settings_path
from grantscope.ui.themes import load_themes, parse_theme, rich_colour, theme_names


def test_shipped_themes_load_cleanly() -> None:
    loaded = load_themes()
    assert loaded.problems == []
    assert {"grantscope-dark", "grantscope-light", "grantscope-16"} <= set(loaded.themes)
    for theme in loaded.themes.values():
        assert "gs-changed" in theme.variables


def test_bad_colour_names_file_and_field() -> None:
    with pytest.raises(ValueError, match=r"x\.toml: primary = 'nope' is not a colour"):
        parse_theme({"name": "x", "primary": "nope"}, "x.toml")
    with pytest.raises(ValueError, match=r"variables\.gs-changed"):
        parse_theme({"name": "x", "primary": "red", "variables": {"gs-changed": "??"}}, "x.toml")
    with pytest.raises(ValueError, match="missing 'name'"):
        parse_theme({"primary": "red"}, "x.toml")


def test_rich_colour_handles_ansi_and_transparent() -> None:
    assert rich_colour("ansi_blue") == "color(4)"
    assert rich_colour("ansi_default") == "default"
    assert rich_colour("transparent", "black") == "black"
    assert rich_colour("#FFB000") == "#ffb000"
    assert rich_colour("not a colour", "red") == "red"


# -- every theme the palette offers, saved choice, user themes, --theme --------------------


@async_test
async def test_every_offered_theme_renders() -> None:
    # The palette offers Textual's themes too; $gs-* must exist for each (it crashed on nord).
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        offered = sorted(app.available_themes)
        assert set(BUILTIN_THEMES) <= set(offered)
        await pilot.press("4")  # the Page tab's hexdump uses $gs-offset, $gs-zero, $gs-changed
        await settle(pilot, 1)
        for name in offered:
            app.theme = name
            await pilot.pause()
            assert app.return_code is None, f"theme {name} crashed the app"
            assert app.theme_variables["gs-offset"], name
        assert app.return_code is None


@async_test
async def test_theme_chosen_in_the_app_is_saved_and_used_next_time() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.theme = "nord"
        await pilot.pause()
    assert saved_theme() == "nord"
    assert settings_path().read_text().count("nord") == 1
    again = make_app()
    async with again.run_test(size=SIZE) as pilot:
        assert again.theme == "nord"
    # a theme given on the command line wins and is not saved
    explicit = make_app(theme="grantscope-light")
    async with explicit.run_test(size=SIZE) as pilot:
        assert explicit.theme == "grantscope-light"
    assert saved_theme() == "nord"


def test_user_themes_load_from_xdg_config(tmp_path: Path) -> None:
    folder = settings_path().parent / "themes"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('name = "mine"\nprimary = "#123456"\n')
    (folder / "broken.toml").write_text('name = "broken"\nprimary = "nope"\n')
    loaded = load_themes()
    assert "mine" in loaded.themes
    assert any("broken.toml" in p and "primary" in p for p in loaded.problems)
    assert "mine" in theme_names(loaded)


@pytest.fixture
def cli_tui() -> Iterator[ModuleType]:
    """grantscope.cli.tui, imported for this test only: a module-level import would leave it
    on the grantscope.cli package for the whole session, where tests that put a stand-in into
    sys.modules (tests/unit/test_bundle_cli.py) would get the real one instead."""
    import grantscope.cli as package

    had = "grantscope.cli.tui" in sys.modules
    module = importlib.import_module("grantscope.cli.tui")
    yield module
    if not had:
        sys.modules.pop("grantscope.cli.tui", None)
        if getattr(package, "tui", None) is module:
            delattr(package, "tui")


def _tui_args(theme: str) -> argparse.Namespace:
    return argparse.Namespace(demo=True, readonly=False, theme=theme)


def test_cli_theme_accepts_every_offered_theme(monkeypatch: pytest.MonkeyPatch,
                                               cli_tui: ModuleType) -> None:
    used: list[str] = []

    class Recorded(ui_app.GrantscopeApp):
        def run(self, *args: object, **kwargs: object) -> int:  # type: ignore[override]
            used.append(self.theme)
            return 0

    monkeypatch.setattr(ui_app, "GrantscopeApp", Recorded)
    for name in ("nord", "textual-dark", "grantscope-16"):
        assert cli_tui.run_tui(_tui_args(name)) == 0
    assert used == ["nord", "textual-dark", "grantscope-16"]
    from grantscope.errors import UsageError

    with pytest.raises(UsageError, match="no theme named 'nosuch'"):
        cli_tui.run_tui(_tui_args("nosuch"))


def test_a_crashed_tui_does_not_exit_0(monkeypatch: pytest.MonkeyPatch,
                                       cli_tui: ModuleType) -> None:
    class Crashing(ui_app.GrantscopeApp):
        def on_mount(self) -> None:
            raise RuntimeError("boom")

        def run(self, *args: object, **kwargs: object) -> int | None:  # type: ignore[override]
            return super().run(headless=True, size=(80, 24))

    monkeypatch.setattr(ui_app, "GrantscopeApp", Crashing)
    assert cli_tui.run_tui(_tui_args("grantscope-dark")) == 1
