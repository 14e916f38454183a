"""The user's saved TUI settings: ``$XDG_CONFIG_HOME/grantscope/settings.toml``.

Holds what the user chose in the TUI and expects to find again (today: the theme). The file is
small TOML written by the app; a missing, unreadable or malformed file is no settings (never
an error that stops the app), and a failed save is reported, not raised.
"""

from __future__ import annotations

import os
from pathlib import Path

from grantscope._toml import tomllib

SETTINGS_NAME = "settings.toml"


def config_dir() -> Path:
    """grantscope's XDG config directory (``$XDG_CONFIG_HOME/grantscope``, else
    ``~/.config/grantscope``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "grantscope"


def user_themes_dir() -> Path:
    """Where the user's own theme files (``*.toml``, as in ``themes/``) are read from."""
    return config_dir() / "themes"


def settings_path() -> Path:
    """The settings file."""
    return config_dir() / SETTINGS_NAME


def saved_theme() -> str | None:
    """The theme the user last chose in the TUI, or None."""
    try:
        data = tomllib.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    theme = data.get("theme")
    return theme if isinstance(theme, str) and theme else None


def save_theme(name: str) -> str | None:
    """Remember ``name`` as the user's theme; return a problem message when it could not be
    saved (a read-only home, say), else None."""
    path = settings_path()
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f'# written by the grantscope TUI\ntheme = "{escaped}"\n', encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        return f"theme not saved to {path}: {err.strerror or err}"
    return None
