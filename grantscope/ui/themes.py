"""Themes as data: load ``grantscope/themes/*.toml`` into Textual themes, checking every colour."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files

from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "grantscope-dark"
_FIELDS = ("primary", "secondary", "accent", "warning", "error", "success", "foreground",
           "background", "surface", "panel", "boost")


@dataclass(frozen=True)
class ThemeLoad:
    """The themes that loaded and one message per file that did not."""

    themes: dict[str, Theme]
    problems: list[str]


def parse_theme(data: dict[str, object], source: str) -> Theme:
    """A Theme from one TOML document; ValueError names the file and the bad field."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: missing 'name'")
    colours: dict[str, str] = {}
    for key in _FIELDS:
        value = data.get(key)
        if value is None:
            continue
        try:
            Color.parse(str(value))
        except ColorParseError:
            raise ValueError(f"{source}: {key} = {value!r} is not a colour") from None
        colours[key] = str(value)
    if "primary" not in colours:
        raise ValueError(f"{source}: missing 'primary'")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError(f"{source}: [variables] must be a table")
    for key, value in variables.items():
        if str(key).endswith("-text-style"):
            continue  # a style word ("none", "reverse"), not a colour
        try:
            Color.parse(str(value))
        except ColorParseError:
            raise ValueError(f"{source}: variables.{key} = {value!r} is not a colour") from None
    return Theme(name=name, dark=bool(data.get("dark", True)), ansi=bool(data.get("ansi", False)),
                 variables={str(k): str(v) for k, v in variables.items()},
                 **colours)  # type: ignore[arg-type]  # only the colour fields are in colours


def load_themes() -> ThemeLoad:
    """Every theme shipped in ``grantscope/themes`` (bad files are reported, not fatal)."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    folder = files("grantscope") / "themes"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        try:
            theme = parse_theme(tomllib.loads(entry.read_text("utf-8")), entry.name)
        except (ValueError, tomllib.TOMLDecodeError) as err:
            problems.append(str(err))
            continue
        themes[theme.name] = theme
    return ThemeLoad(themes, problems)


def rich_colour(value: str | None, fallback: str = "default") -> str:
    """A theme variable's colour in Rich's syntax (ANSI theme names become ``color(N)``)."""
    if not value:
        return fallback
    try:
        colour = Color.parse(value)
    except ColorParseError:
        return fallback
    if colour.ansi is not None:
        return "default" if colour.ansi < 0 else f"color({colour.ansi})"
    if colour.a == 0:  # "transparent": Rich has no such colour
        return fallback
    return f"#{colour.r:02x}{colour.g:02x}{colour.b:02x}"


def theme_colour(app: object, name: str, fallback: str = "default") -> str:
    """The app's current value of theme variable ``name`` as a Rich colour."""
    variables: dict[str, str] = getattr(app, "theme_variables", {})
    return rich_colour(variables.get(name), fallback)
