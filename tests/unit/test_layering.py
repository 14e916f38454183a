"""The layers as a contract, and only grantscope.ui imports Textual.

The order (top to bottom; the rules and the reasons are in tests/layers.py)::

    grantscope.__main__ > cli > ui > bundle-export | metrics | lab > host
        > probing (+ probes) > sources | bundle-read > model > xen
        > base (grantscope, errors, safefile, safetext)

Every import counts, lazy (function-level) ones and ``TYPE_CHECKING`` ones included, and
``importlib.import_module`` with a literal name.  No import goes up, none goes sideways between
groups of one layer (so no cycle between layers can exist), and no string import crosses groups.
Within a group no modules import each other in a cycle, lazily or for typing either (why both
count: tests/layers.py).
"""

import json
import pkgutil
import subprocess
import sys

import pytest
from layers import (
    LAYERS,
    Import,
    all_imports,
    cycles,
    group_of,
    import_graph,
    imports_in,
    module_files,
    violations,
)

import grantscope

# Upward imports tolerated for a while, each with who removes it (none today).  An entry that no
# longer occurs fails the test below, so the list can only shrink.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


# Import cycles tolerated for a while, each with who removes it.  Like KNOWN_VIOLATIONS, an
# entry that no longer occurs fails a test, so the list can only shrink.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()  # may only shrink: it is empty


def _known(imp: Import) -> bool:
    return (imp.importer, imp.imported) in KNOWN_VIOLATIONS


def test_no_import_breaks_the_layers() -> None:
    imports = all_imports()
    assert len(imports) > 300, "the import scan found too little to be the whole package"
    problems = violations(imp for imp in imports if not _known(imp))
    assert problems == [], "\n".join(problems)


def test_known_violations_still_occur() -> None:
    """An allowlisted import that is gone must leave the list, so the list only shrinks."""
    seen = {(imp.importer, imp.imported) for imp in all_imports() if violations([imp])}
    assert KNOWN_VIOLATIONS - seen == set()


def _package_cycles() -> list[list[str]]:
    files = module_files()
    return cycles(import_graph(all_imports(files), files))


def test_no_import_cycle() -> None:
    found = [c for c in _package_cycles() if frozenset(c) not in KNOWN_CYCLES]
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_known_cycles_still_occur() -> None:
    """An allowlisted cycle that is gone must leave the list, so the list only shrinks."""
    assert KNOWN_CYCLES - {frozenset(c) for c in _package_cycles()} == set()


def _graph(*edges: str) -> dict[str, set[str]]:
    pairs = [edge.split(" -> ") for edge in edges]
    imports = [Import(importer, imported, 1) for importer, imported in pairs]
    return import_graph(imports, {name for pair in pairs for name in pair})


def test_a_cycle_is_found_however_long_and_a_chain_is_not() -> None:
    assert cycles(_graph("a -> b", "b -> c", "c -> d")) == []
    assert cycles(_graph("a -> b", "b -> a")) == [["a", "b"]]
    assert cycles(_graph("a -> b", "b -> c", "c -> a", "c -> d", "d -> e", "e -> d")) == [
        ["a", "b", "c"], ["d", "e"]]


def test_a_lazy_or_typing_import_closes_a_cycle_too() -> None:
    files = module_files()
    lazy = list(imports_in("def f():\n    from grantscope.xen import abi\n",
                           "grantscope.xen.errors", False, files))
    typing = list(imports_in("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from grantscope.xen.errors import XenError\n",
                             "grantscope.xen.abi", False, files))
    assert cycles(import_graph(lazy + typing, files)) == [
        ["grantscope.xen.abi", "grantscope.xen.errors"]]


def test_every_module_is_in_a_layer() -> None:
    files = module_files()
    assert "grantscope.probes.map_grant" in files and "grantscope.xen.abi" in files
    assert [name for name in files if group_of(name) is None] == []


def test_layer_order_is_as_documented() -> None:
    names = [[group for group, _ in layer] for layer in LAYERS]
    assert names[1:3] == [["cli"], ["ui"]]
    assert names.index(["host"]) < names.index(["probing"]) < names.index(["model"])
    assert names.index(["model"]) < names.index(["xen"]) == len(names) - 2


def _scan(source: str, module: str, *, package: bool = False) -> list[str]:
    return violations(imp for imp in imports_in(source, module, package, module_files())
                      if imp.imported.startswith("grantscope"))


@pytest.mark.parametrize("source", [
    "from grantscope.cli.report import collect_observation\n",
    "import grantscope.ui.app\n",
    "def f():\n    from grantscope.host.sim import SimHost\n    return SimHost\n",
    "from typing import TYPE_CHECKING\n"
    "if TYPE_CHECKING:\n    from grantscope.host.base import Host\n",
    "from ..host import base\n",
])
def test_an_upward_import_fails(source: str) -> None:
    """A fake model module importing upward, eagerly, lazily, for typing or relatively."""
    problems = _scan(source, "grantscope.model.fake")
    assert len(problems) == 1 and "upward (model -> " in problems[0], problems


def test_string_import_across_groups_fails_and_within_a_group_passes() -> None:
    across = _scan("import importlib\nimportlib.import_module('grantscope.model.findings')\n",
                   "grantscope.bundle.fake")
    assert len(across) == 1 and "by string" in across[0]
    prefix = _scan("import importlib\ndef f(n):\n"
                   "    return importlib.import_module(f'grantscope.ui.{n}')\n",
                   "grantscope.xen.fake")
    assert len(prefix) == 1 and "by string" in prefix[0]
    assert _scan("import importlib\nimportlib.import_module(f'grantscope.probes.{x}')\n",
                 "grantscope.probing.registry") == []


def test_sideways_and_unlisted_imports_fail() -> None:
    sideways = _scan("from grantscope.lab import paths\n", "grantscope.metrics.fake")
    assert len(sideways) == 1 and "sideways" in sideways[0]
    unlisted = _scan("from grantscope.newpkg import x\n", "grantscope.cli.fake")
    assert len(unlisted) == 1 and "in no layer" in unlisted[0]


def test_downward_and_own_group_imports_pass() -> None:
    source = ("from grantscope.host.base import Host\nfrom grantscope.xen import abi\n"
              "from grantscope.errors import UsageError\nfrom . import codec\n")
    assert _scan(source, "grantscope.bundle.export") == []
    assert _scan("from grantscope.bundle.reader import read_bundle\n",
                 "grantscope.host.replay") == []


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
