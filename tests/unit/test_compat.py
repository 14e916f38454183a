"""grantscope._compat and _toml: each stand-in behaves as the 3.10/3.11 feature it replaces.

The public names take the standard path on the Python running the test; the 3.9 paths
(``_with_slots``, ``_zip_checked``, ``_evaluate``) are also called directly, so a 3.11 host
checks the code that only a 3.9 host would otherwise run.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import typing
from typing import Any, Optional, Union

import pytest

from grantscope import _compat
from grantscope._compat import UNION_TYPES, slotted_dataclass, type_hints, zip_strict
from grantscope._toml import tomllib


@slotted_dataclass(frozen=True)
class _Row:
    domid: int
    name: str | None = None
    refs: tuple[int, ...] = ()


@slotted_dataclass()
class _Mutable:
    closed: bool = dataclasses.field(default=False)


@dataclasses.dataclass(frozen=True)
class _Plain:
    domid: int
    name: str | None = None


_SlowRow = _compat._with_slots(_Plain, frozen=True)


@pytest.mark.parametrize("cls", [_Row, _SlowRow], ids=["stdlib-path", "3.9-path"])
def test_a_slotted_frozen_row_has_slots_and_no_dict(cls: Any) -> None:
    row = cls(1, "a")
    assert cls.__slots__ == ("domid", "name", "refs")[: len(dataclasses.fields(cls))]
    assert not hasattr(row, "__dict__")
    assert row == cls(1, "a") and hash(row) == hash(cls(1, "a")) and row != cls(2, "a")
    assert cls(3).name is None  # the default, kept though the class attribute is gone
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.domid = 2
    assert repr(row).startswith(f"{cls.__qualname__}(domid=1, name='a'")


@pytest.mark.parametrize("cls", [_Row, _SlowRow], ids=["stdlib-path", "3.9-path"])
def test_a_slotted_frozen_row_copies_and_pickles(cls: Any) -> None:
    row = cls(7, "x")
    assert copy.copy(row) == row and copy.deepcopy(row) == row
    assert dataclasses.replace(row, domid=8) == cls(8, "x")
    if cls is _Row:  # module-level: pickle finds it by name
        assert pickle.loads(pickle.dumps(row)) == row


def test_a_mutable_slotted_row_keeps_its_default_and_refuses_new_attributes() -> None:
    row = _Mutable()
    assert row.closed is False
    row.closed = True
    assert row.closed is True
    with pytest.raises(AttributeError):
        row.other = 1  # type: ignore[attr-defined]


def test_slots_are_not_declared_twice() -> None:
    with pytest.raises(TypeError, match="already specifies __slots__"):
        _compat._with_slots(_Row, frozen=True)


@pytest.mark.parametrize("zipper", [zip_strict, lambda *its: _compat._zip_checked(its)],
                         ids=["stdlib-path", "3.9-path"])
def test_zip_strict_pairs_even_iterables_and_refuses_uneven_ones(zipper: Any) -> None:
    assert list(zipper([1, 2], "ab")) == [(1, "a"), (2, "b")]
    assert list(zipper([1], "a", (None,))) == [(1, "a", None)]
    assert list(zipper([], [])) == []
    for a, b in (([1, 2], "a"), ([1], "ab"), ([], "a")):
        with pytest.raises(ValueError):
            list(zipper(a, b))


def test_type_hints_read_pipe_unions_as_typing_unions() -> None:
    hints = type_hints(_Row)
    assert hints["domid"] is int and hints["refs"] == tuple[int, ...]
    assert typing.get_origin(hints["name"]) in UNION_TYPES
    assert set(typing.get_args(hints["name"])) == {str, type(None)}


def test_the_39_evaluator_turns_every_pipe_into_union() -> None:
    namespace = {"Optional": Optional, "Row": _Row}
    evaluate = _compat._evaluate
    assert evaluate("int | None", namespace) == Optional[int]
    assert evaluate("int | str | None", namespace) == Union[int, str, None]
    assert evaluate("tuple[Row | None, ...]", namespace) == tuple[Optional[_Row], ...]
    assert evaluate("dict[str, list[int | bytes]]", namespace) == dict[
        str, list[Union[int, bytes]]]
    assert evaluate("int", namespace) is int  # no pipe: evaluated as written


def test_tomllib_reads_toml() -> None:
    assert tomllib.loads('[a]\nb = 1\n') == {"a": {"b": 1}}
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("a = ")
