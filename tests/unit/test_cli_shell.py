"""Shell completion and the man page are generated from the parser: every command is in them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
TOP = ("doctor", "xs", "probe", "report", "dump", "bundle", "lab", "completion", "man")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRANTSCOPE, *args], capture_output=True, text=True, timeout=60)


def _bash_complete(words: list[str]) -> list[str]:
    """What bash offers after ``words`` (the last one being completed), via the real script."""
    line = " ".join(words)
    array = " ".join(f'"{w}"' for w in words)
    script = (f"source <({GRANTSCOPE} completion bash)\n"
              f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
              "COMP_POINT=${#COMP_LINE}\n"
              f'_shtab_grantscope grantscope "{words[-1]}" "{words[-2]}"\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_bash_completes_commands_subcommands_and_choices() -> None:
    assert _bash_complete(["grantscope", "pro"]) == ["probe"]
    assert set(TOP) <= set(_bash_complete(["grantscope", ""]))
    assert _bash_complete(["grantscope", "probe", "r"]) == ["run"]
    assert _bash_complete(["grantscope", "completion", ""]) == ["bash", "zsh", "fish"]
    assert "--json" in _bash_complete(["grantscope", "doctor", "--j"])


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command(shell: str) -> None:
    proc = _run("completion", shell)
    assert proc.returncode == 0 and proc.stderr == ""
    for name in TOP:
        assert name in proc.stdout
    binary = shutil.which(shell)
    if binary:  # syntax check where the shell is installed
        check = ["zsh", "-n"] if shell == "zsh" else ["fish", "--no-execute"]
        assert subprocess.run([*check], input=proc.stdout, text=True,
                              timeout=60).returncode == 0


def test_unknown_shell_is_bad_usage() -> None:
    proc = _run("completion", "tcsh")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_man_page_renders_without_warnings_and_lists_everything() -> None:
    proc = _run("man")
    assert proc.returncode == 0
    page = proc.stdout
    assert page.startswith(".TH GRANTSCOPE 1")
    for name in ("doctor", "xs ls", "probe run", "bundle inspect", "completion", "man"):
        assert f"grantscope {name}" in page.replace("\\-", "-")
    assert ".SH EXIT STATUS" in page and "\\fB141\\fR" in page
    groff = shutil.which("groff")
    assert groff, "groff is part of the Debian base (man-db depends on it)"
    rendered = subprocess.run([groff, "-man", "-Tutf8", "-ww"], input=page, capture_output=True,
                              text=True, timeout=60)
    assert rendered.returncode == 0 and rendered.stderr == ""
    assert "EXIT STATUS" in re.sub(".\b", "", rendered.stdout)  # no overstrike bold


def test_the_license_file_matches_pyproject() -> None:
    from grantscope._toml import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and "LICENSE" in project["license-files"]
    text = (root / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
