"""Only grantscope.ui may import Textual: every other module imports without it."""

import json
import pkgutil
import subprocess
import sys

import grantscope


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(grantscope.__path__, "grantscope."):
        if info.name == "grantscope.ui" or info.name.startswith("grantscope.ui."):
            continue
        names.append(info.name)
    return sorted(names)


def test_module_list_is_not_empty() -> None:
    names = _modules()
    assert "grantscope.host.sim" in names and "grantscope.cli.tui" in names


def test_no_textual_outside_ui() -> None:
    code = (
        "import importlib, json, sys\n"
        f"names = {_modules()!r}\n"
        "failed = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except Exception as e:\n"
        "        failed[n] = repr(e)\n"
        "print(json.dumps({'textual': sorted(m for m in sys.modules if m == 'textual' or "
        "m.startswith('textual.')), 'failed': failed}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert result["textual"] == []


def test_cli_parser_does_not_import_textual() -> None:
    code = ("import sys; from grantscope.cli import build_parser; build_parser(); "
            "print(any(m == 'textual' or m.startswith('textual.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False"
