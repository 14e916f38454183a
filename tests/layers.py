"""grantscope's layers as a contract: the order, and an import graph read from the source (AST).

The layers, top to bottom; a module may import its own group and any lower layer, never a higher
layer, nor another group of its own layer (groups of one layer are independent)::

    entry     grantscope.__main__
    cli       grantscope.cli                      the command line (starts the TUI)
    ui        grantscope.ui                       the TUI (the only layer that imports Textual)
    export    bundle-export | metrics | lab       bundle export (collect, collectors,
                                                  host_collectors, sim_collectors, export),
                                                  the Prometheus exporter, the Xen lab
    host      grantscope.host                     the Host interface: xen | replay | sim
    probing   grantscope.probing, grantscope.probes   the probe engine and the probes it runs
    sources   sources | bundle-read               read-only observers; reading bundles
                                                  (format, codec, reader, check, diff, redact)
    model     grantscope.model                    pure functions over snapshots
    xen       grantscope.xen                      device and XenStore bindings, the ABI
    base      grantscope, errors, safefile, safetext,  the package, error types, safe text/files,
              closing, _compat, _toml             the with-protocol, what differs between
                                                  Pythons (3.9 to 3.13)

``bundle`` is split: host.replay reads bundles (so reading sits below host) while export
collects from a Host (so it sits above).  Probes read a few facts through sources (the peer's
ports in pingpong, the self-map evidence text), so probing sits just above sources.
Themes are data (``themes/``, read by ui.themes).

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, and
``importlib.import_module`` with a literal name (or an f-string's literal prefix).  A string
import may only load a module of the importer's own group (a registry loading its plugins: cli
commands, probes); across groups it hides a dependency, so use a plain import.

No module takes part in an import cycle, within a group too (:func:`cycles`).  Every import
counts here as well.  A lazy (function-level) import does not fail at import time, but its two
modules still need each other: a design cycle.  A ``TYPE_CHECKING`` import creates no cycle at
run time, but counts all the same: the two modules cannot be read, changed or type-checked one
without the other.  The way out is to give the lower module what it needs (a ``Protocol`` of
the few members it uses, callables, or a third module both import).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "grantscope"

# Top to bottom: each layer is a tuple of groups; a group is (name, module prefixes).
LAYERS: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] = (
    (("entry", ("grantscope.__main__",)),),
    (("cli", ("grantscope.cli",)),),
    (("ui", ("grantscope.ui",)),),
    (("bundle-export", ("grantscope.bundle.collect", "grantscope.bundle.collectors",
                        "grantscope.bundle.host_collectors", "grantscope.bundle.sim_collectors",
                        "grantscope.bundle.export")),
     ("metrics", ("grantscope.metrics",)),
     ("lab", ("grantscope.lab",))),
    (("host", ("grantscope.host",)),),
    (("probing", ("grantscope.probing", "grantscope.probes")),),
    (("sources", ("grantscope.sources",)),
     ("bundle-read", ("grantscope.bundle",))),
    (("model", ("grantscope.model",)),),
    (("xen", ("grantscope.xen",)),),
    (("base", ("grantscope", "grantscope.errors", "grantscope.safefile",
               "grantscope.safetext", "grantscope.closing", "grantscope._compat",
               "grantscope._toml")),),
)


@dataclass(frozen=True)
class Import:
    """One import found in the source: who, what, where, and whether by string."""

    importer: str
    imported: str
    line: int
    by_string: bool = False

    def __str__(self) -> str:
        how = " (importlib string)" if self.by_string else ""
        return f"{self.importer}:{self.line} imports {self.imported}{how}"


def group_of(module: str) -> tuple[int, str] | None:
    """(layer index, group name) of ``module`` by its longest listed prefix; None if unlisted.

    The bare package ``grantscope`` matches only itself, never its submodules.
    """
    best: tuple[int, int, str] | None = None
    for index, layer in enumerate(LAYERS):
        for name, prefixes in layer:
            for prefix in prefixes:
                exact = prefix == "grantscope"
                matches = module == prefix or (not exact and module.startswith(prefix + "."))
                if matches and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), index, name)
    return None if best is None else (best[1], best[2])


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (following the probes link)."""
    found: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    probes = package / "probes"
    if probes.is_symlink():  # rglob does not follow the link to the top-level probes/
        for path in sorted(probes.resolve().glob("*.py")):
            name = "grantscope.probes" + ("" if path.stem == "__init__" else "." + path.stem)
            found[name] = path
    return found


def _dynamic_target(call: ast.Call) -> str | None:
    func = call.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module"
             and isinstance(func.value, ast.Name) and func.value.id == "importlib")
    if not (named or (isinstance(func, ast.Name) and func.id == "import_module")):
        return None
    if not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        head = arg.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value.rstrip(".")
    return None


def imports_in(source: str, module: str, is_package: bool,
               known: Iterable[str]) -> Iterator[Import]:
    """Every grantscope import in ``source`` (of ``module``), at any depth of the tree."""
    known_set = set(known)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield Import(module, sub if sub in known_set else target, node.lineno)
        elif isinstance(node, ast.Call):
            target = _dynamic_target(node)
            if target is not None:
                yield Import(module, target, node.lineno, by_string=True)


def all_imports(files: dict[str, Path] | None = None) -> list[Import]:
    """The grantscope imports of every module of the package."""
    files = module_files() if files is None else files
    found: list[Import] = []
    for name, path in files.items():
        for imp in imports_in(path.read_text(), name, path.stem == "__init__", files):
            if imp.imported == "grantscope" or imp.imported.startswith("grantscope."):
                found.append(imp)
    return found


def violations(imports: Iterable[Import]) -> list[str]:
    """What breaks the contract: upward, sideways, string-across-groups and unlisted imports."""
    problems: list[str] = []
    for imp in imports:
        src, dst = group_of(imp.importer), group_of(imp.imported)
        if src is None or dst is None:
            unlisted = imp.importer if src is None else imp.imported
            problems.append(f"{imp}: {unlisted} is in no layer (add it to tests/layers.py)")
        elif src[1] == dst[1]:
            continue
        elif imp.by_string:
            problems.append(f"{imp}: import across groups by string ({src[1]} -> {dst[1]}); "
                            "use a plain import")
        elif dst[0] < src[0]:
            problems.append(f"{imp}: upward ({src[1]} -> {dst[1]})")
        elif dst[0] == src[0]:
            problems.append(f"{imp}: sideways between independent groups "
                            f"({src[1]} -> {dst[1]})")
    return problems


def import_graph(imports: Iterable[Import], modules: Iterable[str]) -> dict[str, set[str]]:
    """importer -> the package modules it imports (an import of ``pkg.mod.name`` counts as
    one of ``pkg.mod``); string imports count like any other."""
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for imp in imports:
        target = imp.imported
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in known and target != imp.importer:
            graph.setdefault(imp.importer, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: each strongly connected component of two or more
    modules, sorted (Tarjan's algorithm, iterative so a deep chain cannot hit the recursion
    limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)
