"""The one home of what differs between the Pythons grantscope runs on (3.9 to 3.13).

Debian 11 dom0s run Python 3.9, so the package cannot use what 3.10 and 3.11 added to the
language and the standard library.  Where grantscope wants one of those things, it takes the
stand-in from here, which is the real thing on a Python that has it and an equivalent on 3.9:

* :func:`slotted_dataclass`: ``dataclass(..., slots=True)``, which 3.10 added.  Model rows are
  kept by the hundred thousand (a large XenStore, a long dump), so they keep their slots on
  3.9 too rather than growing a ``__dict__`` each.
* :func:`zip_strict`: ``zip(..., strict=True)`` (3.10): a length mismatch is a ``ValueError``.
* :data:`UNION_TYPES` and :func:`type_hints`: ``typing.get_type_hints`` cannot evaluate an
  ``int | None`` annotation on 3.9 (``type.__or__`` is 3.10); the bundle decoder needs them.

Syntax (``match``, ``except*``) and names that only annotations use (``typing.Self``) need no
stand-in: the first is not used, the second is imported under ``TYPE_CHECKING``.  TOML reading
(``tomllib``, 3.11) has its own module, :mod:`grantscope._toml`, as it needs a third-party
package on 3.9 and this module must not.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import sys
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, Union, overload

__all__ = ["UNION_TYPES", "slotted_dataclass", "type_hints", "zip_strict"]

_T = TypeVar("_T")
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")


# -- dataclass(slots=True) ------------------------------------------------------------------------
def _frozen_getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _frozen_setstate(self: Any, state: list[Any]) -> None:
    # A frozen instance refuses setattr; pickle and copy restore it the way __init__ does.
    for f, value in zip(dataclasses.fields(self), state):
        object.__setattr__(self, f.name, value)


def _with_slots(cls: type[_T], frozen: bool) -> type[_T]:
    """``cls`` made again with ``__slots__`` for its fields, as 3.10's ``slots=True`` does."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} already specifies __slots__")
    inherited = {name for base in cls.__mro__[1:-1] for name in base.__dict__.get("__slots__", ())}
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    body = dict(cls.__dict__)
    body["__slots__"] = tuple(name for name in names if name not in inherited)
    for name in names:
        # A default is already in __init__; left as a class attribute it would hide the slot.
        body.pop(name, None)
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    if frozen:
        body["__getstate__"] = _frozen_getstate
        body["__setstate__"] = _frozen_setstate
    metaclass: Any = type(cls)
    made: type[_T] = metaclass(cls.__name__, cls.__bases__, body)
    made.__qualname__ = cls.__qualname__
    return made


def _slotted_dataclass(
    *, frozen: bool = False, eq: bool = True, order: bool = False
) -> Callable[[type[_T]], type[_T]]:
    """``dataclasses.dataclass(..., slots=True)`` on every Python."""

    def wrap(cls: type[_T]) -> type[_T]:
        if sys.version_info >= (3, 10):
            return dataclasses.dataclass(frozen=frozen, eq=eq, order=order, slots=True)(cls)
        return _with_slots(dataclasses.dataclass(frozen=frozen, eq=eq, order=order)(cls), frozen)

    return wrap


if TYPE_CHECKING:
    # The type checker sees the standard decorator, so it knows the fields and __init__.
    from dataclasses import dataclass as slotted_dataclass
else:
    slotted_dataclass = _slotted_dataclass


# -- zip(strict=True) -----------------------------------------------------------------------------
_UNEVEN = object()


def _zip_checked(iterables: tuple[Iterable[Any], ...]) -> Iterator[tuple[Any, ...]]:
    for items in itertools.zip_longest(*iterables, fillvalue=_UNEVEN):
        if any(item is _UNEVEN for item in items):
            raise ValueError("zip_strict() arguments have different lengths")
        yield items


@overload
def zip_strict(a: Iterable[_A], b: Iterable[_B], /) -> Iterator[tuple[_A, _B]]: ...
@overload
def zip_strict(
    a: Iterable[_A], b: Iterable[_B], c: Iterable[_C], /
) -> Iterator[tuple[_A, _B, _C]]: ...
@overload
def zip_strict(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]: ...
def zip_strict(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """``zip(*iterables, strict=True)``: ``ValueError`` when one runs out before the others."""
    if sys.version_info >= (3, 10):
        return zip(*iterables, strict=True)
    return _zip_checked(iterables)


# -- annotations written as X | Y -----------------------------------------------------------------
# What typing.get_origin() returns for a union: typing.Union, and types.UnionType for an
# ``int | None`` evaluated on 3.10 and later.
if sys.version_info >= (3, 10):
    import types

    UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)
else:
    UNION_TYPES = (Union,)

_UNION_NAME = "_grantscope_Union"


class _PipeToUnion(ast.NodeTransformer):
    """Rewrites ``A | B`` in an annotation into ``Union[A, B]``, which 3.9 can evaluate."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.BitOr):
            return node
        union = ast.Name(id=_UNION_NAME, ctx=ast.Load())
        pair = ast.Tuple(elts=[node.left, node.right], ctx=ast.Load())
        return ast.copy_location(ast.Subscript(value=union, slice=pair, ctx=ast.Load()), node)


def _evaluate(annotation: str, namespace: dict[str, Any]) -> Any:
    tree = _PipeToUnion().visit(ast.parse(annotation, mode="eval"))
    code = compile(ast.fix_missing_locations(tree), f"<annotation {annotation}>", "eval")
    return eval(code, {**namespace, _UNION_NAME: Union})


def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)`` for a class whose annotations may say ``X | Y``.

    On 3.9 the annotations (strings, under ``from __future__ import annotations``) are
    evaluated with each ``|`` read as ``Union``; unlike 3.9's ``get_type_hints`` (and like
    3.11's), a default of None does not make a field's type Optional.
    """
    if sys.version_info >= (3, 10):
        return typing.get_type_hints(cls)
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        # Names resolve as in 3.10+'s get_type_hints: the module's first, then the class's.
        namespace = {**vars(klass), **(vars(module) if module is not None else {})}
        # The class's own annotations only (a base's are read in its turn): on 3.9 they are
        # in the class namespace, not yet behind a lazy descriptor as from 3.14 on.
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if isinstance(annotation, str):
                annotation = _evaluate(annotation, namespace)
            hints[name] = annotation
    return hints
