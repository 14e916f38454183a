"""A command imports only its own module: ``--version`` none, ``xs read`` only ``cli.xs``.

The table that makes this possible (``COMMAND_HOMES``) is checked against what the command
modules really register, so a new command cannot be left out of it unnoticed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from grantscope.cli import COMMAND_HOMES, COMMAND_MODULES, _command_word, build_parser

PROBE = """
import json, sys
from grantscope.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.startswith("grantscope.cli."))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the parser has no sub-commands")


def _loaded_after(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          timeout=60, check=False)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return int(report["code"]), list(report["loaded"])


def test_the_table_names_the_module_that_registers_each_command() -> None:
    commands = _subcommands(build_parser())
    assert set(commands) == set(COMMAND_HOMES)
    for word, sub in commands.items():
        run = sub.get_default("run")
        if run is None:  # a group (xs, probe, ...): its sub-commands carry run
            run = next(iter(_subcommands(sub).values())).get_default("run")
        assert run.__module__ == f"grantscope.cli.{COMMAND_HOMES[word]}", word
    assert set(COMMAND_HOMES.values()) == set(COMMAND_MODULES)


def test_version_imports_no_command_module() -> None:
    code, loaded = _loaded_after("--version")
    assert code == 0
    assert loaded == ["grantscope.cli.output"]


def test_xs_read_imports_only_the_xs_module() -> None:
    code, loaded = _loaded_after("xs", "read", "/local/domain/0/domid")
    assert code in (0, 2)  # 2 off Xen: no XenStore to connect to
    commands = [m for m in loaded if m.removeprefix("grantscope.cli.") in COMMAND_MODULES]
    assert commands == ["grantscope.cli.xs"]


@pytest.mark.parametrize(("argv", "word"), [
    (["xs", "read", "/a"], "xs"),
    (["--demo", "-vv", "--theme", "nord", "report"], "report"),
    (["--readonly", "--theme=nord", "--verbose", "map", "1", "2"], "map"),
    (["--version"], None),
    (["--help"], None),
    (["--dem", "xs"], None),  # an abbreviation: the whole parser decides
    ([], None),
])
def test_the_command_word_follows_the_global_options(argv: list[str], word: str | None) -> None:
    assert _command_word(argv) == word


def test_an_unknown_command_is_refused_naming_every_command(
        capsys: pytest.CaptureFixture[str]) -> None:
    from grantscope.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["nosuch"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err
    for word in COMMAND_HOMES:
        assert word in err
