"""Themes as data: load ``grantscope/themes/*.toml`` (and the user's own, from
``$XDG_CONFIG_HOME/grantscope/themes/``) into Textual themes, checking every colour; derive
grantscope's own variables (``$gs-*``) for any theme that does not set them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES, Theme

from grantscope._toml import tomllib
from grantscope.ui.settings import user_themes_dir

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
    """Every theme shipped in ``grantscope/themes``, then the user's own from
    ``$XDG_CONFIG_HOME/grantscope/themes/*.toml`` (a user theme may replace a shipped one of the
    same name). Bad files are reported, not fatal."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    # the package's own directory, not importlib.resources: grantscope is always installed as
    # files, and importing the resource readers (zipfile with them) cost the first paint 14 ms
    shipped = Path(__file__).resolve().parent.parent / "themes"
    entries: list[tuple[str, Path]] = [
        (e.name, e) for e in sorted(shipped.iterdir(), key=lambda e: e.name)
    ]
    user_dir = user_themes_dir()
    try:
        user = sorted(user_dir.glob("*.toml")) if user_dir.is_dir() else []
    except OSError as err:
        problems.append(f"{user_dir}: not read ({err.strerror or err})")
        user = []
    entries += [(str(p), p) for p in user]
    for label, entry in entries:
        if not label.endswith(".toml"):
            continue
        try:
            text = entry.read_text("utf-8")
            theme = parse_theme(tomllib.loads(text), label)
        except (ValueError, tomllib.TOMLDecodeError) as err:
            problems.append(str(err))
            continue
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{label}: not read ({err})")
            continue
        themes[theme.name] = theme
    return ThemeLoad(themes, problems)


def theme_names(loaded: ThemeLoad | None = None) -> list[str]:
    """Every theme the TUI offers (its palette's list): Textual's built-in ones and ours."""
    loaded = loaded or load_themes()
    return sorted(set(BUILTIN_THEMES) | set(loaded.themes))


def _mix(front: str | None, back: str | None, amount: float) -> str | None:
    """``front`` blended ``amount`` of the way towards ``back``; None when either is not an
    RGB colour (ANSI themes name the terminal's colours, which cannot be blended)."""
    try:
        a, b = Color.parse(front or ""), Color.parse(back or "")
    except ColorParseError:
        return None
    if a.ansi is not None or b.ansi is not None:
        return None
    return a.blend(b, amount).hex


def derived_variables(theme: Theme) -> dict[str, str]:
    """grantscope's ``$gs-*`` variables for any theme, from the colours it does set.

    A theme file may set them itself (``[variables]``); these are the fallbacks, so every
    Textual theme (the palette offers all of them) renders the hexdump, rates and badges."""
    gen = theme.to_color_system().generate()
    fg, bg = gen.get("foreground"), gen.get("background")
    warning = gen.get("warning") or gen.get("accent") or "yellow"
    return {
        "gs-changed": warning,
        "gs-changed-dim": gen.get("warning-darken-2") or warning,
        "gs-offset": _mix(fg, bg, 0.45) or gen.get("foreground-muted") or fg or "grey",
        "gs-zero": _mix(fg, bg, 0.7) or gen.get("foreground-disabled") or fg or "grey",
        "gs-grant-rw": gen.get("success") or "green",
        "gs-grant-ro": gen.get("primary") or "blue",
        "gs-sim": gen.get("secondary") or "magenta",
    }


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
