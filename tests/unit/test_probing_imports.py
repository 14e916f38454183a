"""The probe engine's modules import each other without a cycle, lazy or by string.

The layer test (test_layering.py) allows any import inside one group; this one checks that
the probing group (``grantscope.probing``, ``grantscope.probes``) is itself a tree of
dependencies: context and records at the bottom, then steps, probe, registry, the probes,
engine and runner, so no module needs a function-level import to dodge a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable

from layers import Import, all_imports, module_files

PROBING = ("grantscope.probing", "grantscope.probes")


def _in_probing(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PROBING)


def import_graph(imports: Iterable[Import], modules: Iterable[str]) -> dict[str, set[str]]:
    """Who imports whom among the probing modules; a string import of a package (the
    registry's ``f"grantscope.probes.{name}"``) counts as importing each of its modules."""
    known = [m for m in modules if _in_probing(m)]
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in imports:
        if imp.importer not in graph or not _in_probing(imp.imported):
            continue
        targets = {imp.imported}
        if imp.by_string:
            targets |= {m for m in known if m.startswith(imp.imported + ".")}
        graph[imp.importer] |= {t for t in targets if t in graph and t != imp.importer}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_the_probing_modules_import_each_other_without_a_cycle() -> None:
    files = module_files()
    assert find_cycle(import_graph(all_imports(files), files)) == []


def test_a_lazy_or_string_cycle_is_found() -> None:
    modules = ["grantscope.probing.engine", "grantscope.probing.registry",
               "grantscope.probes", "grantscope.probes.map_grant"]
    lazy = [Import("grantscope.probing.engine", "grantscope.probing.registry", 400),
            Import("grantscope.probing.registry", "grantscope.probing.engine", 8)]
    assert find_cycle(import_graph(lazy, modules)) == [
        "grantscope.probing.engine", "grantscope.probing.registry", "grantscope.probing.engine"]
    by_string = [Import("grantscope.probing.registry", "grantscope.probes", 20, by_string=True),
                 Import("grantscope.probes.map_grant", "grantscope.probing.engine", 8),
                 Import("grantscope.probing.engine", "grantscope.probing.registry", 9)]
    assert set(find_cycle(import_graph(by_string, modules))) == {
        "grantscope.probing.engine", "grantscope.probing.registry", "grantscope.probes.map_grant"}
    assert find_cycle(import_graph(lazy[:1], modules)) == []
