"""A real terminal: ``grantscope --demo`` in tmux, driven by send-keys through a probe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# scripts/install-deps.sh installs tmux: its absence is a set-up error, not a reason to skip
TMUX = shutil.which("tmux")


def _tmux(*args: str) -> str:
    assert TMUX is not None, "tmux is missing: run scripts/install-deps.sh"
    return subprocess.run([TMUX, *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"gs-test-{os.getpid()}"
    rc_file = tmp_path / "rc"
    # COLUMNS/LINES inherited from pytest would pin the app to 80x24 whatever the pane size
    # its own XDG config: the theme it saves is checked below, and the user's is not touched
    command = (f"cd {tmp_path} && env -u COLUMNS -u LINES XDG_CONFIG_HOME={tmp_path / 'xdg'} "
               f"{sys.executable} -m grantscope --demo; "
               f"echo $? > {rc_file}; sleep 60")
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40", command)
    try:
        yield name, rc_file
    finally:
        subprocess.run([TMUX or "tmux", "kill-session", "-t", name], capture_output=True,
                       timeout=30)


def _screen(name: str) -> str:
    return _tmux("capture-pane", "-p", "-t", name)


def _wait_for(name: str, text: str, timeout: float = 60.0) -> str:
    end = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < end:
        screen = _screen(name)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared on screen:\n{screen}")


def test_demo_runs_a_probe_in_a_real_terminal(session: tuple[str, Path]) -> None:
    name, rc_file = session
    first = _wait_for(name, "SIMULATED")
    assert "1 XenStore" in first and "local" in first
    _tmux("send-keys", "-t", name, "5")
    _wait_for(name, "map-grant: map a grant")
    # a key sent before the lazily mounted pane has the focus is lost under load: resend
    # (the question ignores a repeated a)
    _press_until(name, "a", "Run its mutating steps?")
    _tmux("send-keys", "-t", name, "y")
    _wait_for(name, "done (ok)")
    _wait_for(name, "MAP_GRANT_REF")
    _wait_for(name, "✔ 3.")
    _tmux("send-keys", "-t", name, "o")
    page = _wait_for(name, "000000  68 65 6c 6c 6f")  # the Page view: "hello" at offset 0
    assert "hello from d1 (s" in page
    _tmux("send-keys", "-t", name, "q")
    end = time.monotonic() + 30
    while not rc_file.exists() and time.monotonic() < end:
        time.sleep(0.2)
    assert rc_file.read_text().strip() == "0"


def _press_until(name: str, key: str, text: str, tries: int = 6) -> str:
    for _ in range(tries):
        _tmux("send-keys", "-t", name, key)
        try:
            return _wait_for(name, text, timeout=10.0)
        except AssertionError:
            continue
    return _wait_for(name, text, timeout=1.0)


def _exit_status(rc_file: Path) -> str:
    end = time.monotonic() + 30
    while not rc_file.exists() and time.monotonic() < end:
        time.sleep(0.2)
    return rc_file.read_text().strip()


def test_theme_switch_step_and_quit_in_a_real_terminal(session: tuple[str, Path]) -> None:
    name, rc_file = session
    _wait_for(name, "SIMULATED")
    # a theme from the palette (Textual's own nord: it crashed on $gs-offset before)
    _tmux("send-keys", "-t", name, "C-p")
    _wait_for(name, "Search for commands")
    _tmux("send-keys", "-t", name, "-l", "theme")
    _wait_for(name, "Theme")
    _tmux("send-keys", "-t", name, "Enter")
    _wait_for(name, "nord")
    _tmux("send-keys", "-t", name, "-l", "nord")
    # Enter picks the highlighted entry: wait until the typed filter has left only nord
    end = time.monotonic() + 30
    while "ansi-dark" in _screen(name) and time.monotonic() < end:
        time.sleep(0.2)
    time.sleep(0.3)
    _tmux("send-keys", "-t", name, "Enter")
    # the hexdump uses $gs-offset; a key sent while the picker closes can be lost: resend
    _press_until(name, "4", "000000")
    # step with the step key: the second step asks, and stepping again does not answer it
    _tmux("send-keys", "-t", name, "5")
    _wait_for(name, "map-grant: map a grant")
    # a key sent before the lazily mounted pane has the focus is lost under load: resend
    # (a second step would only bring the question below up sooner)
    _press_until(name, "s", "✔ 1.")
    _tmux("send-keys", "-t", name, "s")
    _wait_for(name, "Run its mutating steps?")
    _tmux("send-keys", "-t", name, "s")
    time.sleep(0.5)
    assert "Run its mutating steps?" in _screen(name)
    # n is only the question's No (it was also the step key): the step does not run
    _tmux("send-keys", "-t", name, "n")
    end = time.monotonic() + 10
    while "Run its mutating steps?" in _screen(name) and time.monotonic() < end:
        time.sleep(0.2)
    time.sleep(0.5)
    assert "✔ 2." not in _screen(name)
    # a key sent while the question closes can be lost: resend (s never answers it)
    _press_until(name, "s", "Run its mutating steps?")
    _tmux("send-keys", "-t", name, "y")
    _wait_for(name, "✔ 2.")
    _tmux("send-keys", "-t", name, "q")
    assert _exit_status(rc_file) == "0"
    saved = rc_file.parent / "xdg" / "grantscope" / "settings.toml"
    assert 'theme = "nord"' in saved.read_text()
