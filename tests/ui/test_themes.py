"""Theme files: every shipped theme loads; a bad colour is reported with the file and field."""

import pytest

from grantscope.ui.themes import load_themes, parse_theme, rich_colour


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
