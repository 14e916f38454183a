"""The user's keymap: binding ids -> keys, read from a TOML file.

File: ``$GRANTSCOPE_KEYMAP``, else ``~/.config/grantscope/keymap.toml``; for example::

    [keys]
    "app.quit" = "ctrl+q"
    "probes.step" = "space,s"

Ids are those the help screen (``?``) lists. A missing file is no keymap; a bad file or an
unknown id is reported (the app shows it in one notification) and never stops the app.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from grantscope._toml import tomllib
from grantscope.ui.settings import config_dir


@dataclass(frozen=True)
class Keymap:
    """The keys to apply (``App.set_keymap``) and what was wrong with the file."""

    keys: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def keymap_path() -> Path:
    """Where the user's keymap lives."""
    override = os.environ.get("GRANTSCOPE_KEYMAP")
    if override:
        return Path(override)
    return config_dir() / "keymap.toml"


def load_keymap(path: Path, known_ids: set[str]) -> Keymap:
    """Read ``path``; keep the entries naming a known binding id with a string of keys."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Keymap()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        return Keymap(problems=(f"keymap {path}: not read ({err}); default keys in use",))
    table = data.get("keys", {})
    if not isinstance(table, dict):
        return Keymap(problems=(f"keymap {path}: [keys] must be a table of id = \"keys\"",))
    keys: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, value in table.items():
        if binding_id not in known_ids:
            problems.append(f"keymap {path}: unknown binding id {binding_id!r} (see '?')")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"keymap {path}: {binding_id!r} needs keys as a string")
        else:
            keys[binding_id] = value.strip()
    return Keymap(keys, tuple(problems))
