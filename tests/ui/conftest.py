"""TUI tests: the Pilot helpers are in tests/pilot.py (on sys.path through pytest's pythonpath)."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_user_keymap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The user's own ~/.config/grantscope/keymap.toml must not change what the tests press.
    monkeypatch.setenv("GRANTSCOPE_KEYMAP", str(tmp_path / "no-keymap.toml"))


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A theme the user saved (or their own theme files) must not change the screens, and a
    # theme chosen in a test must not be saved into the user's real config.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
