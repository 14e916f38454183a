"""Progress of long work: a Rich bar or spinner on a terminal, nothing at all when piped.

The terminal runs use a pseudo-terminal for stdout and stderr (as a person at a shell has);
the piped runs capture both through pipes, as a script or ``| head`` does.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from test_dumps_capture import fake_xl  # noqa: F401  (the shared fake xl fixture)

from grantscope.cli.progress import Progress
from grantscope.sources.observation import COLLECT_STEPS, collect_observation

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
ENV = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
SPINNER_AND_BAR = ("━", "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏")


def _on_a_pty(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``grantscope argv`` with stdout and stderr on one pseudo-terminal: (status, text)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([GRANTSCOPE, *argv], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, cwd=cwd, env=ENV, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def _piped(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRANTSCOPE, *argv], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=120, check=False)


def test_bundle_export_shows_a_bar_on_a_terminal_and_nothing_piped(tmp_path: Path) -> None:
    code, text = _on_a_pty(["--demo", "bundle", "export", "-o", "a.tar.gz"], tmp_path)
    assert code == 0, text
    assert "bundle export" in text and "[2/9] xenstore: ok" in text
    assert any(mark in text for mark in SPINNER_AND_BAR)
    done = _piped(["--demo", "bundle", "export", "-o", "b.tar.gz"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress, no escape sequences
    assert "\x1b" not in done.stdout and "[2/9]" not in done.stdout
    assert done.stdout.startswith("SIMULATED") and "wrote b.tar.gz" in done.stdout


def test_xs_ls_recursive_spins_on_a_terminal_and_not_piped(tmp_path: Path) -> None:
    code, text = _on_a_pty(["--demo", "xs", "ls", "-r", "/"], tmp_path)
    assert code == 0, text
    assert "walking /" in text and '/local/domain/1/name = "web-frontend"' in text
    done = _piped(["--demo", "xs", "ls", "-r", "/"], tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    assert "walking" not in done.stdout and "\x1b" not in done.stdout


def test_a_disabled_progress_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("work", total=3, enabled=False) as bar:
        bar.update("one", completed=1)
        bar.note("a line")
    assert capsys.readouterr() == ("", "")


def test_report_collection_names_each_step(fake_xl: Path,  # noqa: F811
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{fake_xl}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("XENSTORED_PATH", str(fake_xl / "no-xenstored"))
    steps: list[str] = []
    collect_observation(interval=0.0, capture=True, step=steps.append)
    assert len(steps) == COLLECT_STEPS
    assert steps[:3] == ["XenStore", "two counter samples 0 s apart",
                         "capturing the g and e dumps"]


def test_lab_build_steps_go_to_the_progress_display_or_to_stderr(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    from grantscope.lab import build as lab_build

    def fake(root: Path, install_deps: bool) -> object:
        lab_build._say("apt-get download xen-hypervisor-4.17-amd64=4.17")
        lab_build._say("building dom0.cpio.gz")
        return root

    monkeypatch.setattr(lab_build, "_build_or_reuse", fake)
    heard: list[str] = []
    lab_build.build(tmp_path, on_step=heard.append)  # a terminal: the CLI's Progress hears
    assert heard == ["apt-get download xen-hypervisor-4.17-amd64=4.17",
                     "building dom0.cpio.gz"]
    assert capsys.readouterr().err == ""
    lab_build.build(tmp_path)  # piped: one line per step on stderr, as before
    assert capsys.readouterr().err.splitlines() == [
        "lab build: apt-get download xen-hypervisor-4.17-amd64=4.17",
        "lab build: building dom0.cpio.gz"]
