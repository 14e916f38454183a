"""TUI tests: the Pilot helpers are in tests/pilot.py (on sys.path through pytest's pythonpath)."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_user_keymap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The user's own ~/.config/grantscope/keymap.toml must not change what the tests press.
    monkeypatch.setenv("GRANTSCOPE_KEYMAP", str(tmp_path / "no-keymap.toml"))
