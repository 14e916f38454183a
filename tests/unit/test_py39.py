"""grantscope runs on Python 3.9 (Debian 11's dom0), kept so on a newer host too.

A host with Python 3.11 cannot run 3.9, so these tests read the sources instead, with what
catches each kind of slip:

* ``ast.parse(..., feature_version=(3, 9))`` rejects the 3.10+ *syntax* it knows: ``match``
  statements (3.10) and ``except*`` (3.11), and on a 3.12+ host ``type`` statements and
  generic ``def f[T]``.  It is best effort: it accepts parenthesized context managers (3.9's
  own parser does too), ``a[*b]`` and ``*args: *Ts`` (3.11; ruff with ``target-version =
  "py39"`` reports those) and anything that is only a *runtime* difference.
* The runtime differences that no parser sees are looked for by name: ``X | Y`` where it is
  evaluated (an annotation without ``from __future__ import annotations``, an ``isinstance``
  argument), ``zip(strict=)``, ``dataclass(slots=/kw_only=)``, and standard-library names
  that 3.9 lacks.  mypy (``python_version = "3.9"``) reports these in ``grantscope/`` too, but
  it does not check ``tests/``, ``bench/``, ``scripts/`` or ``probes/``.
* The declared version, ruff's target and mypy's must name the same Python, or the tools
  would check for a Python the package does not promise (or the other way round).

``grantscope/_compat.py`` (and ``grantscope/_toml.py`` for ``tomllib``) are the modules allowed
to name the new things: behind a version check, they use them where there and replace them
where not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from grantscope._toml import tomllib

ROOT = Path(__file__).resolve().parents[2]
OLDEST = (3, 9)
# Checkout folders holding Python: probes/ and themes/ are linked into grantscope/ as well.
SOURCE_DIRS = ("grantscope", "probes", "tests", "bench", "scripts")
COMPAT = {ROOT / "grantscope" / "_compat.py", ROOT / "grantscope" / "_toml.py"}

# (module, name): standard-library names added after 3.9, as import-from or module.attribute.
NEWER_NAMES = {
    ("datetime", "UTC"),  # 3.11
    ("typing", "Self"), ("typing", "TypeAlias"), ("typing", "ParamSpec"),  # 3.11, 3.10, 3.10
    ("typing", "TypeGuard"), ("typing", "Concatenate"), ("typing", "LiteralString"),
    ("typing", "Never"), ("typing", "assert_never"), ("typing", "reveal_type"),
    ("typing", "Required"), ("typing", "NotRequired"), ("typing", "Unpack"),
    ("typing", "TypeVarTuple"), ("typing", "dataclass_transform"), ("typing", "override"),
    ("types", "NoneType"), ("types", "EllipsisType"), ("types", "UnionType"),  # 3.10
    ("enum", "StrEnum"), ("enum", "verify"), ("enum", "ReprEnum"),  # 3.11
    ("asyncio", "timeout"), ("asyncio", "TaskGroup"), ("asyncio", "Runner"),  # 3.11
    ("contextlib", "chdir"), ("contextlib", "aclosing"),  # 3.11, 3.10
    ("hashlib", "file_digest"),  # 3.11
    ("itertools", "pairwise"), ("itertools", "batched"),  # 3.10, 3.12
    ("dataclasses", "KW_ONLY"),  # 3.10
    ("inspect", "get_annotations"),  # 3.10
    ("sys", "orig_argv"), ("sys", "exception"),  # 3.10, 3.11
}
NEWER_MODULES = {"tomllib"}  # 3.11: grantscope._toml has the stand-in
NEWER_BUILTINS = {"aiter", "anext", "ExceptionGroup", "BaseExceptionGroup", "EncodingWarning"}
# Keyword arguments 3.9 refuses (TypeError at the call): function name -> keywords.
NEWER_KEYWORDS = {
    "zip": {"strict"},  # 3.10
    "dataclass": {"slots", "kw_only", "match_args"},  # 3.10
    "bisect": {"key"}, "bisect_left": {"key"}, "bisect_right": {"key"},  # 3.10
    "insort": {"key"}, "insort_left": {"key"}, "insort_right": {"key"},
}


def _sources() -> Iterator[Path]:
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            # the links grantscope/probes and grantscope/themes: their files are read once
            if path.resolve() == path and "__snapshots__" not in path.parts:
                yield path


SOURCES = list(_sources())


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def test_the_sources_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"grantscope/_compat.py", "probes/pingpong.py", "tests/pilot.py",
            "scripts/junit_summary.py"} <= names
    assert len(SOURCES) > 250


@pytest.mark.parametrize("folder", SOURCE_DIRS)
def test_every_file_parses_as_python_39(folder: str) -> None:
    failed = []
    for path in SOURCES:
        if path.relative_to(ROOT).parts[0] != folder:
            continue
        try:
            ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=OLDEST)
        except SyntaxError as err:
            failed.append(f"{path.relative_to(ROOT)}:{err.lineno}: {err.msg}")
    assert not failed, "syntax 3.9 lacks:\n" + "\n".join(failed)


def _annotations(tree: ast.Module) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg,
                        args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    yield arg.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def _postponed(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names)
               for node in tree.body)


def _has_pipe(node: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node))


# Operands that make ``a | b`` a union of types (a TypeError on 3.9), never a bitwise or.
_TYPE_NAMES = {"int", "str", "bytes", "float", "bool", "complex", "list", "dict", "tuple", "set",
               "frozenset", "bytearray", "memoryview", "type", "object"}


def _is_type_union(node: ast.AST) -> bool:
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)):
        return False
    for side in (node.left, node.right):
        if ((isinstance(side, ast.Constant) and side.value is None)
                or (isinstance(side, ast.Name) and side.id in _TYPE_NAMES)
                or isinstance(side, ast.Subscript) or _is_type_union(side)):
            return True
    return False


def test_pipe_unions_are_never_evaluated() -> None:
    """``X | Y`` of types is a TypeError on 3.9 wherever it is evaluated.

    An annotation is evaluated unless the module has ``from __future__ import annotations``;
    an ``isinstance`` argument or an alias (``Buffer = bytes | bytearray``) always is.
    """
    found = []
    for path in SOURCES:
        tree = _parse(path)
        annotations = list(_annotations(tree))
        seen: set[int] = set()  # nodes inside one already judged: one finding per expression
        if _postponed(tree):
            seen = {id(n) for a in annotations for n in ast.walk(a)}
        else:
            for a in annotations:
                if _has_pipe(a):
                    found.append(f"{_where(path, a)}: annotation evaluated at definition (no "
                                 "'from __future__ import annotations')")
                    seen.update(id(n) for n in ast.walk(a))
        for node in ast.walk(tree):
            if id(node) in seen:
                continue
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2
                    and _has_pipe(node.args[1])):
                found.append(f"{_where(path, node)}: {node.func.id}(x, A | B): use (A, B)")
            elif _is_type_union(node):
                found.append(f"{_where(path, node)}: {ast.unparse(node)} evaluated: use Union")
            else:
                continue
            seen.update(id(n) for n in ast.walk(node))
    assert not found, "\n".join(found)


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def test_no_name_or_keyword_that_39_lacks() -> None:
    found = []
    for path in SOURCES:
        if path in COMPAT:
            continue
        # module alias -> module ("import datetime as _dt")
        modules: dict[str, str] = {}
        tree = _parse(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    modules[alias.asname or alias.name] = alias.name
                    if alias.name.split(".")[0] in NEWER_MODULES:
                        found.append(f"{_where(path, node)}: import {alias.name}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                if (node.module or "").split(".")[0] in NEWER_MODULES:
                    found.append(f"{_where(path, node)}: from {node.module} import")
                found += [f"{_where(path, node)}: from {node.module} import {alias.name}"
                          for alias in node.names if (node.module, alias.name) in NEWER_NAMES]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and (modules.get(node.value.id), node.attr) in NEWER_NAMES):
                found.append(f"{_where(path, node)}: {node.value.id}.{node.attr}")
            elif isinstance(node, ast.Name) and node.id in NEWER_BUILTINS:
                found.append(f"{_where(path, node)}: {node.id}")
            elif isinstance(node, ast.Call):
                refused = NEWER_KEYWORDS.get(_called_name(node), set())
                found += [f"{_where(path, node)}: {_called_name(node)}({kw.arg}=...)"
                          for kw in node.keywords if kw.arg in refused]
    assert not found, ("3.9 lacks (grantscope._compat and _toml have stand-ins):\n"
                       + "\n".join(found))


def test_typing_only_names_stay_under_type_checking() -> None:
    """typing_extensions is not a dependency: what comes from it is for the type checker."""
    found = []
    for path in SOURCES:
        tree = _parse(path)
        guarded = {id(n) for node in tree.body if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for n in ast.walk(node)}
        found += [_where(path, node) for node in ast.walk(tree)
                  if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in guarded
                  and "typing_extensions" in ast.unparse(node)]
    assert not found, "typing_extensions imported at run time:\n" + "\n".join(found)


def _version(text: str) -> tuple[int, int]:
    """``(3, 9)`` from ``"3.9"``, or from ruff's ``"py39"`` (one digit of major version)."""
    text = f"{text[2]}.{text[3:]}" if text.startswith("py") else text
    major, minor = text.split(".")
    return int(major), int(minor)


def test_declared_python_and_the_tools_targets_agree() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requires = config["project"]["requires-python"]
    assert re.fullmatch(r">=\d+\.\d+", requires), requires
    assert _version(requires[2:]) == OLDEST
    assert _version(config["tool"]["ruff"]["target-version"]) == OLDEST
    assert _version(config["tool"]["mypy"]["python_version"]) == OLDEST
    # Where the standard library has no TOML reader, the package depends on tomli.
    tomli = [d for d in config["project"]["dependencies"] if d.startswith("tomli")]
    assert tomli == ["tomli>=1.1; python_version < '3.11'"]
