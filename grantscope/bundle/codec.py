"""Strict decoding of untrusted JSON back into grantscope's frozen snapshot dataclasses.

The bundle stores snapshots as ``dataclasses`` turned into JSON (tuples become lists).  Reading
them back from a file that may come from anyone, every field is type-checked against the
dataclass's annotations; anything that does not fit is a :class:`BundleError`, so the TUI never
receives a snapshot that would crash a screen.  Fields with defaults may be absent (an older
writer), unknown fields are ignored (a newer writer's additions within the same schema).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, TypeVar

from grantscope._compat import UNION_TYPES, type_hints, zip_strict
from grantscope.bundle.format import malformed

T = TypeVar("T")
# Every integer grantscope records fits a signed or unsigned 64-bit field; every float is a time
# or a rate.  Anything outside is a hostile or damaged bundle, refused here rather than
# overflowing a float() or a format string in a screen later.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
FLOAT_MAX = 1e15
_MISSING = object()


@functools.lru_cache(maxsize=64)
def _hints(cls: type) -> dict[str, Any]:
    # get_type_hints evaluates string annotations: costly, and asked once per decoded row.
    return type_hints(cls)


def decode(cls: type[T], obj: Any, where: str) -> T:
    """``obj`` (JSON data) as an instance of the dataclass ``cls``, checked field by field."""
    result: T = _decode(cls, obj, where)
    return result


def _decode(tp: Any, obj: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return obj
    if origin in UNION_TYPES:
        args = typing.get_args(tp)
        if obj is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, obj, where)
            except Exception as err:  # try the next alternative
                errors.append(err)
        raise malformed(where, f"value {obj!r:.60} fits none of {tp}")
    if origin is typing.Literal:
        if obj in typing.get_args(tp):
            return obj
        raise malformed(where, f"{obj!r:.60} is not one of {typing.get_args(tp)}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(obj, list):
            raise malformed(where, f"expected a list, found {type(obj).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(obj))
        if len(args) != len(obj):
            raise malformed(where, f"expected {len(args)} items, found {len(obj)}")
        return tuple(
            _decode(a, item, f"{where}[{i}]")
            for i, (a, item) in enumerate(zip_strict(args, obj))
        )
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        if not isinstance(obj, dict):
            raise malformed(where, f"expected an object, found {type(obj).__name__}")
        return {_decode(key_t, k, where): _decode(val_t, v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(obj, dict):
            raise malformed(where, f"expected an object for {tp.__name__}")
        hints = _hints(tp)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            value = obj.get(f.name, _MISSING)
            if value is _MISSING:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise malformed(where, f"{tp.__name__} lacks field {f.name!r}")
                continue
            kwargs[f.name] = _decode(hints[f.name], value, f"{where}.{f.name}")
        return tp(**kwargs)
    if tp is bool:
        if isinstance(obj, bool):
            return obj
        raise malformed(where, f"expected true/false, found {obj!r:.40}")
    if tp is int:
        if isinstance(obj, int) and not isinstance(obj, bool):
            if not INT_MIN <= obj <= INT_MAX:
                raise malformed(where, f"integer {obj!r:.40} is out of range")
            return obj
        raise malformed(where, f"expected an integer, found {obj!r:.40}")
    if tp is float:
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            if not -FLOAT_MAX <= obj <= FLOAT_MAX:  # also false for NaN
                raise malformed(where, f"number {obj!r:.40} is out of range")
            return float(obj)
        raise malformed(where, f"expected a number, found {obj!r:.40}")
    if tp is str:
        if isinstance(obj, str):
            return obj
        raise malformed(where, f"expected a string, found {obj!r:.40}")
    raise malformed(where, f"cannot decode a value of type {tp}")
