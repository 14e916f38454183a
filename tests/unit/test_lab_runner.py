"""What 'lab run' hands to dom0: the job script, its environment, the results directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grantscope.lab.build import LabBuild
from grantscope.lab.runner import job_environment, job_script, new_results_dir

BUILD = LabBuild(Path("/lab/builds/k"), "k", "4.17", "linux-image-x", "1", "6.1.0-56-amd64")


def test_environment_keeps_path_venv_and_grantscope_vars_only() -> None:
    caller = {"PATH": "/v/bin:/usr/bin", "VIRTUAL_ENV": "/v", "SECRET_TOKEN": "x",
              "GRANTSCOPE_DEBUG": "1", "CI": "true", "HOME": "/home/me", "TERM": "xterm"}
    env = job_environment(caller, results=Path("/r"), build=BUILD, lab_root=Path("/lab"),
                          tty=False)
    assert env["PATH"] == "/v/bin:/usr/bin" and env["VIRTUAL_ENV"] == "/v"
    assert env["GRANTSCOPE_DEBUG"] == "1" and env["CI"] == "true"
    assert "SECRET_TOKEN" not in env
    assert env["HOME"] == "/root" and env["TERM"] == "dumb"
    assert env["GRANTSCOPE_IN_LAB"] == "1"
    assert env["GRANTSCOPE_LAB_RESULTS"] == "/r"
    assert env["GRANTSCOPE_LAB_BUILD"] == "/lab/builds/k"
    assert env["GRANTSCOPE_LAB_DIR"] == "/lab"


def test_job_script_cds_exports_and_execs_with_quoting(tmp_path: Path) -> None:
    workdir = tmp_path / "it's here"
    workdir.mkdir()
    script = job_script(["sh", "-c", 'printf "%s|%s|%s" "$(pwd)" "$GS_T" "$1"', "x", "a b;c"],
                        cwd=workdir, env={"GS_T": "v$1 'q'", "PATH": "/usr/bin:/bin"})
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{workdir}|v$1 'q'|a b;c"


def test_job_script_fails_clearly_without_the_directory(tmp_path: Path) -> None:
    script = job_script(["true"], cwd=tmp_path / "absent", env={})
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 125
    assert "no directory" in proc.stderr


def test_shell_job_is_an_interactive_bash() -> None:
    script = job_script(None, cwd=Path("/w"), env={})
    assert script.rstrip().endswith("exec /bin/bash --norc --noprofile -i")
    assert "export PS1='gslab-dom0:\\w# '" in script


def test_results_dirs_are_unique(tmp_path: Path) -> None:
    dirs = {new_results_dir(tmp_path) for _ in range(20)}
    assert len(dirs) == 20
    assert all(d.is_dir() and d.parent == tmp_path / "runs" for d in dirs)


@pytest.mark.parametrize("command", [["build"], ["build", "--json"], ["info"],
                                     ["run", "--", "true"]])
def test_an_unusable_lab_directory_is_one_clear_error(command: list[str], tmp_path: Path) -> None:
    """GRANTSCOPE_LAB_DIR under a file: every lab command names the directory and the variable
    (a traceback from the first mkdir before)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**os.environ, "GRANTSCOPE_LAB_DIR": str(blocker / "lab")}
    proc = subprocess.run([sys.executable, "-m", "grantscope", "lab", *command],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    said = proc.stdout if "--json" in command else proc.stderr
    assert f"the lab directory {blocker / 'lab'} cannot be created: Not a directory" in said
    assert "Set GRANTSCOPE_LAB_DIR to a directory this user can write" in said
