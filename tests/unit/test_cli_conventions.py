"""The conventions a user expects from every command: one exit-status rule, quiet pipes, help.

The rule (``grantscope.cli.EXIT_STATUS``, also in the README): 0 ok, 1 the operation failed
(explained), 2 bad usage or a refusal. The sweep runs every subcommand of the real parser
through ``main``; the rest run the installed ``grantscope`` as a user would.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grantscope.bundle.collectors import ExportSources, standard_collectors
from grantscope.bundle.export import export_bundle
from grantscope.cli import EXIT_STATUS, build_parser, main
from grantscope.host.sim import SimHost

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
ON_XEN = os.path.exists("/sys/hypervisor/type") or os.path.exists("/proc/xen/capabilities")
README = Path(__file__).resolve().parents[2] / "README.md"
DUMP = Path(__file__).parent / "fixtures" / "dumps" / "from-xen-facts-suse-kb-7018590-g.txt"


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[
        tuple[tuple[str, ...], bool]]:
    """Every (command path, is a group) reachable from ``parser``."""
    out: list[tuple[tuple[str, ...], bool]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = (*prefix, name)
                children = _commands(sub, path)
                out.append((path, bool(children)))
                out.extend(children)
    return out


COMMANDS = _commands(build_parser())


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_sweep_sees_every_command() -> None:
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"doctor", "xs ls", "probe run", "bundle inspect", "dump analyze", "lab run"} <= paths
    assert len(paths) >= 20


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_help_is_0_and_a_bad_option_is_2(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _exit([*path, "--help"], capsys)
    assert code == 0 and "usage: grantscope" in out
    code, _, err = _exit([*path, "--no-such-option"], capsys)
    assert code == 2, err
    assert "Traceback" not in err


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_help_says_what_it_does(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    # 'xs ls --help' was a bare usage line (issue 16): each command's own --help says what
    # it does, not only its usage and options
    description = _leaf(path).description
    assert description, f"grantscope {' '.join(path)} --help has no description"
    code, out, _ = _exit([*path, "--help"], capsys)
    assert code == 0
    assert "".join(description.split()) in "".join(out.split())  # however it is wrapped


@pytest.mark.parametrize("path", [p for p, group in COMMANDS if group], ids=" ".join)
def test_a_group_without_its_subcommand_is_bad_usage(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _exit(list(path), capsys)
    assert code == 2 and "usage:" in err


def test_the_readme_states_the_same_rule() -> None:
    text = README.read_text()
    for code, _ in EXIT_STATUS:
        assert f"`{code}`" in text, f"README does not explain exit status {code}"
    assert "2 bad usage or no Xen" not in text  # the old, narrower wording


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRANTSCOPE, *args], capture_output=True, text=True, timeout=60,
                          input=stdin)


def test_missing_files_are_bad_usage_for_every_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    for argv in (["dump", "analyze", missing], ["bundle", "inspect", missing],
                 ["bundle", "diff", missing, missing]):
        proc = _run(*argv)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "nope" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(ON_XEN, reason="checks the no-Xen path; this machine runs on Xen")
def test_no_xen_is_a_refusal_for_doctor_as_for_the_device_commands() -> None:
    assert _run("doctor").returncode == 2
    assert _run("xs", "ls", "/").returncode == 2


def test_probe_run_help_names_the_probes_parameters() -> None:
    proc = _run("probe", "run", "map-grant", "--help")
    assert proc.returncode == 0
    assert "domid=DOMID" in proc.stdout and "gref=GREF" in proc.stdout
    assert "map a grant reference" in proc.stdout
    proc = _run("probe", "run", "nosuch", "--help")
    assert proc.returncode == 2
    assert "no probe named 'nosuch'" in proc.stderr and "map-grant" in proc.stderr
    proc = _run("probe", "run", "--help")
    assert proc.returncode == 0 and "KEY=VALUE" in proc.stdout


def _closed_pipe(*args: str) -> tuple[int, str]:
    """Run with stdout a pipe whose reader is already gone (as ``| head`` after one line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([GRANTSCOPE, *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    target = tmp_path_factory.mktemp("bundle") / "b.tar.gz"
    export_bundle(str(target), standard_collectors(ExportSources(host=SimHost(frozen_at=5.0))))
    return str(target)


@pytest.mark.parametrize("argv", [
    ["probe", "list"], ["probe", "list", "--json"], ["dump", "analyze", str(DUMP)],
    ["bundle", "inspect", "BUNDLE"], ["probe", "run", "map-grant", "--help"], ["--help"],
    ["--demo", "xs", "ls", "-r", "/"],
], ids=lambda argv: " ".join(Path(a).name for a in argv))
def test_output_into_a_closed_pipe_is_quiet(argv: list[str], bundle_file: str) -> None:
    argv = [bundle_file if a == "BUNDLE" else a for a in argv]
    code, err = _closed_pipe(*argv)
    assert err == ""
    assert code == 141  # as any Unix tool whose reader went away
    # and the same command into a live pipe works (it is the closed pipe that is quiet)
    assert _run(*argv).returncode == 0


def test_piping_into_head_prints_one_line_and_no_traceback() -> None:
    proc = subprocess.run(f"{GRANTSCOPE} probe list | head -1", shell=True, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.count("\n") == 1
    assert proc.stderr == ""


def test_verbose_logs_to_stderr_only() -> None:
    proc = _run("-v", "probe", "list", "--json")
    assert proc.returncode == 0
    assert proc.stdout.lstrip().startswith("{")  # stdout stays one JSON document
    assert "grantscope: INFO" in proc.stderr and "exit status 0" in proc.stderr
    quiet = _run("probe", "list", "--json")
    assert quiet.stderr == ""
    debug = _run("-vv", "probe", "list")
    assert "DEBUG" in debug.stderr


def test_the_readme_names_every_command_without_json() -> None:
    text = " ".join(README.read_text().split())
    without = [" ".join(p) for p, group in COMMANDS if not group
               and "--json" not in _leaf(p)._option_string_actions]
    assert without, "the sweep found no command without --json"
    claim = text[text.index("Every command takes `--json`"):][:300]
    for name in without:
        assert f"`{name}`" in claim, f"README claims --json for {name}, which has none"


def _leaf(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser
